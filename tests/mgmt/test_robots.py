"""Robot accounts through the management API: the secret is shown once and works on
/auth/token, only project admins (and system admins) create and manage them, robots never
manage robots, and disable / enable / rotate / delete take effect at once."""

from __future__ import annotations

from typing import Any

import jwt
import pytest

from tests.auth.conftest import Registry, basic
from tests.mgmt.conftest import (
    API,
    DEVELOPER,
    GUEST,
    LIMITED_GUEST,
    MAINTAINER,
    PROJECT_ADMIN,
    MakeRegistry,
    client_for,
)
from tests.mgmt.helpers import assert_error, json_list, json_object

ROBOT_FIELDS = {
    "name",
    "project",
    "permissions",
    "disabled",
    "expires_at",
    "description",
    "created_by",
    "created_at",
}


def token_access(
    registry: Registry, user: str, secret: str, *scopes: str
) -> dict[str, list[str]] | None:
    """{repository: granted actions} from /auth/token with these credentials, or None
    when the credentials are refused (401)."""
    response = registry.get(
        "/auth/token",
        params={"service": "portside", "scope": list(scopes)},
        headers=basic(user, secret),
    )
    if response.status_code == 401:
        return None
    assert response.status_code == 200, response.text
    claims = jwt.decode(response.json()["token"], options={"verify_signature": False})
    assert claims["sub"] == user
    return {entry["name"]: sorted(entry["actions"]) for entry in claims["access"]}


def create_robot(registry: Registry, user: str = PROJECT_ADMIN, **body: Any) -> dict[str, Any]:
    body = {"name": "ci", "permissions": ["pull", "push"], **body}
    response = client_for(registry, user).post(f"{API}/projects/acme/robots", json=body)
    return json_object(response, 201)


def test_project_admin_creates_a_robot_and_sees_its_secret_once(registry: Registry) -> None:
    created = create_robot(registry, description="builds the app", expires_in_days=30)
    assert set(created) == ROBOT_FIELDS | {"secret"}
    assert created["name"] == "robot$acme+ci"
    assert created["project"] == "acme"
    assert created["permissions"] == {"acme": ["pull", "push"]}
    assert created["disabled"] is False
    assert created["description"] == "builds the app"
    assert created["created_by"] == PROJECT_ADMIN
    assert created["expires_at"] is not None
    assert len(created["secret"]) >= 32
    secret = created["secret"]

    client = client_for(registry, PROJECT_ADMIN)
    fetched = client.get(f"{API}/robots/robot$acme+ci")
    assert set(json_object(fetched)) == ROBOT_FIELDS
    listed = client.get(f"{API}/projects/acme/robots")
    assert [r["name"] for r in json_list(listed)] == ["robot$acme+ci"]
    admin_list = client_for(registry, "admin").get(f"{API}/robots")
    for response in (fetched, listed, admin_list):
        assert "secret" not in response.text
        assert secret not in response.text


def test_robot_secret_authenticates_on_the_token_endpoint(registry: Registry) -> None:
    created = create_robot(registry)
    granted = token_access(
        registry,
        created["name"],
        created["secret"],
        "repository:acme/app:pull,push,delete",
        "repository:pub/app:pull,push",
        "repository:other/app:pull",
    )
    assert granted == {"acme/app": ["pull", "push"], "pub/app": ["pull"]}
    assert token_access(registry, created["name"], "not-the-secret") is None


def test_robot_basic_credentials_work_on_the_management_api(registry: Registry) -> None:
    created = create_robot(registry, permissions=["pull"])
    robot = client_for(registry, created["name"], created["secret"])
    assert json_object(robot.get(f"{API}/projects/acme"))["role"] is None
    assert {p["name"] for p in json_list(robot.get(f"{API}/projects"))} == {"acme", "pub"}
    assert robot.get(f"{API}/repositories", params={"project": "pub"}).status_code == 200


