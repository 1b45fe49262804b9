"""Fixtures for the web UI tests without a browser: the populated registry of
tests/auth (`admin`; one user per role in the private project `acme`; `outsider`; the
public project `pub`), and clients that use the UI as a browser would — cookies kept,
forms posted with the CSRF token read from the page."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from argon2 import PasswordHasher
from starlette.testclient import TestClient

from portside.auth import passwords
from tests.auth.conftest import PASSWORD, Registry, basic, populated
from tests.mgmt.helpers import Content, push_content

_CSRF = re.compile(r'name="csrf" value="([^"]*)"')
REPO = "acme/team/app"  # where `content` is pushed


@pytest.fixture
def registry(tmp_path: Path, database_url: str) -> Iterator[Registry]:
    with populated(tmp_path, database_url) as built:
        yield built


@pytest.fixture(autouse=True)
def cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cheapest argon2 parameters: the tests sign in often; the hash is tested elsewhere."""
    monkeypatch.setattr(
        passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    )


def admin_client(registry: Registry) -> TestClient:
    """The API as the system administrator (Basic), for pushing and setting up."""
    return registry.as_caller(basic("admin"))


def host_of(registry: Registry) -> str:
    """The registry's host as pull commands name it."""
    url = registry.get("/api/v1/systeminfo").json()["registry_url"]
    return str(url).split("://", 1)[-1].rstrip("/")


@pytest.fixture
def content(registry: Registry) -> Content:
    """Images, an index and a referrer pushed into REPO (see tests/mgmt/helpers.py)."""
    return push_content(admin_client(registry), REPO)


class Browser:
    """A cookie-keeping client that fills in the CSRF field of the page it last saw."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.page = ""

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        response = self.client.get(path, **kwargs)
        self.page = response.text
        return response

    def csrf(self) -> str:
        found = _CSRF.search(self.page)
        assert found, "no CSRF field on the last page"
        return found.group(1)

    def post(
        self, path: str, data: dict[str, Any] | None = None, *, follow: bool = True, **kwargs: Any
    ) -> httpx.Response:
        form = {"csrf": self.csrf(), **(data or {})}
        response = self.client.post(path, data=form, follow_redirects=follow, **kwargs)
        if follow:
            self.page = response.text
        return response


def browser_for(registry: Registry, user: str | None = None, password: str = PASSWORD) -> Browser:
    """A browser, signed in as `user` through the sign-in form (None: anonymous)."""
    browser = Browser(registry.as_caller({}))
    if user is not None:
        browser.get("/login")
        response = browser.post(
            "/login", {"username": user, "password": password, "next": "/projects"}
        )
        assert response.status_code == 200, response.text
        assert f">{user}<" in response.text or f">{user} <" in response.text, response.text
    return browser
