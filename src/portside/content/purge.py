"""Removing abandoned uploads: rows idle past the expiry, and leftover upload directories
(from interrupted monolithic uploads or crashes) that no row claims and that are old.
Deleting an upload's directory also aborts its multipart upload on an object store; any
other unfinished multipart upload below the uploads directory that is older than the
expiry and claimed by no upload is aborted too."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, select

from portside.metadata import schema as s
from portside.metadata.db import Database, utcnow
from portside.storage import paths
from portside.storage.base import PathNotFound, StorageDriver


@dataclass(frozen=True, slots=True)
class PurgeResult:
    expired_uploads: int
    orphan_directories: int
    aborted_multipart: int = 0


def purge_uploads(db: Database, storage: StorageDriver, max_idle: timedelta) -> PurgeResult:
    cutoff = utcnow() - max_idle
    oldest_allowed = time.time() - max_idle.total_seconds()
    with db.read() as conn:
        candidates = list(
            conn.execute(select(s.uploads.c.id).where(s.uploads.c.updated_at < cutoff)).scalars()
        )
    # Chunks do not touch the row; the data file's mtime says when bytes last arrived.
    expired = [
        upload_id
        for upload_id in candidates
        if _modified(storage, paths.upload_data_path(upload_id)) < oldest_allowed
    ]
    if expired:
        with db.write() as conn:
            conn.execute(delete(s.uploads).where(s.uploads.c.id.in_(expired)))
    for upload_id in expired:
        _delete_quietly(storage, paths.upload_dir(upload_id))
    with db.read() as conn:
        live = set(conn.execute(select(s.uploads.c.id)).scalars())
    try:
        directories = storage.list(paths.UPLOADS)
    except PathNotFound:
        directories = []
    orphans = 0
    for directory in directories:
        if directory.rsplit("/", 1)[-1] in live:
            continue
        if _modified(storage, f"{directory}/data") < oldest_allowed:
            _delete_quietly(storage, directory)
            orphans += 1
    # Multipart uploads an object store still keeps for uploads that are gone (a crash
    # between starting one and recording it): aborted, or the store bills their parts.
    aborted = storage.abort_incomplete(
        paths.UPLOADS, oldest_allowed, keep=[paths.upload_dir(upload_id) for upload_id in live]
    )
    return PurgeResult(len(expired), orphans, aborted)


def _delete_quietly(storage: StorageDriver, path: str) -> None:
    with contextlib.suppress(PathNotFound):
        storage.delete(path)


def _modified(storage: StorageDriver, path: str) -> float:
    try:
        return storage.stat(path).modified
    except PathNotFound:
        return 0.0
