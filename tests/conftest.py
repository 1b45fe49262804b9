"""Shared fixtures: a fresh database per test (SQLite file, or a PostgreSQL schema when
PORTSIDE_TEST_DATABASE_URL is set), settings, the ASGI app, and a test client."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from starlette.testclient import TestClient

from portside.app import PortsideApp, create_app
from portside.config import Settings, load_settings
from portside.metadata.engine import upgrade

POSTGRES_URL = os.environ.get("PORTSIDE_TEST_DATABASE_URL")


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    """A migrated, empty metadata database private to one test."""
    if not POSTGRES_URL:
        url = f"sqlite:///{tmp_path / 'portside.db'}"
        upgrade(url)
        yield url
        return
    name = f"portside_t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}"
    upgrade(url)
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return load_settings(
        data_dir=tmp_path / "data",
        database={"url": database_url},
        log={"access": False, "level": "warning"},
    )


@pytest.fixture
def app(settings: Settings) -> Iterator[PortsideApp]:
    application = create_app(settings)
    yield application
    application.ctx.close()


@pytest.fixture
def client(app: PortsideApp) -> Iterator[TestClient]:
    with TestClient(app, base_url="http://registry.test") as test_client:
        yield test_client
