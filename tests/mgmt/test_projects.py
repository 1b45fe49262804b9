"""Projects and their members: who sees which project, who may create, change and delete
one, and members (users and LDAP groups) with roles."""

from __future__ import annotations

import pytest

from tests.api.helpers import push_image
from tests.auth.conftest import ROLE_USERS, Registry
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
from tests.mgmt.helpers import assert_error, json_list, json_object, links, total_count

PROJECT_FIELDS = {
    "name",
    "public",
    "quota_bytes",
    "used_bytes",
    "repository_count",
    "created_at",
    "created_by",
    "role",
}


def names(response_body: list[dict[str, object]]) -> list[object]:
    return [item["name"] for item in response_body]


# -- who sees what ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("user", "expected"),
    [
        (None, {"pub": None}),
        ("outsider", {"pub": None}),
        ("admin", {"acme": "project-admin", "pub": "project-admin"}),
        *[(name, {"acme": role.value, "pub": None}) for role, name in ROLE_USERS.items()],
    ],
)
def test_project_list_shows_what_the_caller_may_see(
    registry: Registry, user: str | None, expected: dict[str, str | None]
) -> None:
    response = client_for(registry, user).get(f"{API}/projects")
    projects = json_list(response)
    assert {p["name"]: p["role"] for p in projects} == expected
    assert total_count(response) == len(expected)
    assert all(set(p) == PROJECT_FIELDS for p in projects)


def test_project_list_filters_and_pages(registry: Registry) -> None:
    admin = client_for(registry, "admin")
    for name in ("alpha", "beta", "gamma"):
        assert admin.post(f"{API}/projects", json={"name": name}).status_code == 201
    everything = json_list(admin.get(f"{API}/projects"))
    assert names(everything) == ["acme", "alpha", "beta", "gamma", "pub"]
    assert names(json_list(admin.get(f"{API}/projects", params={"q": "a"}))) == [
        "acme",
        "alpha",
        "beta",
        "gamma",
    ]
    assert names(json_list(admin.get(f"{API}/projects", params={"q": "mm"}))) == ["gamma"]
    assert names(json_list(admin.get(f"{API}/projects", params={"public": "true"}))) == ["pub"]
    assert "pub" not in names(json_list(admin.get(f"{API}/projects", params={"public": False})))
    page = admin.get(f"{API}/projects", params={"page": 2, "page_size": 2})
    assert names(json_list(page)) == ["beta", "gamma"]
    assert total_count(page) == 5
    assert set(links(page)) == {"next", "prev"}


def test_get_project(registry: Registry) -> None:
    project = json_object(client_for(registry, GUEST).get(f"{API}/projects/acme"))
    assert project["name"] == "acme"
    assert project["public"] is False
    assert project["role"] == "guest"
    assert project["repository_count"] == 0
    assert project["quota_bytes"] is None
    public = json_object(client_for(registry).get(f"{API}/projects/pub"))
    assert public["public"] is True
    assert public["role"] is None


@pytest.mark.parametrize("user", [None, "outsider"])
def test_private_project_is_404_for_those_who_may_not_see_it(
    registry: Registry, user: str | None
) -> None:
    client = client_for(registry, user)
    hidden = client.get(f"{API}/projects/acme")
    missing = client.get(f"{API}/projects/nothing")
    assert_error(hidden, 404, "NOT_FOUND")
    assert_error(missing, 404, "NOT_FOUND")
    assert hidden.json()["errors"][0]["message"].replace("acme", "X") == missing.json()["errors"][
        0
    ]["message"].replace("nothing", "X")
    for path in ("members", "robots", "audit-logs"):
        assert_error(client.get(f"{API}/projects/acme/{path}"), 404, "NOT_FOUND")
    assert_error(client.patch(f"{API}/projects/acme", json={"public": True}), 404)
    assert_error(client.delete(f"{API}/projects/acme"), 404)


def test_limited_guest_sees_the_project_but_not_its_insides(registry: Registry) -> None:
    client = client_for(registry, LIMITED_GUEST)
    assert json_object(client.get(f"{API}/projects/acme"))["role"] == "limited-guest"
    assert_error(client.get(f"{API}/projects/acme/members"), 403, "FORBIDDEN")
    assert_error(client.get(f"{API}/projects/acme/audit-logs"), 403, "FORBIDDEN")
    assert_error(client.get(f"{API}/projects/acme/robots"), 403, "FORBIDDEN")
    assert_error(client.get(f"{API}/repositories", params={"project": "acme"}), 403)


# -- create -------------------------------------------------------------------------------------


