"""Tag immutability through the management API: managing a project's rules (who may read
and change them, validation, the audit log), and the refusal of the management API's own
tag and artifact operations on protected tags: deleting a tag, pointing it at another
artifact, deleting the artifact or the whole repository (403 DENIED naming the rule)."""

from __future__ import annotations

from typing import Any

import httpx2 as httpx
import pytest

from tests.auth.conftest import Registry
from tests.mgmt.conftest import (
    API,
    DEVELOPER,
    GUEST,
    LIMITED_GUEST,
    MAINTAINER,
    PROJECT_ADMIN,
    client_for,
)
from tests.mgmt.helpers import (
    Content,
    assert_error,
    detail_locations,
    json_list,
    json_object,
    push_content,
)

RULES = f"{API}/projects/acme/immutability-rules"
REPO = "acme/app"
RULE_FIELDS = {
    "id",
    "project",
    "repository_pattern",
    "tag_pattern",
    "syntax",
    "disabled",
    "created_by",
    "created_at",
}


def add_rule(registry: Registry, user: str = "admin", **body: Any) -> dict[str, Any]:
    response = client_for(registry, user).post(RULES, json={"tag_pattern": "v*", **body})
    return json_object(response, 201)


def rules_of(registry: Registry, project: str = "acme") -> list[dict[str, Any]]:
    return json_list(
        client_for(registry, "admin").get(f"{API}/projects/{project}/immutability-rules")
    )


@pytest.fixture
def content(registry: Registry) -> Content:
    return push_content(client_for(registry, "admin"), REPO)


def assert_denied(response: httpx.Response, rule: dict[str, Any], tag: str) -> str:
    entry = assert_error(response, 403, "DENIED")
    message = str(entry["message"])
    assert f"immutability rule {rule['id']} of project 'acme'" in message, message
    assert f"tag {tag!r} of {REPO}" in message, message
    assert entry["detail"] == {"tag": tag, "rule": rule["id"]}
    return message


# -- managing rules ----------------------------------------------------------------------


def test_add_list_update_delete(registry: Registry) -> None:
    admin = client_for(registry, PROJECT_ADMIN)
    created = json_object(admin.post(RULES, json={"tag_pattern": "v*"}), 201)
    assert set(created) == RULE_FIELDS
    assert created["project"] == "acme"
    assert (created["repository_pattern"], created["tag_pattern"]) == ("**", "v*")
    assert (created["syntax"], created["disabled"]) == ("glob", False)
    assert created["created_by"] == PROJECT_ADMIN
    regex = json_object(admin.post(RULES, json={"tag_pattern": r"rel-\d+", "syntax": "regex"}), 201)
    assert regex["repository_pattern"] == ".*"
    assert [r["id"] for r in json_list(admin.get(RULES))] == [created["id"], regex["id"]]

    url = f"{RULES}/{created['id']}"
    disabled = json_object(admin.patch(url, json={"disabled": True}))
    assert disabled == {**created, "disabled": True}
    changed = json_object(admin.patch(url, json={"repository_pattern": "app/*", "disabled": False}))
    assert (changed["repository_pattern"], changed["tag_pattern"], changed["disabled"]) == (
        "app/*",
        "v*",
        False,
    )
    assert admin.delete(url).status_code == 204
    assert [r["id"] for r in json_list(admin.get(RULES))] == [regex["id"]]
    assert_error(admin.delete(url), 404, "NOT_FOUND")
    assert_error(admin.patch(url, json={"disabled": True}), 404, "NOT_FOUND")


def test_invalid_patterns_are_400_naming_the_field(registry: Registry) -> None:
    admin = client_for(registry, "admin")
    for body, field in (
        ({"tag_pattern": "v["}, "tag_pattern"),
        ({"tag_pattern": "(", "syntax": "regex"}, "tag_pattern"),
        ({"tag_pattern": "v*", "repository_pattern": "{app"}, "repository_pattern"),
        ({"tag_pattern": "v", "repository_pattern": "**", "syntax": "regex"}, "repository_pattern"),
    ):
        entry = assert_error(admin.post(RULES, json=body), 400, "INVALID")
        assert str(entry["message"]).startswith(f"{field}: invalid "), entry
    invalid: list[tuple[dict[str, object], str]] = [
        ({}, "body.tag_pattern"),
        ({"tag_pattern": ""}, "body.tag_pattern"),
        ({"tag_pattern": "v" * 513}, "body.tag_pattern"),
        ({"tag_pattern": "v*", "syntax": "shell"}, "body.syntax"),
        ({"tag_pattern": "v*", "repository_pattern": ""}, "body.repository_pattern"),
        ({"tag_pattern": "v*", "extra": 1}, "body.extra"),
    ]
    for bad, location in invalid:
        assert location in detail_locations(admin.post(RULES, json=bad)), bad
    assert_error(admin.post(RULES, json={"tag_pattern": "v\x00"}), 400, "INVALID")
    rule = add_rule(registry)
    url = f"{RULES}/{rule['id']}"
    entry = assert_error(admin.patch(url, json={"syntax": "regex"}), 400, "INVALID")
    assert str(entry["message"]).startswith("repository_pattern: invalid regex pattern '**'")
    assert "body.disabled" in detail_locations(admin.patch(url, json={"disabled": "maybe"}))
    assert_error(admin.patch(f"{RULES}/0", json={"disabled": True}), 400, "INVALID")
    assert_error(admin.patch(f"{RULES}/99999999999", json={"disabled": True}), 400, "INVALID")
    assert rules_of(registry) == [rule]


