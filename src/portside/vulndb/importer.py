"""Importing one source (a path: file, directory or zip) into the database: read it
with portside.vulndb.feeds, write it with portside.vulndb.store. All or nothing: any
error leaves the source on the data it had."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from portside.events.outbox import SYSTEM, Actor
from portside.metadata.db import Database
from portside.vulndb import feeds
from portside.vulndb.feeds import FeedError, Format
from portside.vulndb.store import Import

Progress = Callable[[int], None]  # called with the advisories read so far
PROGRESS_EVERY = 1000

__all__ = ["FeedError", "ImportResult", "import_path"]


@dataclass(frozen=True, slots=True)
class ImportResult:
    source: str
    format: Format
    import_id: int
    generation: int
    advisories: int
    packages: int
    seconds: float


def import_path(
    db: Database,
    path: Path,
    *,
    source: str | None = None,
    fmt: Format | None = None,
    fingerprint: str | None = None,
    progress: Progress | None = None,
    actor: Actor = SYSTEM,
) -> ImportResult:
    """Import `path` as `source` (default: its absolute path). FeedError: bad input,
    nothing changed."""
    started = time.monotonic()
    fmt = fmt or feeds.detect(path)
    name = source or str(path.absolute())
    with Import(db, name, fmt, fingerprint=fingerprint, actor=actor) as writer:
        for count, advisory in enumerate(feeds.advisories(path, fmt), start=1):
            writer.add(advisory)
            if progress is not None and count % PROGRESS_EVERY == 0:
                progress(count)
        if writer.count == 0:
            raise FeedError(f"{path}: no advisories found (nothing imported)")
        generation = writer.commit()
    if progress is not None:
        progress(writer.advisories)
    return ImportResult(
        source=name,
        format=fmt,
        import_id=writer.id,
        generation=generation,
        advisories=writer.advisories,
        packages=writer.packages,
        seconds=time.monotonic() - started,
    )
