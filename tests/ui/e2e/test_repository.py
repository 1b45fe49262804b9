"""What a push looks like in the UI: an image and a multi-platform index pushed with
skopeo appear on the project's, the repository's and the artifact's pages with their
tags, layers (count and sizes), config and platforms."""

from __future__ import annotations

import re
from dataclasses import dataclass

import httpx
import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from portside.ui.filters import short_digest, size
from tests.clients.images import Image, ImageIndex, build_index

from .conftest import (
    PHONE,
    PageWatch,
    Pusher,
    Screenshots,
    UiServer,
    assert_fits,
    create_project,
    custom_image,
    new_context,
    sign_in,
    unique,
)

pytestmark = pytest.mark.browser

ENV = ["PATH=/usr/local/bin:/bin", "GREETING=hello from the e2e tests"]
LABELS = {
    "org.opencontainers.image.title": "Portside demo app",
    "com.example.team": "platform-team",
}


@dataclass(frozen=True)
class Pushed:
    project: str
    image: Image
    index: ImageIndex

    @property
    def app(self) -> str:
        return f"{self.project}/app"

    @property
    def multi(self) -> str:
        return f"{self.project}/multi"


@pytest.fixture(scope="module")
def pushed(admin_api: httpx.Client, pusher: Pusher) -> Pushed:
    """A project with `app:v1` (an image with our Env and labels) and `multi:v2` (an
    amd64 + arm64 index), pushed by skopeo as the admin. The tests only look."""
    project = unique("browse")
    create_project(admin_api, project)
    image = custom_image(f"{project}/app", env=ENV, labels=LABELS)
    index = build_index(f"{project}/multi")
    pusher.push(image, f"{project}/app", "v1")
    pusher.push(index, f"{project}/multi", "v2")
    return Pushed(project, image, index)


