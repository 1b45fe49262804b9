"""The proxy cache in a real `portside serve` with two worker processes: concurrent cold
pulls share one upstream fetch per blob (in a process and across processes), a client
leaving mid-blob leaves a working cache, pushes are refused."""

from __future__ import annotations

import concurrent.futures
import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.proxy.conftest import Upstreams
from tests.proxy.served import Served, proxy_server
from tests.proxy.upstreams import OCI_MANIFEST, Image, push_image, sha256

ACCEPT = {"accept": OCI_MANIFEST}
BIG = 6 * 1024 * 1024


@pytest.fixture
def served(tmp_path: Path, database_url: str, upstream: Upstreams) -> Iterator[Served]:
    with proxy_server(tmp_path, database_url, upstream, workers=2) as running:
        yield running


def _pull(url: str, image: Image) -> dict[str, str]:
    """Pull the image through hub/ with its own connection; digests of what came back."""
    got: dict[str, str] = {}
    with httpx.Client(base_url=url, timeout=120) as client:
        manifest = client.get(f"/v2/hub/{image.repository}/manifests/{image.tag}", headers=ACCEPT)
        assert manifest.status_code == 200, manifest.text
        got["manifest"] = sha256(manifest.content)
        for digest in image.blobs:
            blob = client.get(f"/v2/hub/{image.repository}/blobs/{digest}")
            assert blob.status_code == 200, blob.text
            got[digest] = sha256(blob.content)
    return got


def test_twenty_concurrent_cold_pulls_fetch_each_blob_once(served: Served) -> None:
    upstream = served.upstream
    with upstream.seed() as seed:
        image = push_image(seed, "team/app", "v1", [os.urandom(BIG), os.urandom(BIG // 2), b"tiny"])
    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        results = list(pool.map(lambda _: _pull(served.url, image), range(20)))
    for got in results:
        assert got["manifest"] == image.digest
        for digest in image.blobs:
            assert got[digest] == digest
    for digest in image.blobs:
        assert upstream.counting.blob_fetches("team/app", digest) == 1, upstream.counting.served


def test_client_leaving_mid_blob_then_a_full_pull_works(served: Served) -> None:
    upstream = served.upstream
    with upstream.seed() as seed:
        image = push_image(seed, "team/app", "v1", [os.urandom(4 * BIG)])
    layer = sha256(image.layers[0])
    with httpx.Client(base_url=served.url, timeout=120) as client:
        assert client.get("/v2/hub/team/app/manifests/v1", headers=ACCEPT).status_code == 200
        with client.stream("GET", f"/v2/hub/team/app/blobs/{layer}") as partial:
            assert partial.status_code == 200
            assert int(partial.headers["content-length"]) == len(image.layers[0])
            read = 0
            for chunk in partial.iter_bytes():
                read += len(chunk)
                if read >= 1024 * 1024:
                    break  # the client goes away
    assert _pull(served.url, image)[layer] == layer
    # The fill went on without the client: the blob was fetched once, and is cached.
    assert upstream.counting.blob_fetches("team/app", layer) == 1
    deadline = time.monotonic() + 60
    with httpx.Client(base_url=served.url, timeout=60) as client:
        while time.monotonic() < deadline:
            head = client.head(f"/v2/hub/team/app/blobs/{layer}")
            if "x-portside-cache" not in head.headers:
                break
            time.sleep(0.2)
        assert head.status_code == 200
        assert "x-portside-cache" not in head.headers  # served from the cache now


def test_upstream_stopped_after_first_pull(
    tmp_path: Path, database_url: str, upstream: Upstreams
) -> None:
    with upstream.seed() as seed:
        image = push_image(seed, "team/app", "v1", [os.urandom(100_000)])
    with proxy_server(tmp_path, database_url, upstream, tag_ttl_seconds=0) as running:
        _pull(running.url, image)
        upstream.peer.stop()
        with httpx.Client(base_url=running.url, timeout=120) as client:
            stale = client.get("/v2/hub/team/app/manifests/v1", headers=ACCEPT)
            assert stale.status_code == 200
            assert stale.headers["x-portside-cache"] == "stale"
        assert _pull(running.url, image)["manifest"] == image.digest
        log = running.server.log_text()
        assert "proxy.stale" in log


def test_pushes_into_the_proxy_project_are_refused(served: Served) -> None:
    with httpx.Client(base_url=served.url, timeout=30) as client:
        refused = client.post("/v2/hub/team/app/blobs/uploads/")
        assert refused.status_code == 403
        (error,) = refused.json()["errors"]
        assert error["code"] == "DENIED"
        assert "proxy cache of up" in error["message"]
