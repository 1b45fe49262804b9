"""Uploads live in the database and storage, not in a process: any server can continue
one, a restart does not lose one, and a client that drops mid-chunk can resume."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from urllib.parse import urlsplit

import httpx
import pytest

from tests.durability.conftest import ServerFactory, Store
from tests.durability.server import (
    ServerProcess,
    error_codes,
    finish_upload,
    patch_chunk,
    sha256,
    start_upload,
    upload_range_end,
)

REPO = "durability/stateless"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pair(shared_store: Store) -> tuple[ServerProcess, ServerProcess]:
    """Two servers running at the same time on one data directory and database."""
    return shared_store.server(workers=1).start(), shared_store.server(workers=1).start()


def _assert_status(client: httpx.Client, location: str, size: int) -> None:
    response = client.get(location)
    assert response.status_code == 204, (response.status_code, response.text)
    assert upload_range_end(response) == size
    assert response.headers["docker-upload-uuid"] in location


def _assert_blob(server: ServerProcess, data: bytes) -> None:
    with server.client() as client:
        response = client.get(f"/v2/{REPO}/blobs/{sha256(data)}")
        assert response.status_code == 200, (response.status_code, response.text)
        assert response.content == data
        assert sha256(response.content) == sha256(data)
        assert response.headers["docker-content-digest"] == sha256(data)


def test_upload_alternates_between_two_running_servers(
    pair: tuple[ServerProcess, ServerProcess],
) -> None:
    server_a, server_b = pair
    chunks = [os.urandom(n) for n in (100_000, 1, 65_536, 250_000, 7)]
    data = b"".join(chunks)
    with server_a.client() as a, server_b.client() as b:
        location = start_upload(a, REPO)
        offset = 0
        for number, chunk in enumerate(chunks[:-1]):
            client = (a, b)[number % 2]
            response = patch_chunk(client, location, chunk, offset)
            assert response.status_code == 202, (number, response.status_code, response.text)
            offset += len(chunk)
            assert upload_range_end(response) == offset
            location = response.headers["location"]
            # Both servers agree on the progress.
            _assert_status(a, location, offset)
            _assert_status(b, location, offset)
        response = finish_upload(b, location, sha256(data), chunks[-1])
        assert response.status_code == 201, (response.status_code, response.text)
        assert response.headers["docker-content-digest"] == sha256(data)
        # The finished upload is gone everywhere.
        for client in (a, b):
            gone = client.get(location)
            assert gone.status_code == 404
            assert error_codes(gone) == ["BLOB_UPLOAD_UNKNOWN"]
    _assert_blob(server_a, data)
    _assert_blob(server_b, data)
    assert server_a.internal_errors() == []
    assert server_b.internal_errors() == []


def test_upload_finished_on_another_server_than_its_last_chunk(
    pair: tuple[ServerProcess, ServerProcess],
) -> None:
    """Server A sees every chunk (its hash state is complete), server B finishes."""
    server_a, server_b = pair
    data = os.urandom(300_000)
    with server_a.client() as a, server_b.client() as b:
        location = start_upload(a, REPO)
        assert patch_chunk(a, location, data[:200_000], 0).status_code == 202
        assert patch_chunk(a, location, data[200_000:], 200_000).status_code == 202
        response = finish_upload(b, location, sha256(data))
        assert response.status_code == 201, (response.status_code, response.text)
        # A wrong digest finished elsewhere is refused (and not silently accepted).
        other = os.urandom(1000)
        location = start_upload(b, REPO)
        assert patch_chunk(b, location, other, 0).status_code == 202
        refused = finish_upload(a, location, sha256(b"something else"))
        assert refused.status_code == 400
        assert error_codes(refused) == ["DIGEST_INVALID"]
    _assert_blob(server_a, data)
    _assert_blob(server_b, data)


def test_upload_survives_restart_and_crash(server_factory: ServerFactory) -> None:
    """Chunks on server 1, graceful stop; more on server 2, SIGKILL right after the 202;
    server 3 finishes. Every acknowledged byte is still there."""
    data = os.urandom(500_000)
    first = server_factory(workers=1).start()
    with first.client() as client:
        location = start_upload(client, REPO)
        response = patch_chunk(client, location, data[:123_457], 0)
        assert response.status_code == 202
        location = response.headers["location"]
    first.stop()
    second = server_factory(workers=2).start()
    with second.client() as client:
        _assert_status(client, location, 123_457)
        response = patch_chunk(client, location, data[123_457:400_000], 123_457)
        assert response.status_code == 202, (response.status_code, response.text)
    second.kill()
    third = server_factory(workers=1).start()
    with third.client() as client:
        _assert_status(client, location, 400_000)
        response = finish_upload(client, location, sha256(data), data[400_000:])
        assert response.status_code == 201, (response.status_code, response.text)
    _assert_blob(third, data)
    for server in (first, second, third):
        assert server.internal_errors() == []


def _send_partial_patch(server: ServerProcess, location: str, declared: int, sent: bytes) -> None:
    """PATCH with Content-Length `declared` but only `sent` bytes, then close the socket."""
    path = urlsplit(location).path if location.startswith("http") else location
    head = (
        f"PATCH {path} HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{server.port}\r\n"
        "Content-Type: application/octet-stream\r\n"
        f"Content-Length: {declared}\r\n"
        "\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(head)
        sock.sendall(sent)
        time.sleep(0.5)  # let the server read what was sent
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    # SO_LINGER 0: close with RST, the way a killed client vanishes.


def _settled_size(client: httpx.Client, location: str, expected: int) -> int:
    """Poll the status until it shows `expected` bytes (or stops changing)."""
    deadline = time.monotonic() + 10
    last = -1
    while time.monotonic() < deadline:
        response = client.get(location)
        assert response.status_code == 204, (response.status_code, response.text)
        last = upload_range_end(response)
        if last == expected:
            return last
        time.sleep(0.1)
    return last


@pytest.mark.parametrize("already", [0, 64_000], ids=["fresh-upload", "after-a-chunk"])
def test_resume_after_client_disconnect_mid_chunk(
    pair: tuple[ServerProcess, ServerProcess], already: int
) -> None:
    server = pair[0]
    data = os.urandom(1_000_000)
    with server.client() as client:
        location = start_upload(client, REPO)
        if already:
            response = patch_chunk(client, location, data[:already], 0)
            assert response.status_code == 202
            location = response.headers["location"]
        sent = 300_000
        _send_partial_patch(
            server, location, declared=len(data) - already, sent=data[already : already + sent]
        )
        landed = _settled_size(client, location, already + sent)
        # Every byte the server read before the client vanished is kept and reported.
        assert landed == already + sent, f"status reports {landed} bytes, {already + sent} sent"
        response = patch_chunk(client, location, data[landed:900_000], landed)
        assert response.status_code == 202, (response.status_code, response.text)
        assert upload_range_end(response) == 900_000
        response = finish_upload(client, response.headers["location"], sha256(data), data[900_000:])
        assert response.status_code == 201, (response.status_code, response.text)
    _assert_blob(server, data)
    assert server.internal_errors() == []


def test_wrong_resume_offset_is_refused_with_the_real_range(
    pair: tuple[ServerProcess, ServerProcess],
) -> None:
    server = pair[1]
    data = os.urandom(100_000)
    with server.client() as client:
        location = start_upload(client, REPO)
        _send_partial_patch(server, location, declared=len(data), sent=data[:40_000])
        landed = _settled_size(client, location, 40_000)
        response = patch_chunk(client, location, data[landed + 10 :], landed + 10)
        assert response.status_code == 416, (response.status_code, response.text)
        assert upload_range_end(response) == landed
        assert response.headers["location"]
    # The refused chunk changed nothing; the right offset still works. (A new connection:
    # whether the refused one stays usable is test_refused_chunk_leaves_connection_usable.)
    with server.client() as client:
        response = finish_upload(client, location, sha256(data), data[landed:])
        assert response.status_code == 201, (response.status_code, response.text)
    _assert_blob(server, data)


def test_refused_chunk_leaves_connection_usable(pair: tuple[ServerProcess, ServerProcess]) -> None:
    """A PATCH refused before its body is read (416: wrong offset) must not break HTTP/1.1
    keep-alive: either the server says `Connection: close`, or the next request on the same
    connection is answered. Clients (docker, containerd) reuse connections. Timing decides
    how much body the server has buffered, so the probe is repeated."""
    server = pair[0]
    failures = []
    for _attempt in range(6):
        outcome = _probe_refused_chunk(server)
        if outcome:
            failures.append(outcome)
    assert failures == []


def _probe_refused_chunk(server: ServerProcess) -> str | None:
    with server.client() as client:
        location = start_upload(client, REPO)
    body = os.urandom(2_000_000)  # more than the server buffers before it answers
    request = (
        f"PATCH {location} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Content-Type: application/octet-stream\r\n"
        f"Content-Range: 10-{10 + len(body) - 1}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sender = threading.Thread(target=_send_ignoring_errors, args=(sock, request))
        sender.start()
        first = _read_response(sock)
        sender.join(timeout=10)
        assert first.startswith(b"HTTP/1.1 416"), first[:200]
        head = first.split(b"\r\n\r\n", 1)[0].lower()
        if b"\r\nconnection: close" in head:
            return None
        try:
            sock.sendall(f"GET {location} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
            second = _read_response(sock)
        except OSError as error:
            second = repr(error).encode()
    if second.startswith(b"HTTP/1.1 204"):
        return None
    return f"416 without Connection: close; the next request on the connection got {second[:100]!r}"


def _send_ignoring_errors(sock: socket.socket, data: bytes) -> None:
    with contextlib.suppress(OSError):
        sock.sendall(data)


def _read_response(sock: socket.socket) -> bytes:
    """One response (headers + Content-Length body), or what arrived before EOF."""
    data = b""
    while b"\r\n\r\n" not in data:
        block = sock.recv(65536)
        if not block:
            return data
        data += block
    head, _, rest = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(rest) < length:
        block = sock.recv(65536)
        if not block:
            break
        rest += block
    return head + b"\r\n\r\n" + rest
