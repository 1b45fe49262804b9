from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from portside.app import PortsideApp, create_app
from portside.config import Settings, load_settings
from portside.events.outbox import Actor
from tests.scans.doubles import RecordedFindingsScanner


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return load_settings(
        data_dir=tmp_path / "data",
        database={"url": database_url},
        log={"access": False, "level": "warning"},
    )


@pytest.fixture
def double() -> RecordedFindingsScanner:
    return RecordedFindingsScanner()


@pytest.fixture
def app(settings: Settings, double: RecordedFindingsScanner) -> Iterator[PortsideApp]:
    application = create_app(settings)
    # The built-in scanner is not in this branch: the test double stands in for it.
    application.ctx.scans.builtin = lambda: double
    application.ctx.auth.projects.create("acme", creator="cli", actor=Actor("cli"))
    yield application
    application.ctx.close()


@pytest.fixture
def client(app: PortsideApp) -> Iterator[TestClient]:
    with TestClient(app, base_url="http://registry.test") as test_client:
        yield test_client