def test_admin_creates_a_project(registry: Registry) -> None:
    admin = client_for(registry, "admin")
    body = {"name": "team", "public": True, "quota_bytes": 1000}
    created = json_object(admin.post(f"{API}/projects", json=body), 201)
    assert set(created) == PROJECT_FIELDS
    assert created["name"] == "team"
    assert created["public"] is True
    assert created["quota_bytes"] == 1000
    assert created["created_by"] == "admin"
    assert created["repository_count"] == 0
    # The admin is no member (admins see everything anyway).
    assert json_list(admin.get(f"{API}/projects/team/members")) == []
    assert "team" in names(json_list(client_for(registry).get(f"{API}/projects")))


@pytest.mark.parametrize("user", ["outsider", DEVELOPER, PROJECT_ADMIN])
def test_non_admins_may_not_create_projects_by_default(registry: Registry, user: str) -> None:
    response = client_for(registry, user).post(f"{API}/projects", json={"name": "mine"})
    assert_error(response, 403, "FORBIDDEN")
    assert_error(client_for(registry, "admin").get(f"{API}/projects/mine"), 404)


def test_anonymous_may_not_create_projects(registry: Registry) -> None:
    assert_error(client_for(registry).post(f"{API}/projects", json={"name": "x"}), 401)


def test_users_may_create_projects_when_allowed(make_registry: MakeRegistry) -> None:
    registry = make_registry(projects={"creation": "users"})
    client = client_for(registry, "outsider")
    created = json_object(client.post(f"{API}/projects", json={"name": "mine"}), 201)
    assert created["role"] == "project-admin"
    assert created["created_by"] == "outsider"
    assert created["public"] is False
    members = json_list(client.get(f"{API}/projects/mine/members"))
    assert members == [{"name": "outsider", "kind": "user", "role": "project-admin"}]
    # The creator manages it like any project admin.
    assert client.patch(f"{API}/projects/mine", json={"public": True}).status_code == 200
    assert client.put(f"{API}/projects/mine/members/guest", json={"role": "guest"}).is_success
    # Robots still may not create projects.
    robot = json_object(
        client.post(f"{API}/projects/mine/robots", json={"name": "ci", "permissions": ["pull"]}),
        201,
    )
    robot_client = client_for(registry, robot["name"], robot["secret"])
    assert_error(robot_client.post(f"{API}/projects", json={"name": "robots"}), 403)
    # Anonymous callers neither.
    assert_error(client_for(registry).post(f"{API}/projects", json={"name": "anon"}), 401)


INVALID_PROJECT_NAMES = ["Acme", "a/b", "-lead", "trail-", "two..dots", "has space", "ünï", "a:b"]
VALID_PROJECT_NAMES = ["a", "a" * 64, "a-b", "a--b", "a__b", "a.b", "a_b", "0"]


def test_project_names(registry: Registry) -> None:
    admin = client_for(registry, "admin")
    for name in [*INVALID_PROJECT_NAMES, "a" * 65, ""]:
        response = admin.post(f"{API}/projects", json={"name": name})
        assert response.status_code == 400, name
        assert_error(response, 400, "INVALID")
    for name in VALID_PROJECT_NAMES:
        response = admin.post(f"{API}/projects", json={"name": name})
        assert json_object(response, 201)["name"] == name
    listed = {p["name"] for p in json_list(admin.get(f"{API}/projects?page_size=100"))}
    assert listed == {"acme", "pub", *VALID_PROJECT_NAMES}


def test_duplicate_project_is_409(registry: Registry) -> None:
    response = client_for(registry, "admin").post(f"{API}/projects", json={"name": "acme"})
    assert_error(response, 409, "CONFLICT")


def test_negative_quota_is_400(registry: Registry) -> None:
    admin = client_for(registry, "admin")
    assert_error(admin.post(f"{API}/projects", json={"name": "q", "quota_bytes": -1}), 400)
    assert_error(admin.patch(f"{API}/projects/acme", json={"quota_bytes": -1}), 400)


# -- change -------------------------------------------------------------------------------------