@pytest.mark.parametrize("user", [MAINTAINER, DEVELOPER, GUEST, LIMITED_GUEST])
def test_only_project_admins_create_robots(registry: Registry, user: str) -> None:
    response = client_for(registry, user).post(
        f"{API}/projects/acme/robots", json={"name": "mine", "permissions": ["pull"]}
    )
    assert_error(response, 403, "FORBIDDEN")
    assert registry.auth.robots.find("acme") == []


def test_outsiders_and_anonymous_cannot_create_robots(registry: Registry) -> None:
    body = {"name": "mine", "permissions": ["pull"]}
    assert_error(
        client_for(registry, "outsider").post(f"{API}/projects/acme/robots", json=body), 404
    )
    assert_error(client_for(registry).post(f"{API}/projects/acme/robots", json=body), 404)
    assert_error(client_for(registry).post(f"{API}/projects/pub/robots", json=body), 401)
    assert_error(
        client_for(registry, "outsider").post(f"{API}/projects/pub/robots", json=body), 403
    )


def test_maintainers_see_robots_but_cannot_manage_them(registry: Registry) -> None:
    created = create_robot(registry)
    maintainer = client_for(registry, MAINTAINER)
    listed = json_list(maintainer.get(f"{API}/projects/acme/robots"))
    assert [r["name"] for r in listed] == [created["name"]]
    for response in (
        maintainer.patch(f"{API}/robots/{created['name']}", json={"disabled": True}),
        maintainer.post(f"{API}/robots/{created['name']}/secret"),
        maintainer.delete(f"{API}/robots/{created['name']}"),
    ):
        assert_error(response, 403, "FORBIDDEN")
    # Seeing one robot is allowed (robots:read), as is seeing the list.
    assert maintainer.get(f"{API}/robots/{created['name']}").status_code == 200
    assert registry.auth.robots.get(created["name"]).disabled is False


@pytest.mark.parametrize("user", [DEVELOPER, GUEST])
def test_developers_and_guests_do_not_see_robots(registry: Registry, user: str) -> None:
    create_robot(registry)
    assert_error(client_for(registry, user).get(f"{API}/projects/acme/robots"), 403)
    assert_error(client_for(registry, user).get(f"{API}/robots/robot$acme+ci"), 404)


def test_robots_cannot_create_or_manage_robots(registry: Registry) -> None:
    created = create_robot(registry, permissions=["pull", "push", "delete"])
    robot = client_for(registry, created["name"], created["secret"])
    response = robot.post(
        f"{API}/projects/acme/robots", json={"name": "child", "permissions": ["pull"]}
    )
    assert_error(response, 403, "FORBIDDEN")
    system = robot.post(f"{API}/robots", json={"name": "child", "permissions": {"acme": ["pull"]}})
    assert_error(system, 403, "FORBIDDEN")
    for response in (
        robot.get(f"{API}/robots/{created['name']}"),
        robot.patch(f"{API}/robots/{created['name']}", json={"disabled": False}),
        robot.post(f"{API}/robots/{created['name']}/secret"),
        robot.delete(f"{API}/robots/{created['name']}"),
    ):
        assert_error(response, 403, "FORBIDDEN")
    assert [r.name for r in registry.auth.robots.find()] == [created["name"]]
    assert token_access(registry, created["name"], created["secret"]) == {}


def test_robot_request_validation(registry: Registry) -> None:
    client = client_for(registry, PROJECT_ADMIN)
    for body in (
        {"name": "Bad Name", "permissions": ["pull"]},
        {"name": "robot$x", "permissions": ["pull"]},
        {"name": "a+b", "permissions": ["pull"]},
        {"name": "ok", "permissions": []},
        {"name": "ok", "permissions": ["admin"]},
        {"name": "ok", "permissions": ["pull"], "expires_in_days": 0},
        {"name": "ok", "permissions": ["pull"], "project": "pub"},
        {"name": "ok"},
    ):
        response = client.post(f"{API}/projects/acme/robots", json=body)
        assert_error(response, 400, "INVALID")
    create_robot(registry)
    assert_error(
        client.post(f"{API}/projects/acme/robots", json={"name": "ci", "permissions": ["pull"]}),
        409,
        "CONFLICT",
    )
    assert_error(
        client.post(f"{API}/projects/nothing/robots", json={"name": "x", "permissions": ["pull"]}),
        404,
    )


