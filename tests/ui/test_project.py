"""A project's pages: the header and its tabs per role, hidden projects that look
missing, the repositories list (search, sort, pages, empty states), members and the
audit log; hostile values escaped. Robots, settings, policies and webhooks have their own
files."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest
from markupsafe import escape
from sqlalchemy import update

from portside.metadata import schema as s
from portside.metadata.db import utcnow
from portside.ui.routes import project as project_routes
from tests.api.helpers import Manifest, push_image
from tests.auth.conftest import Registry
from tests.mgmt.conftest import client_for
from tests.ui.conftest import browser_for

HOSTILE = "<img src=x onerror=alert(1)>\"onmouseover=alert(2)'"
SUBPAGES = ("members", "robots", "settings", "policies", "webhooks", "audit")
ALL_TABS = [
    "Repositories",
    "Members",
    "Robots",
    "Policies",
    "Signing",
    "Webhooks",
    "Audit log",
    "Settings",
]


def tabs(page: str) -> list[str]:
    nav = re.search(r'<nav class="tabs"[^>]*>(.*?)</nav>', page, re.S)
    assert nav, page
    return re.findall(r">([^<>]+)</a>", nav.group(1))


def current_tab(page: str) -> str:
    found = re.search(r'aria-current="page">([^<]+)</a>', page.split('class="tabs"', 1)[1])
    assert found
    return found.group(1)


def flash(page: str) -> str:
    found = re.search(r'<div class="flash (?:ok|error)"[^>]*>(.*?)</div>', page, re.S)
    assert found, "no message on the page"
    return html.unescape(found.group(1))


def push(registry: Registry, repository: str, tag: str, *, days_ago: int = 0) -> Manifest:
    """An image pushed as admin, its push time moved `days_ago` into the past."""
    image = push_image(client_for(registry, "admin"), repository, tag)
    if days_ago:
        with registry.app.ctx.db.write() as conn:
            conn.execute(
                update(s.manifests)
                .where(s.manifests.c.digest == image.digest)
                .values(pushed_at=utcnow() - timedelta(days=days_ago))
            )
    return image


def assert_escaped(page: str) -> None:
    assert "<img src=x" not in page
    assert '"onmouseover=' not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page


def host(registry: Registry) -> str:
    """The registry's host as the pages write it in commands."""
    return registry.app.ctx.settings.public_url.split("://", 1)[-1].rstrip("/")


# -- header, tabs and who may look ----------------------------------------------------


@pytest.mark.parametrize(
    ("user", "expected"),
    [
        ("admin", ALL_TABS),
        ("projectadmin", ALL_TABS),
        (
            "maintainer",
            ["Repositories", "Members", "Robots", "Policies", "Signing", "Webhooks", "Audit log"],
        ),
        ("developer", ["Repositories", "Members", "Policies", "Signing", "Audit log"]),
        ("guest", ["Repositories", "Members", "Policies", "Signing", "Audit log"]),
        ("limitedguest", ["Repositories", "Policies"]),
    ],
)
def test_tabs_follow_the_role(registry: Registry, user: str, expected: list[str]) -> None:
    browser = browser_for(registry, user)
    page = browser.get("/projects/acme")
    assert page.status_code == 200
    assert tabs(page.text) == expected
    assert current_tab(page.text) == "Repositories"
    assert "<h1>acme " in page.text
    assert 'class="badge private"' in page.text
    for path, label in (("members", "Members"), ("policies", "Policies")):
        if label in expected:
            assert current_tab(browser.get(f"/projects/acme/{path}").text) == label


def test_header_shows_the_quota_meter(registry: Registry) -> None:
    registry.auth.projects.update("acme", quota_bytes=10 * 1024**3)
    page = browser_for(registry, "guest").get("/projects/acme").text
    assert "<meter" in page
    assert "of 10.0 GiB" in page


def test_a_hidden_project_looks_exactly_like_a_missing_one(registry: Registry) -> None:
    browser = browser_for(registry, "outsider")
    for tail in ("", *(f"/{p}" for p in SUBPAGES)):
        hidden = browser.get(f"/projects/acme{tail}")
        missing = browser.get(f"/projects/nosuch{tail}")
        assert hidden.status_code == missing.status_code == 404, tail
        assert hidden.text.replace("acme", "X") == missing.text.replace("nosuch", "X"), tail


