"""A project's settings page: only for those who may change them; visibility and quota;
storage usage per repository; deleting the project (refused while it has images)."""

from __future__ import annotations

import html

import pytest

from portside.ui.routes.project_settings import exact_size
from tests.auth.conftest import Registry
from tests.ui.conftest import browser_for
from tests.ui.test_project import flash, push

SETTINGS = "/projects/acme/settings"


@pytest.mark.parametrize("user", ["maintainer", "developer", "guest", "limitedguest"])
def test_settings_are_refused_without_the_permission(registry: Registry, user: str) -> None:
    page = browser_for(registry, user).get(SETTINGS)
    assert page.status_code == 403
    assert "Only administrators of project acme" in page.text


def test_settings_are_missing_for_outsiders(registry: Registry) -> None:
    assert browser_for(registry, "outsider").get(SETTINGS).status_code == 404


def test_visibility_and_quota(registry: Registry) -> None:
    browser = browser_for(registry, "projectadmin")
    page = browser.get(SETTINGS).text
    assert '<input type="radio" name="visibility" value="private" checked>' in page
    page = browser.post(SETTINGS, {"visibility": "public", "quota": "10 GiB"}).text
    assert flash(page) == "Settings saved."
    assert 'value="public" checked' in page
    assert 'name="quota" value="10 GiB"' in page
    assert "of 10.0 GiB" in page  # the header's meter
    assert registry.auth.projects.get("acme").public
    assert registry.auth.projects.get("acme").quota_bytes == 10 * 1024**3
    # Anyone may now look at it.
    assert registry.as_caller({}).get("/projects/acme").status_code == 200

    page = browser.post(SETTINGS, {"visibility": "private", "quota": ""}).text
    assert 'name="quota" value=""' in page
    assert "no quota" in page
    assert registry.auth.projects.get("acme").quota_bytes is None
    assert not registry.auth.projects.get("acme").public


def test_settings_refused_in_words(registry: Registry) -> None:
    admin = browser_for(registry, "projectadmin")
    admin.get(SETTINGS)
    page = admin.post(SETTINGS, {"visibility": "private", "quota": "lots"}).text
    assert flash(page).startswith("Quota: 'lots' is not a size")
    developer = browser_for(registry, "developer")
    developer.get("/projects/acme")
    page = developer.post(SETTINGS, {"visibility": "public"}).text
    assert "may not do this in project 'acme' (settings)" in flash(page)
    assert not registry.auth.projects.get("acme").public


def test_storage_per_repository(registry: Registry) -> None:
    push(registry, "acme/app", "v1")
    push(registry, "acme/web/api", "v1")
    page = browser_for(registry, "projectadmin").get(SETTINGS).text
    storage = page.split('id="storage"', 1)[1].split("</section>", 1)[0]
    assert 'href="/repositories/acme/app"' in storage
    assert 'href="/repositories/acme/web/api"' in storage
    assert "Freed by deleting the project" in storage


def test_deleting_a_project(registry: Registry) -> None:
    push(registry, "acme/app", "v1")
    browser = browser_for(registry, "projectadmin")
    page = browser.get(SETTINGS).text
    assert 'data-confirm="Delete project acme? This cannot be undone."' in page
    page = browser.post("/projects/acme/delete", {"confirm_name": "acm"}).text
    assert flash(page) == "To delete the project, type its name (acme) in the box."
    page = browser.post("/projects/acme/delete", {"confirm_name": "acme"}).text
    assert "Could not delete the project: project 'acme' still has repositories" in html.unescape(
        flash(page)
    )

    registry.auth.projects.create("empty")
    admin = browser_for(registry, "admin")
    admin.get("/projects/empty/settings")
    response = admin.post("/projects/empty/delete", {"confirm_name": "empty"})
    assert response.url.path == "/projects"
    assert flash(response.text) == "Project empty deleted."
    assert admin.get("/projects/empty").status_code == 404


def test_a_developer_cannot_delete_the_project(registry: Registry) -> None:
    developer = browser_for(registry, "developer")
    developer.get("/projects/acme")
    page = developer.post("/projects/acme/delete", {"confirm_name": "acme"}).text
    assert "may not do this in project 'acme' (settings)" in flash(page)
    assert registry.auth.projects.get("acme").name == "acme"


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (None, ""),
        (0, "0"),
        (10 * 1024**3, "10 GiB"),
        (1536 * 1024**2, "1536 MiB"),
        (500 * 1000**2, "500 MB"),
        (123, "123"),
    ],
)
def test_quotas_are_shown_as_they_can_be_typed_back(size: int | None, text: str) -> None:
    assert exact_size(size) == text
