"""Two `portside serve` processes sharing one database and one bucket: an upload's
chunks alternate between them (small chunks that must be buffered across requests and
processes, and a blob of several 5 MiB parts), and skopeo pushes and pulls through them,
following the presigned redirects of one that offers them."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.clients.conftest import containers_config
from tests.clients.images import Layout, assert_layout_has_image, build_image, write_layout
from tests.clients.tooling import Skopeo, require_binary
from tests.conftest import fresh_database
from tests.durability.server import (
    ServerProcess,
    finish_upload,
    patch_chunk,
    sha256,
    start_upload,
    upload_range_end,
)
from tests.s3server import MIB, MotoServer, s3_env

REPO = "replicas/app"

pytestmark = [pytest.mark.slow, pytest.mark.s3]


@pytest.fixture(scope="module")
def replicas(
    tmp_path_factory: pytest.TempPathFactory, s3_server: MotoServer
) -> Iterator[tuple[ServerProcess, ServerProcess, str]]:
    """Server A streams blob GETs, server B redirects them to presigned URLs; same
    database, same bucket."""
    root = tmp_path_factory.mktemp("replicas")
    bucket = s3_server.new_bucket()
    with fresh_database(root) as url:
        servers = [
            ServerProcess(
                data_dir=root / f"data-{name}",
                database_url=url,
                log_dir=root,
                env=s3_env(s3_server, bucket, part_size=str(5 * MIB), **extra),
            )
            for name, extra in (("a", {}), ("b", {"redirect": "true"}))
        ]
        try:
            for server in servers:
                server.start()
            yield servers[0], servers[1], bucket
        finally:
            for server in servers:
                server.kill()
            for server in servers:
                assert server.internal_errors() == [], server.log_tail()


@pytest.mark.parametrize(
    "sizes",
    [
        # Small chunks: the tail is buffered in the store between requests and servers.
        [100_000, 1, 65_536, 250_000, 7],
        # 3 + 1 + 3 + 4 + 1 MiB: two full 5 MiB parts, crossing servers, then the last.
        [3 * MIB, 1 * MIB, 3 * MIB, 4 * MIB, 1 * MIB],
    ],
    ids=["small-chunks", "multipart"],
)
def test_upload_alternates_between_replicas(
    replicas: tuple[ServerProcess, ServerProcess, str], s3_server: MotoServer, sizes: list[int]
) -> None:
    server_a, server_b, bucket = replicas
    chunks = [os.urandom(n) for n in sizes]
    data = b"".join(chunks)
    with server_a.client() as a, server_b.client() as b:
        location = start_upload(a, REPO)
        offset = 0
        for number, chunk in enumerate(chunks[:-1]):
            response = patch_chunk(b if number % 2 == 0 else a, location, chunk, offset)
            assert response.status_code == 202, response.text
            offset += len(chunk)
            location = response.headers["location"]
            status = (a if number % 2 == 0 else b).get(location)
            assert upload_range_end(status) == offset
        last = b if len(chunks) % 2 == 0 else a
        response = finish_upload(last, location, sha256(data), chunks[-1])
        assert response.status_code == 201, response.text
        for client in (a, b):
            fetched = client.get(f"/v2/{REPO}/blobs/{sha256(data)}", follow_redirects=True)
            assert fetched.status_code == 200
            assert fetched.content == data
    s3 = s3_server.client()
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    assert s3.list_objects_v2(Bucket=bucket, Prefix="v1/uploads/").get("KeyCount", 0) == 0
    if max(sizes) > MIB:
        requests = s3_server.requests(bucket)
        assert any("partNumber=3" in r for r in requests), "expected three parts"
        # The finishing server did not see every chunk, so it hashed the upload by
        # reading it back once, after the multipart upload completed.
        upload_id = location.split("/uploads/")[1].split("?")[0]
        ours = [r for r in requests if upload_id in r]
        done = max(n for n, r in enumerate(ours) if r.startswith("POST") and "uploadId=" in r)
        assert any(r.startswith(f"GET /{bucket}/v1/uploads/") for r in ours[done + 1 :]), ours


def test_finish_with_a_wrong_digest_stores_nothing(
    replicas: tuple[ServerProcess, ServerProcess, str], s3_server: MotoServer
) -> None:
    server_a, server_b, bucket = replicas
    data = os.urandom(6 * MIB)
    with server_a.client() as a, server_b.client() as b:
        location = start_upload(a, REPO)
        response = patch_chunk(a, location, data[: 3 * MIB], 0)
        wrong = sha256(b"something else")
        response = finish_upload(b, response.headers["location"], wrong, data[3 * MIB :])
        assert response.status_code == 400
        assert a.head(f"/v2/{REPO}/blobs/{wrong}").status_code == 404
    key = f"v1/blobs/sha256/{wrong[7:9]}/{wrong[7:]}"
    assert s3_server.client().list_objects_v2(Bucket=bucket, Prefix=key).get("KeyCount", 0) == 0


@pytest.mark.clients
def test_skopeo_push_and_pull_through_replicas(
    replicas: tuple[ServerProcess, ServerProcess, str], s3_server: MotoServer, tmp_path: Path
) -> None:
    """skopeo pushes through A (streaming) and pulls through B, which answers blob GETs
    with 307 to presigned URLs on the S3 server: skopeo follows them."""
    server_a, server_b, bucket = replicas
    (tmp_path / "conf").mkdir()
    env = containers_config(tmp_path / "conf", insecure=None)
    skopeo = Skopeo(require_binary("skopeo"), env)
    image = build_image(f"s3-{os.urandom(4).hex()}", big_layer_kib=6 * 1024)
    layout = write_layout(tmp_path / "layout", {"v1": image})
    host_a, host_b = server_a.url.removeprefix("http://"), server_b.url.removeprefix("http://")
    skopeo.push_layout(layout, "v1", f"{host_a}/{REPO}:v1")
    pulled = skopeo.pull_layout(f"{host_b}/{REPO}:v1", tmp_path / "pulled", "v1")
    assert_layout_has_image(Layout(pulled), image, "v1")
    # skopeo fetched the layers from the store itself, with the presigned URLs.
    big = max(image.layers, key=lambda layer: len(layer.tar)).digest
    presigned = [
        r for r in s3_server.requests(bucket) if r.startswith("GET") and "X-Amz-Signature" in r
    ]
    assert any(big.removeprefix("sha256:") in r for r in presigned), presigned[-5:]
    with server_b.client() as b:
        redirected = b.get(f"/v2/{REPO}/blobs/{image.config_digest}", follow_redirects=False)
        assert redirected.status_code == 307
