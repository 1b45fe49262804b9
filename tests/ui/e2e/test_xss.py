"""Hostile content from pushers stays text: an image whose config labels, env, history and
manifest annotations (and a robot's description, a webhook's description and target URL)
carry HTML and script is shown on the repository, artifact, dry-run, robots and webhooks
pages as the characters it is, and no script of it runs.

Run once with the Content-Security-Policy bypassed, so escaping alone is what is tested
(the CSP would block inline script and handlers anyway), and once with it, where the
page watch also finds no CSP violation (a violation would mean markup got through)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from .conftest import PageWatch, Pusher, create_project, custom_image, unique

pytestmark = pytest.mark.browser

IMG = '<img src=x onerror="window.__xss=1;alert(1)">'
SCRIPT = "<script>window.__xss=1;alert(1)</script>"
ATTRIBUTE = '"onmouseover="window.__xss=1" x="'
SVG = "<svg onload=window.__xss=1></svg>"
CLOSE = "</code></td></tr></table><b id=injected>bold</b>"
HOSTILE = (IMG, SCRIPT, ATTRIBUTE, SVG, CLOSE)
TAG = "xss_tag-1.0"  # tags cannot carry markup (OCI tag grammar); the rest can


@pytest.fixture(params=[True, False], ids=["escaping-only", "with-csp"])
def context_options(request: pytest.FixtureRequest) -> dict[str, Any]:
    return {"bypass_csp": request.param}


def test_hostile_labels_and_annotations_stay_text(
    admin_page: Page,
    admin_api: httpx.Client,
    pusher: Pusher,
    watch: PageWatch,
) -> None:
    page = admin_page
    project = unique("xss")
    create_project(admin_api, project)
    repository = f"{project}/app"
    image = custom_image(
        repository,
        env=["PATH=/bin", f"EVIL={SVG}"],
        labels={"evil.img": IMG, "evil.script": SCRIPT, IMG: "key", "evil.attr": ATTRIBUTE},
        annotations={"evil.script": SCRIPT, "evil.close": CLOSE, "evil.attr": ATTRIBUTE},
        history=[f"/bin/sh -c {IMG}", f"RUN {SCRIPT}", f"RUN {CLOSE}"],
    )
    pusher.push(image, repository, TAG)
    response = admin_api.post(
        f"/projects/{project}/robots",
        json={"name": "evil", "permissions": ["pull"], "description": IMG + SCRIPT},
    )
    assert response.status_code == 201, response.text

    page.goto(f"/projects/{project}")
    assert_inert(page, watch)
    page.goto(f"/repositories/{repository}")
    expect(page.get_by_text(TAG, exact=True).first).to_be_visible()
    assert_inert(page, watch)

    page.goto(f"/repositories/{repository}/-/artifacts/{image.digest}")
    for text in (IMG, SCRIPT, ATTRIBUTE):
        expect(page.get_by_text(text, exact=True).first).to_be_visible()
    expect(page.get_by_text(f"EVIL={SVG}", exact=True)).to_be_visible()
    expect(page.get_by_text(CLOSE, exact=True).first).to_be_visible()
    page.get_by_text(ATTRIBUTE, exact=True).first.hover()
    assert_inert(page, watch)

    page.goto(f"/projects/{project}/robots")
    expect(page.get_by_text(IMG + SCRIPT, exact=True)).to_be_visible()
    assert_inert(page, watch)

    # Never sent to: the test only shows it (the e2e server allows loopback targets).
    target = f"http://127.0.0.1:9/hook?q={ATTRIBUTE}{IMG}"
    response = admin_api.post(
        f"/projects/{project}/webhooks",
        json={
            "name": "evil",
            "target_url": target,
            "event_types": ["replication.completed"],
            "description": IMG + SCRIPT,
        },
    )
    assert response.status_code == 201, response.text
    page.goto(f"/projects/{project}/webhooks")
    expect(page.get_by_text(IMG + SCRIPT, exact=True)).to_be_visible()
    expect(page.get_by_text(target, exact=True)).to_be_visible()
    assert_inert(page, watch)


def assert_inert(page: Page, watch: PageWatch) -> None:
    """None of the hostile markup became elements or ran."""
    page.wait_for_load_state("load")
    assert page.evaluate("typeof window.__xss") == "undefined", f"script ran on {page.url}"
    assert watch.dialogs == [], f"a dialog opened on {page.url}: {watch.dialogs}"
    injected = page.locator(
        "img[src='x'], svg[onload], #injected, [onerror], [onmouseover], [onload], main script"
    )
    assert injected.count() == 0, f"markup got through on {page.url}"
