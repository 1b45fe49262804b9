"""Blob GET through drivers without local files: streamed from the driver's reader, or
redirected to the URL the driver offers.

These tests wrap the filesystem driver (fast, and the counting wrappers see every call;
tests/s3 runs the same paths against the S3 driver on a moto server) and hide what an
object store would not have: `NoLocalPath` answers local_path() with None (the
bytes must come through reader()), `Redirecting` also offers a URL from redirect_url().
Everything else is the real filesystem driver, so pushes work unchanged.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from portside import context
from portside.app import create_app
from portside.config import Settings
from portside.digest import Digest
from portside.storage import paths
from portside.storage.base import Reader, StorageDriver
from portside.storage.factory import open_storage as open_storage_factory
from tests.api.helpers import assert_error, push_blob

REPO = "acme/app"
DATA = os.urandom(1_300_000)  # more than two read chunks
CHUNK = 512 * 1024  # api.blobs._STREAM_CHUNK


class NoLocalPath:
    """The filesystem driver as an object store looks: no local paths."""

    def __init__(self, inner: StorageDriver) -> None:
        self.inner = inner
        self.name = "no-local-path"
        self.reads: list[int] = []
        self.open_readers = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def local_path(self, path: str) -> str | None:
        return None

    def redirect_url(self, path: str, method: str) -> str | None:
        return None

    def reader(self, path: str, offset: int = 0) -> Reader:
        return _CountingReader(self, self.inner.reader(path, offset))


class _CountingReader:
    def __init__(self, driver: NoLocalPath, inner: Reader) -> None:
        self.driver = driver
        self.inner = inner
        driver.open_readers += 1

    def read(self, size: int = -1) -> bytes:
        self.driver.reads.append(size)
        return self.inner.read(size)

    def close(self) -> None:
        self.driver.open_readers -= 1
        self.inner.close()


class Redirecting(NoLocalPath):
    """The filesystem driver as an object store that signs URLs looks."""

    def redirect_url(self, path: str, method: str) -> str | None:
        return f"https://objects.example/{path}?method={method}"


def _client_with(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, wrapper: type[NoLocalPath]
) -> Iterator[tuple[TestClient, NoLocalPath]]:
    made: list[NoLocalPath] = []
    real = open_storage_factory

    def open_storage(s: Settings) -> StorageDriver:
        made.append(wrapper(real(s)))
        return made[-1]

    monkeypatch.setattr(context, "open_storage", open_storage)
    app = create_app(settings)
    try:
        with TestClient(app, base_url="http://registry.test") as client:
            yield client, made[0]
    finally:
        app.ctx.close()


@pytest.fixture
def streamed(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[TestClient, NoLocalPath]]:
    yield from _client_with(settings, monkeypatch, NoLocalPath)


@pytest.fixture
def redirected(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[TestClient, NoLocalPath]]:
    yield from _client_with(settings, monkeypatch, Redirecting)


def test_get_streams_from_the_reader(streamed: tuple[TestClient, NoLocalPath]) -> None:
    client, driver = streamed
    digest = push_blob(client, REPO, DATA)
    response = client.get(f"/v2/{REPO}/blobs/{digest}")
    assert response.status_code == 200
    assert response.content == DATA
    assert response.headers["content-length"] == str(len(DATA))
    assert response.headers["docker-content-digest"] == digest
    assert "content-range" not in response.headers
    # Constant memory: read a bounded chunk at a time, never the whole blob; and the
    # reader is closed once the response is sent.
    assert driver.reads
    assert max(driver.reads) <= CHUNK
    assert -1 not in driver.reads
    assert driver.open_readers == 0


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=0-0", 0, 0),
        ("bytes=600000-1299999", 600_000, 1_299_999),
        ("bytes=1000000-", 1_000_000, len(DATA) - 1),
        ("bytes=-10", len(DATA) - 10, len(DATA) - 1),
        ("bytes=524287-524288", 524_287, 524_288),
    ],
)
def test_range_streams_the_slice(
    streamed: tuple[TestClient, NoLocalPath], header: str, start: int, end: int
) -> None:
    client, driver = streamed
    digest = push_blob(client, REPO, DATA)
    response = client.get(f"/v2/{REPO}/blobs/{digest}", headers={"range": header})
    assert response.status_code == 206
    assert response.content == DATA[start : end + 1]
    assert response.headers["content-range"] == f"bytes {start}-{end}/{len(DATA)}"
    assert response.headers["content-length"] == str(end - start + 1)
    assert driver.open_readers == 0


def test_unsatisfiable_range_is_refused(streamed: tuple[TestClient, NoLocalPath]) -> None:
    client, _ = streamed
    digest = push_blob(client, REPO, DATA)
    response = client.get(f"/v2/{REPO}/blobs/{digest}", headers={"range": f"bytes={len(DATA)}-"})
    assert response.status_code == 416


def test_head_does_not_read(streamed: tuple[TestClient, NoLocalPath]) -> None:
    client, driver = streamed
    digest = push_blob(client, REPO, DATA)
    response = client.head(f"/v2/{REPO}/blobs/{digest}")
    assert response.status_code == 200
    assert response.headers["content-length"] == str(len(DATA))
    assert driver.reads == []


def test_missing_bytes_are_blob_unknown(
    streamed: tuple[TestClient, NoLocalPath], settings: Settings
) -> None:
    client, _ = streamed
    digest = push_blob(client, REPO, DATA)
    os.unlink(settings.storage_root / paths.blob_path(Digest.parse(digest)))
    assert_error(client.get(f"/v2/{REPO}/blobs/{digest}"), 404, "BLOB_UNKNOWN")


def test_get_redirects_to_the_driver_url(redirected: tuple[TestClient, NoLocalPath]) -> None:
    client, driver = redirected
    digest = push_blob(client, REPO, DATA)
    response = client.get(
        f"/v2/{REPO}/blobs/{digest}", headers={"range": "bytes=0-9"}, follow_redirects=False
    )
    assert response.status_code == 307
    blob_path = paths.blob_path(Digest.parse(digest))
    assert response.headers["location"] == f"https://objects.example/{blob_path}?method=GET"
    assert response.headers["docker-content-digest"] == digest
    assert response.content == b""
    assert driver.reads == []


def test_head_is_answered_not_redirected(redirected: tuple[TestClient, NoLocalPath]) -> None:
    """HEAD needs only the size and digest, which the database has: no round trip."""
    client, _ = redirected
    digest = push_blob(client, REPO, DATA)
    response = client.head(f"/v2/{REPO}/blobs/{digest}", follow_redirects=False)
    assert response.status_code == 200
    assert response.headers["content-length"] == str(len(DATA))


def test_unknown_blob_is_not_redirected(redirected: tuple[TestClient, NoLocalPath]) -> None:
    client, _ = redirected
    push_blob(client, REPO, DATA)
    missing = "sha256:" + "0" * 64
    response = client.get(f"/v2/{REPO}/blobs/{missing}", follow_redirects=False)
    assert_error(response, 404, "BLOB_UNKNOWN")
