"""Push replication to a second Portside (a real `portside serve`, token auth on): a
multi-arch index and a signature-like referrer arrive with identical digests, and the
peer's referrers API lists the referrer; then a pull rule brings it back under another
name."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from portside.events.outbox import Actor
from portside.remote import Credentials, RegistryClient
from tests.api.helpers import make_artifact, make_image, make_index, push_manifest
from tests.durability.server import ServerProcess
from tests.remote.peers import LOOPBACK_ALLOWED
from tests.remote.portside_peer import PEER_ADMIN, portside_peer
from tests.replication.conftest import Local


@pytest.fixture
def peer(tmp_path: Path, database_url: str) -> Iterator[ServerProcess]:
    # The peer's own database: a second schema/file next to the test's.
    from tests.conftest import fresh_database

    with fresh_database(tmp_path / "peer-db") as url, portside_peer(tmp_path / "peer", url) as s:
        yield s


def test_push_to_portside_with_token_auth_then_pull_back(local: Local, peer: ServerProcess) -> None:
    repo = "team/app"
    children = [
        make_image(local.client, repo, seed="amd64"),
        make_image(local.client, repo, seed="arm64", layers=[os.urandom(150_000)]),
    ]
    for child in children:
        push_manifest(local.client, repo, child.digest, child)
    index = make_index(children)
    push_manifest(local.client, repo, "v1", index)
    signature = make_artifact(
        local.client, repo, index, artifact_type="application/vnd.example.signature"
    )
    push_manifest(local.client, repo, signature.digest, signature)
    local.endpoint("peer", peer.url, kind="portside", username=PEER_ADMIN[0],
                   password=PEER_ADMIN[1])  # fmt: skip
    assert local.endpoints.test(local.endpoints.get("peer")).auth == "bearer"
    rule = local.rule("to-peer", "push", "peer", repositories="team/**")
    job, items = local.run(rule)
    assert job.status == "succeeded", job.error
    assert [(i.destination, i.status) for i in items] == [("team/app", "copied")]
    with RegistryClient(
        peer.url, egress=LOOPBACK_ALLOWED, credentials=Credentials(*PEER_ADMIN)
    ) as there:
        found = there.head_manifest("team/app", "v1")
        assert found is not None
        assert found.digest == index.digest
        referrers = there.referrers("team/app", index.digest)
        assert there.has_referrers_api is True
        assert [d["digest"] for d in referrers] == [signature.digest]

    local.app.ctx.auth.projects.create("back")
    pull = local.rule("from-peer", "pull", "peer", repositories="team/app",
                      destination_namespace="back", flattening=0)  # fmt: skip
    job, items = local.run(pull)
    assert job.status == "succeeded", job.error
    assert [(i.destination, i.status) for i in items] == [("back/team/app", "copied")]
    got = local.client.head("/v2/back/team/app/manifests/v1")
    assert got.headers["docker-content-digest"] == index.digest
    listed = local.client.get(f"/v2/back/team/app/referrers/{index.digest}").json()
    assert [d["digest"] for d in listed["manifests"]] == [signature.digest]
    assert peer.internal_errors() == []


def test_deletions_are_copied_by_tag_to_a_portside_peer(local: Local, peer: ServerProcess) -> None:
    """Portside deletes a tag alone: a tag gone here goes there even when another tag
    shares its manifest (which stays, with that tag)."""
    from tests.api.helpers import push_image

    shared = push_image(local.client, "team/app", "v1", seed="shared")
    push_manifest(local.client, "team/app", "v1-alias", shared)
    push_image(local.client, "team/app", "v2", seed="two")
    local.endpoint("peer", peer.url, kind="portside", username=PEER_ADMIN[0],
                   password=PEER_ADMIN[1])  # fmt: skip
    rule = local.rule("mirror", "push", "peer", repositories="team/**", copy_deletions=True)
    job, _ = local.run(rule)
    assert job.status == "succeeded", job.error
    manifests = local.app.ctx.manifests
    manifests.delete("team/app", "v1", actor=Actor("admin"))
    manifests.delete("team/app", "v2", actor=Actor("admin"))
    job, items = local.run(rule)
    assert job.status == "succeeded", job.error
    deleted = sorted(i.source for i in items if i.status == "deleted")
    assert deleted == ["team/app:v1", "team/app:v2"]
    with RegistryClient(
        peer.url, egress=LOOPBACK_ALLOWED, credentials=Credentials(*PEER_ADMIN)
    ) as there:
        assert sorted(there.tags("team/app")) == ["v1-alias"]
        alias = there.head_manifest("team/app", "v1-alias")
        assert alias is not None
        assert alias.digest == shared.digest
