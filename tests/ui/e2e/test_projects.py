"""The projects list in a real browser: creating a project through the form, searching,
the keyboard path through the page, a phone's width, and the dark theme."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from .conftest import (
    PHONE,
    PageWatch,
    Screenshots,
    UiServer,
    assert_fits,
    create_project,
    new_context,
    sign_in,
    unique,
)

pytestmark = pytest.mark.browser


def test_create_a_project_through_the_form(
    admin_page: Page, admin_api: httpx.Client, shots: Screenshots
) -> None:
    page = admin_page
    name = unique("created")
    page.get_by_role("link", name="New project").click()
    page.get_by_label("Name").fill(name)
    page.get_by_role("radio", name=re.compile(r"Public")).check()
    page.get_by_label("Quota").fill("1 GiB")
    page.get_by_role("button", name="Create project").click()
    expect(page.get_by_role("status")).to_have_text(f"Project {name} created.")
    expect(page).to_have_url(re.compile(rf"/projects/{name}$"))

    page.goto("/projects")
    row = page.get_by_role("row").filter(has=page.get_by_role("link", name=name, exact=True))
    expect(row).to_have_count(1)
    expect(row).to_contain_text("public")
    expect(row).to_contain_text("of 1.0 GiB")
    answer = admin_api.get(f"/projects/{name}").json()
    assert answer["public"] is True
    assert answer["quota_bytes"] == 1024**3
    shots.take(page, "projects", docs="projects")

    # The same name again: the API's refusal, in words, back on the list.
    page.get_by_role("link", name="New project").click()
    page.get_by_label("Name").fill(name)
    page.get_by_role("button", name="Create project").click()
    expect(page.get_by_role("alert")).to_contain_text("Could not create project")
    expect(page).to_have_url(re.compile(r"/projects$"))


def test_search_narrows_the_list(admin_page: Page, admin_api: httpx.Client) -> None:
    page = admin_page
    wanted, other = unique("findme"), unique("other")
    create_project(admin_api, wanted)
    create_project(admin_api, other)
    page.reload()
    search = page.get_by_role("searchbox", name="Search projects")
    search.fill(wanted)
    search.press("Enter")
    expect(page).to_have_url(re.compile(rf"[?&]q={wanted}"))
    expect(page.get_by_role("link", name=wanted, exact=True)).to_be_visible()
    expect(page.get_by_role("link", name=other, exact=True)).to_have_count(0)
    expect(search).to_have_value(wanted)


def test_keyboard_reaches_search_and_projects_and_the_skip_link_works(
    admin_page: Page, admin_api: httpx.Client
) -> None:
    page = admin_page
    name = unique("keys")
    create_project(admin_api, name)
    page.goto(f"/projects?q={name}")

    # The first Tab lands on the skip link, which jumps past the navigation.
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    expect(skip).to_be_focused()
    expect(skip).to_be_visible()
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"#main$"))
    expect(page.locator("main")).to_be_focused()

    # From the top again, Tab alone gets to the search box and then to a project.
    page.goto(f"/projects?q={name}")
    search = page.get_by_role("searchbox", name="Search projects")
    link = page.get_by_role("link", name=name, exact=True)
    reached_search = False
    for _ in range(40):
        page.keyboard.press("Tab")
        if search.evaluate("e => e === document.activeElement"):
            reached_search = True
        if link.evaluate("e => e === document.activeElement"):
            break
    else:
        raise AssertionError("Tab never reached the project link")
    assert reached_search, "Tab reached the project link without passing the search box"
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(rf"/projects/{name}$"))


def test_phone_width_has_no_sideways_scrolling(
    browser: Browser,
    portside: UiServer,
    watch: PageWatch,
    shots: Screenshots,
    admin_api: httpx.Client,
) -> None:
    create_project(admin_api, unique("phone-with-a-rather-long-project-name"))
    context = new_context(browser, portside, watch, viewport=PHONE, is_mobile=True, has_touch=True)
    try:
        page = context.new_page()
        sign_in(page)
        assert_fits(page)
        shots.take(page, "phone-projects")
    finally:
        context.close()


def test_dark_theme_switch_is_remembered(
    browser: Browser, portside: UiServer, watch: PageWatch, shots: Screenshots
) -> None:
    context = new_context(browser, portside, watch, color_scheme="light")
    try:
        page = context.new_page()
        sign_in(page)
        light = page.evaluate("getComputedStyle(document.body).backgroundColor")
        page.get_by_role("button", name="Switch between light and dark theme").click()
        expect(page.locator("html")).to_have_attribute("data-theme", "dark")
        dark = page.evaluate("getComputedStyle(document.body).backgroundColor")
        assert dark != light
        assert _luminance(dark) < _luminance(light)
        page.reload()
        expect(page.locator("html")).to_have_attribute("data-theme", "dark")
        shots.take(page, "dark-projects")
        page.get_by_role("button", name="Switch between light and dark theme").click()
        expect(page.locator("html")).to_have_attribute("data-theme", "light")
    finally:
        context.close()


def _luminance(css_color: str) -> float:
    red, green, blue = (int(part) for part in re.findall(r"\d+", css_color)[:3])
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue
