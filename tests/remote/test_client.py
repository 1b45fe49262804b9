"""The outgoing registry client against a real Distribution 2.8 on loopback: pulls,
pushes (monolithic, chunked, mounted), tags paging, the referrers tag-scheme fallback
(Distribution 2.8 has no referrers API), Basic auth, TLS with a CA bundle, and the SSRF
guard refusing loopback unless allowed."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from portside.egress import EgressPolicy
from portside.remote import (
    AuthFailed,
    BlobSource,
    Credentials,
    DigestMismatch,
    NotFound,
    RegistryClient,
    RetryPolicy,
    Unreachable,
    push_blob,
    push_manifest,
)
from portside.remote.client import referrers_tag
from tests.durability.server import OCI_MANIFEST, image_manifest, sha256
from tests.remote.peers import LOOPBACK_ALLOWED, Peer, distribution

FAST = RetryPolicy(attempts=3, base_seconds=0.05, max_wait=1.0)


@pytest.fixture
def peer(tmp_path: Path) -> Iterator[Peer]:
    with distribution(tmp_path / "distribution") as running:
        yield running


def client_for(peer: Peer, *, chunk_size: int = 16 * 1024 * 1024) -> RegistryClient:
    credentials = Credentials(peer.username, peer.password or "") if peer.username else None
    return RegistryClient(
        peer.url,
        egress=LOOPBACK_ALLOWED,
        credentials=credentials,
        ca_pem=peer.ca_pem,
        retry=FAST,
        chunk_size=chunk_size,
    )


def source_of(data: bytes) -> BlobSource:
    def open_at(offset: int) -> Iterator[bytes]:
        view = data[offset:]
        for start in range(0, len(view), 64 * 1024):
            yield view[start : start + 64 * 1024]

    return open_at


def push_image(client: RegistryClient, repository: str, tag: str, layers: list[bytes]) -> str:
    config = json.dumps({"architecture": "amd64", "os": "linux", "n": tag}).encode()
    for blob in (config, *layers):
        push_blob(client, repository, sha256(blob), len(blob), source_of(blob))
    body = image_manifest(config, layers)
    return push_manifest(client, repository, tag, body, OCI_MANIFEST).digest


def test_push_and_pull_round_trip(peer: Peer) -> None:
    small, large = os.urandom(1000), os.urandom(300_000)
    with client_for(peer, chunk_size=100_000) as client:
        assert client.ping().ok
        digest = push_image(client, "team/app", "v1", [small, large])
        ref = client.head_manifest("team/app", "v1")
        assert ref is not None
        assert ref.digest == digest
        assert ref.media_type == OCI_MANIFEST
        manifest = client.get_manifest("team/app", "v1")
        assert manifest.digest == digest
        assert client.head_blob("team/app", sha256(large)) == len(large)
        with client.open_blob("team/app", sha256(large)) as stream:
            assert b"".join(stream.chunks()) == large
        with client.open_blob("team/app", sha256(large), offset=1000) as stream:
            assert b"".join(stream.chunks()) == large[1000:]
        assert client.head_manifest("team/app", "nope") is None
        with pytest.raises(NotFound):
            client.get_manifest("team/app", "nope")
        # Present blobs are skipped, others mounted from the repository that has them.
        assert push_blob(client, "team/app", sha256(small), 1000, source_of(small)).how == "present"
        mounted = push_blob(
            client,
            "team/other",
            sha256(large),
            len(large),
            source_of(large),
            mount_from=["team/app"],
        )
        assert mounted.how == "mounted"
        assert client.head_blob("team/other", sha256(large)) == len(large)


def test_chunked_upload_is_sent_in_pieces(peer: Peer) -> None:
    data = os.urandom(250_000)
    with client_for(peer, chunk_size=64 * 1024) as client:
        pushed = push_blob(client, "big/blob", sha256(data), len(data), source_of(data))
        assert pushed.how == "uploaded"
        assert pushed.sent == len(data)
        with client.open_blob("big/blob", sha256(data)) as stream:
            assert b"".join(stream.chunks()) == data


def test_wrong_bytes_are_refused(peer: Peer) -> None:
    data = os.urandom(5000)
    with client_for(peer) as client, pytest.raises(DigestMismatch):
        push_blob(client, "bad/blob", sha256(b"other"), len(data), source_of(data))


def test_tags_follow_link_pages(peer: Peer) -> None:
    layer = os.urandom(100)
    with client_for(peer) as client:
        for n in range(7):
            push_image(client, "paged/app", f"t{n}", [layer])
        assert sorted(client.tags("paged/app", page_size=2)) == [f"t{n}" for n in range(7)]
        assert "paged/app" in list(client.catalog(page_size=1))
        with pytest.raises(NotFound):
            list(client.tags("no/such"))


def test_referrers_fall_back_to_the_tag_scheme(peer: Peer) -> None:
    with client_for(peer) as client:
        subject = push_image(client, "signed/app", "v1", [os.urandom(200)])
        empty = b"{}"
        push_blob(client, "signed/app", sha256(empty), 2, source_of(empty))
        signature = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "artifactType": "application/vnd.example.signature",
                "config": {
                    "mediaType": "application/vnd.oci.empty.v1+json",
                    "digest": sha256(empty),
                    "size": 2,
                },
                "layers": [
                    {
                        "mediaType": "application/vnd.oci.empty.v1+json",
                        "digest": sha256(empty),
                        "size": 2,
                    }
                ],
                "subject": {"mediaType": OCI_MANIFEST, "digest": subject, "size": 1},
            }
        ).encode()
        pushed = push_manifest(client, "signed/app", sha256(signature), signature, OCI_MANIFEST)
        assert pushed.referrers_tag_updated  # Distribution 2.8 does not process subjects
        found = client.referrers("signed/app", subject)
        assert client.has_referrers_api is False
        assert [d["digest"] for d in found] == [sha256(signature)]
        assert found[0]["artifactType"] == "application/vnd.example.signature"
        assert client.referrers("signed/app", subject, artifact_type="other/type") == []
        assert client.head_manifest("signed/app", referrers_tag(subject)) is not None


def test_basic_auth_over_tls_with_a_ca_bundle(tmp_path: Path) -> None:
    with distribution(tmp_path / "d", auth=("alice", "s3cret-pass"), tls=True) as peer:
        with client_for(peer) as client:
            ping = client.ping()
            assert ping.ok, ping.message
            assert ping.auth == "basic"
            assert "alice" in ping.message
            push_image(client, "secure/app", "v1", [os.urandom(100)])
            assert list(client.tags("secure/app")) == ["v1"]
        wrong = Credentials("alice", "wrong")
        with RegistryClient(
            peer.url, egress=LOOPBACK_ALLOWED, credentials=wrong, ca_pem=peer.ca_pem, retry=FAST
        ) as client:
            ping = client.ping()
            assert not ping.ok
            assert "refused user 'alice'" in ping.message
            with pytest.raises(AuthFailed):
                client.head_manifest("secure/app", "v1")
        # Without the CA bundle the certificate is not trusted, and the message says so.
        with RegistryClient(peer.url, egress=LOOPBACK_ALLOWED, retry=FAST) as client:
            ping = client.ping()
            assert not ping.ok
            assert "certificate" in ping.message, ping.message
        with RegistryClient(
            peer.url,
            egress=LOOPBACK_ALLOWED,
            credentials=Credentials("alice", "s3cret-pass"),
            verify_tls=False,
            retry=FAST,
        ) as client:
            assert client.ping().ok


def test_the_egress_guard_refuses_loopback_unless_allowed(peer: Peer) -> None:
    with RegistryClient(peer.url, egress=EgressPolicy(), retry=FAST) as client:
        ping = client.ping()
        assert not ping.ok
        assert "loopback" in ping.message
        with pytest.raises(Unreachable) as refused:
            client.head_manifest("any/app", "v1")
        assert refused.value.refused


def test_an_unreachable_peer_is_reported(tmp_path: Path) -> None:
    from tests.durability.server import free_port

    url = f"http://127.0.0.1:{free_port()}"
    with RegistryClient(url, egress=LOOPBACK_ALLOWED, retry=FAST) as client:
        ping = client.ping()
        assert not ping.ok
        assert "cannot connect" in ping.message
