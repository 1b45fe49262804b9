"""`portside fsck`: clean stores pass; each kind of damage is found and named."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, update
from starlette.testclient import TestClient

from portside.cli import main
from portside.config import Settings
from portside.digest import Digest
from portside.metadata import schema as s
from portside.storage import paths
from tests.durability.server import OCI_MANIFEST, image_manifest, run_fsck, sha256

REPO = "fsck/app"


def _push_image(client: TestClient, tag: str) -> tuple[bytes, list[bytes]]:
    config = json.dumps({"tag": tag}).encode()
    layers = [os.urandom(50_000), os.urandom(1234)]
    for blob in (config, *layers):
        response = client.post(f"/v2/{REPO}/blobs/uploads/?digest={sha256(blob)}", content=blob)
        assert response.status_code == 201, response.text
    manifest = image_manifest(config, layers)
    response = client.put(
        f"/v2/{REPO}/manifests/{tag}", content=manifest, headers={"content-type": OCI_MANIFEST}
    )
    assert response.status_code == 201, response.text
    return manifest, [config, *layers]


def _blob_file(settings: Settings, data: bytes) -> Path:
    path = settings.storage_root / paths.blob_path(Digest.parse(sha256(data)))
    assert path.is_file()
    return path


def _fsck(settings: Settings, *, no_hash: bool = False) -> tuple[int, str]:
    """`portside fsck --data-dir DIR [--no-hash]`, in-process (the subprocess form is run by
    test_fsck_command_line and the crash tests)."""
    args = ["fsck", "--data-dir", str(settings.data_dir)]
    if no_hash:
        args.append("--no-hash")
    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("PORTSIDE_")}
    env["PORTSIDE_DATABASE__URL"] = settings.database_url
    result = CliRunner().invoke(main, args, env=env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


def test_fsck_command_line(pushed: tuple[bytes, list[bytes]], settings: Settings) -> None:
    """The real `portside fsck` process: exit 0 on a clean store, 1 with the problem named."""
    result = run_fsck(settings.data_dir, settings.database_url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "fsck: clean" in result.stdout
    _manifest, blobs = pushed
    _blob_file(settings, blobs[0]).unlink()
    result = run_fsck(settings.data_dir, settings.database_url)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"problem: blob {sha256(blobs[0])}: missing from storage" in result.stdout


@pytest.fixture
def pushed(client: TestClient) -> tuple[bytes, list[bytes]]:
    _push_image(client, "one")
    return _push_image(client, "two")


def test_empty_store_is_clean(client: TestClient, settings: Settings) -> None:
    assert client.get("/v2/").status_code == 200
    code, output = _fsck(settings)
    assert code == 0, output
    assert "fsck: clean" in output


def test_clean_store_is_clean(
    pushed: tuple[bytes, list[bytes]], settings: Settings, client: TestClient
) -> None:
    # An upload in progress is not a problem either.
    assert client.post(f"/v2/{REPO}/blobs/uploads/").status_code == 202
    for no_hash in (False, True):
        code, output = _fsck(settings, no_hash=no_hash)
        assert code == 0, output
        assert "problem" not in output
        assert "fsck: clean: 2 tags, 2 manifests, 6 blobs" in output
        assert "1 uploads in progress" in output


def test_flipped_byte_in_blob_is_found(
    pushed: tuple[bytes, list[bytes]], settings: Settings
) -> None:
    _manifest, blobs = pushed
    path = _blob_file(settings, blobs[1])
    content = bytearray(path.read_bytes())
    content[len(content) // 2] ^= 0x01
    path.write_bytes(bytes(content))
    code, output = _fsck(settings)
    assert code == 1, output
    assert f"blob {sha256(blobs[1])}: content does not match its digest" in output
    assert "1 problem(s)" in output
    # --no-hash skips the content check: same size, so nothing else is wrong.
    code, output = _fsck(settings, no_hash=True)
    assert code == 0, output
    assert "fsck: clean" in output


def test_deleted_blob_file_is_found(pushed: tuple[bytes, list[bytes]], settings: Settings) -> None:
    _manifest, blobs = pushed
    _blob_file(settings, blobs[2]).unlink()
    for no_hash in (False, True):
        code, output = _fsck(settings, no_hash=no_hash)
        assert code == 1, output
        assert f"blob {sha256(blobs[2])}: missing from storage" in output


def test_truncated_blob_file_is_found_without_hashing(
    pushed: tuple[bytes, list[bytes]], settings: Settings
) -> None:
    _manifest, blobs = pushed
    path = _blob_file(settings, blobs[1])
    path.write_bytes(path.read_bytes()[:-1])
    code, output = _fsck(settings, no_hash=True)
    assert code == 1, output
    assert f"blob {sha256(blobs[1])}: stored size {len(blobs[1]) - 1}" in output


def test_edited_manifest_row_is_found(
    pushed: tuple[bytes, list[bytes]], settings: Settings
) -> None:
    manifest, _blobs = pushed
    engine = create_engine(settings.database_url)
    try:
        with engine.begin() as conn:
            edited = conn.execute(
                update(s.manifests)
                .where(s.manifests.c.digest == sha256(manifest))
                .values(content=manifest.replace(b'"schemaVersion": 2', b'"schemaVersion":  2'))
            )
            assert edited.rowcount == 1
    finally:
        engine.dispose()
    code, output = _fsck(settings)
    assert code == 1, output
    assert f"{REPO}@{sha256(manifest)}: stored manifest bytes do not match the digest" in output
    # Manifest bytes are checked even with --no-hash (that flag is about blob contents).
    code, output = _fsck(settings, no_hash=True)
    assert code == 1, output
    assert f"{REPO}@{sha256(manifest)}" in output


def test_upload_with_missing_data_is_found(client: TestClient, settings: Settings) -> None:
    response = client.post(f"/v2/{REPO}/blobs/uploads/")
    assert response.status_code == 202
    upload_id = response.headers["docker-upload-uuid"]
    data_file = settings.storage_root / paths.upload_data_path(upload_id)
    assert data_file.is_file()
    data_file.unlink()
    code, output = _fsck(settings)
    assert code == 1, output
    assert f"upload {upload_id}: recorded but its data is missing" in output


def test_problems_are_all_listed(pushed: tuple[bytes, list[bytes]], settings: Settings) -> None:
    _manifest, blobs = pushed
    _blob_file(settings, blobs[0]).unlink()
    path = _blob_file(settings, blobs[1])
    path.write_bytes(hashlib.sha256(b"garbage").digest() * (len(blobs[1]) // 32 + 1))
    path.write_bytes(path.read_bytes()[: len(blobs[1])])
    code, output = _fsck(settings)
    assert code == 1, output
    assert f"blob {sha256(blobs[0])}: missing from storage" in output
    assert f"blob {sha256(blobs[1])}: content does not match its digest" in output
    assert "2 problem(s)" in output
