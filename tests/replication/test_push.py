"""Push replication to a real Distribution 2.8 on loopback: a multi-arch index with a
signature-like referrer arrives with identical digests (children before the index, the
referrer through the tag scheme since Distribution lacks the referrers API), a rerun
copies nothing, tags are not overridden when the rule says so, flattening and the
destination namespace, filters, and an interrupted run whose rerun copies only what is
missing."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from portside.remote import RegistryClient
from portside.replication.runs import Runs
from tests.api.helpers import (
    make_artifact,
    make_image,
    make_index,
    push_image,
    push_manifest,
)
from tests.remote.peers import LOOPBACK_ALLOWED, Peer, distribution
from tests.remote.proxy import Fault, FaultProxy
from tests.replication.conftest import ADMIN, Local


@pytest.fixture
def peer(tmp_path: Path) -> Iterator[Peer]:
    with distribution(tmp_path / "distribution") as running:
        yield running


def remote(peer: Peer) -> RegistryClient:
    return RegistryClient(peer.url, egress=LOOPBACK_ALLOWED)


def test_a_multi_arch_index_with_a_referrer_arrives_identical(local: Local, peer: Peer) -> None:
    repo = "team/app"
    amd = make_image(local.client, repo, seed="amd64")
    arm = make_image(local.client, repo, seed="arm64", layers=[os.urandom(200_000)])
    for child in (amd, arm):
        push_manifest(local.client, repo, child.digest, child)
    index = make_index([amd, arm])
    push_manifest(local.client, repo, "v1", index)
    signature = make_artifact(
        local.client, repo, index, artifact_type="application/vnd.example.signature"
    )
    push_manifest(local.client, repo, signature.digest, signature)

    local.endpoint("dist", peer.url)
    rule = local.rule(
        "to-dist",
        "push",
        "dist",
        repositories="team/**",
        destination_namespace="mirror",
        flattening=0,
    )
    job, items = local.run(rule)
    assert job.status == "succeeded", job.error
    assert [(i.source, i.destination, i.status) for i in items] == [
        ("team/app:v1", "mirror/team/app", "copied")
    ]
    assert items[0].blobs >= 5
    assert job.result is not None
    assert job.result["copied"] == 1
    with remote(peer) as there:
        head = there.head_manifest("mirror/team/app", "v1")
        assert head is not None
        assert head.digest == index.digest
        for child in (amd, arm):
            assert there.get_manifest("mirror/team/app", child.digest).body == child.body
        found = there.referrers("mirror/team/app", index.digest)
        assert [d["digest"] for d in found] == [signature.digest]
        assert there.get_manifest("mirror/team/app", signature.digest).body == signature.body

    # A rerun finds everything there and copies nothing.
    again, items = local.run(rule)
    assert again.status == "succeeded"
    assert [(i.status, i.blobs, i.bytes) for i in items] == [("skipped", 0, 0)]


def test_tag_override_off_keeps_the_destinations_tag(local: Local, peer: Peer) -> None:
    mine = push_image(local.client, "team/app", "v1", seed="mine")
    push_image(local.client, "team/app", "v2", seed="two")
    with remote(peer) as there:
        from tests.remote.test_client import push_image as push_remote

        theirs = push_remote(there, "team/app", "v1", [b"their layer"])
    local.endpoint("dist", peer.url)
    rule = local.rule("keep", "push", "dist", override=False)
    job, items = local.run(rule)
    assert job.status == "succeeded", job.error
    by_source = {i.source: i for i in items}
    assert by_source["team/app:v1"].message is not None
    assert "tag v1 kept" in by_source["team/app:v1"].message
    with remote(peer) as there:
        kept = there.head_manifest("team/app", "v1")
        assert kept is not None
        assert kept.digest == theirs != mine.digest
        two = there.head_manifest("team/app", "v2")
        assert two is not None


def test_flattening_and_filters(local: Local, peer: Peer) -> None:
    push_image(local.client, "team/web/frontend", "1.0", seed="f")
    push_image(local.client, "team/web/frontend", "dev", seed="d")
    push_image(local.client, "other/app", "1.0", seed="o")
    local.endpoint("dist", peer.url)
    rule = local.rule(
        "flat",
        "push",
        "dist",
        repositories="team/**",
        tags="1.*",
        destination_namespace="dr",
        flattening=-1,
        resources="images",
    )
    job, items = local.run(rule)
    assert job.status == "succeeded", job.error
    assert [(i.source, i.destination) for i in items] == [("team/web/frontend:1.0", "dr/frontend")]
    with remote(peer) as there:
        assert list(there.tags("dr/frontend")) == ["1.0"]
    # Flattening more levels than the name has is a failed item, in words.
    local.rules.update("flat", actor=ADMIN, flattening=3, repositories="other/**")
    job, items = local.run(local.rules.get("flat"))
    assert [i.status for i in items] == ["failed"]
    assert items[0].message is not None
    assert "flattening 3 levels" in items[0].message


def test_an_interrupted_run_then_a_rerun_copies_only_what_is_missing(
    local: Local, peer: Peer
) -> None:
    small = push_image(local.client, "team/small", "v1", seed="small")
    big_layer = os.urandom(400_000)
    big = push_image(local.client, "team/big", "v1", seed="big", layers=[big_layer])
    cutting = {"on": True}

    def decide(method: str, path: str, count: int) -> Fault:
        if cutting["on"] and method == "PATCH" and "team/big" in path:
            return ("cut",)
        return None

    with FaultProxy(peer.url, decide) as proxy:
        local.endpoint("flaky", proxy.url)
        rule = local.rule("interrupted", "push", "flaky")
        job, items = local.run(rule)
        # The run goes to its end, and fails as Harbor's does, its summary and
        # per-artifact results kept for the API, CLI and UI.
        assert job.status == "failed", job.error
        assert job.error is not None
        assert "1 of 2 artifacts failed" in job.error
        by_source = {i.source: i for i in items}
        assert by_source["team/small:v1"].status == "copied"
        assert by_source["team/big:v1"].status == "failed"
        assert job.result is not None
        assert (job.result["copied"], job.result["failed"]) == (1, 1)
        shown = Runs(local.app.ctx.db).get(job.id)
        assert shown is not None
        assert (shown.status, shown.error) == ("failed", job.error)
        assert shown.result == job.result
        cutting["on"] = False
        again, items = local.run(rule)
    assert again.status == "succeeded", again.error
    by_source = {i.source: i for i in items}
    assert by_source["team/small:v1"].status == "skipped"
    assert by_source["team/big:v1"].status == "copied"
    assert by_source["team/big:v1"].bytes >= len(big_layer)
    with remote(peer) as there:
        for repo, manifest in (("team/small", small), ("team/big", big)):
            found = there.head_manifest(repo, "v1")
            assert found is not None
            assert found.digest == manifest.digest


def test_a_run_to_a_refused_address_fails_in_words(
    tmp_path: Path, database_url: str, peer: Peer
) -> None:
    """An endpoint saved while loopback was allowed, used by a registry that does not
    allow it (the egress rules hold at every connection, not only when saving): the run
    fails at once, saying why."""
    from starlette.testclient import TestClient

    from portside.app import create_app
    from portside.config import load_settings
    from portside.endpoints.store import EndpointStore

    lenient = load_settings(
        data_dir=tmp_path / "data",
        database={"url": database_url},
        endpoints={"allow_private_targets": True},
    )
    strict = load_settings(data_dir=tmp_path / "data", database={"url": database_url})
    app = create_app(strict)
    try:
        with TestClient(app, base_url="http://registry.test") as client:
            strict_local = Local(app, client)
            EndpointStore(app.ctx.db, lenient).create(
                name="dist", kind="distribution", url=peer.url, actor=ADMIN
            )
            push_image(client, "team/app", "v1", seed="refused")
            job, items = strict_local.run(strict_local.rule("r", "push", "dist"))
    finally:
        app.ctx.close()
    assert job.status == "failed"
    assert job.error is not None
    assert "loopback address" in job.error
    assert items == []


def _tags(peer: Peer, repository: str) -> set[str]:
    with peer.client() as there:
        answer = there.get(f"/v2/{repository}/tags/list")
    return set(answer.json().get("tags") or ()) if answer.status_code == 200 else set()


def test_a_manual_run_copies_deletions_within_the_rules_scope(local: Local, peer: Peer) -> None:
    """Distribution deletes by digest only: a tag gone here is deleted there when its
    manifest has no other tag there; one sharing its manifest with a kept tag stays (and
    the item says why). Tags outside the tag pattern, repositories outside the pattern
    and content outside the destination namespace are never touched."""
    for tag in ("v1", "v2", "keep"):
        push_image(local.client, "team/app", tag, seed=tag)
    shared = push_image(local.client, "team/app", "v3", seed="shared")
    push_manifest(local.client, "team/app", "v3-alias", shared)
    push_image(local.client, "other/app", "v1", seed="other")
    local.endpoint("dist", peer.url)
    rule = local.rule(
        "with-deletions",
        "push",
        "dist",
        repositories="team/**",
        tags="v*",
        destination_namespace="backup",
        flattening=0,
        copy_deletions=True,
    )
    job, _ = local.run(rule)
    assert job.status == "succeeded", job.error
    assert _tags(peer, "backup/team/app") == {"v1", "v2", "v3", "v3-alias"}
    # Written there by someone else: outside the namespace, and a tag outside the pattern.
    from tests.proxy.upstreams import push_image as push_there

    with peer.client() as there:
        push_there(there, "team/app", "v2", [b"theirs"])
        push_there(there, "backup/team/app", "manual-1", [b"theirs too"])
    manifests = local.app.ctx.manifests
    manifests.delete("team/app", "v2", actor=ADMIN)  # untagged here
    manifests.delete("team/app", "v3", actor=ADMIN)  # v3-alias still points to it
    manifests.delete("team/app", "keep", actor=ADMIN)  # outside the tag pattern anyway

    job, items = local.run(rule)
    assert job.status == "succeeded", job.error
    by_source = {i.source: i for i in items if i.status in ("deleted", "skipped") and i.message}
    assert by_source["team/app:v2"].status == "deleted"
    assert by_source["team/app:v2"].destination == "backup/team/app"
    kept = by_source["team/app:v3"]
    assert kept.status == "skipped"
    assert kept.message is not None
    assert "v3-alias point to the same manifest" in kept.message
    assert job.result is not None
    assert job.result["deleted"] == 1
    assert _tags(peer, "backup/team/app") == {"v1", "v3", "v3-alias", "manual-1"}
    assert _tags(peer, "team/app") == {"v2"}
    # A rule without copy_deletions leaves everything.
    manifests.delete("team/app", "v1", actor=ADMIN)
    local.rules.update("with-deletions", actor=ADMIN, copy_deletions=False)
    job, items = local.run(local.rules.get("with-deletions"))
    assert job.status == "succeeded", job.error
    assert [i.status for i in items if i.status == "deleted"] == []
    assert "v1" in _tags(peer, "backup/team/app")


def test_a_platform_manifest_an_index_lists_is_not_deleted_by_digest(
    local: Local, peer: Peer
) -> None:
    """On a registry that deletes by digest only, deleting the tag of a platform manifest
    would delete the manifest an index tagged there still lists: it stays."""
    amd = make_image(local.client, "team/app", seed="amd64")
    arm = make_image(local.client, "team/app", seed="arm64")
    push_manifest(local.client, "team/app", "v1-amd64", amd)
    push_manifest(local.client, "team/app", arm.digest, arm)
    push_manifest(local.client, "team/app", "v1", make_index([amd, arm]))
    local.endpoint("dist", peer.url)
    rule = local.rule("platforms", "push", "dist", repositories="team/**", copy_deletions=True)
    job, _ = local.run(rule)
    assert job.status == "succeeded", job.error
    local.app.ctx.manifests.delete("team/app", "v1-amd64", actor=ADMIN)
    job, items = local.run(rule)
    assert job.status == "succeeded", job.error
    kept = [i for i in items if i.source == "team/app:v1-amd64"]
    assert [i.status for i in kept] == ["skipped"]
    assert kept[0].message is not None
    assert "an index tagged there lists its manifest" in kept[0].message
    assert _tags(peer, "team/app") == {"v1", "v1-amd64"}
    with remote(peer) as there:
        assert there.head_manifest("team/app", amd.digest) is not None
