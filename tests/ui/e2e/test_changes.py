"""Changing things from the UI: adding and removing tags (with the confirmation dialog
answered both ways), and a retention dry run that lists what would go and deletes
nothing."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import Page, expect

from portside.ui.filters import short_digest

from .conftest import (
    PageWatch,
    Pusher,
    Screenshots,
    UiServer,
    create_project,
    custom_image,
    registry_tags,
    unique,
)

pytestmark = pytest.mark.browser


def test_add_and_remove_a_tag(
    admin_page: Page,
    admin_api: httpx.Client,
    pusher: Pusher,
    portside: UiServer,
    watch: PageWatch,
) -> None:
    page = admin_page
    project = unique("tags")
    create_project(admin_api, project)
    repository = f"{project}/app"
    image = custom_image(repository)
    pusher.push(image, repository, "v1")
    page.goto(f"/repositories/{repository}")
    row = page.get_by_role("row").filter(
        has=page.get_by_role("button", name=f"Copy digest: {image.digest}")
    )

    # Add a second tag to the same artifact.
    row.locator("summary").filter(has_text="Add tag").click()  # opens a <details>
    row.get_by_label(f"New tag for {short_digest(image.digest)}").fill("stable")
    row.get_by_role("button", name="Add tag").click()
    expect(page.get_by_role("status")).to_contain_text("Tag stable now points at")
    assert registry_tags(portside, repository) == ["stable", "v1"]

    # Removing asks first; saying no changes nothing.
    watch.answer = False
    row.get_by_role("button", name="Remove tag v1").click()
    for _ in range(50):  # the dialog event arrives with the click's answer, or just after
        if watch.dialogs:
            break
        page.wait_for_timeout(100)
    assert watch.dialogs == [
        f"confirm: Remove tag v1 from {repository}? The artifact itself stays."
    ]
    expect(row.get_by_role("button", name="Remove tag v1")).to_be_visible()
    assert registry_tags(portside, repository) == ["stable", "v1"]

    # Saying yes removes the tag, and only the tag.
    watch.answer = True
    row.get_by_role("button", name="Remove tag v1").click()
    expect(page.get_by_role("status")).to_have_text("Tag v1 removed; the artifact stays.")
    expect(page.get_by_role("button", name="Remove tag v1")).to_have_count(0)
    expect(row.get_by_role("button", name="Remove tag stable")).to_be_visible()
    assert registry_tags(portside, repository) == ["stable"]
    assert len(watch.dialogs) == 2


def test_retention_dry_run_lists_what_would_go_and_deletes_nothing(
    admin_page: Page,
    admin_api: httpx.Client,
    pusher: Pusher,
    portside: UiServer,
    shots: Screenshots,
) -> None:
    page = admin_page
    project = unique("retention")
    create_project(admin_api, project)
    repository = f"{project}/app"
    old, new = custom_image(f"{repository}#old"), custom_image(f"{repository}#new")
    pusher.push(old, repository, "old")
    pusher.push(new, repository, "new")

    page.goto(f"/projects/{project}")
    page.get_by_role("link", name="Policies").click()
    rule = page.get_by_role("group", name=re.compile(r"^Rule 1\b"))
    rule.get_by_label("Keep").select_option("latest_pushed")
    rule.get_by_label("N (artifacts) or D (days)").fill("1")
    page.get_by_role("button", name="Dry run").click()

    result = page.get_by_role("region", name=re.compile(r"^Dry run"))
    expect(result).to_contain_text("1 would be deleted")
    gone = result.get_by_role("table").first.locator("tbody").get_by_role("row")
    expect(gone).to_have_count(1)
    expect(gone).to_contain_text("old")
    expect(gone.get_by_role("link", name=short_digest(old.digest))).to_be_visible()
    expect(result.get_by_text("Nothing was saved or deleted.", exact=False)).to_be_visible()
    # The form keeps the rule that was tried.
    expect(rule.get_by_label("Keep")).to_have_value("latest_pushed")
    result.scroll_into_view_if_needed()  # the README's picture is of the result
    shots.take(page, "retention-dry-run", docs="retention")

    # Nothing was deleted, and the policy was not saved.
    assert registry_tags(portside, repository) == ["new", "old"]
    saved = admin_api.get(f"/projects/{project}/retention").json()
    assert saved["rules"] == []
