"""Signing in and out in a real browser."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from .conftest import ADMIN, ADMIN_PASSWORD, UiServer, sign_in

pytestmark = pytest.mark.browser


def test_wrong_password_is_refused_in_words(page: Page) -> None:
    page.goto("/projects")
    page.get_by_role("banner").get_by_role("link", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/login\?next="))
    page.get_by_label("Username").fill(ADMIN)
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("Wrong username or password.")
    # The name stays filled in; the password does not.
    expect(page.get_by_label("Username")).to_have_value(ADMIN)
    expect(page.get_by_label("Password")).to_have_value("")
    expect(page.get_by_role("button", name="Sign out")).to_have_count(0)


def test_sign_in_and_out(page: Page, context: BrowserContext) -> None:
    sign_in(page)
    expect(page.get_by_role("heading", name="Projects", level=1)).to_be_visible()
    expect(page.get_by_role("link", name=re.compile(rf"^{ADMIN}\b"))).to_be_visible()
    expect(page.get_by_role("link", name="Administration")).to_be_visible()
    session = [c for c in context.cookies() if c["name"] != "portside_flash"]
    assert session, "no session cookie"
    assert all(c["httpOnly"] for c in session), session
    assert all(c["sameSite"] in ("Strict", "Lax") for c in session), session

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("status")).to_have_text("You are signed out.")
    expect(page.get_by_role("banner").get_by_role("link", name="Sign in")).to_be_visible()
    expect(page.get_by_role("link", name="Administration")).to_have_count(0)
    # The old session is gone on the server too: its cookie, sent again, is no one's.
    context.add_cookies(session)  # type: ignore[arg-type]
    page.reload()
    expect(page.get_by_role("banner").get_by_role("link", name="Sign in")).to_be_visible()
    expect(page.get_by_role("button", name="Sign out")).to_have_count(0)


def test_sign_in_returns_to_the_page_asked_for(page: Page) -> None:
    page.goto("/login?next=%2Fprojects%3Fq%3Dnothing-like-this")
    page.get_by_label("Username").fill(ADMIN)
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/projects\?q=nothing-like-this$"))
    expect(page.get_by_text("No project matches your search.")).to_be_visible()


def test_no_open_redirect_after_sign_in(page: Page, portside: UiServer) -> None:
    page.goto("/login?next=%2F%2Fevil.example%2Fsteal")
    page.get_by_label("Username").fill(ADMIN)
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{portside.url}/projects")
