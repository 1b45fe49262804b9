"""The cluster of issue 14 on object storage: three `portside serve` replicas on one
PostgreSQL database and one S3 bucket (a real moto server), behind nginx
(docs/deploy/nginx.conf), with presigned redirects on. Only what the store changes is
tested again here (test_replicas.py covers tokens, sessions, caches, schedules on
the shared directory): a push and pull across replicas, a chunked upload whose requests
each land on another replica while its parts buffer in the bucket, a replica SIGKILLed
during pushes, one GC across the replicas deleting with DeleteObjects, and the redirect
through the load balancer.

Marked `s3`: scripts/test runs these in its first pass (the one with the S3 server),
on a PostgreSQL they start (see conftest.py).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.cluster.conftest import Cluster, nginx_binary
from tests.cluster.helpers import (
    ADMIN,
    assert_fsck_clean,
    assert_pullable,
    direct,
    push,
    push_while_killing,
)
from tests.durability.server import (
    finish_upload,
    patch_chunk,
    sha256,
    start_upload,
    upload_range_end,
)
from tests.s3server import MIB, MotoServer, s3_env

pytestmark = [pytest.mark.s3, pytest.mark.slow]

PREFIX = "registry"
PART = 5 * MIB


@pytest.fixture(scope="module")
def bucket(s3_server: MotoServer) -> str:
    return s3_server.new_bucket()


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory,
    cluster_database: str,
    s3_server: MotoServer,
    bucket: str,
) -> Iterator[Cluster]:
    """Three replicas on the module's database and bucket, a project `team`."""
    nginx_binary()
    storage = s3_env(s3_server, bucket, prefix=PREFIX, part_size=str(PART), redirect="true")
    built = Cluster(tmp_path_factory.mktemp("s3-cluster"), cluster_database)
    built.storage_settings = storage
    try:
        built.start()
        with built.client(headers=ADMIN) as admin:
            created = admin.post("/api/v1/projects", json={"name": "team"})
            assert created.status_code == 201, created.text
        yield built
    finally:
        built.stop()


def _objects(s3_server: MotoServer, bucket: str, prefix: str) -> list[str]:
    listed = s3_server.client().list_objects_v2(Bucket=bucket, Prefix=f"{PREFIX}/{prefix}")
    return [item["Key"] for item in listed.get("Contents", [])]


def _blob_key(digest: str) -> str:
    hex_digest = digest.removeprefix("sha256:")
    return f"{PREFIX}/v1/blobs/sha256/{hex_digest[:2]}/{hex_digest}"


def test_push_through_one_replica_pull_through_the_others_and_nginx(
    cluster: Cluster, s3_server: MotoServer, bucket: str
) -> None:
    first, *others = cluster.replicas
    with direct(first, ADMIN) as client:
        pushed = push(client, "team/one", "v1", "pushed through replica 0 onto S3")
    for digest in pushed.blobs:
        assert _objects(s3_server, bucket, f"v1/blobs/sha256/{digest[7:9]}/{digest[7:]}")
    for replica in others:
        with direct(replica, ADMIN) as client:
            assert_pullable(client, pushed)
    with cluster.client(headers=ADMIN) as client:
        for _ in range(len(cluster.replicas)):  # round-robin: each replica answers once
            assert_pullable(client, pushed)


def test_blob_get_through_nginx_redirects_to_the_bucket(
    cluster: Cluster, s3_server: MotoServer
) -> None:
    """nginx passes the replica's 307 on untouched (its Location is the store's, not the
    upstream's), and the presigned URL serves the bytes to a client without credentials."""
    with cluster.client(headers=ADMIN) as client:
        pushed = push(client, "team/redirect", "v1", "redirect through nginx")
        for _ in range(len(cluster.replicas)):
            for digest, data in pushed.blobs.items():
                head = client.head(f"/v2/team/redirect/blobs/{digest}")
                assert head.status_code == 200
                assert head.headers["docker-content-digest"] == digest
                got = client.get(f"/v2/team/redirect/blobs/{digest}")
                assert got.status_code == 307, got.text
                location = got.headers["location"]
                assert location.startswith(f"{s3_server.endpoint}/"), location
                assert "X-Amz-Signature=" in location
                fetched = httpx.get(location, timeout=60)
                assert fetched.status_code == 200
                assert fetched.content == data


