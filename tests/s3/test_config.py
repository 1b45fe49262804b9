"""S3 settings: errors that name the key, and the start-up check of the bucket."""

from __future__ import annotations

from pathlib import Path

import pytest

from portside.config import ConfigError, load_settings
from portside.storage.factory import check_storage
from tests.durability.server import free_port
from tests.s3server import MotoServer, s3_settings

pytestmark = pytest.mark.s3


def test_s3_needs_a_bucket(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"storage\.s3\.bucket is required"):
        load_settings(data_dir=tmp_path, storage={"driver": "s3"})


@pytest.mark.parametrize(
    ("s3", "message"),
    [
        ({"part_size": 1024}, r"storage\.s3\.part_size"),
        ({"endpoint_url": "minio:9000"}, r"storage\.s3\.endpoint_url"),
        ({"access_key_id": "only-the-id"}, r"access_key_id and storage\.s3\.secret_access_key"),
        ({"kms_key_id": "k"}, r"kms_key_id needs storage\.s3\.encryption"),
        ({"encryption": "rot13"}, r"storage\.s3\.encryption"),
        ({"prefix": "a/../b"}, r"storage\.s3\.prefix"),
        ({"colour": "blue"}, r"storage\.s3\.colour: unknown setting"),
    ],
)
def test_s3_settings_errors_name_the_key(
    tmp_path: Path, s3: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(data_dir=tmp_path, storage={"driver": "s3", "s3": {"bucket": "b", **s3}})


def test_start_up_check_passes_for_a_reachable_bucket(
    tmp_path: Path, s3_server: MotoServer, s3_bucket: str
) -> None:
    check_storage(load_settings(data_dir=tmp_path, storage=s3_settings(s3_server, s3_bucket)))


def test_start_up_check_names_a_missing_bucket(tmp_path: Path, s3_server: MotoServer) -> None:
    settings = load_settings(data_dir=tmp_path, storage=s3_settings(s3_server, "no-such-bucket"))
    with pytest.raises(
        ConfigError, match=r"storage\.s3\.bucket: bucket 'no-such-bucket' .* does not exist"
    ):
        check_storage(settings)


def test_start_up_check_names_an_unreachable_endpoint(
    tmp_path: Path, s3_server: MotoServer
) -> None:
    storage = s3_settings(s3_server, "b")
    storage["s3"]["endpoint_url"] = f"http://127.0.0.1:{free_port()}"  # type: ignore[index]
    settings = load_settings(data_dir=tmp_path, storage=storage)
    with pytest.raises(ConfigError, match=r"storage\.s3\.endpoint_url: cannot reach"):
        check_storage(settings)