def test_anonymous_visitors_are_sent_to_sign_in(registry: Registry) -> None:
    client = registry.as_caller({})
    for tail in ("", *(f"/{p}" for p in SUBPAGES)):
        response = client.get(f"/projects/acme{tail}", follow_redirects=False)
        assert response.status_code == 303, tail
        assert (
            response.headers["location"]
            == f"/login?next=%2Fprojects%2Facme{tail.replace('/', '%2F')}"
        )
    response = client.get("/projects/pub/members", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login?next=")


def test_anyone_sees_a_public_project_and_how_to_pull(registry: Registry) -> None:
    page = registry.as_caller({}).get("/projects/pub")
    assert page.status_code == 200
    assert tabs(page.text) == ["Repositories"]
    assert 'class="badge public"' in page.text
    assert "Nothing has been pushed to this project yet." in page.text
    assert f"docker pull {host(registry)}/pub/my-image:latest" in page.text
    push(registry, "pub/tool", "v1")
    page = registry.as_caller({}).get("/projects/pub")
    assert 'href="/repositories/pub/tool"' in page.text
    assert "anyone can pull without signing in" in page.text


def test_outsiders_of_a_public_project_do_not_see_its_members(registry: Registry) -> None:
    browser = browser_for(registry, "outsider")
    assert tabs(browser.get("/projects/pub").text) == ["Repositories"]
    response = browser.get("/projects/pub/members")
    assert response.status_code == 403
    assert "only members of project" in html.unescape(response.text)


# -- repositories -----------------------------------------------------------------------


def test_repositories_are_listed_with_their_figures(registry: Registry) -> None:
    push(registry, "acme/app", "v1", days_ago=3)
    push(registry, "acme/app", "v2")
    push(registry, "acme/web/api", "latest")
    page = browser_for(registry, "guest").get("/projects/acme").text
    assert 'href="/repositories/acme/app"' in page
    assert 'href="/repositories/acme/web/api"' in page
    row = page.split('href="/repositories/acme/app"', 1)[1].split("</tr>", 1)[0]
    numbers = re.findall(r'<td class="num(?: hide-narrow)?">([^<]+)</td>', row)
    assert numbers[:2] == ["2", "2"]  # artifacts, tags
    assert numbers[2].endswith("B")
    assert "<time" in row


def test_repositories_search_sort_and_pages(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    push(registry, "acme/alpha", "v1", days_ago=2)
    push(registry, "acme/beta", "v1")
    push(registry, "acme/gamma", "v1", days_ago=5)
    browser = browser_for(registry, "developer")

    def names(page: str) -> list[str]:
        return re.findall(r'<th scope="row"><a href="/repositories/([^"]+)">', page)

    page = browser.get("/projects/acme").text
    assert names(page) == ["acme/alpha", "acme/beta", "acme/gamma"]
    assert 'aria-sort="ascending"' in page
    assert 'href="/projects/acme?sort=-name"' in page  # clicking Name again flips it
    page = browser.get("/projects/acme?sort=-pushed_at").text
    assert names(page) == ["acme/beta", "acme/alpha", "acme/gamma"]
    assert re.search(r'aria-sort="descending"><a class="sort" href="[^"]*sort=pushed_at"', page)
    assert '<option value="-pushed_at" selected>' in page
    assert names(browser.get("/projects/acme?q=amm").text) == ["acme/gamma"]
    assert "No repository in acme matches" in browser.get("/projects/acme?q=zzz").text
    # An unknown sort falls back to names rather than failing.
    assert names(browser.get("/projects/acme?sort=bogus").text)[0] == "acme/alpha"

    monkeypatch.setattr(project_routes, "PAGE_SIZE", 2)
    first = browser.get("/projects/acme?sort=name").text
    assert names(first) == ["acme/alpha", "acme/beta"]
    assert "1\N{EN DASH}2 of 3" in first
    assert 'href="/projects/acme?sort=name&amp;page=2" rel="next"' in first
    assert names(browser.get("/projects/acme?sort=name&page=2").text) == ["acme/gamma"]


def test_an_empty_project_teaches_how_to_push(registry: Registry) -> None:
    page = browser_for(registry, "developer").get("/projects/acme").text
    assert "No repositories yet" in page
    assert f"docker login {host(registry)}" in page
    assert f"docker push {host(registry)}/acme/my-image:latest" in page
    assert "podman push" in page
    guest = browser_for(registry, "guest").get("/projects/acme").text
    assert "docker push" not in guest
    assert "Ask a member with the developer role" in guest


def test_a_limited_guest_is_told_why_there_is_no_list(registry: Registry) -> None:
    push(registry, "acme/app", "v1")
    page = browser_for(registry, "limitedguest").get("/projects/acme")
    assert page.status_code == 200
    assert "Repositories are not listed to you" in page.text
    assert "acme/app" not in page.text


def test_the_search_box_escapes_what_was_typed(registry: Registry) -> None:
    page = browser_for(registry, "guest").get("/projects/acme", params={"q": HOSTILE}).text
    assert_escaped(page)


# -- members ----------------------------------------------------------------------------


def member_role(page: str, name: str) -> str | None:
    """The selected role in a member's row (managers) or the role cell (others)."""
    row = re.search(rf"<th scope=\"row\">{re.escape(str(escape(name)))}</th>(.*?)</tr>", page, re.S)
    if row is None:
        return None
    selected = re.search(r'<option value="([^"]+)" selected>', row.group(1))
    if selected:
        return selected.group(1)
    cells: list[str] = re.findall(r"<td>([^<]*)</td>", row.group(1))
    return cells[-1]


def test_members_are_listed_to_members(registry: Registry) -> None:
    page = browser_for(registry, "guest").get("/projects/acme/members").text
    assert member_role(page, "developer") == "developer"
    assert member_role(page, "limitedguest") == "limited-guest"
    assert "Add a member" not in page
    assert "Change role" not in page
    assert "Only project administrators can add or remove members" in page


def test_a_project_admin_adds_changes_and_removes_a_member(registry: Registry) -> None:
    browser = browser_for(registry, "projectadmin")
    page = browser.get("/projects/acme/members").text
    assert "Add a member" in page
    for role in ("project-admin", "maintainer", "developer", "guest", "limited-guest"):
        assert f'<option value="{role}"' in page
    added = browser.post(
        "/projects/acme/members", {"member": "outsider", "kind": "user", "role": "developer"}
    )
    assert flash(added.text) == "User outsider now has the role developer."
    assert member_role(added.text, "outsider") == "developer"
    assert browser_for(registry, "outsider").get("/projects/acme").status_code == 200

    changed = browser.post(
        "/projects/acme/members", {"member": "outsider", "kind": "user", "role": "guest"}
    )
    assert member_role(changed.text, "outsider") == "guest"
    assert 'data-confirm="Remove outsider from acme?"' in changed.text
    removed = browser.post("/projects/acme/members/remove", {"member": "outsider", "kind": "user"})
    assert flash(removed.text) == "Removed outsider from project acme."
    assert member_role(removed.text, "outsider") is None
    assert browser_for(registry, "outsider").get("/projects/acme").status_code == 404


def test_groups_with_hostile_names_are_escaped_and_removable(registry: Registry) -> None:
    browser = browser_for(registry, "projectadmin")
    browser.get("/projects/acme/members")
    page = browser.post(
        "/projects/acme/members", {"member": HOSTILE, "kind": "group", "role": "guest"}
    ).text
    assert_escaped(page)
    assert "LDAP group" in page
    stored = HOSTILE.casefold()
    assert member_role(page, stored) == "guest"
    page = browser.post("/projects/acme/members/remove", {"member": stored, "kind": "group"}).text
    assert member_role(page, stored) is None
    assert "Removed" in flash(page)


def test_a_group_name_with_a_slash_can_be_added(registry: Registry) -> None:
    browser = browser_for(registry, "projectadmin")
    browser.get("/projects/acme/members")
    page = browser.post(
        "/projects/acme/members", {"member": "ou=ci/ops", "kind": "group", "role": "guest"}
    ).text
    assert member_role(page, "ou=ci/ops") == "guest"


def test_member_changes_refused_in_words(registry: Registry) -> None:
    admin = browser_for(registry, "projectadmin")
    admin.get("/projects/acme/members")
    missing = admin.post("/projects/acme/members", {"member": "nobody", "role": "guest"})
    assert flash(missing.text) == "Could not set nobody's role: no user 'nobody'"
    empty = admin.post("/projects/acme/members", {"member": "", "role": "guest"})
    assert flash(empty.text) == "Enter the user or group name to add."
    bad_role = admin.post("/projects/acme/members", {"member": "outsider", "role": "king"})
    assert "Could not set outsider's role" in flash(bad_role.text)

    developer = browser_for(registry, "developer")
    developer.get("/projects/acme/members")
    refused = developer.post(
        "/projects/acme/members", {"member": "developer", "kind": "user", "role": "project-admin"}
    )
    assert "may not do this in project 'acme' (members)" in flash(refused.text)
    assert member_role(refused.text, "developer") == "developer"
    refused = developer.post("/projects/acme/members/remove", {"member": "guest"})
    assert "may not" in flash(refused.text)
    assert member_role(refused.text, "guest") == "guest"


def test_member_forms_need_the_session_token(registry: Registry) -> None:
    browser = browser_for(registry, "projectadmin")
    response = browser.client.post(
        "/projects/acme/members", data={"csrf": "forged", "member": "outsider", "role": "guest"}
    )
    assert response.status_code == 403
    assert "Form expired" in response.text
    assert member_role(browser.get("/projects/acme/members").text, "outsider") is None


def test_removing_yourself_leads_back_to_the_project(registry: Registry) -> None:
    browser = browser_for(registry, "projectadmin")
    browser.get("/projects/acme/members")
    response = browser.post(
        "/projects/acme/members/remove", {"member": "projectadmin", "kind": "user"}, follow=False
    )
    assert response.headers["location"] == "/projects/acme"


# -- audit log --------------------------------------------------------------------------


def test_the_audit_log_shows_what_happened(registry: Registry) -> None:
    admin = browser_for(registry, "projectadmin")
    admin.get("/projects/acme/members")
    admin.post("/projects/acme/members", {"member": HOSTILE, "kind": "group", "role": "guest"})
    push(registry, "acme/app", "v1")
    browser = browser_for(registry, "guest")
    page = browser.get("/projects/acme/audit")
    assert page.status_code == 200
    assert ">member.set</a>" in page.text
    assert ">projectadmin</a>" in page.text
    assert 'class="badge succeeded">success' in page.text
    assert_escaped(page.text)  # the group's name in the entry's detail
    filtered = browser.get("/projects/acme/audit", params={"action": "member.set"}).text
    assert ">member.set</a>" in filtered
    assert ">push</a>" not in filtered
    by_actor = browser.get("/projects/acme/audit", params={"actor": "nobody"}).text
    assert "No entries match this filter." in by_actor


def test_the_audit_log_is_refused_to_a_limited_guest(registry: Registry) -> None:
    response = browser_for(registry, "limitedguest").get("/projects/acme/audit")
    assert response.status_code == 403
    assert "(log)" in html.unescape(response.text)


def test_audit_filters_are_escaped(registry: Registry) -> None:
    browser = browser_for(registry, "guest")
    page = browser.get("/projects/acme/audit", params={"actor": HOSTILE}).text
    assert_escaped(page)


def test_pages_render_for_every_role_that_may_see_them(registry: Registry) -> None:
    """Smoke: every tab a role is shown opens without an error."""
    for user in ("admin", "projectadmin", "maintainer", "developer", "guest", "limitedguest"):
        browser = browser_for(registry, user)
        for label in tabs(browser.get("/projects/acme").text):
            target = {
                "Repositories": "",
                "Members": "/members",
                "Robots": "/robots",
                "Policies": "/policies",
                "Signing": "/signing",
                "Webhooks": "/webhooks",
                "Audit log": "/audit",
                "Settings": "/settings",
            }[label]
            response = browser.get(f"/projects/acme{target}")
            assert response.status_code == 200, (user, label, response.text)
