"""The registry-endpoint administration pages: add (with a password that is never shown
again), test the connection against a real Distribution, change, delete; refusals in
words; hostile values escaped; non-admins refused."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from portside.endpoints.secrets import new_key
from tests.auth.conftest import Registry, populated
from tests.remote.peers import distribution
from tests.ui.conftest import browser_for

SECRET = "ui-peer-password"


@pytest.fixture
def keyed(tmp_path: Path, database_url: str) -> Iterator[Registry]:
    with populated(
        tmp_path,
        database_url,
        secrets={"encryption_key": new_key()},
        endpoints={"allow_private_targets": True},
    ) as built:
        yield built


def _flash(page: str) -> str:
    found = re.search(r'<div class="flash [a-z]+" role="[a-z]+">(.*?)</div>', page, re.S)
    assert found, "no message on the page"
    return found.group(1)


def test_add_test_change_delete(keyed: Registry, tmp_path: Path) -> None:
    browser = browser_for(keyed, "admin")
    with distribution(tmp_path / "d", auth=("alice", SECRET)) as peer:
        browser.get("/admin/endpoints")
        form = {
            "name": "peer",
            "type": "distribution",
            "url": peer.url,
            "username": "alice",
            "password": SECRET,
            "verify_tls": "on",
        }
        response = browser.post("/admin/endpoints", form)
        assert str(response.url).endswith("/admin/endpoints/peer")
        assert _flash(response.text) == "Endpoint peer added."
        assert SECRET not in response.text
        response = browser.post("/admin/endpoints/peer/test")
        assert _flash(response.text).startswith("Connection OK: connected to")
        response = browser.post(
            "/admin/endpoints/peer",
            {"type": "distribution", "url": peer.url, "username": "alice", "password": "nope"},
        )
        assert _flash(response.text) == "Endpoint peer saved."
        response = browser.post("/admin/endpoints/peer/test")
        assert "Connection failed:" in _flash(response.text)
        assert "refused user &#39;alice&#39;" in _flash(response.text)
        listing = browser.get("/admin/endpoints").text
        assert peer.url in listing
        assert SECRET not in listing
        browser.get("/admin/endpoints/peer")
        response = browser.post("/admin/endpoints/peer/delete")
        assert _flash(response.text) == "Endpoint peer deleted."


def test_refusals_in_words_and_escaping(keyed: Registry) -> None:
    browser = browser_for(keyed, "admin")
    browser.get("/admin/endpoints")
    hostile = "<script>alert(1)</script>"
    response = browser.post(
        "/admin/endpoints", {"name": "x", "type": "distribution", "url": hostile}
    )
    assert "Could not add the endpoint:" in _flash(response.text)
    assert "<script>alert" not in response.text
    response = browser.post(
        "/admin/endpoints",
        {"name": "y", "type": "distribution", "url": "http://127.0.0.1:1", "description": hostile},
    )
    assert "<script>alert" not in response.text
    assert "&lt;script&gt;" in browser.get("/admin/endpoints/y").text


def test_non_admins_are_refused(keyed: Registry) -> None:
    browser = browser_for(keyed, "projectadmin")
    assert browser.get("/admin/endpoints").status_code == 403
