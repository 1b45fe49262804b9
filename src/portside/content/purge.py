"""Removing abandoned uploads: rows idle past the expiry, and leftover upload directories
(from interrupted monolithic uploads or crashes) that no row claims and that are old."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, select

from portside.content.db import Database, utcnow
from portside.metadata import schema as s
from portside.storage import paths
from portside.storage.base import PathNotFound, StorageDriver


@dataclass(frozen=True, slots=True)
class PurgeResult:
    expired_uploads: int
    orphan_directories: int


def purge_uploads(db: Database, storage: StorageDriver, max_idle: timedelta) -> PurgeResult:
    cutoff = utcnow() - max_idle
    with db.write() as conn:
        expired = list(
            conn.execute(select(s.uploads.c.id).where(s.uploads.c.updated_at < cutoff)).scalars()
        )
        if expired:
            conn.execute(delete(s.uploads).where(s.uploads.c.id.in_(expired)))
    for upload_id in expired:
        _delete_quietly(storage, paths.upload_dir(upload_id))
    with db.read() as conn:
        live = set(conn.execute(select(s.uploads.c.id)).scalars())
    try:
        directories = storage.list(paths.UPLOADS)
    except PathNotFound:
        directories = []
    oldest_allowed = time.time() - max_idle.total_seconds()
    orphans = 0
    for directory in directories:
        if directory.rsplit("/", 1)[-1] in live:
            continue
        try:
            modified = storage.stat(f"{directory}/data").modified
        except PathNotFound:
            modified = 0.0
        if modified < oldest_allowed:
            _delete_quietly(storage, directory)
            orphans += 1
    return PurgeResult(len(expired), orphans)


def _delete_quietly(storage: StorageDriver, path: str) -> None:
    with contextlib.suppress(PathNotFound):
        storage.delete(path)