def test_duplicates_and_the_limit(registry: Registry) -> None:
    admin = client_for(registry, "admin")
    first = add_rule(registry)
    entry = assert_error(admin.post(RULES, json={"tag_pattern": "v*"}), 409, "CONFLICT")
    assert f"immutability rule {first['id']}" in str(entry["message"])
    for number in range(14):
        add_rule(registry, tag_pattern=f"t{number}")
    entry = assert_error(admin.post(RULES, json={"tag_pattern": "more"}), 400, "INVALID")
    assert "15 immutability rules" in str(entry["message"])


def test_a_rule_is_reached_only_through_its_project(registry: Registry) -> None:
    rule = add_rule(registry)
    admin = client_for(registry, "admin")
    other = f"{API}/projects/pub/immutability-rules/{rule['id']}"
    assert_error(admin.patch(other, json={"disabled": True}), 404, "NOT_FOUND")
    assert_error(admin.delete(other), 404, "NOT_FOUND")
    assert rules_of(registry, "pub") == []
    assert_error(admin.get(f"{API}/projects/nope/immutability-rules"), 404, "NOT_FOUND")
    assert rules_of(registry) == [rule]


@pytest.mark.parametrize(
    "user", ["admin", PROJECT_ADMIN, MAINTAINER, DEVELOPER, GUEST, LIMITED_GUEST]
)
def test_everyone_who_sees_the_project_may_list_its_rules(registry: Registry, user: str) -> None:
    rule = add_rule(registry)
    assert json_list(client_for(registry, user).get(RULES)) == [rule]


def test_outsiders_and_anonymous_do_not_see_a_private_projects_rules(registry: Registry) -> None:
    rule = add_rule(registry)
    body = {"tag_pattern": "x*"}
    for client in (client_for(registry, "outsider"), client_for(registry)):
        assert_error(client.get(RULES), 404, "NOT_FOUND")
        assert_error(client.post(RULES, json=body), 404, "NOT_FOUND")
        assert_error(client.patch(f"{RULES}/{rule['id']}", json={"disabled": True}), 404)
        assert_error(client.delete(f"{RULES}/{rule['id']}"), 404, "NOT_FOUND")
    # A public project's rules are as public as its images; changing them is not.
    public = f"{API}/projects/pub/immutability-rules"
    assert json_object(client_for(registry, "admin").post(public, json=body), 201)
    assert len(json_list(client_for(registry).get(public))) == 1
    assert len(json_list(client_for(registry, "outsider").get(public))) == 1
    assert_error(client_for(registry).post(public, json=body), 401, "UNAUTHORIZED")
    assert_error(client_for(registry, "outsider").post(public, json=body), 403, "FORBIDDEN")
    assert rules_of(registry) == [rule]


@pytest.mark.parametrize("user", [MAINTAINER, DEVELOPER, GUEST, LIMITED_GUEST])
def test_only_project_admins_change_rules(registry: Registry, user: str) -> None:
    rule = add_rule(registry)
    client = client_for(registry, user)
    url = f"{RULES}/{rule['id']}"
    assert_error(client.post(RULES, json={"tag_pattern": "x*"}), 403, "FORBIDDEN")
    assert_error(client.patch(url, json={"disabled": True}), 403, "FORBIDDEN")
    assert_error(client.delete(url), 403, "FORBIDDEN")
    assert rules_of(registry) == [rule]


def test_robots_cannot_change_rules(registry: Registry) -> None:
    admin = client_for(registry, "admin")
    created = json_object(
        admin.post(
            f"{API}/projects/acme/robots",
            json={"name": "ci", "permissions": ["pull", "push", "delete"]},
        ),
        201,
    )
    robot = client_for(registry, created["name"], created["secret"])
    assert json_list(robot.get(RULES)) == []
    assert_error(robot.post(RULES, json={"tag_pattern": "x*"}), 403, "FORBIDDEN")


