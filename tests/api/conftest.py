"""API-test fixtures beyond tests/conftest.py: a faster fresh database per test, and
clients built with non-default settings."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from starlette.testclient import TestClient

from portside.app import PortsideApp, create_app
from portside.config import load_settings
from portside.metadata.engine import upgrade
from tests.conftest import POSTGRES_URL


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One migrated database per session; each test gets a copy (running the migrations
    for every one of several hundred tests would dominate the run time)."""
    if not POSTGRES_URL:
        path = tmp_path_factory.mktemp("template") / "portside.db"
        upgrade(f"sqlite:///{path}")
        yield str(path)
        return
    name = f"portside_tpl_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    upgrade(POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}")
    try:
        yield name
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def database_url(tmp_path: Path, migrated_template: str) -> Iterator[str]:
    """A migrated, empty metadata database private to one test (overrides the root
    conftest's fixture with a copy of the session's template)."""
    if not POSTGRES_URL:
        path = tmp_path / "portside.db"
        shutil.copyfile(migrated_template, path)
        yield f"sqlite:///{path}"
        return
    name = f"portside_t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{migrated_template}"'))
    try:
        yield POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


MakeClient = Callable[..., TestClient]


@pytest.fixture
def make_client(tmp_path: Path, database_url: str) -> Iterator[MakeClient]:
    """`make_client(delete_enabled=False, manifest_max_bytes=...)`: a client on an app
    whose `registry` settings carry these overrides (same fresh database as `client`)."""
    with ExitStack() as stack:
        apps: list[PortsideApp] = []

        def build(**registry: Any) -> TestClient:
            settings = load_settings(
                data_dir=tmp_path / "data",
                database={"url": database_url},
                registry=registry,
                log={"access": False, "level": "warning"},
            )
            app = create_app(settings)
            apps.append(app)
            return stack.enter_context(TestClient(app, base_url="http://registry.test"))

        try:
            yield build
        finally:
            stack.close()
            for app in apps:
                app.ctx.close()


@pytest.fixture
def no_delete_client(make_client: MakeClient) -> TestClient:
    return make_client(delete_enabled=False)
