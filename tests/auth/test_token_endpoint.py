"""/auth/token: what a token carries for each caller, request validation, the OAuth2
password grant, robots, refusals, and what logins leave in the audit log."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from portside.auth.roles import Role
from tests.auth.conftest import PASSWORD, Registry, basic, bearer
from tests.auth.fixtures import (
    ROLE_USERS,
    access_of,
    audit_rows,
    claims_of,
    expire_robot,
    make_robot,
    populated,
)


def token_response(
    registry: Registry, *scopes: str, headers: dict[str, str] | None = None, **params: Any
) -> httpx.Response:
    query: dict[str, Any] = {"service": "portside", "scope": list(scopes), **params}
    return registry.get("/auth/token", params=query, headers=headers or {})


def post_form(registry: Registry, **form: str) -> httpx.Response:
    return registry.client.post("/auth/token", data=form)


# --- what a token carries -------------------------------------------------------------


def test_anonymous_gets_only_pull_on_public_project(registry: Registry) -> None:
    token = registry.token("repository:pub/x:pull,push,delete")
    assert access_of(token) == {("repository", "pub/x"): ["pull"]}
    assert claims_of(token)["sub"] == ""


def test_anonymous_gets_nothing_on_private_project(registry: Registry) -> None:
    token = registry.token("repository:acme/x:pull,push", "repository:nowhere/x:pull")
    assert claims_of(token)["access"] == []


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        (Role.PROJECT_ADMIN, ["delete", "pull", "push"]),
        (Role.MAINTAINER, ["delete", "pull", "push"]),
        (Role.DEVELOPER, ["pull", "push"]),
        (Role.GUEST, ["pull"]),
        (Role.LIMITED_GUEST, ["pull"]),
    ],
)
def test_member_gets_intersection_of_request_and_role(
    registry: Registry, role: Role, expected: list[str]
) -> None:
    user = ROLE_USERS[role]
    everything = registry.token("repository:acme/x:pull,push,delete", user=user)
    assert access_of(everything) == {("repository", "acme/x"): expected}
    # Asking for less never gives more.
    only_pull = registry.token("repository:acme/x:pull", user=user)
    assert access_of(only_pull) == {("repository", "acme/x"): ["pull"]}


def test_member_gets_delete_only_when_role_allows(registry: Registry) -> None:
    maintainer = registry.token("repository:acme/x:delete", user="maintainer")
    assert access_of(maintainer) == {("repository", "acme/x"): ["delete"]}
    developer = registry.token("repository:acme/x:delete", user="developer")
    assert claims_of(developer)["access"] == []


def test_outsider_gets_public_pull_only(registry: Registry) -> None:
    token = registry.token(
        "repository:acme/x:pull,push", "repository:pub/y:pull,push", user="outsider"
    )
    assert access_of(token) == {("repository", "pub/y"): ["pull"]}


def test_admin_gets_everything_asked(registry: Registry) -> None:
    token = registry.token("repository:acme/x:*", "repository:pub/y:pull,push", user="admin")
    assert access_of(token) == {
        ("repository", "acme/x"): ["delete", "pull", "push"],
        ("repository", "pub/y"): ["pull", "push"],
    }


def test_catalog_scope_is_granted(registry: Registry) -> None:
    for user in (None, "guest", "admin"):
        token = registry.token("registry:catalog:*", user=user)
        assert access_of(token) == {("registry", "catalog"): ["*"]}
        assert registry.get("/v2/_catalog", headers=bearer(token)).status_code == 200


def test_scopes_from_several_parameters_merge(registry: Registry) -> None:
    token = registry.token(
        "repository:acme/a:pull",
        "repository:acme/a:push",
        "repository:acme/b:pull",
        user="developer",
    )
    assert access_of(token) == {
        ("repository", "acme/a"): ["pull", "push"],
        ("repository", "acme/b"): ["pull"],
    }


def test_space_separated_scopes_merge(registry: Registry) -> None:
    token = registry.token(
        "repository:acme/a:pull repository:acme/b:pull,push repository:acme/a:push",
        "registry:catalog:*",
        user="developer",
    )
    assert access_of(token) == {
        ("repository", "acme/a"): ["pull", "push"],
        ("repository", "acme/b"): ["pull", "push"],
        ("registry", "catalog"): ["*"],
    }


def test_no_scope_gives_token_without_access(registry: Registry) -> None:
    token = registry.token(user="developer")
    claims = claims_of(token)
    assert claims["access"] == []
    assert claims["sub"] == "developer"
    assert registry.get("/v2/", headers=bearer(token)).status_code == 200


def test_token_lifetime_follows_settings(tmp_path: Path, database_url: str) -> None:
    with populated(tmp_path, database_url, auth={"token": {"lifetime_seconds": 123}}) as reg:
        response = token_response(reg, "repository:acme/x:pull", headers=basic("guest"))
        assert response.status_code == 200
        body = response.json()
        assert body["expires_in"] == 123
        claims = claims_of(body["token"])
        assert claims["exp"] - claims["iat"] == 123
        assert claims["iss"] == "portside"
        assert claims["aud"] == "portside"
        assert body["issued_at"].endswith("Z")
        assert response.headers["cache-control"] == "no-store"


def test_default_token_lifetime(registry: Registry) -> None:
    claims = claims_of(registry.token(user="guest"))
    assert claims["exp"] - claims["iat"] == registry.app.ctx.settings.auth.token.lifetime_seconds
    assert claims["exp"] - claims["iat"] == 300


# --- refused requests -----------------------------------------------------------------


@pytest.mark.parametrize(
    "scope",
    [
        "repository:UPPER:pull",
        "foo:bar:baz",
        "repository:a:fly",
        "repository:a:pull,fly",
        "repository:acme/x",
        "repository::pull",
        "registry:catalog:pull",
        "registry:other:*",
        "justtext",
    ],
)
def test_invalid_scope_is_400(registry: Registry, scope: str) -> None:
    response = token_response(registry, scope, headers=basic("developer"))
    assert response.status_code == 400, response.text
    assert response.json()["errors"][0]["code"] == "INVALID_REQUEST"
    # One bad scope among good ones spoils the request.
    mixed = token_response(registry, "repository:acme/x:pull", scope)
    assert mixed.status_code == 400


def test_wrong_service_is_400(registry: Registry) -> None:
    response = registry.get(
        "/auth/token", params={"service": "elsewhere", "scope": "repository:acme/x:pull"}
    )
    assert response.status_code == 400
    assert "elsewhere" in response.json()["errors"][0]["message"]
    # Without `service` the registry's own is assumed.
    assert registry.get("/auth/token").status_code == 200


def test_wrong_password_is_401_with_basic_challenge(registry: Registry) -> None:
    response = token_response(registry, headers=basic("developer", "not-the-password"))
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Basic ")
    assert "token" not in response.text


def test_unknown_user_looks_like_wrong_password(registry: Registry) -> None:
    wrong = token_response(registry, headers=basic("developer", "not-the-password"))
    unknown = token_response(registry, headers=basic("nobody-here", "not-the-password"))
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.content == unknown.content
    assert wrong.headers["www-authenticate"] == unknown.headers["www-authenticate"]


def test_disabled_user_is_refused(registry: Registry) -> None:
    assert token_response(registry, headers=basic("developer")).status_code == 200
    registry.auth.accounts.update_user("developer", disabled=True)
    refused = token_response(registry, headers=basic("developer"))
    wrong = token_response(registry, headers=basic("guest", "not-the-password"))
    assert refused.status_code == 401
    assert refused.content == wrong.content
    registry.auth.accounts.update_user("developer", disabled=False)
    assert token_response(registry, headers=basic("developer")).status_code == 200


def test_bearer_credentials_are_not_accepted_for_login(registry: Registry) -> None:
    token = registry.token(user="developer")
    response = token_response(registry, headers=bearer(token))
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Basic ")


def test_password_may_contain_colons(registry: Registry) -> None:
    registry.auth.accounts.create_user("colon", "pass:with:colons")
    token = registry.token(user="colon", password="pass:with:colons")
    assert claims_of(token)["sub"] == "colon"


# --- POST (OAuth2 password grant) -----------------------------------------------------


def test_post_password_grant(registry: Registry) -> None:
    response = post_form(
        registry,
        grant_type="password",
        username="developer",
        password=PASSWORD,
        service="portside",
        scope="repository:acme/x:pull,push,delete repository:pub/y:pull",
        client_id="containerd",
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["access_token"] == body["token"]
    assert set(body["scope"].split(" ")) == {"repository:acme/x:pull,push", "repository:pub/y:pull"}
    assert access_of(body["access_token"]) == {
        ("repository", "acme/x"): ["pull", "push"],
        ("repository", "pub/y"): ["pull"],
    }
    assert body["expires_in"] == 300
    assert "refresh_token" not in body
    assert registry.get("/v2/", headers=bearer(body["access_token"])).status_code == 200


def test_post_password_grant_with_wrong_password(registry: Registry) -> None:
    response = post_form(
        registry, grant_type="password", username="developer", password="not-the-password"
    )
    assert response.status_code == 401
    assert "access_token" not in response.text


def test_post_refresh_token_grant_is_400(registry: Registry) -> None:
    response = post_form(
        registry, grant_type="refresh_token", refresh_token="anything", service="portside"
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "INVALID_REQUEST"


def test_post_json_is_400(registry: Registry) -> None:
    response = registry.client.post(
        "/auth/token",
        json={"grant_type": "password", "username": "developer", "password": PASSWORD},
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "INVALID_REQUEST"


def test_other_methods_are_refused(registry: Registry) -> None:
    response = registry.client.put("/auth/token")
    assert response.status_code == 405
    assert "GET" in response.headers["allow"]


# --- robots ---------------------------------------------------------------------------


def test_robot_gets_its_permissions(registry: Registry) -> None:
    name, secret = make_robot(registry)
    assert name == "robot$acme+ci"
    token = registry.token(
        "repository:acme/x:pull,push,delete", "repository:other/x:pull", user=name, password=secret
    )
    assert claims_of(token)["sub"] == name
    assert access_of(token) == {("repository", "acme/x"): ["pull", "push"]}


def test_system_robot_gets_permissions_in_each_project(registry: Registry) -> None:
    registry.auth.projects.create("other")
    name, secret = make_robot(
        registry,
        "builder",
        project=None,
        grants={"acme": frozenset({"pull"}), "other": frozenset({"pull", "push", "delete"})},
    )
    assert name == "robot$builder"
    token = registry.token(
        "repository:acme/x:pull,push", "repository:other/y:*", user=name, password=secret
    )
    assert access_of(token) == {
        ("repository", "acme/x"): ["pull"],
        ("repository", "other/y"): ["delete", "pull", "push"],
    }


def test_disabled_robot_is_refused(registry: Registry) -> None:
    name, secret = make_robot(registry)
    registry.auth.robots.set_disabled(name, True)
    assert token_response(registry, headers=basic(name, secret)).status_code == 401
    registry.auth.robots.set_disabled(name, False)
    assert token_response(registry, headers=basic(name, secret)).status_code == 200


def test_expired_robot_is_refused(registry: Registry) -> None:
    name, secret = make_robot(registry)
    assert token_response(registry, headers=basic(name, secret)).status_code == 200
    expire_robot(registry, name)
    assert token_response(registry, headers=basic(name, secret)).status_code == 401


def test_rotated_robot_secret(registry: Registry) -> None:
    name, old = make_robot(registry)
    new = registry.auth.robots.rotate_secret(name)
    assert new != old
    assert token_response(registry, headers=basic(name, old)).status_code == 401
    assert token_response(registry, headers=basic(name, new)).status_code == 200


def test_unknown_robot_looks_like_wrong_secret(registry: Registry) -> None:
    name, _secret = make_robot(registry)
    wrong = token_response(registry, headers=basic(name, "x" * 43))
    unknown = token_response(registry, headers=basic("robot$acme+nobody", "x" * 43))
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.content == unknown.content


# --- audit ----------------------------------------------------------------------------


def test_logins_are_audited_without_secrets(registry: Registry) -> None:
    wrong_password = "wrong-password-that-must-not-leak"
    robot, secret = make_robot(registry)
    assert token_response(registry, headers=basic("developer")).status_code == 200
    assert token_response(registry, headers=basic("developer", wrong_password)).status_code == 401
    assert token_response(registry, headers=basic("ghost-user", wrong_password)).status_code == 401
    assert token_response(registry, headers=basic(robot, secret)).status_code == 200
    assert (
        post_form(registry, grant_type="password", username="guest", password=PASSWORD).status_code
        == 200
    )
    # A failed Basic login straight on /v2 is audited too.
    assert registry.get("/v2/", headers=basic("maintainer", wrong_password)).status_code == 401

    entries, total = registry.app.ctx.audit.find(action="login")
    assert total == 6
    seen = sorted((e.actor, e.result) for e in entries)
    assert seen == [
        ("developer", "failure"),
        ("developer", "success"),
        ("ghost-user", "failure"),
        ("guest", "success"),
        ("maintainer", "failure"),
        (robot, "success"),
    ]
    for entry in entries:
        assert entry.resource == entry.actor
        assert entry.resource_type == "account"
        assert entry.source == "testclient"

    rows = audit_rows(registry)
    assert len(rows) >= 5
    for row in rows:
        for column, value in row.items():
            text = str(value)
            for secret_text in (PASSWORD, wrong_password, secret):
                assert secret_text not in text, (column, row)
