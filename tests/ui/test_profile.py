"""The profile page: who you are and your projects, changing your password (other
sessions end), and personal access tokens (the secret is shown once)."""

from __future__ import annotations

import re

from sqlalchemy import update

from portside.metadata import schema as s
from tests.auth.conftest import PASSWORD, Registry, basic
from tests.ui.conftest import Browser, browser_for

NEW = "another-long-password"


def _flash(page: str) -> str:
    found = re.search(r'<div class="flash [a-z]+" role="[a-z]+">(.*?)</div>', page, re.S)
    assert found, "no message on the page"
    return found.group(1)


def _sign_in(registry: Registry, user: str, password: str) -> int:
    browser = Browser(registry.as_caller({}))
    browser.get("/login")
    form = {"username": user, "password": password, "next": "/profile"}
    return browser.post("/login", form).status_code


def test_profile_shows_the_account_and_projects(registry: Registry) -> None:
    page = browser_for(registry, "projectadmin").get("/profile")
    assert page.status_code == 200
    text = page.text
    assert "<h1>projectadmin</h1>" in text
    assert "<dt>Account</dt><dd>local</dd>" in text
    assert 'href="/projects/acme">acme</a></th><td>project-admin</td>' in text
    assert 'href="/projects/pub"' not in text  # public, but no role there
    assert 'aria-current="page">projectadmin' in text
    outsider = browser_for(registry, "outsider").get("/profile").text
    assert "You have no role in a project yet" in outsider
    admin = browser_for(registry, "admin").get("/profile").text
    assert "system administrator" in admin


def test_profile_needs_signing_in(registry: Registry) -> None:
    response = registry.as_caller({}).get("/profile", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Fprofile"


def test_change_password_signs_other_sessions_out(registry: Registry) -> None:
    other = browser_for(registry, "outsider")
    browser = browser_for(registry, "outsider")
    browser.get("/profile")
    form = {"old_password": PASSWORD, "new_password": NEW, "repeat": NEW}
    response = browser.post("/profile/password", form)
    assert response.status_code == 200
    assert _flash(response.text) == (
        "Password changed. Your other sessions were signed out; this one stays."
    )
    assert browser.get("/profile").status_code == 200  # this session stays
    assert other.get("/profile", follow_redirects=False).status_code == 303
    assert _sign_in(registry, "outsider", PASSWORD) == 401
    assert _sign_in(registry, "outsider", NEW) == 200


def test_password_refusals_in_words(registry: Registry) -> None:
    browser = browser_for(registry, "outsider")
    browser.get("/profile")
    form = {"old_password": "wrong-password", "new_password": NEW, "repeat": NEW}
    response = browser.post("/profile/password", form)
    assert _flash(response.text) == ("Your password was not changed: the current password is wrong")
    form = {"old_password": PASSWORD, "new_password": NEW, "repeat": NEW + "x"}
    response = browser.post("/profile/password", form)
    assert _flash(response.text) == "The two new passwords are not the same."
    form = {"old_password": PASSWORD, "new_password": "short", "repeat": "short"}
    response = browser.post("/profile/password", form)
    assert _flash(response.text).startswith("Your password was not changed: ")
    assert _sign_in(registry, "outsider", PASSWORD) == 200


def test_ldap_users_are_told_where_their_password_lives(registry: Registry) -> None:
    browser = browser_for(registry, "outsider")  # before the account becomes LDAP's
    with registry.app.ctx.db.write() as conn:
        conn.execute(update(s.users).where(s.users.c.username == "outsider").values(source="ldap"))
    page = browser.get("/profile").text
    assert "managed by your organisation's directory (LDAP)" in page
    assert 'action="/profile/password"' not in page
    assert "LDAP directory" in page


def test_token_create_shows_the_secret_once_then_revoke(registry: Registry) -> None:
    browser = browser_for(registry, "outsider")
    page = browser.get("/profile").text
    assert "You have no tokens." in page
    response = browser.post("/profile/tokens", {"name": "laptop", "expires_in_days": "30"})
    assert response.status_code == 200
    assert len(response.history) == 0  # rendered directly, no redirect
    found = re.search(r'<code class="token-secret">(psp_[A-Za-z0-9_-]{40})</code>', response.text)
    assert found, response.text
    secret = found.group(1)
    assert f'data-copy="{secret}"' in response.text
    assert "shown only this once" in response.text
    host = registry.get("/api/v1/systeminfo").json()["registry_url"].split("://")[-1]
    assert f"docker login -u outsider --password-stdin {host.rstrip('/')}" in response.text

    # The secret works as the password for Basic credentials...
    api = registry.as_caller(basic("outsider", secret))
    assert api.get("/api/v1/users/current").json()["username"] == "outsider"
    # ...and is never shown again.
    page = browser.get("/profile").text
    assert secret not in page
    assert '<th scope="row">laptop</th>' in page
    assert re.search(r"<td>\d{4}-\d\d-\d\d \d\d:\d\d UTC</td>", page)  # expires
    revoke = re.search(r'action="(/profile/tokens/\d+/revoke)"', page)
    assert revoke
    assert 'data-confirm="Revoke token laptop? Anything using it stops working."' in page
    response = browser.post(revoke.group(1), {"token_name": "laptop"})
    assert _flash(response.text) == "Token laptop revoked: it no longer works."
    assert "You have no tokens." in response.text
    registry.forget_caches()
    assert (
        registry.as_caller(basic("outsider", secret)).get("/api/v1/users/current").status_code
        == 401
    )
    response = browser.post(revoke.group(1), {"token_name": "laptop"})
    assert _flash(response.text).startswith("Could not revoke token laptop:")


def test_token_refusals_in_words(registry: Registry) -> None:
    browser = browser_for(registry, "outsider")
    browser.get("/profile")
    response = browser.post("/profile/tokens", {"name": "ci", "expires_in_days": "soon"})
    assert _flash(response.text) == "Expiry must be a whole number of days (or empty)."
    response = browser.post("/profile/tokens", {"name": ""})
    assert _flash(response.text).startswith("Could not create the token:")
    browser.post("/profile/tokens", {"name": "ci"})
    browser.get("/profile")
    response = browser.post("/profile/tokens", {"name": "ci"})
    assert _flash(response.text).startswith("Could not create the token:")
    assert "psp_" not in response.text
    response = browser.post(f"/profile/tokens/{2**40}/revoke", {"token_name": "x"})
    assert _flash(response.text) == "There is no token x."


def test_token_names_are_escaped(registry: Registry) -> None:
    browser = browser_for(registry, "outsider")
    browser.get("/profile")
    hostile = '<script>alert(1)</script>"onmouseover="x'
    response = browser.post("/profile/tokens", {"name": hostile})
    assert "<script>alert" not in response.text
    page = browser.get("/profile").text
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&#34;onmouseover=&#34;x" in page


def test_a_token_cannot_sign_in_to_the_ui(registry: Registry) -> None:
    browser = browser_for(registry, "outsider")
    browser.get("/profile")
    page = browser.post("/profile/tokens", {"name": "cli"}).text
    found = re.search(r'<code class="token-secret">(psp_[^<]+)</code>', page)
    assert found
    assert _sign_in(registry, "outsider", found.group(1)) == 401
