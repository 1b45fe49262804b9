"""Every main page once, in the browser: each loads, has one main heading, and neither the
Content-Security-Policy nor anything else complains in the console (the page watch fails
the test on a CSP violation or an uncaught error; here any console error counts). On the
way, a garbage collection started from Administration > Jobs runs to the end, and a
webhook made on the Webhooks tab answers its test event."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.webhooks.receiver import receiving

from .conftest import (
    PageWatch,
    Pusher,
    Screenshots,
    create_project,
    custom_image,
    unique,
)

pytestmark = pytest.mark.browser


def test_every_main_page_loads_cleanly(
    admin_page: Page,
    admin_api: httpx.Client,
    pusher: Pusher,
    watch: PageWatch,
    shots: Screenshots,
) -> None:
    page = admin_page
    project = unique("tour")
    create_project(admin_api, project)
    repository = f"{project}/app"
    image = custom_image(repository)
    pusher.push(image, repository, "v1")
    pages = [
        "/projects",
        f"/projects/{project}",
        f"/projects/{project}/members",
        f"/projects/{project}/robots",
        f"/projects/{project}/policies",
        f"/projects/{project}/webhooks",
        f"/projects/{project}/audit",
        f"/projects/{project}/settings",
        f"/repositories/{repository}",
        f"/repositories/{repository}/-/artifacts/{image.digest}",
        f"/repositories/{project}/not-pushed-yet",
        "/admin/users",
        "/admin/users/admin",
        "/admin/jobs",
        "/admin/storage",
        "/admin/system",
        "/profile",
    ]
    for path in pages:
        response = page.goto(path)
        assert response is not None
        assert response.status == 200, f"{path}: {response.status}"
        expect(page.get_by_role("heading", level=1)).to_have_count(1)
        assert page.title().endswith("· Portside"), f"{path}: title {page.title()!r}"
    errors = [line for line in watch.console if line.startswith("error:")]
    assert errors == [], "console errors:\n" + "\n".join(errors)
    assert watch.csp_violations() == []

    # A missing page is a page in words too (its 404 is the one console error).
    missing = page.goto(f"/projects/{unique('missing')}")
    assert missing is not None
    assert missing.status == 404
    expect(page.get_by_role("heading", name="Not found", level=1)).to_be_visible()


def test_garbage_collection_from_the_jobs_page(
    admin_page: Page, watch: PageWatch, shots: Screenshots
) -> None:
    page = admin_page
    page.get_by_role("link", name="Administration").click()
    page.get_by_role("navigation", name="Administration").get_by_role("link", name="Jobs").click()
    expect(page.get_by_role("link", name="Jobs")).to_have_attribute("aria-current", "page")
    run = page.locator("section").filter(
        has=page.get_by_role("heading", name="Run garbage collection now")
    )
    run.get_by_label(re.compile(r"Dry run")).check()
    run.get_by_role("button", name="Start garbage collection").click()
    expect(page.get_by_role("status").first).to_contain_text("queued as job")
    heading = page.get_by_role("heading", level=1)
    expect(heading).to_contain_text("gc")
    # The page reloads itself every 3 seconds while the job is queued or running.
    expect(heading).to_contain_text("succeeded", timeout=60_000)
    shots.take(page, "admin-job")
    page.goto("/admin/jobs")
    expect(page.get_by_role("row").filter(has_text="succeeded").first).to_be_visible()
    shots.take(page, "admin-jobs")


def test_a_webhook_made_on_the_webhooks_tab_answers_its_test_event(
    admin_page: Page,
    admin_api: httpx.Client,
    watch: PageWatch,
    shots: Screenshots,
) -> None:
    page = admin_page
    project = unique("hooks")
    create_project(admin_api, project)
    with receiving() as receiver:
        page.goto(f"/projects/{project}")
        page.get_by_role("navigation", name="Project sections").get_by_role(
            "link", name="Webhooks"
        ).click()
        page.get_by_label("Name").fill("ci")
        page.get_by_label("Target URL").fill(receiver.url)
        page.get_by_role("checkbox", name="tag.deleted").check()
        page.get_by_label("Payload format").select_option("cloudevents")
        page.get_by_label("Secret (optional)").fill("e2e-webhook-secret")
        page.get_by_role("button", name="Create webhook").click()
        expect(page.get_by_role("status")).to_have_text("Webhook ci created.")
        row = page.get_by_role("row").filter(has=page.get_by_role("rowheader", name="ci"))
        expect(row).to_contain_text(receiver.url)
        expect(row).to_contain_text("artifact.pushed, tag.deleted")

        row.get_by_role("button", name="Send test event to ci").click()
        expect(page.get_by_role("status")).to_contain_text("Test event delivered to ci: HTTP 200")
        [request] = receiver.wait_for(1)
        assert request.signed_by("e2e-webhook-secret")
        row = page.get_by_role("row").filter(has=page.get_by_role("rowheader", name="ci"))
        expect(row).to_contain_text("succeeded")
        shots.take(page, "project-webhooks")

        row.get_by_role("link", name="Deliveries of ci").click()
        expect(page.get_by_role("heading", name="Deliveries of ci")).to_be_visible()
        expect(page.get_by_role("row").filter(has_text="webhook.test")).to_contain_text("200")
    assert watch.csp_violations() == []
