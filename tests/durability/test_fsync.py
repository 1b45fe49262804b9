"""Acknowledged blobs survive an OS crash, not just a process crash: before a blob push
is answered 201, its bytes and its directory entry have been fsynced.

kill -9 cannot show this (the page cache survives a process), so the test watches the
fsync calls the server makes while it handles the push.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from portside.config import Settings
from portside.digest import Digest
from portside.metadata.db import Database
from portside.storage import paths
from tests.durability.server import sha256

REPO = "fsync/app"


class FsyncSpy:
    def __init__(self) -> None:
        self.paths: list[str] = []

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        real: Callable[[int], None] = os.fsync

        def fsync(fd: int) -> None:
            try:
                self.paths.append(os.readlink(f"/proc/self/fd/{fd}"))
            except OSError:
                self.paths.append(f"<fd {fd}>")
            real(fd)

        monkeypatch.setattr(os, "fsync", fsync)


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> FsyncSpy:
    if not Path("/proc/self/fd").is_dir():
        pytest.fail("needs /proc/self/fd to name fsynced files (Linux)")
    created = FsyncSpy()
    created.install(monkeypatch)
    return created


def _blob_path(settings: Settings, data: bytes) -> Path:
    return settings.storage_root / paths.blob_path(Digest.parse(sha256(data)))


def _assert_blob_durable(
    spy: FsyncSpy, settings: Settings, data: bytes, upload_dirs: set[str]
) -> None:
    blob = _blob_path(settings, data)
    assert blob.read_bytes() == data
    # The content was fsynced: at its final path, or in the upload file that was moved there.
    content_synced = [
        p for p in spy.paths if p == str(blob) or any(p.startswith(d + "/") for d in upload_dirs)
    ]
    assert content_synced, f"blob bytes were never fsynced; fsynced: {spy.paths}"
    # The rename into place was made durable: the blob's directory was fsynced.
    assert str(blob.parent) in spy.paths, f"blob directory not fsynced; fsynced: {spy.paths}"


def _upload_dirs(settings: Settings) -> set[str]:
    root = settings.storage_root / paths.UPLOADS
    return {str(root)} | ({str(p) for p in root.iterdir()} if root.is_dir() else set())


def test_chunked_upload_is_fsynced_before_201(
    client: TestClient, settings: Settings, spy: FsyncSpy
) -> None:
    data = os.urandom(300_000)
    response = client.post(f"/v2/{REPO}/blobs/uploads/")
    assert response.status_code == 202
    location = response.headers["location"]
    response = client.patch(location, content=data[:100_000], headers={"content-range": "0-99999"})
    assert response.status_code == 202
    upload_dirs = _upload_dirs(settings)
    response = client.put(f"{location}?digest={sha256(data)}", content=data[100_000:])
    assert response.status_code == 201, response.text
    _assert_blob_durable(spy, settings, data, upload_dirs)


def test_monolithic_upload_is_fsynced_before_201(
    client: TestClient, settings: Settings, spy: FsyncSpy
) -> None:
    data = os.urandom(200_000)
    response = client.post(f"/v2/{REPO}/blobs/uploads/?digest={sha256(data)}", content=data)
    assert response.status_code == 201, response.text
    # Monolithic uploads use a fresh directory under uploads/ that is gone afterwards.
    _assert_blob_durable(spy, settings, data, {str(settings.storage_root / paths.UPLOADS)})


@pytest.mark.parametrize("mode", ["chunked", "monolithic"])
def test_no_fsync_inside_the_commit_transaction(
    client: TestClient, spy: FsyncSpy, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    """The durable file comes first, then one short write transaction: an fsync inside
    it would hold the database's writer lock (SQLite's is global) for a disk flush."""
    open_transactions: list[int] = [0]
    inside: list[str] = []
    real_write = Database.write

    @contextmanager
    def write(self: Database) -> Iterator[Any]:
        with real_write(self) as conn:
            open_transactions[0] += 1
            try:
                yield conn
            finally:
                open_transactions[0] -= 1

    monkeypatch.setattr(Database, "write", write)
    real_fsync = os.fsync  # the spy's

    def fsync(fd: int) -> None:
        if open_transactions[0]:
            inside.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    data = os.urandom(150_000)
    if mode == "monolithic":
        response = client.post(f"/v2/{REPO}/blobs/uploads/?digest={sha256(data)}", content=data)
    else:
        location = client.post(f"/v2/{REPO}/blobs/uploads/").headers["location"]
        client.patch(location, content=data[:50_000], headers={"content-range": "0-49999"})
        response = client.put(f"{location}?digest={sha256(data)}", content=data[50_000:])
    assert response.status_code == 201, response.text
    assert spy.paths, "nothing was fsynced at all"
    assert inside == [], f"fsync inside a write transaction: {inside}"
