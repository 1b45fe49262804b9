"""Blob uploads: start, append chunks, finish with digest verification, cancel, mount.

Correctness never depends on process memory: an upload is a row in `uploads` plus the
bytes at `paths.upload_data_path(id)`, so any process can continue or finish it. The
in-memory HasherCache only saves re-reading the data at the end when the same process
saw every byte (the usual case); on a miss the data is hashed again from storage.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import threading
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import delete, select

from portside.content.blobs import BlobService
from portside.digest import Digest
from portside.errors import (
    BlobUploadInvalid,
    BlobUploadUnknown,
    DigestInvalid,
    RangeNotSatisfiable,
    SizeInvalid,
)
from portside.events.outbox import Actor
from portside.metadata import schema as s
from portside.metadata.db import Database, utcnow
from portside.offload import Offloader
from portside.reference import is_ascii_int
from portside.storage import paths
from portside.storage.base import PathNotFound, StorageDriver, Writer

if TYPE_CHECKING:
    from hashlib import _Hash

_HASH_READ = 1024 * 1024
# Received chunks are handed to the pool this many bytes at a time, and the next batch
# is received while the previous one is hashed and written: one thread hop per MiB
# instead of one per chunk (granian hands over ~64 KiB chunks).
_WRITE_BATCH = 1024 * 1024
DEFAULT_ALGORITHM = "sha256"


class HasherCache:
    """upload id -> (sha256 state, bytes hashed); bounded, process-local, optional."""

    def __init__(self, capacity: int = 512) -> None:
        self._items: OrderedDict[str, tuple[_Hash, int]] = OrderedDict()
        self._capacity = capacity

    def take(self, upload_id: str, offset: int) -> _Hash | None:
        item = self._items.pop(upload_id, None)
        if item is not None and item[1] == offset:
            return item[0]
        if offset == 0:
            return hashlib.new(DEFAULT_ALGORITHM)
        return None

    def put(self, upload_id: str, hasher: _Hash, offset: int) -> None:
        self._items[upload_id] = (hasher, offset)
        while len(self._items) > self._capacity:
            self._items.popitem(last=False)

    def drop(self, upload_id: str) -> None:
        self._items.pop(upload_id, None)


@dataclass(frozen=True, slots=True)
class ContentRange:
    start: int
    end: int  # inclusive


def parse_content_range(value: str) -> ContentRange:
    """`Content-Range: <start>-<end>` as the distribution spec uses it (also `bytes a-b/*`)."""
    text = value.strip()
    if text.startswith("bytes"):
        text = text[5:].strip().lstrip("=").strip()
    text = text.split("/", 1)[0]
    start_s, sep, end_s = text.partition("-")
    if not sep or not is_ascii_int(start_s) or not is_ascii_int(end_s):
        raise BlobUploadInvalid(f"invalid Content-Range {value[:100]!r}: expected <start>-<end>")
    start, end = int(start_s), int(end_s)
    if end < start:
        raise RangeNotSatisfiable(f"invalid Content-Range {value[:100]!r}: end before start")
    return ContentRange(start, end)


class _Sink:
    """Writes and hashes batches of chunks on the pool, one batch at a time (the lock
    keeps a batch still running after its request was cancelled from overlapping the
    final one). `written` counts what was both written and hashed."""

    def __init__(self, writer: Writer, hasher: _Hash | None) -> None:
        self.writer = writer
        self.hasher = hasher
        self.written = 0
        self.failed = False
        self._lock = threading.Lock()

    def write(self, chunks: list[bytes]) -> None:
        with self._lock:
            if self.failed:
                return
            try:
                for chunk in chunks:
                    self.writer.write(chunk)
                    if self.hasher is not None:
                        self.hasher.update(chunk)
                    self.written += len(chunk)
            except BaseException:
                self.failed = True
                raise

    def finish(self, chunks: list[bytes], *, durable: bool) -> None:
        """Write the last chunks, then close: with `durable`, after an fsync (commit)."""
        try:
            self.write(chunks)
        finally:
            with self._lock:
                if durable and not self.failed:
                    self.writer.commit()
                else:
                    self.writer.close()


class UploadService:
    def __init__(
        self, db: Database, storage: StorageDriver, blobs: BlobService, io: Offloader
    ) -> None:
        self.db = db
        self.storage = storage
        self.blobs = blobs
        self.io = io
        self.hashers = HasherCache()

    def start(self, repo: str, owner: str | None = None) -> str:
        upload_id = str(uuid.uuid4())
        self.storage.writer(paths.upload_data_path(upload_id), append=False).close()
        now = utcnow()
        with self.db.write() as conn:
            repo_id = self.db.ensure_repository(conn, repo)
            conn.execute(
                s.uploads.insert().values(
                    id=upload_id,
                    repository_id=repo_id,
                    started_at=now,
                    updated_at=now,
                    owner=owner,
                )
            )
        return upload_id

    def size(self, repo: str, upload_id: str, owner: str | None = None) -> int:
        """Bytes received so far; BLOB_UPLOAD_UNKNOWN if no such upload in this repository
        (or, when `owner` is given, if someone else started it: only they may continue)."""
        query = (
            select(s.uploads.c.owner)
            .join(s.repositories, s.repositories.c.id == s.uploads.c.repository_id)
            .where(s.uploads.c.id == upload_id, s.repositories.c.name == repo)
        )
        with self.db.read() as conn:
            found = conn.execute(query).first()
        if found is None or (owner is not None and found.owner != owner):
            raise BlobUploadUnknown(detail={"upload": upload_id[:64]})
        try:
            return self.storage.stat(paths.upload_data_path(upload_id)).size
        except PathNotFound:
            raise BlobUploadUnknown(detail={"upload": upload_id[:64]}) from None

    async def append(
        self,
        repo: str,
        upload_id: str,
        body: AsyncIterator[bytes],
        *,
        content_range: ContentRange | None,
        length: int | None,
        owner: str | None = None,
        durable: bool = False,
    ) -> int:
        """Append a chunk; return the new size. A chunk must continue where the upload stands.
        With `durable`, the data file is fsynced before this returns."""
        offset = await self.io.run(self.size, repo, upload_id, owner)
        if content_range is not None:
            if content_range.start != offset:
                raise RangeNotSatisfiable(
                    f"chunk starts at {content_range.start}, upload has {offset} bytes",
                    headers=_range_headers(offset),
                )
            expected = content_range.end - content_range.start + 1
            if length is not None and length != expected:
                raise RangeNotSatisfiable(
                    f"Content-Length {length} does not match Content-Range length {expected}",
                    headers=_range_headers(offset),
                )
        # No database write per chunk: the data file's mtime records the last activity,
        # which is what upload purging reads (content.purge).
        return await self._write(upload_id, offset, body, length, durable=durable)

    async def _write(
        self,
        upload_id: str,
        offset: int,
        body: AsyncIterator[bytes],
        length: int | None,
        *,
        durable: bool,
    ) -> int:
        """Receive on the loop, hash and write on the pool (overlapped, a batch at a
        time); with `durable`, fsync before returning, so that committing the blob
        afterwards needs no fsync inside its transaction."""
        hasher = self.hashers.take(upload_id, offset)
        writer = await self.io.run(
            self.storage.writer, paths.upload_data_path(upload_id), append=True
        )
        sink = _Sink(writer, hasher)
        received = 0
        batch: list[bytes] = []
        batched = 0
        pending: asyncio.Future[None] | None = None
        try:
            async for chunk in body:
                batch.append(chunk)
                batched += len(chunk)
                received += len(chunk)
                if batched >= _WRITE_BATCH:
                    if pending is not None:
                        await pending
                    pending = self.io.start(sink.write, batch)
                    batch, batched = [], 0
        finally:
            # Everything received is written however the body ended: a client that went
            # away resumes from the upload's size.
            if pending is not None:
                await asyncio.wait([pending])
            complete = length is None or received == length
            try:
                await self.io.run(sink.finish, batch, durable=durable and complete)
            finally:
                if hasher is not None:
                    self.hashers.put(upload_id, hasher, offset + sink.written)
        if length is not None and received != length:
            raise SizeInvalid(f"received {received} bytes, Content-Length said {length}")
        return offset + received

    async def finish(
        self,
        repo: str,
        upload_id: str,
        digest: Digest,
        body: AsyncIterator[bytes],
        *,
        content_range: ContentRange | None,
        length: int | None,
        actor: Actor,
        owner: str | None = None,
    ) -> int:
        """Append an optional last chunk, verify the digest, commit the blob; return its size."""
        size = await self.append(
            repo,
            upload_id,
            body,
            content_range=content_range,
            length=length,
            owner=owner,
            durable=True,
        )
        await self.io.run(self._finish, repo, upload_id, digest, size, actor)
        return size

    def _finish(self, repo: str, upload_id: str, digest: Digest, size: int, actor: Actor) -> None:
        """Verify and commit a complete upload whose data is already durable."""
        try:
            self._verify(upload_id, size, digest)
        except DigestInvalid:
            self.cancel(repo, upload_id)
            raise
        # Order matters for crashes: the row goes first, so a kill at any later point
        # leaves only unclaimed bytes (purged later), never a row without its data.
        with self.db.write() as conn:
            conn.execute(delete(s.uploads).where(s.uploads.c.id == upload_id))
        try:
            self._commit(repo, upload_id, digest, size, actor)
        finally:
            self._discard(upload_id)

    async def monolithic(
        self,
        repo: str,
        digest: Digest,
        body: AsyncIterator[bytes],
        length: int | None,
        actor: Actor,
    ) -> int:
        """POST ?digest=: the whole blob in one request, no upload row needed."""
        upload_id = str(uuid.uuid4())
        try:
            size = await self._write(upload_id, 0, body, length, durable=True)
            await self.io.run(self._verify_and_commit, repo, upload_id, digest, size, actor)
        finally:
            await self.io.run(self._discard, upload_id)
        return size

    def store(self, repo: str, digest: Digest, chunks: Iterable[bytes], actor: Actor) -> int:
        """A whole blob from an iterator, in the calling thread (replication pulls):
        written to an upload file as it arrives, hashed, made durable, checked against
        `digest` (DIGEST_INVALID otherwise) and committed like a monolithic upload, so
        quota and events apply. Returns its size."""
        upload_id = str(uuid.uuid4())
        hasher = hashlib.new(digest.algorithm)
        size = 0
        try:
            writer = self.storage.writer(paths.upload_data_path(upload_id), append=False)
            try:
                for chunk in chunks:
                    writer.write(chunk)
                    hasher.update(chunk)
                    size += len(chunk)
            except BaseException:
                writer.close()
                raise
            writer.commit()
            if hasher.hexdigest() != digest.hex:
                raise DigestInvalid(
                    f"received content has digest {digest.algorithm}:{hasher.hexdigest()}, "
                    f"not {digest}",
                    detail={"digest": str(digest)},
                )
            self._commit(repo, upload_id, digest, size, actor)
        finally:
            self._discard(upload_id)
        return size

    def _verify_and_commit(
        self, repo: str, upload_id: str, digest: Digest, size: int, actor: Actor
    ) -> None:
        self._verify(upload_id, size, digest)
        self._commit(repo, upload_id, digest, size, actor)

    def _verify(self, upload_id: str, size: int, digest: Digest) -> None:
        actual = self._digest_of(upload_id, size, digest.algorithm)
        if actual != digest.hex:
            raise DigestInvalid(
                f"uploaded content has digest {digest.algorithm}:{actual}, not {digest}",
                detail={"digest": str(digest)},
            )

    def _commit(self, repo: str, upload_id: str, digest: Digest, size: int, actor: Actor) -> None:
        """Move verified bytes to their content address and link them to the repository."""
        self.blobs.commit_upload(repo, paths.upload_data_path(upload_id), digest, size, actor)

    def cancel(self, repo: str, upload_id: str, owner: str | None = None) -> None:
        self.size(repo, upload_id, owner)
        with self.db.write() as conn:
            conn.execute(delete(s.uploads).where(s.uploads.c.id == upload_id))
        self._discard(upload_id)

    def _discard(self, upload_id: str) -> None:
        self.hashers.drop(upload_id)
        with contextlib.suppress(PathNotFound):
            self.storage.delete(paths.upload_dir(upload_id))

    def _digest_of(self, upload_id: str, size: int, algorithm: str) -> str:
        hasher = self.hashers.take(upload_id, size) if algorithm == DEFAULT_ALGORITHM else None
        if hasher is None:
            hasher = hashlib.new(algorithm)
            reader = self.storage.reader(paths.upload_data_path(upload_id))
            try:
                while block := reader.read(_HASH_READ):
                    hasher.update(block)
            finally:
                reader.close()
        return hasher.hexdigest()


def _range_headers(size: int) -> dict[str, str]:
    return {"Range": f"0-{max(size - 1, 0)}"}
