"""Portside on S3: fixtures for an in-process app whose storage is a fresh bucket on the
session's moto server (tests/s3server.py), with the minimum part size (5 MiB) so that
multipart behaviour shows with small blobs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from portside.app import PortsideApp, create_app
from portside.config import Settings, load_settings
from tests.s3server import MIB, MotoServer, s3_settings

PART_SIZE = 5 * MIB


@pytest.fixture
def s3_registry_settings(
    tmp_path: Path, database_url: str, s3_server: MotoServer, s3_bucket: str
) -> Settings:
    return load_settings(
        data_dir=tmp_path / "data",
        database={"url": database_url},
        log={"access": False, "level": "warning"},
        storage=s3_settings(s3_server, s3_bucket, prefix="registry", part_size=PART_SIZE),
    )


@pytest.fixture
def s3_app(s3_registry_settings: Settings) -> Iterator[PortsideApp]:
    application = create_app(s3_registry_settings)
    yield application
    application.ctx.close()


@pytest.fixture
def s3_client(s3_app: PortsideApp) -> Iterator[TestClient]:
    with TestClient(s3_app, base_url="http://registry.test") as test_client:
        yield test_client