def test_disable_and_enable(registry: Registry) -> None:
    created = create_robot(registry)
    client = client_for(registry, PROJECT_ADMIN)
    name, secret = created["name"], created["secret"]
    disabled = json_object(client.patch(f"{API}/robots/{name}", json={"disabled": True}))
    assert disabled["disabled"] is True
    assert "secret" not in disabled
    assert token_access(registry, name, secret, "repository:acme/app:pull") is None
    assert_error(client_for(registry, name, secret).get(f"{API}/projects/acme"), 401)
    enabled = json_object(client.patch(f"{API}/robots/{name}", json={"disabled": False}))
    assert enabled["disabled"] is False
    assert token_access(registry, name, secret, "repository:acme/app:pull") == {
        "acme/app": ["pull"]
    }
    assert_error(client.patch(f"{API}/robots/{name}", json={}), 400, "INVALID")


def test_rotate_secret(registry: Registry) -> None:
    created = create_robot(registry)
    name, old = created["name"], created["secret"]
    rotated = json_object(client_for(registry, PROJECT_ADMIN).post(f"{API}/robots/{name}/secret"))
    new = rotated["secret"]
    assert new != old
    assert rotated["name"] == name
    assert rotated["permissions"] == {"acme": ["pull", "push"]}
    assert token_access(registry, name, old, "repository:acme/app:pull") is None
    assert_error(client_for(registry, name, old).get(f"{API}/projects/acme"), 401)
    assert token_access(registry, name, new, "repository:acme/app:pull") == {"acme/app": ["pull"]}
    # The new secret is not retrievable afterwards either.
    assert new not in client_for(registry, PROJECT_ADMIN).get(f"{API}/robots/{name}").text


def test_delete_robot(registry: Registry) -> None:
    created = create_robot(registry)
    client = client_for(registry, PROJECT_ADMIN)
    assert client.delete(f"{API}/robots/{created['name']}").status_code == 204
    assert_error(client.get(f"{API}/robots/{created['name']}"), 404, "NOT_FOUND")
    assert_error(client.delete(f"{API}/robots/{created['name']}"), 404, "NOT_FOUND")
    assert json_list(client.get(f"{API}/projects/acme/robots")) == []
    assert token_access(registry, created["name"], created["secret"]) is None
    # The name is free again.
    assert create_robot(registry)["secret"] != created["secret"]


def test_missing_robot_is_404(registry: Registry) -> None:
    admin = client_for(registry, "admin")
    for response in (
        admin.get(f"{API}/robots/robot$acme+nothing"),
        admin.patch(f"{API}/robots/robot$acme+nothing", json={"disabled": True}),
        admin.post(f"{API}/robots/robot$acme+nothing/secret"),
        admin.delete(f"{API}/robots/robot$acme+nothing"),
        admin.get(f"{API}/robots/not-a-robot-name"),
    ):
        assert_error(response, 404, "NOT_FOUND")


def test_outsider_cannot_see_a_projects_robot(registry: Registry) -> None:
    created = create_robot(registry)
    outsider = client_for(registry, "outsider")
    missing = outsider.get(f"{API}/robots/robot$acme+nothing")
    hidden = outsider.get(f"{API}/robots/{created['name']}")
    assert_error(hidden, 404, "NOT_FOUND")
    assert_error(missing, 404, "NOT_FOUND")
    assert_error(outsider.delete(f"{API}/robots/{created['name']}"), 404)