def test_project_admin_changes_visibility_and_quota(registry: Registry) -> None:
    client = client_for(registry, PROJECT_ADMIN)
    made_public = json_object(client.patch(f"{API}/projects/acme", json={"public": True}))
    assert made_public["public"] is True
    assert made_public["role"] == "project-admin"
    assert "acme" in names(json_list(client_for(registry).get(f"{API}/projects")))
    assert json_object(client_for(registry, "outsider").get(f"{API}/projects/acme"))["public"]

    quota = json_object(client.patch(f"{API}/projects/acme", json={"quota_bytes": 5000}))
    assert quota["quota_bytes"] == 5000
    assert quota["public"] is True  # untouched
    cleared = json_object(client.patch(f"{API}/projects/acme", json={"clear_quota": True}))
    assert cleared["quota_bytes"] is None
    private = json_object(client.patch(f"{API}/projects/acme", json={"public": False}))
    assert private["public"] is False
    assert_error(client_for(registry).get(f"{API}/projects/acme"), 404)


@pytest.mark.parametrize("user", [MAINTAINER, DEVELOPER, GUEST, LIMITED_GUEST])
def test_only_project_admins_change_a_project(registry: Registry, user: str) -> None:
    client = client_for(registry, user)
    assert_error(client.patch(f"{API}/projects/acme", json={"public": True}), 403, "FORBIDDEN")
    assert_error(client.patch(f"{API}/projects/acme", json={"quota_bytes": 1}), 403)
    assert_error(client.delete(f"{API}/projects/acme"), 403, "FORBIDDEN")
    project = registry.auth.projects.get("acme")
    assert project.public is False
    assert project.quota_bytes is None


def test_anonymous_cannot_change_a_public_project(registry: Registry) -> None:
    client = client_for(registry)
    assert_error(client.patch(f"{API}/projects/pub", json={"public": False}), 401)
    assert_error(client.delete(f"{API}/projects/pub"), 401)
    outsider = client_for(registry, "outsider")
    assert_error(outsider.patch(f"{API}/projects/pub", json={"public": False}), 403)


def test_patch_missing_project_is_404(registry: Registry) -> None:
    admin = client_for(registry, "admin")
    assert_error(admin.patch(f"{API}/projects/nothing", json={"public": True}), 404)
    assert_error(admin.delete(f"{API}/projects/nothing"), 404)


# -- delete -------------------------------------------------------------------------------------


def test_project_with_repositories_cannot_be_deleted(registry: Registry) -> None:
    admin = client_for(registry, "admin")
    push_image(admin, "acme/app", "v1")
    project = json_object(admin.get(f"{API}/projects/acme"))
    assert project["repository_count"] == 1
    entry = assert_error(admin.delete(f"{API}/projects/acme"), 400, "INVALID")
    assert "acme/app" in entry["message"]
    assert admin.get(f"{API}/projects/acme").status_code == 200
    # Once the repository is gone, the project can go.
    assert admin.delete(f"{API}/repositories/acme/app").status_code == 204
    assert json_object(admin.get(f"{API}/projects/acme"))["repository_count"] == 0
    assert admin.delete(f"{API}/projects/acme").status_code == 204
    assert_error(admin.get(f"{API}/projects/acme"), 404)


def test_project_admin_deletes_an_empty_project(registry: Registry) -> None:
    client = client_for(registry, PROJECT_ADMIN)
    robot = json_object(
        client.post(f"{API}/projects/acme/robots", json={"name": "ci", "permissions": ["pull"]}),
        201,
    )
    assert client.delete(f"{API}/projects/acme").status_code == 204
    assert_error(client.get(f"{API}/projects/acme"), 404)
    admin = client_for(registry, "admin")
    assert_error(admin.get(f"{API}/robots/{robot['name']}"), 404)  # went with the project
    # A new project of the same name does not inherit the old members.
    assert admin.post(f"{API}/projects", json={"name": "acme"}).status_code == 201
    assert json_list(admin.get(f"{API}/projects/acme/members")) == []
    assert_error(client.get(f"{API}/projects/acme"), 404)


# -- members ------------------------------------------------------------------------------------


def test_members_list(registry: Registry) -> None:
    members = json_list(client_for(registry, GUEST).get(f"{API}/projects/acme/members"))
    assert members == [
        {"name": name, "kind": "user", "role": role.value}
        for role, name in sorted(ROLE_USERS.items(), key=lambda item: item[1])
    ]


def test_project_admin_sets_and_removes_members(registry: Registry) -> None:
    client = client_for(registry, PROJECT_ADMIN)
    added = json_object(
        client.put(f"{API}/projects/acme/members/outsider", json={"role": "developer"})
    )
    assert added == {"name": "outsider", "kind": "user", "role": "developer"}
    outsider = client_for(registry, "outsider")
    assert json_object(outsider.get(f"{API}/projects/acme"))["role"] == "developer"

    changed = client.put(f"{API}/projects/acme/members/outsider", json={"role": "maintainer"})
    assert json_object(changed)["role"] == "maintainer"
    roles = {m["name"]: m["role"] for m in json_list(client.get(f"{API}/projects/acme/members"))}
    assert roles["outsider"] == "maintainer"

    assert client.delete(f"{API}/projects/acme/members/outsider").status_code == 204
    assert_error(outsider.get(f"{API}/projects/acme"), 404)
    assert_error(client.delete(f"{API}/projects/acme/members/outsider"), 404, "NOT_FOUND")


