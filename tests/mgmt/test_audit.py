"""The audit log through the management API: the system log for administrators (newest
first, filtered by actor, action, resource, project and time), a project's log for its
members with the `log` permission, and no password or secret in any entry."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from portside.metadata import schema as s
from tests.api.helpers import push_image
from tests.auth.conftest import PASSWORD, Registry
from tests.mgmt.conftest import (
    API,
    DEVELOPER,
    GUEST,
    LIMITED_GUEST,
    MAINTAINER,
    PROJECT_ADMIN,
    client_for,
    session_client,
    sign_in,
)
from tests.mgmt.helpers import assert_error, json_list, json_object, links, total_count

AUDIT_FIELDS = {
    "id",
    "occurred_at",
    "actor",
    "action",
    "resource_type",
    "resource",
    "project",
    "result",
    "source",
    "detail",
}


def entries(
    registry: Registry, path: str = f"{API}/audit-logs", **params: str
) -> list[dict[str, object]]:
    """Every entry of an audit listing (all pages), as the admin sees it."""
    client = client_for(registry, "admin")
    found: list[dict[str, object]] = []
    url: str | None = path
    query: dict[str, str] | None = {**params, "page_size": "100"}
    while url:
        response = client.get(url, params=query)
        found += json_list(response)
        url, query = links(response).get("next"), None
    return found


def test_admin_sees_entries_newest_first(registry: Registry) -> None:
    admin = client_for(registry, "admin")
    admin.post(f"{API}/projects", json={"name": "first"})
    admin.post(f"{API}/projects", json={"name": "second"})
    response = admin.get(f"{API}/audit-logs")
    listed = json_list(response)
    assert all(set(e) == AUDIT_FIELDS for e in listed)
    ids = [e["id"] for e in listed]
    assert ids == sorted(ids, reverse=True)
    times = [datetime.fromisoformat(str(e["occurred_at"])) for e in listed]
    assert times == sorted(times, reverse=True)
    creates = [e for e in listed if e["action"] == "create"]
    assert [e["resource"] for e in creates] == ["second", "first"]
    newest = creates[0]
    assert newest["actor"] == "admin"
    assert newest["resource_type"] == "project"
    assert newest["project"] == "second"
    assert newest["result"] == "success"
    assert newest["detail"] == {"public": False, "quota_bytes": None}
    assert total_count(response) == len(listed)


def test_filters(registry: Registry) -> None:
    admin = client_for(registry, "admin")
    admin.post(f"{API}/users", json={"username": "zed", "password": "zeds-password"})
    admin.put(f"{API}/projects/acme/members/zed", json={"role": "developer"})
    client_for(registry, PROJECT_ADMIN).post(
        f"{API}/projects/acme/robots", json={"name": "ci", "permissions": ["pull"]}
    )
    push_image(admin, "pub/app", "v1")
    client_for(registry, "outsider", "wrong-password").get(f"{API}/users/current")

    by_actor = entries(registry, actor=PROJECT_ADMIN)
    assert {e["actor"] for e in by_actor} == {PROJECT_ADMIN}
    assert [(e["action"], e["resource"]) for e in by_actor] == [("create", "robot$acme+ci")]

    by_action = entries(registry, action="member.set")
    assert len(by_action) == 1
    assert by_action[0]["detail"] == {"member": "zed", "kind": "user", "role": "developer"}
    assert by_action[0]["project"] == "acme"

    by_resource = entries(registry, resource="pub/")
    assert by_resource
    assert all("pub/" in str(e["resource"]) for e in by_resource)
    assert {e["action"] for e in by_resource} == {"push"}

    in_project = entries(registry, project="acme")
    assert {e["project"] for e in in_project} == {"acme"}
    assert {e["action"] for e in in_project} >= {"member.set", "create"}

    failures = [e for e in entries(registry, action="login") if e["result"] == "failure"]
    assert [e["actor"] for e in failures] == ["outsider"]
    assert failures[0]["source"] == "testclient"

    combined = entries(registry, actor="admin", action="create")
    assert [e["resource"] for e in combined] == ["zed"]
    assert entries(registry, actor="nobody") == []


def test_since_and_until(registry: Registry) -> None:
    admin = client_for(registry, "admin")
    admin.post(f"{API}/projects", json={"name": "before"})
    cut = datetime.fromisoformat(str(entries(registry)[0]["occurred_at"])) + timedelta(
        microseconds=1
    )
    admin.post(f"{API}/projects", json={"name": "after"})
    since = cut.astimezone(UTC).isoformat().replace("+00:00", "Z")
    after = entries(registry, since=since)
    assert [e["resource"] for e in after if e["action"] == "create"] == ["after"]
    before = entries(registry, until=since)
    assert [e["resource"] for e in before if e["action"] == "create"] == ["before"]
    assert entries(registry, since=(cut + timedelta(days=1)).isoformat()) == []


def test_since_with_an_offset_means_the_same_instant(registry: Registry) -> None:
    admin = client_for(registry, "admin")
    admin.post(f"{API}/projects", json={"name": "before"})
    cut = datetime.fromisoformat(str(entries(registry)[0]["occurred_at"])) + timedelta(
        microseconds=1
    )
    admin.post(f"{API}/projects", json={"name": "after"})
    in_utc = entries(registry, since=cut.astimezone(UTC).isoformat())
    plus_two = entries(registry, since=cut.astimezone(timezone(timedelta(hours=2))).isoformat())
    minus_five = entries(registry, since=cut.astimezone(timezone(timedelta(hours=-5))).isoformat())
    assert [e["id"] for e in plus_two] == [e["id"] for e in in_utc]
    assert [e["id"] for e in minus_five] == [e["id"] for e in in_utc]


def test_audit_paging(registry: Registry) -> None:
    admin = client_for(registry, "admin")
    for number in range(5):
        admin.post(f"{API}/projects", json={"name": f"p{number}"})
    first = admin.get(f"{API}/audit-logs", params={"action": "create", "page_size": 2})
    assert [e["resource"] for e in json_list(first)] == ["p4", "p3"]
    assert total_count(first) == 5
    second = admin.get(links(first)["next"])
    assert [e["resource"] for e in json_list(second)] == ["p2", "p1"]
    assert set(links(second)) == {"next", "prev"}


@pytest.mark.parametrize("user", [PROJECT_ADMIN, DEVELOPER, "outsider"])
def test_system_audit_is_for_admins_only(registry: Registry, user: str) -> None:
    assert_error(client_for(registry, user).get(f"{API}/audit-logs"), 403, "FORBIDDEN")
    assert_error(client_for(registry).get(f"{API}/audit-logs"), 401, "UNAUTHORIZED")


@pytest.mark.parametrize("user", [PROJECT_ADMIN, MAINTAINER, DEVELOPER, GUEST])
def test_project_audit_for_members_with_the_log_right(registry: Registry, user: str) -> None:
    admin = client_for(registry, "admin")
    push_image(admin, "acme/app", "v1")
    push_image(admin, "pub/app", "v1")
    admin.put(f"{API}/projects/acme/members/outsider", json={"role": "guest"})
    admin.post(f"{API}/projects", json={"name": "elsewhere"})
    response = client_for(registry, user).get(f"{API}/projects/acme/audit-logs")
    listed = json_list(response)
    assert {e["project"] for e in listed} == {"acme"}
    assert [e["action"] for e in listed] == ["member.set", "push"]
    assert listed[1]["resource"].startswith("acme/app@sha256:")
    assert total_count(response) == 2
    filtered = client_for(registry, user).get(
        f"{API}/projects/acme/audit-logs", params={"action": "push", "actor": "admin"}
    )
    assert [e["action"] for e in json_list(filtered)] == ["push"]


def test_project_audit_refusals(registry: Registry) -> None:
    assert_error(client_for(registry, LIMITED_GUEST).get(f"{API}/projects/acme/audit-logs"), 403)
    assert_error(client_for(registry, "outsider").get(f"{API}/projects/acme/audit-logs"), 404)
    assert_error(client_for(registry).get(f"{API}/projects/acme/audit-logs"), 404)
    assert_error(client_for(registry).get(f"{API}/projects/pub/audit-logs"), 401)
    assert_error(client_for(registry, "outsider").get(f"{API}/projects/pub/audit-logs"), 403)
    assert_error(client_for(registry, "admin").get(f"{API}/projects/nothing/audit-logs"), 404)


def test_management_actions_are_audited(registry: Registry) -> None:
    admin = client_for(registry, "admin")
    content = push_image(admin, "acme/app", "v1")
    steps = [
        admin.post(f"{API}/users", json={"username": "yan", "password": "yans-password"}),
        admin.patch(f"{API}/users/yan", json={"email": "y@example.com"}),
        admin.post(
            f"{API}/repositories/acme/app/-/artifacts/{content.digest}/tags", json={"name": "t"}
        ),
        admin.delete(f"{API}/repositories/acme/app/-/tags/t"),
        admin.delete(f"{API}/repositories/acme/app/-/artifacts/{content.digest}"),
        admin.delete(f"{API}/repositories/acme/app"),
        admin.patch(f"{API}/projects/acme", json={"quota_bytes": 10}),
        admin.delete(f"{API}/projects/acme/members/guest"),
        admin.delete(f"{API}/users/yan"),
    ]
    assert all(step.is_success for step in steps), [s.text for s in steps if not s.is_success]
    actions = [(e["action"], e["resource_type"], e["resource"]) for e in entries(registry)]
    expected = [
        ("delete", "user", "yan"),
        ("member.remove", "project", "acme"),
        ("update", "project", "acme"),
        ("delete", "repository", "acme/app"),
        ("delete", "artifact", f"acme/app@{content.digest}"),
        ("delete", "tag", "acme/app:t"),
        ("tag", "tag", "acme/app:t"),
        ("update", "user", "yan"),
        ("create", "user", "yan"),
    ]
    assert [a for a in actions if a[0] != "login"][: len(expected)] == expected


def test_entries_never_contain_passwords_or_secrets(registry: Registry) -> None:
    """Do everything that handles a password or secret, then search every entry (through
    the API and in the table itself) for each of them."""
    secrets = [PASSWORD]
    admin = client_for(registry, "admin")

    def remember(value: str) -> str:
        secrets.append(value)
        return value

    admin.post(f"{API}/users", json={"username": "kim", "password": remember("kims-first-pw")})
    admin.patch(f"{API}/users/kim", json={"password": remember("kims-reset-pw")})
    kim = client_for(registry, "kim", "kims-reset-pw")
    kim.put(
        f"{API}/users/current/password",
        json={"old_password": remember("kims-wrong-old"), "new_password": "kims-never-set"},
    )
    kim.put(
        f"{API}/users/current/password",
        json={"old_password": "kims-reset-pw", "new_password": remember("kims-final-pw")},
    )
    remember("kims-never-set")
    session = sign_in(registry, "kim", "kims-final-pw")
    remember(session.csrf_token)
    remember(session.cookie)
    session_client(registry, session).delete(f"{API}/sessions/current")
    client_for(registry).post(
        f"{API}/sessions", json={"username": "kim", "password": remember("kims-typo-pw")}
    )
    client_for(registry, DEVELOPER, remember("developer-typo")).get(f"{API}/users/current")
    registry.get("/auth/token", headers={"Authorization": "Basic " + "a2ltOmtpbXMtdG9rZW4tcHc="})
    remember("kims-token-pw")  # the base64 above is kim:kims-token-pw
    robot = json_object(
        admin.post(f"{API}/projects/acme/robots", json={"name": "ci", "permissions": ["pull"]}),
        201,
    )
    remember(robot["secret"])
    rotated = json_object(admin.post(f"{API}/robots/{robot['name']}/secret"))
    remember(rotated["secret"])
    system = json_object(
        admin.post(f"{API}/robots", json={"name": "sys", "permissions": {"pub": ["pull"]}}), 201
    )
    remember(system["secret"])
    client_for(registry, robot["name"], robot["secret"]).get(f"{API}/projects")  # old: fails

    listed = entries(registry)
    assert {e["action"] for e in listed} >= {"create", "update", "password", "login", "rotate"}
    text = json.dumps(listed)
    registry.app.ctx.audit.flush()
    with registry.app.ctx.db.read() as conn:
        rows = [dict(row._mapping) for row in conn.execute(select(s.audit_log))]
    raw = json.dumps(rows, default=str)
    for secret in secrets:
        assert secret not in text, secret
        assert secret not in raw, secret
    # The password changes are recorded, as facts.
    update = next(e for e in listed if e["action"] == "update" and e["resource"] == "kim")
    assert update["detail"] == {"password_changed": True}
    assert any(e["action"] == "password" and e["resource"] == "kim" for e in listed)