def test_system_robot_with_permissions_in_two_projects(registry: Registry) -> None:
    admin = client_for(registry, "admin")
    body = {
        "name": "mirror",
        "permissions": {"acme": ["pull"], "pub": ["pull", "push"]},
        "description": "mirrors images",
    }
    created = json_object(admin.post(f"{API}/robots", json=body), 201)
    assert created["name"] == "robot$mirror"
    assert created["project"] is None
    assert created["permissions"] == {"acme": ["pull"], "pub": ["pull", "push"]}
    assert created["created_by"] == "admin"
    granted = token_access(
        registry,
        created["name"],
        created["secret"],
        "repository:acme/app:pull,push",
        "repository:pub/app:pull,push,delete",
    )
    assert granted == {"acme/app": ["pull"], "pub/app": ["pull", "push"]}

    listed = json_list(admin.get(f"{API}/robots"))
    assert [r["name"] for r in listed] == ["robot$mirror"]
    assert "secret" not in listed[0]
    # System robots are the system admins' to manage: a project admin neither sees nor
    # manages them; the admin sees them among the project's robots too.
    project_admin = client_for(registry, PROJECT_ADMIN)
    assert json_list(project_admin.get(f"{API}/projects/acme/robots")) == []
    in_acme = json_list(admin.get(f"{API}/projects/acme/robots"))
    assert [r["name"] for r in in_acme] == ["robot$mirror"]
    assert_error(project_admin.get(f"{API}/robots/robot$mirror"), 404)
    assert_error(project_admin.delete(f"{API}/robots/robot$mirror"), 404)
    # The admin manages it like a project robot.
    assert json_object(admin.post(f"{API}/robots/robot$mirror/secret"))["secret"]
    assert admin.delete(f"{API}/robots/robot$mirror").status_code == 204


@pytest.mark.parametrize("user", [PROJECT_ADMIN, "outsider"])
def test_only_admins_create_and_list_system_robots(registry: Registry, user: str) -> None:
    client = client_for(registry, user)
    body = {"name": "mine", "permissions": {"acme": ["pull"]}}
    assert_error(client.post(f"{API}/robots", json=body), 403, "FORBIDDEN")
    assert_error(client.get(f"{API}/robots"), 403, "FORBIDDEN")
    assert_error(client_for(registry).get(f"{API}/robots"), 401)


def test_system_robot_validation(registry: Registry) -> None:
    admin = client_for(registry, "admin")
    assert_error(admin.post(f"{API}/robots", json={"name": "x", "permissions": {}}), 400)
    assert_error(admin.post(f"{API}/robots", json={"name": "x", "permissions": {"acme": []}}), 400)
    assert_error(
        admin.post(f"{API}/robots", json={"name": "x", "permissions": {"acme": ["all"]}}), 400
    )
    missing = admin.post(f"{API}/robots", json={"name": "x", "permissions": {"nothing": ["pull"]}})
    assert_error(missing, 404, "NOT_FOUND")
    assert json_list(admin.get(f"{API}/robots")) == []


def test_project_robot_of_a_user_created_project(make_registry: MakeRegistry) -> None:
    """A project admin's robot gets exactly what it asks, within the project only."""
    registry = make_registry(projects={"creation": "users"})
    owner = client_for(registry, "outsider")
    assert owner.post(f"{API}/projects", json={"name": "mine"}).status_code == 201
    created = json_object(
        owner.post(
            f"{API}/projects/mine/robots", json={"name": "ci", "permissions": ["pull", "delete"]}
        ),
        201,
    )
    assert created["name"] == "robot$mine+ci"
    granted = token_access(
        registry,
        created["name"],
        created["secret"],
        "repository:mine/app:pull,push,delete",
        "repository:acme/app:pull",
    )
    assert granted == {"mine/app": ["delete", "pull"]}
    # The owner cannot reach into acme, where they have no role.
    assert_error(
        owner.post(f"{API}/projects/acme/robots", json={"name": "x", "permissions": ["pull"]}),
        404,
    )


def test_anonymous_listing_robots_of_a_public_project_is_401(registry: Registry) -> None:
    """Anonymous callers are told to sign in, as everywhere else; signed-in non-members
    are refused."""
    assert_error(client_for(registry).get(f"{API}/projects/pub/robots"), 401, "UNAUTHORIZED")
    assert_error(client_for(registry, "outsider").get(f"{API}/projects/pub/robots"), 403)
