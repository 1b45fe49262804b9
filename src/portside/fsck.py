"""`portside fsck`: prove that what the metadata promises, storage holds.

Checks, in order: database integrity; every tag resolves to a manifest whose bytes hash
to its digest; every blob and child manifest a manifest references is present in its
repository; every blob row has a stored file of the recorded size whose content hashes to
its digest; every upload row has its data. Read-only: it reports, it never repairs.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from sqlalchemy import Connection, and_, select, text

from portside.config import Settings
from portside.digest import Digest
from portside.errors import DigestInvalid
from portside.metadata import schema as s
from portside.metadata.db import Database
from portside.metadata.engine import make_engine
from portside.storage import paths
from portside.storage.base import FileInfo, PathNotFound, StorageDriver
from portside.storage.factory import open_storage

_READ = 1024 * 1024


@dataclass
class FsckReport:
    problems: list[str] = field(default_factory=list)
    tags: int = 0
    manifests: int = 0
    blobs: int = 0
    blob_bytes: int = 0
    uploads: int = 0
    orphan_upload_dirs: int = 0

    def summary(self) -> str:
        verdict = "clean" if not self.problems else f"{len(self.problems)} problem(s)"
        return (
            f"fsck: {verdict}: {self.tags} tags, {self.manifests} manifests, {self.blobs} blobs "
            f"({self.blob_bytes} bytes), {self.uploads} uploads in progress, "
            f"{self.orphan_upload_dirs} leftover upload directories"
        )


def run_fsck(settings: Settings, *, verify_hashes: bool = True) -> FsckReport:
    db = Database(make_engine(settings.database_url))
    storage = open_storage(settings)
    report = FsckReport()
    try:
        with db.read() as conn:
            _check_database(conn, db, report)
            _check_manifests(conn, report)
            _check_blobs(conn, storage, report, verify_hashes=verify_hashes)
            _check_uploads(conn, storage, report)
    finally:
        db.engine.dispose()
    return report


def _check_database(conn: Connection, db: Database, report: FsckReport) -> None:
    if db.is_sqlite:
        result = conn.execute(text("PRAGMA integrity_check")).scalar_one()
        if result != "ok":
            report.problems.append(f"database: integrity_check says {result}")
        for row in conn.execute(text("PRAGMA foreign_key_check")):
            report.problems.append(f"database: broken foreign key in table {row[0]}")


def _check_manifests(conn: Connection, report: FsckReport) -> None:
    r, m, t = s.repositories, s.manifests, s.tags
    report.tags = len(conn.execute(select(t.c.name)).all())
    dangling = conn.execute(
        select(r.c.name, t.c.name)
        .select_from(t.join(r, r.c.id == t.c.repository_id).outerjoin(m, m.c.id == t.c.manifest_id))
        .where(m.c.id.is_(None))
    )
    for repo, tag in dangling:
        report.problems.append(f"{repo}:{tag}: tag points to a missing manifest")
    rows = conn.execute(
        select(m.c.id, m.c.repository_id, m.c.digest, m.c.content, r.c.name).join(
            r, r.c.id == m.c.repository_id
        )
    )
    for row in rows:
        report.manifests += 1
        where = f"{row.name}@{row.digest}"
        try:
            digest = Digest.parse(row.digest)
        except DigestInvalid:
            report.problems.append(f"{where}: invalid digest recorded")
            continue
        if Digest.of(bytes(row.content), digest.algorithm) != digest:
            report.problems.append(f"{where}: stored manifest bytes do not match the digest")
        link = s.repository_blobs
        missing_blobs = conn.execute(
            select(s.manifest_blobs.c.digest)
            .outerjoin(
                link,
                and_(
                    link.c.digest == s.manifest_blobs.c.digest,
                    link.c.repository_id == row.repository_id,
                ),
            )
            .where(s.manifest_blobs.c.manifest_id == row.id, link.c.digest.is_(None))
        ).scalars()
        for blob in missing_blobs:
            report.problems.append(f"{where}: references blob {blob} not in the repository")
        child = s.manifests.alias("child")
        missing_children = conn.execute(
            select(s.manifest_children.c.child_digest)
            .outerjoin(
                child,
                and_(
                    child.c.digest == s.manifest_children.c.child_digest,
                    child.c.repository_id == row.repository_id,
                ),
            )
            .where(s.manifest_children.c.manifest_id == row.id, child.c.id.is_(None))
        ).scalars()
        for digest_text in missing_children:
            report.problems.append(f"{where}: references missing child manifest {digest_text}")


def _check_blobs(
    conn: Connection, storage: StorageDriver, report: FsckReport, *, verify_hashes: bool
) -> None:
    # Sizes by listing (one request per 1,000 objects on an object store), not a stat
    # per blob; only blobs missing from the listing are looked up one by one.
    listed = {info.path: info.size for info in _walk(storage, paths.BLOBS)}
    for row in conn.execute(select(s.blobs.c.digest, s.blobs.c.size)):
        report.blobs += 1
        report.blob_bytes += row.size
        try:
            digest = Digest.parse(row.digest)
        except DigestInvalid:
            report.problems.append(f"blob {row.digest}: invalid digest recorded")
            continue
        path = paths.blob_path(digest)
        size = listed.get(path)
        if size is None:
            try:
                size = storage.stat(path).size
            except PathNotFound:
                report.problems.append(f"blob {digest}: missing from storage")
                continue
        if size != row.size:
            report.problems.append(f"blob {digest}: stored size {size}, recorded size {row.size}")
            continue
        if verify_hashes:
            hasher = hashlib.new(digest.algorithm)
            reader = storage.reader(path)
            try:
                while block := reader.read(_READ):
                    hasher.update(block)
            finally:
                reader.close()
            if hasher.hexdigest() != digest.hex:
                report.problems.append(f"blob {digest}: content does not match its digest")


def _walk(storage: StorageDriver, prefix: str) -> list[FileInfo]:
    try:
        return list(storage.walk(prefix))
    except PathNotFound:
        return []


def _check_uploads(conn: Connection, storage: StorageDriver, report: FsckReport) -> None:
    upload_ids = set(conn.execute(select(s.uploads.c.id)).scalars())
    report.uploads = len(upload_ids)
    for upload_id in sorted(upload_ids):
        if not storage.exists(paths.upload_data_path(upload_id)):
            report.problems.append(f"upload {upload_id}: recorded but its data is missing")
    try:
        stored = {entry.rsplit("/", 1)[-1] for entry in storage.list(paths.UPLOADS)}
    except PathNotFound:
        stored = set()
    # Leftovers from interrupted monolithic uploads are harmless; upload purge removes them.
    report.orphan_upload_dirs = len(stored - upload_ids)
