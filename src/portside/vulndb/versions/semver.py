"""Semantic Versioning 2.0.0 ordering (https://semver.org/#spec-item-11), for npm,
crates.io, Go modules and OSV's `SEMVER` ranges.

`MAJOR.MINOR.PATCH[-pre.release][+build]`: numbers as numbers; a version with a
pre-release sorts before the same version without; pre-release identifiers compare one
by one, numeric ones as numbers and before alphanumeric ones (ASCII order), and a
shorter list of equal identifiers first. Build metadata (`+build`, Go's
`+incompatible`) does not take part. Go versions carry a `v` (OSV's Go data omits it;
both are accepted) and may be shortened (`v1.2` is `v1.2.0`, as golang.org/x/mod/semver
reads it); a pseudo-version (`v0.0.0-20240101000000-abcdef123456`) is an ordinary
pre-release.
"""

from __future__ import annotations

import re

from portside.vulndb.versions.errors import VersionError

_NUMBER = r"0|[1-9][0-9]*"
_IDENT = r"[0-9A-Za-z-]+"
_SEMVER = re.compile(
    rf"^v?(?P<major>{_NUMBER})(?:\.(?P<minor>{_NUMBER})(?:\.(?P<patch>{_NUMBER}))?)?"
    rf"(?:-(?P<pre>{_IDENT}(?:\.{_IDENT})*))?(?:\+(?P<build>{_IDENT}(?:\.{_IDENT})*))?$"
)

Key = tuple[int, int, int, tuple[tuple[int, int, str], ...] | None]


def key(version: str, *, shortened: bool = False) -> Key:
    """A sort key; `shortened` lets minor and patch be left out (Go)."""
    found = _SEMVER.match(version.strip())
    if found is None or (not shortened and found["patch"] is None):
        raise VersionError(f"{version!r} is not a semantic version (MAJOR.MINOR.PATCH)")
    if found["patch"] is None and (found["pre"] or found["build"]):
        raise VersionError(f"{version!r}: a shortened version takes no pre-release or build")
    identifiers: tuple[tuple[int, int, str], ...] | None = None
    if found["pre"] is not None:
        parts = found["pre"].split(".")
        for part in parts:
            if part.isdigit() and len(part) > 1 and part[0] == "0":
                raise VersionError(f"{version!r}: numeric identifier {part!r} has a leading 0")
        identifiers = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in parts)
    return (int(found["major"]), int(found["minor"] or 0), int(found["patch"] or 0), identifiers)


def _compare_keys(a: Key, b: Key) -> int:
    if a[:3] != b[:3]:
        return -1 if a[:3] < b[:3] else 1
    pa, pb = a[3], b[3]
    if pa == pb:
        return 0
    if pa is None:
        return 1
    if pb is None:
        return -1
    return -1 if pa < pb else 1  # tuples: numeric (0, n) before alphanumeric (1, s)


def compare(a: str, b: str) -> int:
    return _compare_keys(key(a), key(b))


def compare_go(a: str, b: str) -> int:
    return _compare_keys(key(a, shortened=True), key(b, shortened=True))