def test_project_lists_the_pushed_repositories(
    admin_page: Page, pushed: Pushed, shots: Screenshots
) -> None:
    page = admin_page
    page.get_by_role("link", name=pushed.project, exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(pushed.project)
    expect(page.get_by_role("link", name="Repositories")).to_have_attribute("aria-current", "page")
    for name in (pushed.app, pushed.multi):
        expect(page.get_by_role("link", name=name, exact=True)).to_be_visible()
    shots.take(page, "project-repositories")


def test_repository_shows_the_tag_and_pull_commands(
    admin_page: Page, pushed: Pushed, portside: UiServer, shots: Screenshots
) -> None:
    page = admin_page
    page.goto(f"/projects/{pushed.project}")
    page.get_by_role("link", name=pushed.app, exact=True).click()
    expect(page.get_by_role("heading", name=pushed.app, level=1)).to_be_visible()
    row = artifact_row(page, pushed.image.digest)
    expect(row).to_contain_text("v1")
    expect(row).to_contain_text("Image")
    expect(row).to_contain_text("linux/amd64")
    # Its size: the manifest, the config and the layers, as pushed.
    image = pushed.image
    total = len(image.manifest) + len(image.config) + sum(len(x.gz) for x in image.layers)
    expect(row).to_contain_text(size(total))
    expect(page.get_by_text(f"docker pull {portside.host}/{pushed.app}:v1")).to_be_visible()
    shots.take(page, "repository", docs="repository")


def test_artifact_shows_layers_and_config(
    admin_page: Page, pushed: Pushed, shots: Screenshots
) -> None:
    page = admin_page
    image = pushed.image
    page.goto(f"/repositories/{pushed.app}")
    artifact_row(page, image.digest).get_by_role("link", name=short_digest(image.digest)).click()
    expect(page).to_have_url(re.compile(rf"/-/artifacts/sha256(:|%3A){image.digest[7:]}$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text(short_digest(image.digest))

    layers = (
        page.locator("section")
        .filter(has=page.get_by_role("heading", name=re.compile(r"^Layers")))
        .get_by_role("table")
    )
    expect(page.get_by_role("heading", name=re.compile(r"^Layers"))).to_contain_text("3")
    rows = layers.locator("tbody").get_by_role("row")
    expect(rows).to_have_count(len(image.layers))
    for number, layer in enumerate(image.layers):
        row = rows.nth(number)
        expect(row.get_by_role("button", name=f"Copy digest: {layer.digest}")).to_have_count(1)
        expect(row).to_contain_text(size(len(layer.gz)))
    expect(layers.locator("tfoot")).to_contain_text(
        size(sum(len(layer.gz) for layer in image.layers))
    )

    config = page.locator("section").filter(
        has=page.get_by_role("heading", name="Configuration", level=2)
    )
    for variable in ENV:
        expect(config.get_by_text(variable, exact=True)).to_be_visible()
    expect(config).to_contain_text("/bin/hello")  # Cmd
    labels = config.get_by_role("table", name="Labels")
    for key, value in LABELS.items():
        label_row = labels.get_by_role("row").filter(has_text=key)
        expect(label_row).to_contain_text(value)
    history = config.get_by_role("table", name="History")
    expect(history).to_contain_text("portside tests layer 2")
    expect(page.get_by_text('"schemaVersion": 2')).to_be_visible()  # the manifest
    page.get_by_role("heading", name=re.compile(r"^Layers")).scroll_into_view_if_needed()
    shots.take(page, "artifact", docs="artifact")  # the README's: layers and config


def test_index_lists_both_platforms(admin_page: Page, pushed: Pushed) -> None:
    page = admin_page
    index = pushed.index
    page.goto(f"/repositories/{pushed.multi}")
    row = artifact_row(page, index.digest)
    expect(row).to_contain_text("v2")
    expect(row).to_contain_text("Index")
    expect(row).to_contain_text("linux/amd64")
    expect(row).to_contain_text("linux/arm64")

    row.get_by_role("link", name=short_digest(index.digest)).click()
    platforms = page.get_by_role("table").filter(
        has=page.get_by_role("columnheader", name="Platform")
    )
    for image in index.images:
        child = platforms.get_by_role("row").filter(has_text=f"linux/{image.architecture}")
        expect(child).to_have_count(1)
        expect(child.get_by_role("link", name=short_digest(image.digest))).to_be_visible()

    # Each platform's own page has its three layers.
    arm = index.image_for("arm64")
    platforms.get_by_role("link", name=short_digest(arm.digest)).click()
    expect(page).to_have_url(re.compile(rf"/-/artifacts/sha256(:|%3A){arm.digest[7:]}$"))
    for layer in arm.layers:
        expect(page.get_by_role("button", name=f"Copy digest: {layer.digest}")).to_have_count(1)
    expect(page.get_by_text("linux/arm64").first).to_be_visible()


def test_phone_width_repository_and_artifact_pages_fit(
    browser: Browser,
    portside: UiServer,
    watch: PageWatch,
    shots: Screenshots,
    pushed: Pushed,
) -> None:
    context = new_context(browser, portside, watch, viewport=PHONE, is_mobile=True, has_touch=True)
    try:
        page = context.new_page()
        sign_in(page)
        for path, shot in (
            (f"/projects/{pushed.project}", "phone-project"),
            (f"/repositories/{pushed.app}", "phone-repository"),
            (f"/repositories/{pushed.app}/-/artifacts/{pushed.image.digest}", "phone-artifact"),
        ):
            page.goto(path)
            assert_fits(page)
            shots.take(page, shot, docs="phone" if shot == "phone-repository" else None)
    finally:
        context.close()


def test_dark_system_theme_on_the_repository_page(
    browser: Browser,
    portside: UiServer,
    watch: PageWatch,
    shots: Screenshots,
    pushed: Pushed,
) -> None:
    """A visitor whose system prefers dark gets the dark theme without choosing it."""
    context = new_context(browser, portside, watch, color_scheme="dark")
    try:
        page = context.new_page()
        sign_in(page)
        page.goto(f"/repositories/{pushed.app}")
        expect(page.locator("html")).not_to_have_attribute("data-theme", "light")
        background = page.evaluate("getComputedStyle(document.body).backgroundColor")
        assert background == "rgb(15, 17, 21)", background  # --bg of the dark theme
        shots.take(page, "dark-repository", docs="dark-mode")
    finally:
        context.close()


def artifact_row(page: Page, digest: str) -> Locator:
    """The artifacts table's row of this digest (found by its copy button's name)."""
    return page.get_by_role("row").filter(
        has=page.get_by_role("button", name=f"Copy digest: {digest}")
    )
