"""Fixtures for access-control tests: a registry with authentication on (an admin, a
private and a public project, users with roles) and helpers to get tokens."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from starlette.testclient import TestClient

from portside.app import PortsideApp, create_app
from portside.auth.roles import Role
from portside.auth.service import AuthService
from portside.config import load_settings
from portside.events.audit import CONSUMER as AUDIT
from portside.events.outbox import Consumer

PASSWORD = "correct-horse-battery"


def basic(username: str, password: str = PASSWORD) -> dict[str, str]:
    raw = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class Registry:
    app: PortsideApp
    client: TestClient

    @property
    def auth(self) -> AuthService:
        return self.app.ctx.auth

    def token(self, *scopes: str, user: str | None = None, password: str = PASSWORD) -> str:
        headers = basic(user, password) if user else {}
        response = self.client.get(
            "/auth/token",
            params={"service": "portside", "scope": list(scopes)},
            headers=headers,
        )
        assert response.status_code == 200, response.text
        token = response.json()["token"]
        assert isinstance(token, str)
        return token

    def as_caller(self, headers: dict[str, str]) -> TestClient:
        """A client sending these headers on every request (same app; no lifespan, so
        closing it leaves the app running)."""
        return TestClient(self.app, base_url="http://registry.test", headers=headers)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.client.get(path, **kwargs)

    def forget_caches(self) -> None:
        """Drop the guard's 30-second credential and policy caches."""
        self.app.guard._basic.clear()
        self.app.guard._policy.clear()


def build_registry(tmp_path: Path, database_url: str, **settings: Any) -> PortsideApp:
    loaded = load_settings(
        data_dir=tmp_path / "data",
        database={"url": database_url},
        log={"access": False, "level": "warning"},
        **settings,
    )
    return create_app(loaded)


# The users of a populated registry: one per role in `acme`, named like the role without
# dashes (`projectadmin`, `limitedguest`), plus `admin` and `outsider`.
ROLE_USERS = {role: role.value.replace("-", "") for role in Role}


def skip_setup_in_audit_log(app: PortsideApp) -> None:
    """Let the audit log start after a fixture's setup: its events are consumed without
    rows, so tests see in the log only what they did."""
    Consumer(app.ctx.db, AUDIT).catch_up(lambda conn, events: None)


@contextmanager
def populated(tmp_path: Path, database_url: str, **settings: Any) -> Iterator[Registry]:
    """Auth on. Users: admin (system admin), one user per role in project `acme`
    (private), and `outsider` (no role). Project `pub` is public."""
    app = build_registry(tmp_path, database_url, **settings)
    auth = app.ctx.auth
    try:
        auth.accounts.create_user("admin", PASSWORD, admin=True)
        auth.projects.create("acme")
        auth.projects.create("pub", public=True)
        for role, name in ROLE_USERS.items():
            auth.accounts.create_user(name, PASSWORD)
            auth.projects.set_member("acme", name, role)
        auth.accounts.create_user("outsider", PASSWORD)
        skip_setup_in_audit_log(app)
        with TestClient(app, base_url="http://registry.test") as client:
            yield Registry(app, client)
    finally:
        app.ctx.close()


@pytest.fixture
def registry(tmp_path: Path, database_url: str) -> Iterator[Registry]:
    with populated(tmp_path, database_url) as built:
        yield built
