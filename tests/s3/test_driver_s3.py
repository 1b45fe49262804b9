"""What only the S3 driver has (the shared suite in tests/storage covers the rest): a
failed part upload leaves the file as its last close left it; the append object's
layout; the key prefix."""

from __future__ import annotations

from pathlib import Path

import pytest

from portside.config import load_settings
from portside.storage.base import PathNotFound
from portside.storage.s3 import APPEND_META, S3Driver
from tests.s3server import MIB, MotoServer, s3_settings

pytestmark = pytest.mark.s3

PART = 5 * MIB


def _driver(server: MotoServer, bucket: str, tmp_path: Path) -> S3Driver:
    settings = load_settings(
        data_dir=tmp_path, storage=s3_settings(server, bucket, prefix="p", part_size=PART)
    )
    return S3Driver(settings.storage.s3)


def test_failed_part_upload_keeps_the_last_closed_state(
    s3_server: MotoServer, s3_bucket: str, tmp_path: Path
) -> None:
    driver = _driver(s3_server, s3_bucket, tmp_path)
    first = b"a" * (PART + 10)
    writer = driver.writer("u/data", append=True)
    writer.write(first)
    writer.close()
    s3 = s3_server.client()
    head = s3.head_object(Bucket=s3_bucket, Key="p/u/data")
    assert head["Metadata"][APPEND_META] == "1"
    # The multipart upload vanishes behind the driver's back: the next part fails.
    (upload,) = s3.list_multipart_uploads(Bucket=s3_bucket)["Uploads"]
    s3.abort_multipart_upload(Bucket=s3_bucket, Key=upload["Key"], UploadId=upload["UploadId"])
    writer = driver.writer("u/data", append=True)
    writer.write(b"b" * PART)
    with pytest.raises((OSError, PathNotFound)):
        writer.close()
    writer.close()  # closing again after the failure records nothing
    assert driver.stat("u/data").size == len(first)


def test_keys_are_below_the_prefix_and_small_files_need_no_multipart(
    s3_server: MotoServer, s3_bucket: str, tmp_path: Path
) -> None:
    driver = _driver(s3_server, s3_bucket, tmp_path)
    writer = driver.writer("a/b", append=True)
    writer.write(b"small")
    writer.commit()
    s3 = s3_server.client()
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=s3_bucket)["Contents"]] == ["p/a/b"]
    assert s3.list_multipart_uploads(Bucket=s3_bucket).get("Uploads", []) == []
    metadata = s3.head_object(Bucket=s3_bucket, Key="p/a/b").get("Metadata", {})
    assert APPEND_META not in metadata


def test_connections_cover_the_blocking_work_pool() -> None:
    """Every thread of the HTTP worker's blocking-work pool may call the store at once
    (plus their part uploads): the client's connection pool is sized from that pool."""
    from portside.metadata.engine import POOL_SIZE
    from portside.storage.s3 import REQUEST_THREADS

    assert REQUEST_THREADS == POOL_SIZE
