"""The retention API: read and replace a project's policy, preview a stored or draft
policy (nothing changes), queue runs and list them; who may do what, and 404s."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update

from portside.metadata import schema as s
from portside.metadata.db import utcnow
from tests.api.helpers import Manifest, push_image
from tests.auth.conftest import ROLE_USERS, Registry
from tests.mgmt.conftest import API, MAINTAINER, PROJECT_ADMIN, client_for
from tests.mgmt.helpers import assert_error, detail_locations, json_list, json_object

POLICY = f"{API}/projects/acme/retention"

RULE_DEFAULTS = {
    "value": None,
    "repository_pattern": "**",
    "repository_excluding": False,
    "tag_pattern": "**",
    "tag_excluding": False,
    "syntax": "glob",
    "disabled": False,
}


def push_aged(registry: Registry, repo: str, tags: list[str]) -> list[Manifest]:
    """Images under each tag, the first the newest (pushed 1, 2, 3... days ago)."""
    admin = client_for(registry, "admin")
    images = [push_image(admin, repo, tag) for tag in tags]
    with registry.app.ctx.db.write() as conn:
        for days, image in enumerate(images, 1):
            conn.execute(
                update(s.manifests)
                .where(s.manifests.c.digest == image.digest)
                .values(pushed_at=utcnow() - timedelta(days=days))
            )
    return images


# -- reading and replacing -------------------------------------------------------------


def test_a_project_without_a_policy_has_an_empty_one(registry: Registry) -> None:
    body = json_object(client_for(registry, "guest").get(POLICY))
    assert body == {
        "project": "acme",
        "remove_untagged": False,
        "rules": [],
        "updated_by": None,
        "updated_at": None,
    }


def test_put_replaces_the_policy_and_get_returns_it(registry: Registry) -> None:
    admin = client_for(registry, PROJECT_ADMIN)
    document = {
        "remove_untagged": True,
        "rules": [
            {"kind": "always", "tag_pattern": "release-*"},
            {"kind": "latest_pushed", "value": 10, "repository_pattern": "app/**"},
            {"kind": "pulled_within_days", "value": 30, "syntax": "regex", "disabled": True},
        ],
    }
    stored = json_object(admin.put(POLICY, json=document))
    assert stored["remove_untagged"] is True
    assert stored["updated_by"] == PROJECT_ADMIN
    assert stored["updated_at"]
    assert stored["rules"] == [
        {**RULE_DEFAULTS, "kind": "always", "tag_pattern": "release-*"},
        {**RULE_DEFAULTS, "kind": "latest_pushed", "value": 10, "repository_pattern": "app/**"},
        {
            **RULE_DEFAULTS,
            "kind": "pulled_within_days",
            "value": 30,
            "syntax": "regex",
            "repository_pattern": ".*",
            "tag_pattern": ".*",
            "disabled": True,
        },
    ]
    assert json_object(client_for(registry, "developer").get(POLICY)) == stored
    replaced = json_object(admin.put(POLICY, json={"rules": [{"kind": "always"}]}))
    assert replaced["remove_untagged"] is False
    assert replaced["rules"] == [{**RULE_DEFAULTS, "kind": "always"}]
    entries, _ = registry.app.ctx.audit.find(action="retention.update")
    assert [(e.actor, e.resource, e.project) for e in entries] == [
        (PROJECT_ADMIN, "acme", "acme"),
        (PROJECT_ADMIN, "acme", "acme"),
    ]
    assert entries[0].detail["rules"] == [{**RULE_DEFAULTS, "kind": "always"}]


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"rules": [{"kind": "latest_pushed", "value": 0}]}, "rules[0].value"),
        ({"rules": [{"kind": "always", "value": 3}]}, "takes no value"),
        ({"rules": [{"kind": "always", "tag_pattern": "[x"}]}, "rules[0].tag_pattern"),
        ({"rules": [{"kind": "always", "tag_pattern": "(", "syntax": "regex"}]}, "invalid regex"),
        ({"rules": [{"kind": "latest_pulled"}]}, "rules[0].value"),
    ],
)
def test_invalid_policies_are_refused_with_the_field(
    registry: Registry, document: dict[str, Any], message: str
) -> None:
    response = client_for(registry, "admin").put(POLICY, json=document)
    assert message in assert_error(response, 400, "INVALID")["message"]


@pytest.mark.parametrize(
    ("document", "location"),
    [
        ({"rules": [{"kind": "newest", "value": 1}]}, "body.rules.0.kind"),
        ({"rules": [{"kind": "latest_pushed", "value": "3"}]}, "body.rules.0.value"),
        ({"rules": [{"kind": "always", "colour": "red"}]}, "body.rules.0.colour"),
        ({"rules": [{"kind": "always"}] * 16}, "body.rules"),
        ({"remove_untagged": "yes"}, "body.remove_untagged"),
        ({"rules": [{"kind": "always", "tag_pattern": ""}]}, "body.rules.0.tag_pattern"),
    ],
)
def test_malformed_bodies_name_the_field(
    registry: Registry, document: dict[str, Any], location: str
) -> None:
    response = client_for(registry, "admin").put(POLICY, json=document)
    assert location in detail_locations(response)


def test_nothing_is_stored_when_a_policy_is_refused(registry: Registry) -> None:
    admin = client_for(registry, "admin")
    json_object(admin.put(POLICY, json={"rules": [{"kind": "always"}]}))
    bad = {"rules": [{"kind": "always"}, {"kind": "latest_pushed", "value": -1}]}
    assert_error(admin.put(POLICY, json=bad), 400, "INVALID")
    assert json_object(admin.get(POLICY))["rules"] == [{**RULE_DEFAULTS, "kind": "always"}]


# -- who may ----------------------------------------------------------------------------

PUT_STATUS: dict[str | None, int] = {
    "admin": 200,
    PROJECT_ADMIN: 200,
    **{name: 403 for name in ROLE_USERS.values() if name != PROJECT_ADMIN},
    "outsider": 404,
    None: 404,
}


@pytest.mark.parametrize(("user", "status"), PUT_STATUS.items())
def test_who_may_change_preview_and_run(registry: Registry, user: str | None, status: int) -> None:
    client = client_for(registry, user)
    policy = {"rules": [{"kind": "always"}]}
    calls = [
        client.put(POLICY, json=policy),
        client.post(f"{POLICY}/preview"),
        client.get(f"{POLICY}/runs"),
    ]
    for response in calls:
        assert response.status_code == status, (user, response.request.url, response.text)
        if status != 200:
            assert_error(response, status)
    run = client.post(f"{POLICY}/runs", json={"dry_run": True})
    assert run.status_code == (202 if status == 200 else status), run.text


@pytest.mark.parametrize(
    ("user", "status"),
    [
        *[(name, 200) for name in ROLE_USERS.values()],
        ("admin", 200),
        ("outsider", 404),
        (None, 404),
    ],
)
def test_who_may_read_the_policy(registry: Registry, user: str | None, status: int) -> None:
    response = client_for(registry, user).get(POLICY)
    assert response.status_code == status, response.text


def test_public_project_policy_is_readable_by_anyone_but_changed_by_admins(
    registry: Registry,
) -> None:
    anonymous = client_for(registry)
    json_object(anonymous.get(f"{API}/projects/pub/retention"))
    assert_error(anonymous.put(f"{API}/projects/pub/retention", json={}), 401)
    assert_error(
        client_for(registry, "outsider").put(f"{API}/projects/pub/retention", json={}), 403
    )


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "retention"),
        ("PUT", "retention"),
        ("POST", "retention/preview"),
        ("POST", "retention/runs"),
        ("GET", "retention/runs"),
    ],
)
def test_missing_project_is_404_even_for_admins(registry: Registry, method: str, path: str) -> None:
    response = client_for(registry, "admin").request(
        method, f"{API}/projects/nope/{path}", json={} if method != "GET" else None
    )
    assert_error(response, 404, "NOT_FOUND")


# -- preview ----------------------------------------------------------------------------


def test_preview_of_the_stored_policy_and_of_a_draft(registry: Registry) -> None:
    images = push_aged(registry, "acme/app", ["b0", "b1", "b2"])
    admin = client_for(registry, PROJECT_ADMIN)
    json_object(admin.put(POLICY, json={"rules": [{"kind": "latest_pushed", "value": 1}]}))

    plan = json_object(admin.post(f"{POLICY}/preview"))
    assert plan["project"] == "acme"
    assert plan["repositories"] == ["acme/app"]
    assert (plan["artifacts"], plan["tags"], plan["truncated"]) == (2, 2, False)
    assert [d["digest"] for d in plan["deletions"]] == [images[2].digest, images[1].digest]
    first = plan["deletions"][1]
    assert first["tags"] == ["b1"]
    assert first["size"] == images[1].size
    assert first["reason"] == "not retained by any rule"
    assert [(k["digest"], k["rule"]) for k in plan["retained"]] == [(images[0].digest, 1)]
    assert plan["manifest_bytes"] == images[1].size + images[2].size
    assert plan["bytes_freed"] == plan["blob_bytes"] + plan["manifest_bytes"]
    assert plan["blob_bytes"] > 0
    assert plan["policy"]["rules"][0]["value"] == 1

    # A draft is previewed without being stored.
    draft = {"rules": [{"kind": "always", "tag_pattern": "b{0,1}"}]}
    drafted = json_object(admin.post(f"{POLICY}/preview", json=draft))
    assert [d["digest"] for d in drafted["deletions"]] == [images[2].digest]
    assert json_object(admin.get(POLICY))["rules"][0]["kind"] == "latest_pushed"
    short = json_object(admin.post(f"{POLICY}/preview", params={"limit": 1}))
    assert (len(short["deletions"]), short["artifacts"], short["truncated"]) == (1, 2, True)
    # Nothing was deleted.
    for image in images:
        status = admin.get(f"/v2/acme/app/manifests/{image.digest}").status_code
        assert status == 200
    bad = {"rules": [{"kind": "latest_pushed", "value": 0}]}
    assert_error(admin.post(f"{POLICY}/preview", json=bad), 400, "INVALID")


# -- runs -------------------------------------------------------------------------------


def test_runs_are_queued_once_and_listed(registry: Registry) -> None:
    admin = client_for(registry, PROJECT_ADMIN)
    response = admin.post(f"{POLICY}/runs", json={"dry_run": True})
    job = json_object(response, 202)
    assert (job["kind"], job["project"], job["params"]) == ("retention", "acme", {"dry_run": True})
    assert job["created_by"] == PROJECT_ADMIN
    assert job["status"] in ("queued", "running", "succeeded")
    assert response.headers["location"].endswith(f"/api/v1/jobs/{job['id']}")
    conflict = admin.post(f"{POLICY}/runs")
    assert_error(conflict, 409, "CONFLICT")
    listed = json_list(admin.get(f"{POLICY}/runs"))
    assert [j["id"] for j in listed] == [job["id"]]
    assert_error(admin.post(f"{POLICY}/runs", json={"dry_run": "no"}), 400, "INVALID")
    entries, _ = registry.app.ctx.audit.find(action="job.start")
    assert [(e.actor, e.project, e.detail["kind"]) for e in entries] == [
        (PROJECT_ADMIN, "acme", "retention")
    ]


def test_maintainers_may_not_run_retention(registry: Registry) -> None:
    assert_error(client_for(registry, MAINTAINER).post(f"{POLICY}/runs"), 403, "FORBIDDEN")
