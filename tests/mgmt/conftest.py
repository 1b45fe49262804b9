"""Fixtures for the management API tests (/api/v1): a registry with authentication on,
populated as in tests/auth (`admin`; one user per role in the private project `acme`,
named like the role without dashes; `outsider`; the public project `pub`), registries
built with other settings, and clients that sign in by Basic or by a session cookie."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from starlette.testclient import TestClient

from portside.auth import passwords
from portside.auth.roles import Role
from portside.mgmt.sessions import COOKIE
from tests.auth.conftest import PASSWORD, ROLE_USERS, Registry, basic, populated

API = "/api/v1"
BASE_URL = "http://registry.test"
PROJECT_ADMIN = ROLE_USERS[Role.PROJECT_ADMIN]
MAINTAINER = ROLE_USERS[Role.MAINTAINER]
DEVELOPER = ROLE_USERS[Role.DEVELOPER]
GUEST = ROLE_USERS[Role.GUEST]
LIMITED_GUEST = ROLE_USERS[Role.LIMITED_GUEST]


@pytest.fixture
def registry(tmp_path: Path, database_url: str) -> Iterator[Registry]:
    with populated(tmp_path, database_url) as built:
        yield built


MakeRegistry = Callable[..., Registry]


@pytest.fixture
def make_registry(tmp_path: Path, database_url: str) -> Iterator[MakeRegistry]:
    """`make_registry(external_url=..., projects={...})`: a populated registry with these
    settings, on this test's database (so build at most one per test)."""
    with ExitStack() as stack:

        def build(**settings: Any) -> Registry:
            return stack.enter_context(populated(tmp_path, database_url, **settings))

        yield build


def client_for(registry: Registry, user: str | None = None, password: str = PASSWORD) -> TestClient:
    """A client sending Basic credentials for `user` (none: anonymous) on every request."""
    return registry.as_caller(basic(user, password) if user else {})


@dataclass(frozen=True)
class Session:
    """A signed-in web UI session: the cookie value and the CSRF token."""

    cookie: str
    csrf_token: str
    body: dict[str, Any]


def sign_in(registry: Registry, user: str, password: str = PASSWORD) -> Session:
    response = registry.as_caller({}).post(
        f"{API}/sessions", json={"username": user, "password": password}
    )
    assert response.status_code == 201, response.text
    cookie = response.cookies.get(COOKIE)
    assert cookie, response.headers
    body = response.json()
    assert isinstance(body, dict)
    return Session(cookie, body["csrf_token"], body)


def session_client(registry: Registry, session: Session, *, csrf: bool = True) -> TestClient:
    """A client presenting the session cookie (as a plain header, so nothing in a cookie
    jar can add or drop it) and, unless csrf=False, the session's CSRF token."""
    headers = {"Cookie": f"{COOKIE}={session.cookie}"}
    if csrf:
        headers["X-CSRF-Token"] = session.csrf_token
    return registry.as_caller(headers)


@pytest.fixture(autouse=True)
def cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hash passwords with the cheapest argon2 parameters: these tests sign in hundreds of
    times over Basic, and what they check is the API, not the hash's cost (verification
    reads the parameters from the stored hash, so everything else is unchanged)."""
    monkeypatch.setattr(
        passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    )
