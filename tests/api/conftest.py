"""API-test fixtures beyond tests/conftest.py: clients built with non-default settings."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from portside.app import PortsideApp, create_app
from portside.config import load_settings

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
