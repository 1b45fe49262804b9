"""Pull replication from a real Distribution 2.8 (with htpasswd auth) into Portside: the
artifacts land through the normal content services with their digests, a referrer
stored in the tag scheme comes along with its subject, a rerun copies nothing, local
tags are kept when override is off, a missing local project is a failed item in words,
and the tag filter."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from portside.remote import Credentials, RegistryClient, push_blob, push_manifest
from tests.api.helpers import push_image
from tests.durability.server import OCI_MANIFEST, sha256
from tests.remote.peers import LOOPBACK_ALLOWED, Peer, distribution
from tests.remote.test_client import push_image as push_remote
from tests.remote.test_client import source_of
from tests.replication.conftest import ADMIN, Local

PASSWORD = "dist-password"


@pytest.fixture
def peer(tmp_path: Path) -> Iterator[Peer]:
    with distribution(tmp_path / "distribution", auth=("puller", PASSWORD)) as running:
        yield running


def remote(peer: Peer) -> RegistryClient:
    return RegistryClient(
        peer.url, egress=LOOPBACK_ALLOWED, credentials=Credentials("puller", PASSWORD)
    )


def test_pull_from_distribution(local: Local, peer: Peer) -> None:
    with remote(peer) as there:
        v1 = push_remote(there, "upstream/app", "v1", [os.urandom(300_000), b"small"])
        push_remote(there, "upstream/app", "nightly", [b"nightly layer"])
        empty = b"{}"
        push_blob(there, "upstream/app", sha256(empty), 2, source_of(empty))
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
                "subject": {"mediaType": OCI_MANIFEST, "digest": v1, "size": 1},
            }
        ).encode()
        push_manifest(there, "upstream/app", sha256(signature), signature, OCI_MANIFEST)
    local.app.ctx.auth.projects.create("mirror")
    local.endpoint("dist", peer.url, username="puller", password=PASSWORD)
    rule = local.rule(
        "from-dist",
        "pull",
        "dist",
        repositories="upstream/**",
        tags="v*",
        destination_namespace="mirror",
    )
    job, items = local.run(rule)
    assert job.status == "succeeded", job.error
    assert [(i.source, i.destination, i.status) for i in items] == [
        ("upstream/app:v1", "mirror/app", "copied")
    ]
    assert items[0].bytes >= 300_000
    got = local.client.head("/v2/mirror/app/manifests/v1")
    assert got.status_code == 200
    assert got.headers["docker-content-digest"] == v1
    referrers = local.client.get(f"/v2/mirror/app/referrers/{v1}").json()["manifests"]
    assert [d["digest"] for d in referrers] == [sha256(signature)]
    assert local.client.head("/v2/mirror/app/manifests/nightly").status_code == 404
    # The events say who wrote it.
    again, items = local.run(rule)
    assert again.status == "succeeded", again.error
    assert [(i.status, i.bytes) for i in items] == [("skipped", 0)]


def test_override_off_keeps_local_tags_and_missing_projects_fail(local: Local, peer: Peer) -> None:
    with remote(peer) as there:
        push_remote(there, "upstream/app", "v1", [b"theirs"])
        push_remote(there, "other/app", "v1", [b"other"])
    local.app.ctx.auth.projects.create("mirror")
    mine = push_image(local.client, "mirror/app", "v1", seed="mine")
    local.endpoint("dist", peer.url, username="puller", password=PASSWORD)
    rule = local.rule(
        "keep",
        "pull",
        "dist",
        repositories="upstream/app",
        override=False,
        destination_namespace="mirror",
    )
    job, items = local.run(rule)
    assert job.status == "succeeded", job.error
    assert items[0].message is not None
    assert "tag v1 kept" in items[0].message
    kept = local.client.head("/v2/mirror/app/manifests/v1")
    assert kept.headers["docker-content-digest"] == mine.digest
    # Without a namespace the names stay, and project `other` does not exist here.
    local.rules.update("keep", actor=ADMIN, repositories="other/app", destination_namespace="")
    job, items = local.run(local.rules.get("keep"))
    assert [i.status for i in items] == ["failed"]
    assert items[0].message is not None
    assert "project 'other' does not exist" in items[0].message