def test_changes_are_audited(registry: Registry) -> None:
    admin = client_for(registry, PROJECT_ADMIN)
    rule = add_rule(registry, PROJECT_ADMIN, repository_pattern="app/*")
    url = f"{RULES}/{rule['id']}"
    json_object(admin.patch(url, json={"disabled": True}))
    assert admin.delete(url).status_code == 204
    logged = json_list(
        client_for(registry, "admin").get(
            f"{API}/projects/acme/audit-logs", params={"actor": PROJECT_ADMIN}
        )
    )
    resource = f"acme/immutability-rules/{rule['id']}"
    assert [(e["action"], e["resource_type"], e["resource"], e["project"]) for e in logged] == [
        ("delete", "immutability-rule", resource, "acme"),
        ("update", "immutability-rule", resource, "acme"),
        ("create", "immutability-rule", resource, "acme"),
    ]
    patterns = {"repository_pattern": "app/*", "tag_pattern": "v*", "syntax": "glob"}
    assert [e["detail"] for e in logged] == [patterns, {"disabled": True}, patterns]
    assert all(e["result"] == "success" for e in logged)


# -- enforcement in the management API ---------------------------------------------------


def test_deleting_a_protected_tag_is_denied(registry: Registry, content: Content) -> None:
    admin = client_for(registry, "admin")
    rule = add_rule(registry)
    message = assert_denied(admin.delete(f"{API}/repositories/{REPO}/-/tags/v1"), rule, "v1")
    assert message.endswith("it cannot be deleted")
    # Not protected: the index's tag.
    assert admin.delete(f"{API}/repositories/{REPO}/-/tags/multi").status_code == 204
    artifact = json_object(admin.get(f"{API}/repositories/{REPO}/-/artifacts/v1"))
    assert artifact["tags"] == ["v1"]


def test_moving_a_protected_tag_is_denied(registry: Registry, content: Content) -> None:
    admin = client_for(registry, "admin")
    rule = add_rule(registry)
    artifacts = f"{API}/repositories/{REPO}/-/artifacts"
    response = admin.post(f"{artifacts}/{content.index.digest}/tags", json={"name": "v1"})
    message = assert_denied(response, rule, "v1")
    assert "cannot be moved to another manifest" in message
    assert json_object(admin.get(f"{artifacts}/v1"))["digest"] == content.image.digest
    # The same artifact again, a new protected tag, and unprotected tags are fine.
    assert (
        admin.post(f"{artifacts}/{content.image.digest}/tags", json={"name": "v1"}).status_code
        == 201
    )
    assert (
        admin.post(f"{artifacts}/{content.index.digest}/tags", json={"name": "v2"}).status_code
        == 201
    )
    assert (
        admin.post(f"{artifacts}/{content.image.digest}/tags", json={"name": "multi"}).status_code
        == 201
    )
    assert_denied(
        admin.post(f"{artifacts}/{content.image.digest}/tags", json={"name": "v2"}), rule, "v2"
    )


def test_deleting_an_artifact_with_a_protected_tag_is_denied(
    registry: Registry, content: Content
) -> None:
    admin = client_for(registry, "admin")
    rule = add_rule(registry)
    artifacts = f"{API}/repositories/{REPO}/-/artifacts"
    message = assert_denied(admin.delete(f"{artifacts}/{content.image.digest}"), rule, "v1")
    assert message.startswith(f"manifest {content.image.digest} cannot be deleted")
    assert admin.get(f"{artifacts}/{content.image.digest}").status_code == 200
    # The SBOM (untagged) and the index (tag `multi`) are not protected.
    assert admin.delete(f"{artifacts}/{content.artifact.digest}").status_code == 204
    assert admin.delete(f"{artifacts}/{content.index.digest}").status_code == 204


def test_deleting_a_repository_with_a_protected_tag_is_denied(
    registry: Registry, content: Content
) -> None:
    admin = client_for(registry, "admin")
    rule = add_rule(registry)
    message = assert_denied(admin.delete(f"{API}/repositories/{REPO}"), rule, "v1")
    assert message.startswith(f"repository {REPO} cannot be deleted")
    assert admin.get(f"{API}/repositories/{REPO}").status_code == 200
    # With only a rule for `app`, another repository of the project can go.
    push_content(admin, "acme/tools")
    json_object(admin.patch(f"{RULES}/{rule['id']}", json={"disabled": True}))
    only_app = add_rule(registry, repository_pattern="app", tag_pattern="**")
    assert admin.delete(f"{API}/repositories/acme/tools").status_code == 204
    assert_denied(admin.delete(f"{API}/repositories/{REPO}"), only_app, "multi")
    # Without rules it can go too.
    for other in rules_of(registry):
        assert admin.delete(f"{RULES}/{other['id']}").status_code == 204
    assert admin.delete(f"{API}/repositories/{REPO}").status_code == 204


def test_refusals_are_not_audited_as_changes(registry: Registry, content: Content) -> None:
    admin = client_for(registry, "admin")
    add_rule(registry)
    assert admin.delete(f"{API}/repositories/{REPO}/-/tags/v1").status_code == 403
    assert admin.delete(f"{API}/repositories/{REPO}").status_code == 403
    logged = json_list(admin.get(f"{API}/projects/acme/audit-logs", params={"action": "delete"}))
    assert logged == []
