"""The registry on S3 (in process, against a real moto S3 server): blob reads streamed
with ranges or redirected to presigned URLs, HEAD answered without the store, GC through
DeleteObjects, upload purge aborting multipart uploads, fsck seeing a wrong size."""

from __future__ import annotations

import os
import time
import uuid
from datetime import timedelta

import httpx
import pytest
from starlette.testclient import TestClient

from portside.app import PortsideApp, create_app
from portside.config import Settings
from portside.content.gc import GarbageCollector
from portside.content.purge import purge_uploads
from portside.fsck import run_fsck
from tests.api.helpers import push_blob, sha256, start_upload
from tests.api.test_quota import set_quota
from tests.s3server import MIB, MotoServer

REPO = "acme/app"

pytestmark = pytest.mark.s3


def _mark(server: MotoServer, bucket: str) -> int:
    """The number of requests to `bucket` so far, once the server's log has caught up
    (a marker request is made and waited for)."""
    marker = f"marker-{uuid.uuid4().hex}"
    client = server.client()
    client.put_object(Bucket=bucket, Key=marker, Body=b"")
    deadline = time.monotonic() + 30
    while True:
        requests = server.requests(bucket)
        if any(marker in line for line in requests):
            return len(requests)
        assert time.monotonic() < deadline, "moto's request log did not show the marker"
        time.sleep(0.05)


def test_head_never_touches_the_store(
    s3_client: TestClient, s3_server: MotoServer, s3_bucket: str
) -> None:
    data = os.urandom(10_000)
    digest = push_blob(s3_client, REPO, data)
    before = _mark(s3_server, s3_bucket)
    for _ in range(10):
        response = s3_client.head(f"/v2/{REPO}/blobs/{digest}")
        assert response.status_code == 200
        assert response.headers["content-length"] == str(len(data))
    # Only the second marker request was added: the HEADs made none.
    assert _mark(s3_server, s3_bucket) == before + 1
    # A GET, by contrast, reads the object (so the count above can see store requests).
    assert s3_client.get(f"/v2/{REPO}/blobs/{digest}").content == data
    assert _mark(s3_server, s3_bucket) > before + 2


def test_get_streams_whole_and_ranges(s3_client: TestClient) -> None:
    data = os.urandom(1_300_000)
    digest = push_blob(s3_client, REPO, data)
    whole = s3_client.get(f"/v2/{REPO}/blobs/{digest}")
    assert whole.status_code == 200
    assert whole.content == data
    for header, start, end in [
        ("bytes=100-199", 100, 199),
        ("bytes=1000000-", 1_000_000, len(data) - 1),
        ("bytes=-10", len(data) - 10, len(data) - 1),
    ]:
        ranged = s3_client.get(f"/v2/{REPO}/blobs/{digest}", headers={"range": header})
        assert ranged.status_code == 206, header
        assert ranged.headers["content-range"] == f"bytes {start}-{end}/{len(data)}"
        assert ranged.content == data[start : end + 1]


def test_redirect_to_a_presigned_url(s3_registry_settings: Settings, s3_server: MotoServer) -> None:
    storage = s3_registry_settings.storage
    redirecting = s3_registry_settings.model_copy(
        update={
            "storage": storage.model_copy(
                update={
                    "s3": storage.s3.model_copy(
                        update={"redirect": True, "redirect_expiry_seconds": 60}
                    )
                }
            )
        }
    )
    app = create_app(redirecting)
    try:
        with TestClient(app, base_url="http://registry.test") as client:
            data = os.urandom(200_000)
            digest = push_blob(client, REPO, data)
            response = client.get(f"/v2/{REPO}/blobs/{digest}", follow_redirects=False)
            assert response.status_code == 307
            location = response.headers["location"]
            assert location.startswith(s3_server.endpoint)
            assert "X-Amz-Expires=60" in location
            assert response.headers["docker-content-digest"] == digest
            # HEAD is still answered here, from the database.
            head = client.head(f"/v2/{REPO}/blobs/{digest}", follow_redirects=False)
            assert head.status_code == 200
    finally:
        app.ctx.close()
    fetched = httpx.get(location)
    assert fetched.status_code == 200
    assert fetched.content == data
    ranged = httpx.get(location, headers={"range": "bytes=10-19"})
    assert ranged.status_code == 206
    assert ranged.content == data[10:20]


def test_gc_deletes_through_delete_objects(
    s3_app: PortsideApp, s3_client: TestClient, s3_server: MotoServer, s3_bucket: str
) -> None:
    blobs = [os.urandom(1000 + n) for n in range(5)]
    for data in blobs:
        push_blob(s3_client, REPO, data)
    before = _mark(s3_server, s3_bucket)
    collector = GarbageCollector(s3_app.ctx.db, s3_app.ctx.storage)
    result = collector.run(collector.plan(timedelta(0)))
    assert result.blobs == len(blobs)
    requests = s3_server.requests(s3_bucket)[before:]
    batched = [r for r in requests if r.startswith("POST") and "?delete" in r]
    single = [r for r in requests if r.startswith("DELETE")]
    assert len(batched) == 1, requests
    assert single == []
    listed = s3_server.client().list_objects_v2(Bucket=s3_bucket, Prefix="registry/v1/blobs/")
    assert listed.get("KeyCount", 0) == 0


