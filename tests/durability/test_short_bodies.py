"""A request whose body ends before its Content-Length (the client sent less, then
closed its side) is never committed. granian ends such a body quietly, so a manifest PUT
declaring 100 bytes more than it sent used to be stored as if it were complete."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from tests.durability.conftest import Store
from tests.durability.server import (
    OCI_MANIFEST,
    ServerProcess,
    image_manifest,
    push_monolithic,
    sha256,
    start_upload,
    upload_range_end,
)

REPO = "durability/short"
CONFIG = b'{"architecture":"amd64","os":"linux"}'
LAYER = b"layer bytes for the short-body tests"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(shared_store: Store) -> Iterator[ServerProcess]:
    started = shared_store.server(workers=1).start()
    with started.client() as client:
        for blob in (CONFIG, LAYER):
            assert push_monolithic(client, REPO, blob).status_code == 201
    yield started
    assert started.internal_errors() == []


def _send_short(
    server: ServerProcess,
    method: str,
    target: str,
    body: bytes,
    *,
    missing: int,
    content_type: str,
) -> bytes:
    """Send `body` with a Content-Length `missing` bytes larger, shut down our sending
    side (the server sees the end of the stream) and return whatever it answers."""
    path = urlsplit(target)
    target = path.path + (f"?{path.query}" if path.query else "")
    head = (
        f"{method} {target} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
        f"Content-Type: {content_type}\r\nContent-Length: {len(body) + missing}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(head + body)
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def _status(answer: bytes) -> int | None:
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else None


@pytest.mark.parametrize("reference", ["short-tag", "digest"])
def test_short_manifest_put_is_not_stored(server: ServerProcess, reference: str) -> None:
    manifest = image_manifest(CONFIG, [LAYER], annotation=reference)
    digest = sha256(manifest)
    target = digest if reference == "digest" else reference
    answer = _send_short(
        server,
        "PUT",
        f"/v2/{REPO}/manifests/{target}",
        manifest,
        missing=100,
        content_type=OCI_MANIFEST,
    )
    assert _status(answer) in (None, 400), answer[:300]
    with server.client() as client:
        for ref in (target, digest):
            response = client.get(f"/v2/{REPO}/manifests/{ref}", headers={"accept": OCI_MANIFEST})
            assert response.status_code == 404, (ref, response.status_code)
        tags = client.get(f"/v2/{REPO}/tags/list").json().get("tags") or []
        assert target not in tags


def test_short_monolithic_blob_post_is_not_stored(server: ServerProcess) -> None:
    data = b"monolithic blob that arrives short"
    answer = _send_short(
        server,
        "POST",
        f"/v2/{REPO}/blobs/uploads/?digest={sha256(data)}",
        data,
        missing=100,
        content_type="application/octet-stream",
    )
    assert _status(answer) in (None, 400), answer[:300]
    with server.client() as client:
        assert client.head(f"/v2/{REPO}/blobs/{sha256(data)}").status_code == 404


def test_short_final_put_does_not_commit_the_blob(server: ServerProcess) -> None:
    """Even when the bytes that did arrive are exactly the blob the digest names."""
    data = b"the whole blob, sent with a Content-Length that promises more"
    with server.client() as client:
        location = start_upload(client, REPO)
    separator = "&" if "?" in location else "?"
    answer = _send_short(
        server,
        "PUT",
        f"{location}{separator}digest={sha256(data)}",
        data,
        missing=100,
        content_type="application/octet-stream",
    )
    assert _status(answer) in (None, 400), answer[:300]
    with server.client() as client:
        assert client.head(f"/v2/{REPO}/blobs/{sha256(data)}").status_code == 404
        # The upload is still open, holding what arrived, and can be finished properly.
        status = client.get(location)
        assert status.status_code == 204, status.text
        assert upload_range_end(status) == len(data)
        done = client.put(f"{location}{separator}digest={sha256(data)}")
        assert done.status_code == 201, done.text
        assert client.get(f"/v2/{REPO}/blobs/{sha256(data)}").content == data


def test_short_patch_is_refused_and_keeps_only_what_arrived(server: ServerProcess) -> None:
    """A chunk cut short is not acknowledged; the bytes that came are kept, as after any
    disconnect, and reported by the upload's status so the client can resume."""
    data = b"x" * 5000
    with server.client() as client:
        location = start_upload(client, REPO)
    answer = _send_short(
        server, "PATCH", location, data, missing=1000, content_type="application/octet-stream"
    )
    assert _status(answer) in (None, 400), answer[:300]
    with server.client() as client:
        status = client.get(location)
        assert status.status_code == 204
        assert upload_range_end(status) == len(data)
