"""The client against a second Portside (a real `portside serve`) using Docker token
auth: the challenge answered with a token for the request's repository scope, tokens
reused until they expire, a new scope a new token, wrong credentials refused by the
token server in words, the referrers API used directly, and a chunked upload whose
answer was lost resumed from the peer's Range (Portside's uploads are stateless)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from portside.remote import AuthFailed, Credentials, RegistryClient, push_blob, push_manifest
from tests.durability.server import OCI_MANIFEST, ServerProcess, sha256
from tests.remote.peers import LOOPBACK_ALLOWED
from tests.remote.portside_peer import PEER_ADMIN, portside_peer
from tests.remote.proxy import Fault, FaultProxy
from tests.remote.test_client import push_image, source_of


@pytest.fixture
def peer(tmp_path: Path, database_url: str) -> Iterator[ServerProcess]:
    with portside_peer(tmp_path / "peer", database_url) as server:
        yield server


def admin_client(url: str, chunk_size: int = 16 * 1024 * 1024) -> RegistryClient:
    return RegistryClient(
        url, egress=LOOPBACK_ALLOWED, credentials=Credentials(*PEER_ADMIN), chunk_size=chunk_size
    )


def test_token_auth_scopes_and_reuse(peer: ServerProcess) -> None:
    with admin_client(peer.url) as client:
        ping = client.ping()
        assert ping.ok, ping.message
        assert ping.auth == "bearer"
        assert "token auth via" in ping.message
        digest = push_image(client, "team/app", "v1", [os.urandom(500)])
        fetched = client.token_fetches
        for _ in range(10):  # the same scopes: the cached tokens serve
            assert client.head_manifest("team/app", "v1") is not None
            assert client.get_manifest("team/app", digest).digest == digest
        assert client.token_fetches == fetched
        challenge = client.challenge
        assert challenge is not None
        assert challenge.realm
        scopes = ("repository:team/app:pull",)
        assert client.tokens.get(challenge.realm, challenge.service or "", scopes)
        # Another repository is another scope: one more token.
        assert client.head_manifest("team/other", "v1") is None
        assert client.token_fetches == fetched + 1


def test_wrong_credentials_are_refused_by_the_token_server(peer: ServerProcess) -> None:
    with RegistryClient(
        peer.url, egress=LOOPBACK_ALLOWED, credentials=Credentials("admin", "wrong")
    ) as client:
        ping = client.ping()
        assert not ping.ok
        assert "refused user 'admin'" in ping.message
        with pytest.raises(AuthFailed):
            client.head_manifest("team/app", "v1")


def test_referrers_api_is_used_when_the_peer_has_it(peer: ServerProcess) -> None:
    with admin_client(peer.url) as client:
        subject = push_image(client, "signed/app", "v1", [os.urandom(300)])
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
                "layers": [],
                "subject": {"mediaType": OCI_MANIFEST, "digest": subject, "size": 1},
            }
        ).encode()
        pushed = push_manifest(client, "signed/app", sha256(signature), signature, OCI_MANIFEST)
        assert not pushed.referrers_tag_updated  # Portside answered OCI-Subject
        found = client.referrers("signed/app", subject)
        assert client.has_referrers_api is True
        assert [d["digest"] for d in found] == [sha256(signature)]


def test_a_lost_chunk_answer_resumes_without_resending(peer: ServerProcess) -> None:
    data = os.urandom(300_000)
    patches: list[str] = []

    def decide(method: str, path: str, count: int) -> Fault:
        if method == "PATCH":
            patches.append(path)
            if len(patches) == 2:
                return ("cut",)
        return None

    with (
        FaultProxy(peer.url, decide) as proxy,
        admin_client(proxy.url, chunk_size=64 * 1024) as client,
    ):
        client.sleep = lambda seconds: None
        pushed = push_blob(client, "resume/app", sha256(data), len(data), source_of(data))
        assert pushed.resumes == 1
        assert pushed.sent == len(data)  # the stored chunk was not sent again
        with client.open_blob("resume/app", sha256(data)) as stream:
            assert b"".join(stream.chunks()) == data