def test_group_members(registry: Registry) -> None:
    client = client_for(registry, PROJECT_ADMIN)
    response = client.put(
        f"{API}/projects/acme/members/Platform-Team", json={"role": "guest", "kind": "group"}
    )
    assert response.status_code == 200, response.text
    assert json_object(response)["kind"] == "group"
    members = json_list(client.get(f"{API}/projects/acme/members"))
    groups = [m for m in members if m["kind"] == "group"]
    # Group names compare without case, as LDAP compares them: stored casefolded.
    assert groups == [{"name": "platform-team", "kind": "group", "role": "guest"}]
    # A user of the same name is a different member.
    assert_error(client.delete(f"{API}/projects/acme/members/platform-team"), 404)
    removed = client.delete(f"{API}/projects/acme/members/PLATFORM-team", params={"kind": "group"})
    assert removed.status_code == 204, removed.text
    assert [
        m for m in json_list(client.get(f"{API}/projects/acme/members")) if m["kind"] == "group"
    ] == []


def test_members_errors(registry: Registry) -> None:
    client = client_for(registry, PROJECT_ADMIN)
    assert_error(client.put(f"{API}/projects/acme/members/nobody", json={"role": "guest"}), 404)
    assert_error(client.put(f"{API}/projects/acme/members/outsider", json={"role": "owner"}), 400)
    assert_error(
        client.put(
            f"{API}/projects/acme/members/outsider", json={"role": "guest", "kind": "robot"}
        ),
        400,
    )
    assert_error(client.put(f"{API}/projects/acme/members/outsider", json={}), 400)
    assert_error(client.delete(f"{API}/projects/acme/members/guest", params={"kind": "robot"}), 400)
    assert_error(
        client.put(f"{API}/projects/nothing/members/outsider", json={"role": "guest"}), 404
    )


@pytest.mark.parametrize("user", [MAINTAINER, DEVELOPER, GUEST])
def test_only_project_admins_manage_members(registry: Registry, user: str) -> None:
    client = client_for(registry, user)
    assert client.get(f"{API}/projects/acme/members").status_code == 200
    assert_error(client.put(f"{API}/projects/acme/members/outsider", json={"role": "guest"}), 403)
    assert_error(
        client.put(f"{API}/projects/acme/members/{user}", json={"role": "project-admin"}), 403
    )
    assert_error(client.delete(f"{API}/projects/acme/members/guest"), 403)
    assert_error(
        client.put(f"{API}/projects/acme/members/g", json={"role": "guest", "kind": "group"}),
        403,
    )
    roles = {m.name: m.role.value for m in registry.auth.projects.members("acme")}
    assert roles[user] != "project-admin"
    assert "outsider" not in roles


def test_outsider_cannot_manage_members(registry: Registry) -> None:
    client = client_for(registry, "outsider")
    assert_error(
        client.put(f"{API}/projects/acme/members/outsider", json={"role": "project-admin"}), 404
    )
    assert_error(client.put(f"{API}/projects/pub/members/outsider", json={"role": "guest"}), 403)


def test_public_project_members_are_for_members_only(registry: Registry) -> None:
    """A public project shows its images, not its people."""
    client_for(registry, "admin").put(f"{API}/projects/pub/members/guest", json={"role": "guest"})
    assert_error(client_for(registry).get(f"{API}/projects/pub/members"), 401, "UNAUTHORIZED")
    assert_error(client_for(registry, "outsider").get(f"{API}/projects/pub/members"), 403)
    members = json_list(client_for(registry, GUEST).get(f"{API}/projects/pub/members"))
    assert members == [{"name": "guest", "kind": "user", "role": "guest"}]


def test_group_member_response_names_the_stored_group(registry: Registry) -> None:
    client = client_for(registry, PROJECT_ADMIN)
    response = client.put(
        f"{API}/projects/acme/members/Platform-Team", json={"role": "guest", "kind": "group"}
    )
    listed = [
        m for m in json_list(client.get(f"{API}/projects/acme/members")) if m["kind"] == "group"
    ]
    assert [json_object(response)] == listed