def test_chunked_upload_across_replicas_in_parts_of_the_bucket(
    cluster: Cluster, s3_server: MotoServer, bucket: str
) -> None:
    """POST on one replica, each PATCH and the PUT on the next: chunks smaller than a
    part (buffered in the bucket between requests and processes) and one larger than a
    part, so the blob is a multipart upload continued by three processes."""
    sizes = [1 * MIB, 2 * MIB + 17, PART + 3 * MIB, 300_000]
    chunks = [os.urandom(n) for n in sizes]
    data = b"".join(chunks)
    digest = sha256(data)
    clients = [direct(replica, ADMIN) for replica in cluster.replicas]
    try:
        location = start_upload(clients[0], "team/chunked")
        offset = 0
        for n, chunk in enumerate(chunks[:-1], start=1):
            path = re.sub(r"^https?://[^/]+", "", location)
            patched = patch_chunk(clients[n % 3], path, chunk, offset)
            assert patched.status_code == 202, patched.text
            offset += len(chunk)
            location = patched.headers["location"]
            status = clients[(n + 1) % 3].get(re.sub(r"^https?://[^/]+", "", location))
            assert status.status_code == 204
            assert upload_range_end(status) == offset
        path = re.sub(r"^https?://[^/]+", "", location)
        done = finish_upload(clients[len(chunks) % 3], path, digest, chunks[-1])
        assert done.status_code == 201, done.text
        for client in clients:
            blob = client.get(f"/v2/team/chunked/blobs/{digest}", follow_redirects=True)
            assert blob.status_code == 200
            assert blob.content == data
    finally:
        for client in clients:
            client.close()
    upload_id = path.split("/uploads/")[1].split("?")[0]
    ours = [r for r in s3_server.requests(bucket) if upload_id in r]
    assert any("partNumber=2" in r for r in ours), ours  # more than one part
    s3 = s3_server.client()
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    assert _objects(s3_server, bucket, f"v1/uploads/{upload_id}") == []
    assert s3.head_object(Bucket=bucket, Key=_blob_key(digest))["ContentLength"] == len(data)


def test_a_killed_replica_loses_nothing_it_acknowledged(cluster: Cluster) -> None:
    victim = cluster.replicas[-1]
    acknowledged = push_while_killing(cluster, victim, "team/crash")
    try:
        assert acknowledged
        survivors = cluster.replicas[:-1]
        for n, pushed in enumerate(acknowledged):
            with direct(survivors[n % len(survivors)], ADMIN) as client:
                assert_pullable(client, pushed)
    finally:
        victim.start(victim.port)
    assert not cluster.internal_errors()
    assert_fsck_clean(cluster)  # on the bucket: every blob row has its object, sizes agree


def test_gc_runs_once_across_replicas_and_deletes_in_batches(
    cluster: Cluster, s3_server: MotoServer, bucket: str
) -> None:
    """Blobs no manifest uses, pushed through different replicas; one GC job, queued
    through nginx, is claimed by one replica's worker and deletes them with DeleteObjects
    (no DELETE per object)."""
    orphans = {}
    for n, replica in enumerate(cluster.replicas * 2):
        data = os.urandom(2000 + n)
        with direct(replica, ADMIN) as client:
            done = client.post(
                f"/v2/team/orphans/blobs/uploads/?digest={sha256(data)}", content=data
            )
            assert done.status_code == 201, done.text
        orphans[sha256(data)] = data
    for digest in orphans:
        assert _objects(s3_server, bucket, _blob_key(digest).removeprefix(f"{PREFIX}/"))
    mark = len(s3_server.requests(bucket))
    with cluster.client(headers=ADMIN) as admin:
        started = admin.post(
            "/api/v1/jobs", json={"kind": "gc", "params": {"grace_period_seconds": 0}}
        )
        assert started.status_code == 202, started.text
        job = _finished(admin, started.json()["id"])
        assert job["status"] == "succeeded", job
        assert job["attempts"] == 1, job
        gc_jobs = admin.get("/api/v1/jobs", params={"kind": "gc"}).json()
        assert [j["id"] for j in gc_jobs] == [job["id"]], gc_jobs
        for _ in range(len(cluster.replicas)):
            for digest in orphans:
                assert admin.head(f"/v2/team/orphans/blobs/{digest}").status_code == 404
    for digest in orphans:
        assert _objects(s3_server, bucket, _blob_key(digest).removeprefix(f"{PREFIX}/")) == []
    requests = s3_server.requests(bucket)[mark:]
    batched = [r for r in requests if r.startswith("POST") and "?delete" in r]
    single = [r for r in requests if r.startswith("DELETE") and "/v1/blobs/" in r]
    assert batched, requests
    assert single == [], single


def _finished(client: httpx.Client, job_id: int) -> dict[str, Any]:
    deadline = time.monotonic() + 180
    while True:
        job: dict[str, Any] = client.get(f"/api/v1/jobs/{job_id}").json()
        if job["status"] in ("succeeded", "failed", "stopped") or time.monotonic() > deadline:
            return job
        time.sleep(0.5)


def test_no_replica_logged_an_internal_error(cluster: Cluster) -> None:
    assert not cluster.internal_errors(), cluster.internal_errors()
