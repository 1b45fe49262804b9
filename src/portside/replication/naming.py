"""Where a replicated repository lands: the destination namespace and Harbor's
flattening levels.

With no namespace the name is kept. With a namespace `ns`, for `a/b/c/img`:

    flattening -1 (all levels)   ns/img
    flattening 0  (none)         ns/a/b/c/img
    flattening 1  (Harbor's default)  ns/b/c/img
    flattening 2                 ns/c/img
    flattening 3                 ns/img

A name with no more path components than the level asks to remove (flattening 2 of
`a/img`) cannot be flattened that far: `Unflattenable` names the repository, and the run
records that artifact as failed.
"""

from __future__ import annotations


class Unflattenable(ValueError):
    pass


def destination(repository: str, namespace: str | None, flattening: int) -> str:
    if not namespace:
        return repository
    parts = repository.split("/")
    if flattening == -1:
        kept = parts[-1:]
    elif flattening == 0:
        kept = parts
    elif flattening >= len(parts):
        raise Unflattenable(
            f"{repository!r} has {len(parts) - 1} path components before its last one; "
            f"flattening {flattening} levels is not possible"
        )
    else:
        kept = parts[flattening:]
    return "/".join([namespace, *kept])
