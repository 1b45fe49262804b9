"""People and robots: an admin creates a user on the Administration pages and makes them a
member of a project, and that user then sees it; a robot made on the Robots tab shows its
secret once, and skopeo pushes and pulls with it."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.clients.images import Layout, assert_layout_has_image

from .conftest import (
    PageWatch,
    Pusher,
    Screenshots,
    UiServer,
    create_project,
    custom_image,
    new_context,
    registry_tags,
    sign_in,
    unique,
)

pytestmark = pytest.mark.browser


def test_add_a_member_who_then_sees_the_project(
    admin_page: Page,
    admin_api: httpx.Client,
    browser: Browser,
    portside: UiServer,
    watch: PageWatch,
) -> None:
    page = admin_page
    project, other = unique("team"), unique("not-theirs")
    create_project(admin_api, project)
    create_project(admin_api, other)
    username, password = unique("alice"), "alice-Secret-4321"

    # A new user, through Administration > Users.
    page.get_by_role("link", name="Administration").click()
    page.get_by_role("link", name="Users").click()
    page.get_by_role("link", name="New user").click()
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_label("Repeat the password").fill(password)
    page.get_by_role("button", name="Create user").click()
    expect(page.get_by_role("status")).to_have_text(f"User {username} created.")

    # A member of the project, as a developer.
    page.goto(f"/projects/{project}")
    page.get_by_role("navigation", name="Project sections").get_by_role(
        "link", name="Members"
    ).click()
    page.get_by_label("User or group name").fill(username)
    page.get_by_label("Role", exact=True).select_option("developer")
    page.get_by_role("button", name="Add member").click()
    expect(page.get_by_role("status")).to_contain_text(username)
    row = page.get_by_role("row").filter(has=page.get_by_role("rowheader", name=username))
    expect(row).to_have_count(1)
    expect(row.get_by_role("combobox")).to_have_value("developer")

    # The member signs in in a browser of their own and sees the project, not the other.
    context = new_context(browser, portside, watch)
    try:
        theirs = context.new_page()
        sign_in(theirs, username, password)
        listed = theirs.get_by_role("row").filter(
            has=theirs.get_by_role("link", name=project, exact=True)
        )
        expect(listed).to_contain_text("developer")
        expect(theirs.get_by_role("link", name=other, exact=True)).to_have_count(0)
        theirs.get_by_role("link", name=project, exact=True).click()
        expect(theirs.get_by_role("heading", level=1)).to_contain_text(project)
        expect(theirs.get_by_text("your role: developer")).to_be_visible()
        # Developers do not manage members: no form to add one.
        theirs.goto(f"/projects/{project}/members")
        expect(theirs.get_by_role("button", name="Add member")).to_have_count(0)
        # And the other project looks like no project at all.
        response = theirs.goto(f"/projects/{other}")
        assert response is not None
        assert response.status == 404
    finally:
        context.close()


def test_robot_secret_is_shown_once_and_works_with_skopeo(
    admin_page: Page,
    admin_api: httpx.Client,
    pusher: Pusher,
    shots: Screenshots,
    portside: UiServer,
) -> None:
    page = admin_page
    project = unique("robots")
    create_project(admin_api, project)
    page.goto(f"/projects/{project}")
    page.get_by_role("link", name="Robots").click()
    page.get_by_role("textbox", name=re.compile(r"^Name")).fill("ci")
    page.get_by_role("checkbox", name="push").check()
    expect(page.get_by_role("checkbox", name="pull")).to_be_checked()
    page.get_by_label("Description").fill("the e2e tests' pipeline")
    page.get_by_role("button", name="Create robot").click()

    robot = f"robot${project}+ci"
    expect(page.get_by_role("heading", name=re.compile("Robot created"))).to_contain_text(robot)
    copy_name = page.get_by_role("button", name=re.compile(r"^Copy username"))
    assert copy_name.get_attribute("data-copy") == robot
    secret = page.get_by_role("button", name=re.compile(r"^Copy secret")).get_attribute("data-copy")
    assert secret, "no secret on the page"
    expect(page.get_by_text(secret, exact=True)).to_be_visible()
    row = page.get_by_role("row").filter(has=page.get_by_role("rowheader", name=robot))
    expect(row).to_contain_text("pull, push")
    expect(row).to_contain_text("enabled")
    shots.take(page, "project-robots", docs="project-robots")

    # skopeo signs in as the robot: push, then pull it back.
    image = custom_image(f"{project}/robot")
    pusher.push(image, f"{project}/by-robot", "v1", user=robot, password=secret)
    pulled = pusher.pull(f"{project}/by-robot", "v1", user=robot, password=secret)
    assert_layout_has_image(Layout(pulled), image, "v1")
    # A wrong secret is refused.
    with pytest.raises(AssertionError):
        pusher.pull(f"{project}/by-robot", "v1", user=robot, password=secret[:-1] + "x")

    # Reloading (the browser may send the form again) does not show it again,
    page.reload()
    expect(page.get_by_role("rowheader", name=robot)).to_be_visible()
    expect(page.get_by_role("button", name=re.compile(r"^Copy secret"))).to_have_count(0)
    assert secret not in page.content()
    # nor does coming back to the page: the secret is gone for good.
    page.goto(f"/projects/{project}/robots")
    expect(page.get_by_role("rowheader", name=robot)).to_be_visible()
    expect(page.get_by_role("button", name=re.compile(r"^Copy secret"))).to_have_count(0)
    assert secret not in page.content()
    # And the push shows up in the project.
    page.goto(f"/projects/{project}")
    expect(page.get_by_role("link", name=f"{project}/by-robot")).to_be_visible()
    assert registry_tags(portside, f"{project}/by-robot") == ["v1"]
