"""The little script on every page, and the pages without it: copy buttons put the value
on the clipboard, a slow form says what it is doing, and with JavaScript off the same
forms still work (deletes then go without the confirmation dialog, as plain forms)."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Route, expect

from .conftest import (
    PageWatch,
    Pusher,
    UiServer,
    create_project,
    custom_image,
    new_context,
    registry_tags,
    sign_in,
    unique,
)

pytestmark = pytest.mark.browser

# Records, just after a form is submitted (after portside.js reacted), the submit button's
# text and disabled state and the form's aria-busy, where the next page can read them.
_RECORD_BUSY_STATE = """() => {
  document.addEventListener("submit", (event) => {
    setTimeout(() => {
      const button = event.submitter;
      const state = [button.textContent, button.disabled, event.target.getAttribute("aria-busy")];
      sessionStorage.setItem("busy-state", JSON.stringify(state));
    }, 50);
  });
}"""


def test_copy_button_puts_the_command_on_the_clipboard(
    admin_page: Page,
    context: BrowserContext,
    admin_api: httpx.Client,
    pusher: Pusher,
    portside: UiServer,
) -> None:
    page = admin_page
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    project = unique("copy")
    create_project(admin_api, project)
    pusher.push(custom_image(f"{project}/app"), f"{project}/app", "v1")
    page.goto(f"/repositories/{project}/app")
    command = f"docker pull {portside.host}/{project}/app:v1"
    button = page.get_by_role("button", name=f"Copy command: {command}")
    button.click()
    expect(button).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == command
    expect(button).to_have_text("Copy", timeout=5000)  # back after a moment


def test_slow_form_shows_that_it_is_working(admin_page: Page) -> None:
    page = admin_page
    held: list[Route] = []

    def hold_posts(route: Route) -> None:
        if route.request.method == "POST":
            held.append(route)  # answered below, once the page had time to react
        else:
            route.continue_()

    page.route(re.compile(r"/projects$"), hold_posts)
    page.evaluate(_RECORD_BUSY_STATE)
    name = unique("busy")
    page.get_by_label("Name").fill(name)
    # Not waiting for the navigation the click starts: its request is held. (Nor reading
    # the page meanwhile: Playwright waits for the navigation to finish first.)
    page.get_by_role("button", name="Create project").click(no_wait_after=True)
    for _ in range(50):
        if held:
            break
        page.wait_for_timeout(100)
    assert len(held) == 1, "the form was not posted"
    page.wait_for_timeout(300)
    held[0].continue_()
    expect(page.get_by_role("status")).to_have_text(f"Project {name} created.")
    recorded = page.evaluate("sessionStorage.getItem('busy-state')")
    assert recorded == '["Creating…",true,"true"]', recorded


def test_forms_work_without_javascript(
    browser: Browser,
    portside: UiServer,
    watch: PageWatch,
    pusher: Pusher,
    admin_api: httpx.Client,
) -> None:
    context = new_context(browser, portside, watch, java_script_enabled=False)
    try:
        page = context.new_page()
        sign_in(page)
        name = unique("nojs")
        page.get_by_label("Name").fill(name)
        page.get_by_role("button", name="Create project").click()
        expect(page.get_by_role("status")).to_have_text(f"Project {name} created.")

        repository = f"{name}/app"
        image = custom_image(repository)
        pusher.push(image, repository, "v1")
        admin_api.post(
            f"/repositories/{repository}/-/artifacts/{image.digest}/tags", json={"name": "v2"}
        ).raise_for_status()
        page.goto(f"/repositories/{repository}")
        page.get_by_role("button", name="Remove tag v1").click()
        expect(page.get_by_role("status")).to_have_text("Tag v1 removed; the artifact stays.")
        assert watch.dialogs == []
        assert registry_tags(portside, repository) == ["v2"]

        page.get_by_role("button", name="Sign out").click()
        expect(page.get_by_role("banner").get_by_role("link", name="Sign in")).to_be_visible()
    finally:
        context.close()
