"""Pulling through a proxy-cache project (in-process app; real Distribution upstream)."""

from __future__ import annotations

import os

from starlette.testclient import TestClient

from portside.app import PortsideApp
from tests.proxy.conftest import Upstreams, bind, wait_cached
from tests.proxy.upstreams import OCI_MANIFEST, push_image, sha256

ACCEPT = {"accept": OCI_MANIFEST}


def test_cold_pull_fetches_once_then_serves_from_cache(
    app: PortsideApp, client: TestClient, upstream: Upstreams
) -> None:
    with upstream.seed() as seed:
        image = push_image(seed, "team/app", "v1", [os.urandom(300_000), b"small layer"])
    bind(app, upstream)
    got = client.get("/v2/hub/team/app/manifests/v1", headers=ACCEPT)
    assert got.status_code == 200, got.text
    assert got.content == image.manifest
    assert got.headers["docker-content-digest"] == image.digest
    for digest, data in image.blobs.items():
        blob = client.get(f"/v2/hub/team/app/blobs/{digest}")
        assert blob.status_code == 200, blob.text
        assert blob.content == data
        assert sha256(blob.content) == digest
    wait_cached(app, "hub/team/app", image.blobs)
    counted = upstream.counting
    assert counted.count("GET", "/v2/team/app/manifests/v1") == 1
    for digest in image.blobs:
        assert counted.blob_fetches("team/app", digest) == 1
    # Warm: nothing goes upstream within the tag's TTL.
    counted.reset()
    again = client.get("/v2/hub/team/app/manifests/v1", headers=ACCEPT)
    assert again.status_code == 200
    assert again.content == image.manifest
    assert "x-portside-cache" not in again.headers
    for digest, data in image.blobs.items():
        blob = client.get(f"/v2/hub/team/app/blobs/{digest}")
        assert blob.content == data
    assert counted.total() == 0, counted.counts
    by_digest = client.get(f"/v2/hub/team/app/manifests/{image.digest}", headers=ACCEPT)
    assert by_digest.status_code == 200


def test_upstream_down_serves_stale_with_header(
    app: PortsideApp, client: TestClient, upstream: Upstreams
) -> None:
    with upstream.seed() as seed:
        image = push_image(seed, "team/app", "v1", [b"layer one"])
    bind(app, upstream, tag_ttl_seconds=0)
    assert client.get("/v2/hub/team/app/manifests/v1", headers=ACCEPT).status_code == 200
    for digest in image.blobs:
        assert client.get(f"/v2/hub/team/app/blobs/{digest}").status_code == 200
    wait_cached(app, "hub/team/app", image.blobs)
    upstream.peer.stop()
    stale = client.get("/v2/hub/team/app/manifests/v1", headers=ACCEPT)
    assert stale.status_code == 200, stale.text
    assert stale.content == image.manifest
    assert stale.headers["x-portside-cache"] == "stale"
    assert stale.headers["warning"].startswith("110 ")
    for digest, data in image.blobs.items():
        assert client.get(f"/v2/hub/team/app/blobs/{digest}").content == data
    # Nothing cached: 503, not a 404 that would say the image does not exist.
    missing = client.get("/v2/hub/team/other/manifests/v1", headers=ACCEPT)
    assert missing.status_code == 503, missing.text
    assert missing.json()["errors"][0]["code"] == "UNAVAILABLE"


def test_tag_rechecked_after_ttl_sees_a_moved_tag(
    app: PortsideApp, client: TestClient, upstream: Upstreams
) -> None:
    with upstream.seed() as seed:
        first = push_image(seed, "team/app", "latest", [b"first"])
    bind(app, upstream, tag_ttl_seconds=0)
    got = client.get("/v2/hub/team/app/manifests/latest", headers=ACCEPT)
    assert got.headers["docker-content-digest"] == first.digest
    counted = upstream.counting
    counted.reset()
    # Unchanged upstream: a HEAD, no GET; the cached copy is served.
    again = client.get("/v2/hub/team/app/manifests/latest", headers=ACCEPT)
    assert again.headers["docker-content-digest"] == first.digest
    assert counted.count("HEAD", "/v2/team/app/manifests/latest") == 1
    assert counted.count("GET", "/v2/team/app/manifests/latest") == 0
    with upstream.seed() as seed:
        second = push_image(seed, "team/app", "latest", [b"second"])
    moved = client.get("/v2/hub/team/app/manifests/latest", headers=ACCEPT)
    assert moved.headers["docker-content-digest"] == second.digest
    assert moved.content == second.manifest


def test_ttl_keeps_serving_the_cached_tag(
    app: PortsideApp, client: TestClient, upstream: Upstreams
) -> None:
    with upstream.seed() as seed:
        first = push_image(seed, "team/app", "latest", [b"first"])
    bind(app, upstream, tag_ttl_seconds=3600)
    assert client.get("/v2/hub/team/app/manifests/latest").status_code == 200
    with upstream.seed() as seed:
        push_image(seed, "team/app", "latest", [b"second"])
    kept = client.get("/v2/hub/team/app/manifests/latest", headers=ACCEPT)
    assert kept.headers["docker-content-digest"] == first.digest


def test_pushes_and_deletes_are_refused(
    app: PortsideApp, client: TestClient, upstream: Upstreams
) -> None:
    with upstream.seed() as seed:
        image = push_image(seed, "team/app", "v1", [b"layer"])
    bind(app, upstream)
    assert client.get("/v2/hub/team/app/manifests/v1").status_code == 200
    post = client.post("/v2/hub/team/app/blobs/uploads/")
    assert post.status_code == 403, post.text
    assert post.json()["errors"][0]["code"] == "DENIED"
    assert "proxy cache" in post.json()["errors"][0]["message"]
    put = client.put(
        "/v2/hub/team/app/manifests/v2",
        content=image.manifest,
        headers={"content-type": OCI_MANIFEST},
    )
    assert put.status_code == 403
    delete = client.delete(f"/v2/hub/team/app/manifests/{image.digest}")
    assert delete.status_code == 403
    assert client.get("/v2/hub/team/app/manifests/v1").status_code == 200


def test_unknown_upstream_content(
    app: PortsideApp, client: TestClient, upstream: Upstreams
) -> None:
    with upstream.seed() as seed:
        image = push_image(seed, "team/app", "v1", [b"layer"])
    bind(app, upstream)
    missing = client.get("/v2/hub/team/app/manifests/nope")
    assert missing.status_code == 404
    assert missing.json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"
    # A blob no cached manifest lists is not fetched, even if the upstream has it.
    layer = sha256(image.layers[0])
    refused = client.get(f"/v2/hub/team/app/blobs/{layer}")
    assert refused.status_code == 404
    assert upstream.counting.blob_fetches("team/app", layer) == 0


def test_normal_projects_are_untouched(
    app: PortsideApp, client: TestClient, upstream: Upstreams
) -> None:
    bind(app, upstream)
    missing = client.get("/v2/other/app/manifests/v1")
    assert missing.status_code == 404
    assert upstream.counting.total() == 0
