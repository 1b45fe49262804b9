"""`portside storage copy`: a registry on the filesystem moved to S3 without re-pushing
(then served from S3 and fsck-clean), an interrupted copy resumed, and a corrupt source
blob refused (never stored at its digest path)."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from starlette.testclient import TestClient

from portside.app import PortsideApp, create_app
from portside.config import Settings, StorageSettings
from portside.fsck import run_fsck
from tests.api.helpers import make_image, push_blob, push_manifest, start_upload
from tests.durability.server import PORTSIDE, portside_env
from tests.s3server import MIB, MotoServer, s3_settings

REPO = "acme/moved"

pytestmark = pytest.mark.s3


def _copy(settings: Settings, target: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            PORTSIDE,
            "storage",
            "copy",
            "--to",
            str(target),
            "--data-dir",
            str(settings.data_dir),
            "--workers",
            "4",
        ],
        env=portside_env(settings.database_url),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_copy_filesystem_to_s3_then_serve_from_s3(
    *,
    app: PortsideApp,
    client: TestClient,
    settings: Settings,
    s3_server: MotoServer,
    s3_bucket: str,
    tmp_path: Path,
) -> None:
    blobs = [os.urandom(size) for size in (10, 70_000, 6 * MIB)]
    digests = [push_blob(client, REPO, data) for data in blobs]
    manifest = make_image(client, REPO, seed="moved")
    push_manifest(client, REPO, "v1", manifest)
    upload = start_upload(client, REPO)  # an upload in progress moves too
    client.patch(upload, content=b"partial", headers={"content-range": "0-6"})
    app.ctx.close()

    storage = s3_settings(s3_server, s3_bucket, prefix="moved")
    target = tmp_path / "s3.yaml"
    target.write_text(yaml.safe_dump({"storage": storage}))
    first = _copy(settings, target)
    assert first.returncode == 0, first.stderr + first.stdout
    assert "storage copy complete" in first.stdout
    assert " 0 already present" in first.stdout

    # Interrupted: one object never arrived, another only partly; the rerun fixes both.
    s3 = s3_server.client()
    key = f"moved/v1/blobs/sha256/{digests[1][7:9]}/{digests[1][7:]}"
    s3.delete_object(Bucket=s3_bucket, Key=key)
    key = f"moved/v1/blobs/sha256/{digests[2][7:9]}/{digests[2][7:]}"
    s3.put_object(Bucket=s3_bucket, Key=key, Body=blobs[2][:MIB])
    again = _copy(settings, target)
    assert again.returncode == 0, again.stderr + again.stdout
    assert ", 2 copied" in again.stdout, again.stdout

    on_s3 = settings.model_copy(update={"storage": StorageSettings.model_validate(storage)})
    assert run_fsck(on_s3).problems == []
    served = create_app(on_s3)
    try:
        with TestClient(served, base_url="http://registry.test") as s3_client:
            for data, digest in zip(blobs, digests, strict=True):
                assert s3_client.get(f"/v2/{REPO}/blobs/{digest}").content == data
            got = s3_client.get(f"/v2/{REPO}/manifests/v1", headers={"accept": manifest.media_type})
            assert got.status_code == 200
            assert got.content == manifest.body
            status = s3_client.get(upload)
            assert status.headers["range"] == "0-6"
    finally:
        served.ctx.close()


def test_corrupt_source_blob_is_refused(
    client: TestClient,
    settings: Settings,
    s3_server: MotoServer,
    s3_bucket: str,
    tmp_path: Path,
) -> None:
    data = os.urandom(5000)
    digest = push_blob(client, REPO, data)
    blob_file = settings.storage_root / "v1" / "blobs" / "sha256" / digest[7:9] / digest[7:]
    blob_file.write_bytes(data[::-1])
    target = tmp_path / "s3.yaml"
    target.write_text(yaml.safe_dump({"storage": s3_settings(s3_server, s3_bucket)}))
    result = _copy(settings, target)
    assert result.returncode == 1
    assert f"failed: v1/blobs/sha256/{digest[7:9]}/{digest[7:]}: source content hashes to" in (
        result.stderr
    )
    listed = s3_server.client().list_objects_v2(Bucket=s3_bucket)
    assert all(digest[7:] not in item["Key"] for item in listed.get("Contents", []))


def test_killed_copy_is_resumed(
    client: TestClient,
    settings: Settings,
    s3_server: MotoServer,
    s3_bucket: str,
    tmp_path: Path,
) -> None:
    """SIGKILL the copy once some blobs have arrived; the rerun skips those, copies the
    rest, and fsck on S3 is clean."""
    blobs = [os.urandom(256 * 1024) for _ in range(24)]
    for data in blobs:
        push_blob(client, REPO, data)
    storage = s3_settings(s3_server, s3_bucket)
    target = tmp_path / "s3.yaml"
    target.write_text(yaml.safe_dump({"storage": storage}))
    command = [PORTSIDE, "storage", "copy", "--to", str(target), "--workers", "1"]
    process = subprocess.Popen(
        [*command, "--data-dir", str(settings.data_dir)],
        env=portside_env(settings.database_url),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    s3 = s3_server.client()
    try:
        deadline = time.monotonic() + 120
        while process.poll() is None and time.monotonic() < deadline:
            listed = s3.list_objects_v2(Bucket=s3_bucket, Prefix="v1/blobs/")
            if listed.get("KeyCount", 0) >= 3:
                break
            time.sleep(0.02)
    finally:
        process.kill()
        process.wait(30)
    if process.returncode == 0:
        pytest.skip("the copy finished before it could be interrupted")
    arrived = s3.list_objects_v2(Bucket=s3_bucket, Prefix="v1/blobs/").get("KeyCount", 0)
    assert 3 <= arrived < len(blobs)
    again = _copy(settings, target)
    assert again.returncode == 0, again.stderr + again.stdout
    present = int(again.stdout.split(" already present")[0].rsplit(" ", 1)[-1])
    assert present >= arrived
    on_s3 = settings.model_copy(update={"storage": StorageSettings.model_validate(storage)})
    assert run_fsck(on_s3).problems == []
