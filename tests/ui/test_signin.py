"""Signing in and out through the UI's forms; the sign-in form's own CSRF token; no
open redirects after sign-in."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.auth.conftest import PASSWORD, Registry, populated
from tests.ui.conftest import Browser, browser_for


def test_front_page_leads_to_projects(registry: Registry) -> None:
    response = registry.as_caller({}).get("/", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/projects"


def test_sign_in_and_out(registry: Registry) -> None:
    browser = browser_for(registry, "admin")
    page = browser.get("/projects")
    assert "Administration" in page.text
    response = browser.post("/logout")
    assert response.status_code == 200
    assert "You are signed out." in response.text
    assert "Administration" not in browser.get("/projects").text


def test_wrong_password_is_said_in_words(registry: Registry) -> None:
    browser = Browser(registry.as_caller({}))
    browser.get("/login")
    response = browser.post("/login", {"username": "admin", "password": "wrong", "next": "/"})
    assert response.status_code == 401
    assert "Wrong username or password." in response.text


def test_sign_in_form_needs_its_token(registry: Registry) -> None:
    client = registry.as_caller({})
    response = client.post(
        "/login", data={"csrf": "forged", "username": "admin", "password": PASSWORD}
    )
    assert response.status_code == 401
    assert "expired" in response.text
    assert "portside_session" not in response.headers.get("set-cookie", "")


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/",
        "//evil.example/",
        "/\\evil.example/",
        "javascript:alert(1)",
        "/%0d%0aLocation: https://evil.example",
        "\t/evil",
    ],
)
def test_no_open_redirect_after_sign_in(registry: Registry, target: str) -> None:
    browser = Browser(registry.as_caller({}))
    browser.get("/login")
    response = browser.post(
        "/login", {"username": "admin", "password": PASSWORD, "next": target}, follow=False
    )
    assert response.status_code == 303
    location = response.headers["location"]
    assert location.startswith("/"), location
    assert not location.startswith(("//", "/\\")), location
    assert "\r" not in location
    assert "\n" not in location
    if not target.strip().startswith("/") or target.startswith(("//", "/\\")):
        assert location == "/projects"


def test_sign_in_returns_to_the_page_asked_for(registry: Registry) -> None:
    browser = Browser(registry.as_caller({}))
    browser.get("/login?next=/projects%3Fq%3Dac")
    form = {"username": "admin", "password": PASSWORD, "next": "/projects?q=ac"}
    response = browser.post("/login", form, follow=False)
    assert response.headers["location"] == "/projects?q=ac"


def test_cross_site_posts_are_refused(registry: Registry) -> None:
    browser = browser_for(registry, "admin")
    browser.get("/projects")
    response = browser.post(
        "/projects", {"name": "evil"}, headers={"Origin": "https://evil.example"}
    )
    assert response.status_code == 403
    browser.get("/projects")
    response = browser.post("/projects", {"name": "evil"}, headers={"Sec-Fetch-Site": "cross-site"})
    assert response.status_code == 403
    assert "evil" not in browser.get("/projects").text


def test_security_headers_on_every_page(registry: Registry) -> None:
    client = registry.as_caller({})
    for path in ("/projects", "/login", "/no/such/page"):
        response = client.get(path)
        csp = response.headers["content-security-policy"]
        assert "script-src 'self'" in csp
        assert "default-src 'none'" in csp
        assert "'unsafe-inline'" not in csp
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["x-content-type-options"] == "nosniff"


def test_session_cookie_is_httponly_and_samesite(registry: Registry) -> None:
    browser = Browser(registry.as_caller({}))
    browser.get("/login")
    response = browser.post(
        "/login", {"username": "admin", "password": PASSWORD, "next": "/"}, follow=False
    )
    cookie = next(c for c in response.headers.get_list("set-cookie") if "portside_session" in c)
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie or "SameSite=Strict" in cookie


def test_unknown_page_is_404_in_words(registry: Registry) -> None:
    response = registry.as_caller({}).get("/no/such/page")
    assert response.status_code == 404
    assert "There is no page at this address." in response.text


def test_cookies_are_secure_behind_https(tmp_path: Path, database_url: str) -> None:
    """With an https:// external URL (TLS here or at a proxy) the session cookie and the
    sign-in form's cookie are marked Secure."""
    with populated(tmp_path, database_url, external_url="https://registry.example") as registry:
        client = registry.as_caller({})
        page = client.get("/login")
        login_cookie = page.headers["set-cookie"]
        assert "portside_login=" in login_cookie
        assert "Secure" in login_cookie
        token = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert token
        # The test client speaks plain HTTP, so it would not send a Secure cookie back.
        value = login_cookie.split(";")[0].split("=", 1)[1]
        response = client.post(
            "/login",
            data={"csrf": token.group(1), "username": "admin", "password": PASSWORD},
            headers={"Cookie": f"portside_login={value}"},
            follow_redirects=False,
        )
        session = next(
            c for c in response.headers.get_list("set-cookie") if "portside_session=" in c
        )
        assert "Secure" in session