def test_purge_aborts_multipart_uploads(
    s3_app: PortsideApp, s3_client: TestClient, s3_server: MotoServer, s3_bucket: str
) -> None:
    location = start_upload(s3_client, REPO)
    chunk = os.urandom(6 * MIB)  # more than a part: a multipart upload is under way
    response = s3_client.patch(
        location, content=chunk, headers={"content-range": f"0-{len(chunk) - 1}"}
    )
    assert response.status_code == 202, response.text
    s3 = s3_server.client()
    # An orphan: a multipart upload whose upload is unknown (as a crash could leave).
    s3.create_multipart_upload(Bucket=s3_bucket, Key=f"registry/v1/uploads/{uuid.uuid4()}/data")
    assert len(s3.list_multipart_uploads(Bucket=s3_bucket).get("Uploads", [])) == 2
    time.sleep(1.1)  # the store's times have whole seconds
    result = purge_uploads(s3_app.ctx.db, s3_app.ctx.storage, timedelta(0))
    assert result.expired_uploads == 1
    assert result.aborted_multipart == 1
    assert s3.list_multipart_uploads(Bucket=s3_bucket).get("Uploads", []) == []
    listed = s3.list_objects_v2(Bucket=s3_bucket, Prefix="registry/v1/uploads/")
    assert listed.get("KeyCount", 0) == 0


def test_fsck_detects_a_wrong_size(
    s3_registry_settings: Settings,
    s3_client: TestClient,
    s3_server: MotoServer,
    s3_bucket: str,
) -> None:
    good, bad = os.urandom(3000), os.urandom(4000)
    push_blob(s3_client, REPO, good)
    bad_digest = push_blob(s3_client, REPO, bad)
    assert run_fsck(s3_registry_settings).problems == []
    key = f"registry/v1/blobs/sha256/{bad_digest[7:9]}/{bad_digest[7:]}"
    s3_server.client().put_object(Bucket=s3_bucket, Key=key, Body=bad[:-1])
    problems = run_fsck(s3_registry_settings, verify_hashes=False).problems
    assert problems == [f"blob {bad_digest}: stored size 3999, recorded size 4000"]
    # Same size, other content: only hashing finds it.
    s3_server.client().put_object(Bucket=s3_bucket, Key=key, Body=bad[::-1])
    assert run_fsck(s3_registry_settings, verify_hashes=False).problems == []
    assert run_fsck(s3_registry_settings).problems == [
        f"blob {bad_digest}: content does not match its digest"
    ]
    assert sha256(good) != bad_digest


def test_single_process_upload_is_not_read_back(
    s3_client: TestClient, s3_server: MotoServer, s3_bucket: str
) -> None:
    """Every chunk through one process: the digest comes from the hash kept in memory,
    so after the multipart upload completes, the upload object is copied, never read."""
    chunks = [os.urandom(3 * MIB), os.urandom(3 * MIB), os.urandom(MIB)]
    data = b"".join(chunks)
    location = start_upload(s3_client, REPO)
    upload_id = location.rstrip("/").rsplit("/", 1)[-1].split("?")[0]
    offset = 0
    for chunk in chunks[:-1]:
        response = s3_client.patch(
            location,
            content=chunk,
            headers={"content-range": f"{offset}-{offset + len(chunk) - 1}"},
        )
        assert response.status_code == 202, response.text
        offset += len(chunk)
        location = response.headers["location"]
    digest = sha256(data)
    separator = "&" if "?" in location else "?"
    response = s3_client.put(f"{location}{separator}digest={digest}", content=chunks[-1])
    assert response.status_code == 201, response.text
    _mark(s3_server, s3_bucket)
    requests = [r for r in s3_server.requests(s3_bucket) if upload_id in r]
    completed = [n for n, r in enumerate(requests) if r.startswith("POST") and "uploadId=" in r]
    assert len(completed) == 1, requests
    after = requests[completed[0] + 1 :]
    assert after, requests  # the copy to the blob's key, the clean-up
    assert not [r for r in after if r.startswith(f"GET /{s3_bucket}/")], after
    assert s3_client.get(f"/v2/{REPO}/blobs/{digest}").content == data


def test_refused_commit_leaves_its_copy_to_gc(
    s3_app: PortsideApp, s3_client: TestClient, s3_server: MotoServer, s3_bucket: str
) -> None:
    """On S3 the copy to the blob's key runs before the commit transaction; a commit
    refused there (over quota) records the blob row unlinked, so GC deletes the copy."""
    set_quota(s3_app, "acme", 100)
    data = os.urandom(1000)
    response = s3_client.post(f"/v2/{REPO}/blobs/uploads/?digest={sha256(data)}", content=data)
    assert response.status_code == 403, response.text
    key = f"registry/v1/blobs/sha256/{sha256(data)[7:9]}/{sha256(data)[7:]}"
    s3 = s3_server.client()
    assert s3.list_objects_v2(Bucket=s3_bucket, Prefix=key).get("KeyCount") == 1
    collector = GarbageCollector(s3_app.ctx.db, s3_app.ctx.storage)
    assert collector.run(collector.plan(timedelta(0))).blobs == 1
    assert s3.list_objects_v2(Bucket=s3_bucket, Prefix=key).get("KeyCount", 0) == 0
