"""Blobs as a repository sees them: lookup through links, link, unlink (raising
`blob.deleted`), and committing verified upload data into the content-addressed store."""

from __future__ import annotations

from dataclasses import dataclass

import structlog
from sqlalchemy import Connection, and_, delete, select

from portside.content import quota
from portside.content.hotpath import MISS, HotQueries
from portside.content.refusals import record_refusal
from portside.digest import Digest
from portside.errors import BlobUnknown, Conflict, QuotaExceeded
from portside.events import outbox
from portside.events.outbox import Actor
from portside.metadata import schema as s
from portside.metadata.db import Database, repository_id, utcnow
from portside.reference import project_of
from portside.storage import paths
from portside.storage.base import PathNotFound, StorageDriver

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class BlobInfo:
    digest: Digest
    size: int
    storage_path: str


class BlobService:
    def __init__(self, db: Database, storage: StorageDriver, hot: HotQueries) -> None:
        self.db = db
        self.storage = storage
        self.hot = hot

    def cached(self, repo: str, digest: Digest) -> tuple[int | None, BlobInfo | None]:
        """(cache version, the blob if the validated cache has it); never blocks (see
        content.hotpath). On a miss, call stat() with the version, on the pool."""
        version, size = self.hot.cached("blob_size", repo, str(digest))
        if size is MISS:
            return version, None
        return version, BlobInfo(digest, size, paths.blob_path(digest))

    def stat(self, repo: str, digest: Digest, version: int | None = None) -> BlobInfo:
        """The blob if `repo` may read it, else BLOB_UNKNOWN."""
        size = self.hot.blob_size(repo, str(digest), version)
        if size is None:
            raise BlobUnknown(detail={"digest": str(digest)})
        return BlobInfo(digest, size, paths.blob_path(digest))

    def local_path(self, info: BlobInfo) -> str | None:
        return self.storage.local_path(info.storage_path)

    def link(self, conn: Connection, repo_id: int, digest: Digest, size: int) -> None:
        """Record the blob and make it visible to the repository (inside the caller's
        transaction). Re-linking refreshes linked_at, which GC's grace period reads."""
        now = utcnow()
        self.db.insert_ignore(
            conn, s.blobs, {"digest": str(digest), "size": size, "created_at": now}
        )
        link = s.repository_blobs
        updated = conn.execute(
            link.update()
            .where(link.c.repository_id == repo_id, link.c.digest == str(digest))
            .values(linked_at=now)
        )
        if updated.rowcount == 0:
            self.db.insert_ignore(
                conn, link, {"repository_id": repo_id, "digest": str(digest), "linked_at": now}
            )

    def commit_upload(
        self, repo: str, upload_path: str, digest: Digest, size: int, actor: Actor
    ) -> None:
        """Make verified upload bytes the blob `digest` and link it to `repo`.

        The caller has made the bytes durable already (the upload writer's commit, an
        fsync, before any transaction). Then one short write transaction holding the
        blob row: garbage collection deletes a blob's file only while holding the same
        row, so the file cannot vanish between "it is there" and the link being
        committed. Inside it the move is a rename, no fsync: the writer lock (SQLite's is
        global) is never held for a disk flush. The rename is made durable right after
        the commit and before this returns, so before the client is told 201. (An OS
        crash in that window can lose the rename of a committed blob: the client got no
        201 and retries, and the retry's commit moves its bytes into place; `portside
        fsck` reports the blob as missing meanwhile.) A blob that would take the project
        past its quota is refused (QuotaExceeded, recorded as a quota.exceeded event)
        before anything is written; the caller discards the upload's bytes.
        """
        try:
            self._commit_upload(repo, upload_path, digest, size)
        except QuotaExceeded as refused:
            record_refusal(self.db, actor, repo, str(digest), refused, kind="blob")
            raise

    def _commit_upload(self, repo: str, upload_path: str, digest: Digest, size: int) -> None:
        destination = paths.blob_path(digest)
        # An object store copies instead of renaming: the copy runs here, before the
        # transaction, so the writer lock is not held for it. Should GC delete that copy
        # before the blob row is held below, the move in the transaction copies again.
        staged = self.storage.stage(upload_path, destination)
        try:
            self._link_upload(repo, upload_path, digest, size)
        except BaseException:
            if staged:
                self._leave_to_gc(digest, size)
            raise

    def _leave_to_gc(self, digest: Digest, size: int) -> None:
        """A staged copy whose commit failed (quota, conflict): record its blob row, with
        no link, so garbage collection deletes the copy after its grace period."""
        try:
            with self.db.write() as conn:
                self.db.insert_ignore(
                    conn, s.blobs, {"digest": str(digest), "size": size, "created_at": utcnow()}
                )
        except Exception:
            log.warning("blob.staged_copy_unrecorded", digest=str(digest))

    def _link_upload(self, repo: str, upload_path: str, digest: Digest, size: int) -> None:
        destination = paths.blob_path(digest)
        moved = False
        with self.db.write() as conn:
            repo_id, limit = self.db.ensure_push_repository(conn, repo)
            held = quota.hold(conn, project_of(repo), limit)
            quota.admit_blob(conn, held, str(digest), size)
            self._hold_blob_row(conn, digest, size)
            if not self.storage.exists(destination):
                self.storage.move(upload_path, destination, durable=False)
                moved = True
            self.link(conn, repo_id, digest, size)
        if moved:
            self.storage.persist(destination)

    def _hold_blob_row(self, conn: Connection, digest: Digest, size: int) -> None:
        """Insert the blob row if missing and lock it (FOR SHARE) until commit. A row that
        GC deletes while we wait for the lock is simply inserted again."""
        for _ in range(3):
            self.db.insert_ignore(
                conn, s.blobs, {"digest": str(digest), "size": size, "created_at": utcnow()}
            )
            held = conn.execute(
                select(s.blobs.c.digest)
                .where(s.blobs.c.digest == str(digest))
                .with_for_update(read=True)
            ).first()
            if held is not None:
                return
        raise Conflict("blob is being garbage-collected; retry the upload")

    def try_mount(self, repo: str, digest: Digest, source: str, actor: Actor) -> int | None:
        """Link a blob readable from `source` into `repo`; its size, or None if not readable.
        QuotaExceeded (recorded as a quota.exceeded event) if the blob is new to the
        project and would exceed its quota."""
        try:
            return self._mount(repo, digest, source, actor)
        except QuotaExceeded as refused:
            record_refusal(self.db, actor, repo, str(digest), refused, kind="mount")
            raise

    def _mount(self, repo: str, digest: Digest, source: str, actor: Actor) -> int | None:
        link = s.repository_blobs
        with self.db.write() as conn:
            source_id = repository_id(conn, source)
            if source_id is None:
                return None
            # The quota lock (if any) before the source's row locks, as every push takes it.
            repo_id, limit = self.db.ensure_push_repository(conn, repo)
            held = quota.hold(conn, project_of(repo), limit)
            # Lock the source link and the blob row: GC cannot remove either meanwhile.
            linked = conn.execute(
                select(s.blobs.c.size)
                .join(link, link.c.digest == s.blobs.c.digest)
                .where(link.c.repository_id == source_id, link.c.digest == str(digest))
                .with_for_update(read=True)
            ).first()
            if linked is None or not self.storage.exists(paths.blob_path(digest)):
                return None
            quota.admit_blob(conn, held, str(digest), int(linked.size))
            self.link(conn, repo_id, digest, int(linked.size))
            outbox.emit(
                conn,
                outbox.BLOB_MOUNTED,
                actor,
                resource=f"{repo}@{digest}",
                repository=repo,
                data={"digest": str(digest), "source": source},
            )
        return int(linked.size)

    def link_stored(self, repo: str, digest: Digest) -> int | None:
        """Link a blob already in the store into `repo` (the proxy cache: a blob another
        repository or a fill in another process stored); its size, or None if it is not
        stored. The caller has decided `repo` may see it (a manifest of `repo` lists it).
        The blob row is held as for an upload, so GC cannot take the file meanwhile."""
        with self.db.write() as conn:
            # The quota lock first, as every push takes it (content.quota).
            repo_id, limit = self.db.ensure_push_repository(conn, repo)
            held = quota.hold(conn, project_of(repo), limit)
            row = conn.execute(
                select(s.blobs.c.size)
                .where(s.blobs.c.digest == str(digest))
                .with_for_update(read=True)
            ).first()
            if row is None or not self.storage.exists(paths.blob_path(digest)):
                return None
            size = int(row.size)
            quota.admit_blob(conn, held, str(digest), size)
            self.link(conn, repo_id, digest, size)
        return size

    def unlink(self, repo: str, digest: Digest, actor: Actor) -> None:
        """Remove the repository's link to a blob (`blob.deleted`); the bytes stay until
        garbage collection finds them unreferenced."""
        with self.db.write() as conn:
            repo_id = repository_id(conn, repo)
            link = s.repository_blobs
            if repo_id is None:
                raise BlobUnknown(detail={"digest": str(digest)})
            user = conn.execute(
                select(s.manifests.c.digest)
                .join(s.manifest_blobs, s.manifest_blobs.c.manifest_id == s.manifests.c.id)
                .where(
                    and_(s.manifests.c.repository_id == repo_id),
                    s.manifest_blobs.c.digest == str(digest),
                )
                .limit(1)
            ).scalar_one_or_none()
            if user is not None:
                raise Conflict(
                    f"blob is used by manifest {user} in this repository; delete that first"
                )
            deleted = conn.execute(
                delete(link).where(link.c.repository_id == repo_id, link.c.digest == str(digest))
            )
            if deleted.rowcount == 0:
                raise BlobUnknown(detail={"digest": str(digest)})
            outbox.emit(
                conn,
                outbox.BLOB_DELETED,
                actor,
                resource=f"{repo}@{digest}",
                repository=repo,
                data={"digest": str(digest)},
            )

    def read_all(self, digest: Digest) -> bytes:
        try:
            return self.storage.get(paths.blob_path(digest))
        except PathNotFound:
            raise BlobUnknown(detail={"digest": str(digest)}) from None
