"""Retries and resumption through a fault-injecting proxy in front of a real
Distribution 2.8 (see proxy.py: the one stand-in, since no real registry fails on cue):
429 with Retry-After then success, 503s retried with backoff, a bounded number of
attempts, a chunked upload whose connection is cut after the peer stored a chunk
resumed from the peer's reported Range, and a download cut midway reported."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from portside.remote import RegistryClient, RemoteError, RetryPolicy, Unreachable, push_blob
from tests.durability.server import sha256
from tests.remote.peers import LOOPBACK_ALLOWED, Peer, distribution
from tests.remote.proxy import Fault, FaultProxy
from tests.remote.test_client import push_image, source_of


@pytest.fixture
def peer(tmp_path: Path) -> Iterator[Peer]:
    with distribution(tmp_path / "distribution") as running:
        yield running


class Sleeps:
    """Records the waits the client asks for (and waits a little, not the whole time)."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def test_429_with_retry_after_then_success(peer: Peer) -> None:
    def decide(method: str, path: str, count: int) -> Fault:
        if "/manifests/" in path and count < 3:
            return ("answer", 429, {"Retry-After": "7"})
        return None

    sleeps = Sleeps()
    with (
        FaultProxy(peer.url, decide) as proxy,
        RegistryClient(
            proxy.url, egress=LOOPBACK_ALLOWED, retry=RetryPolicy(attempts=5), sleep=sleeps
        ) as client,
    ):
        assert client.head_manifest("some/app", "v1") is None  # 429, 429, 429, then 404
    assert sleeps.waits == [7.0, 7.0, 7.0]
    assert len(proxy.injected) == 3


def test_503_is_retried_with_bounded_attempts(peer: Peer) -> None:
    sleeps = Sleeps()
    always = FaultProxy(peer.url, lambda m, p, n: ("answer", 503, {}))
    with (
        always as proxy,
        RegistryClient(
            proxy.url,
            egress=LOOPBACK_ALLOWED,
            retry=RetryPolicy(attempts=4, max_wait=2),
            sleep=sleeps,
        ) as client,
    ):
        with pytest.raises(RemoteError) as failed:
            client.get_manifest("some/app", "v1")
        assert failed.value.status == 503
    assert len(proxy.injected) == 4  # the bound, not one more
    assert len(sleeps.waits) == 3
    assert all(0 <= w <= 2 for w in sleeps.waits)


def _chunk_fault(fault: Fault) -> tuple[list[str], object]:
    patches: list[str] = []

    def decide(method: str, path: str, count: int) -> Fault:
        if method == "PATCH":
            patches.append(path)
            if len(patches) == 2:
                return fault
        return None

    return patches, decide


def test_a_refused_chunk_is_resumed_from_the_peers_range(peer: Peer) -> None:
    data = os.urandom(300_000)
    _, decide = _chunk_fault(("answer", 503, {}))
    with (
        FaultProxy(peer.url, decide) as proxy,  # type: ignore[arg-type]
        RegistryClient(
            proxy.url, egress=LOOPBACK_ALLOWED, chunk_size=64 * 1024, sleep=Sleeps()
        ) as client,
    ):
        pushed = push_blob(client, "resume/app", sha256(data), len(data), source_of(data))
        assert pushed.how == "uploaded"
        assert pushed.resumes == 1
        # Only the refused chunk went twice: the upload went on from the peer's Range
        # (a restart would have sent the first chunk again, and the whole blob).
        assert pushed.sent == len(data) + 64 * 1024
        with client.open_blob("resume/app", sha256(data)) as stream:
            assert b"".join(stream.chunks()) == data


def test_a_lost_chunk_answer_on_distribution_restarts_the_upload(peer: Peer) -> None:
    """Distribution 2.8 keeps an upload's offset in the Location's signed `_state`; after
    a chunk it stored but whose answer was lost, the state we hold is stale and the
    upload cannot be asked about (BLOB_UPLOAD_INVALID), so the blob is uploaded anew."""
    data = os.urandom(300_000)
    _, decide = _chunk_fault(("cut",))
    with (
        FaultProxy(peer.url, decide) as proxy,  # type: ignore[arg-type]
        RegistryClient(
            proxy.url, egress=LOOPBACK_ALLOWED, chunk_size=64 * 1024, sleep=Sleeps()
        ) as client,
    ):
        pushed = push_blob(client, "restart/app", sha256(data), len(data), source_of(data))
        assert pushed.resumes == 1
        assert pushed.sent == 2 * 64 * 1024 + len(data)
        assert "cut" in {i[2] for i in proxy.injected}
        with client.open_blob("restart/app", sha256(data)) as stream:
            assert b"".join(stream.chunks()) == data


def test_a_cut_download_is_reported_and_can_resume(peer: Peer) -> None:
    data = os.urandom(200_000)
    with RegistryClient(peer.url, egress=LOOPBACK_ALLOWED) as direct:
        push_image(direct, "cut/app", "v1", [data])

    def decide(method: str, path: str, count: int) -> Fault:
        if method == "GET" and "/blobs/" in path and count == 0:
            return ("cut-body", 50_000)
        return None

    with (
        FaultProxy(peer.url, decide) as proxy,
        RegistryClient(proxy.url, egress=LOOPBACK_ALLOWED) as client,
    ):
        received = bytearray()

        def read_all() -> None:
            with client.open_blob("cut/app", sha256(data)) as stream:
                for chunk in stream.chunks():
                    received.extend(chunk)

        with pytest.raises(Unreachable):
            read_all()
        assert 0 < len(received) < len(data)
        with client.open_blob("cut/app", sha256(data), offset=len(received)) as rest:
            received += b"".join(rest.chunks())
        assert bytes(received) == data
