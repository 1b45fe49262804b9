"""The storage driver interface: bytes only, addressed by slash-separated paths.

Drivers know nothing of repositories, manifests or tags (those live in SQL); they store
and return bytes. Every driver must pass tests/storage/test_driver_conformance.py.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol


class PathNotFound(Exception):
    def __init__(self, path: str) -> None:
        super().__init__(f"path not found: {path}")
        self.path = path


class InvalidPath(ValueError):
    """A path that is empty, absolute, or tries to leave the driver's root."""


@dataclass(frozen=True, slots=True)
class FileInfo:
    path: str
    size: int
    modified: float


class Writer(Protocol):
    """Appends to one file; nothing is visible at its final place until commit()."""

    @property
    def size(self) -> int: ...

    def write(self, data: bytes | memoryview) -> None: ...

    def commit(self) -> None:
        """Flush and make the written bytes durable (fsync)."""

    def close(self) -> None:
        """Flush and close without the durability guarantee; the data stays appendable."""


class Reader(Protocol):
    def read(self, size: int = -1) -> bytes: ...

    def close(self) -> None: ...


class StorageDriver(Protocol):
    name: str

    def put(self, path: str, data: bytes) -> None:
        """Write a whole file atomically (temp + fsync + rename)."""

    def get(self, path: str) -> bytes: ...

    def reader(self, path: str, offset: int = 0) -> Reader: ...

    def writer(self, path: str, *, append: bool) -> Writer:
        """Open for appending (append=True keeps existing content; False truncates)."""

    def stat(self, path: str) -> FileInfo: ...

    def exists(self, path: str) -> bool: ...

    def list(self, prefix: str) -> list[str]:
        """Direct children (files and directories) of a directory path, sorted."""

    def walk(self, prefix: str) -> Iterator[FileInfo]:
        """Every file under a directory path, recursively."""

    def move(self, source: str, destination: str, *, durable: bool = True) -> None:
        """Atomically move a file into place; replaces the destination. Durably (the
        bytes and the new name survive an OS crash once it returns) unless `durable` is
        False: then the caller has made the source's bytes durable already (a writer's
        commit) and calls persist(destination) later; the move itself does no fsync, so
        it can run inside a database transaction without holding it for a disk flush."""

    def stage(self, source: str, destination: str) -> bool:
        """Prepare a later move(source, destination) that will run under the caller's
        locks: where a move copies the bytes (object stores have no rename), copy them
        now, unless the destination exists, so that the move finds the destination in
        place and costs nothing; the source stays until the caller deletes it. A no-op
        where a move is a rename. True if it wrote the destination."""

    def persist(self, path: str) -> None:
        """Make an earlier move(..., durable=False) to `path` durable (a no-op where
        moves always are)."""

    def delete(self, path: str) -> None:
        """Delete a file or a whole directory tree. Missing paths raise PathNotFound."""

    def delete_many(self, paths: Iterable[str]) -> None:
        """Delete files (not directories); missing ones are skipped. Object stores do it in
        batched requests (S3 DeleteObjects: 1,000 keys a call); the filesystem unlinks
        side by side in a bounded pool."""

    def abort_incomplete(self, prefix: str, older_than: float, keep: Iterable[str] = ()) -> int:
        """Abort unfinished multipart writes below `prefix` started before `older_than`
        (Unix time), except below the `keep` paths; how many. Stores that keep no such
        state (the filesystem) return 0."""

    def local_path(self, path: str) -> str | None:
        """A filesystem path the HTTP server may send directly (sendfile), if any."""

    def redirect_url(self, path: str, method: str) -> str | None:
        """A URL the client can fetch the bytes from directly (object stores), if any."""
