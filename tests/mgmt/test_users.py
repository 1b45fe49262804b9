"""Users: administrators create, list (paged, searched), read, change and delete accounts;
everyone signed in reads their own profile and changes their own password."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.auth.conftest import PASSWORD, ROLE_USERS, Registry
from tests.mgmt.conftest import API, DEVELOPER, client_for, sign_in
from tests.mgmt.helpers import (
    assert_error,
    json_list,
    json_object,
    links,
    total_count,
)

ALL_USERS = sorted(["admin", "outsider", *ROLE_USERS.values()])
USER_FIELDS = {"username", "email", "source", "admin", "disabled", "created_at", "last_login_at"}


def test_admin_creates_reads_updates_and_deletes_a_user(registry: Registry) -> None:
    admin = client_for(registry, "admin")
    created = json_object(
        admin.post(
            f"{API}/users",
            json={"username": "erin", "password": "erins-password", "email": "erin@example.com"},
        ),
        201,
    )
    assert set(created) == USER_FIELDS
    assert created["username"] == "erin"
    assert created["email"] == "erin@example.com"
    assert created["source"] == "local"
    assert created["admin"] is False
    assert created["disabled"] is False
    assert created["last_login_at"] is None
    assert datetime.fromisoformat(created["created_at"]).tzinfo is not None
    assert "password" not in admin.get(f"{API}/users/erin").text

    # The new user can sign in, and that is recorded.
    assert client_for(registry, "erin", "erins-password").get(f"{API}/users/current").is_success
    fetched = json_object(admin.get(f"{API}/users/erin"))
    assert fetched["last_login_at"] is not None

    updated = json_object(
        admin.patch(f"{API}/users/erin", json={"admin": True, "email": "e@example.com"})
    )
    assert updated["admin"] is True
    assert updated["email"] == "e@example.com"
    assert client_for(registry, "erin", "erins-password").get(f"{API}/users").status_code == 200

    assert admin.delete(f"{API}/users/erin").status_code == 204
    assert_error(admin.get(f"{API}/users/erin"), 404, "NOT_FOUND")
    assert_error(admin.delete(f"{API}/users/erin"), 404, "NOT_FOUND")
    assert_error(client_for(registry, "erin", "erins-password").get(f"{API}/users/current"), 401)


def test_create_admin_user(registry: Registry) -> None:
    admin = client_for(registry, "admin")
    body = {"username": "root2", "password": "root2-password", "admin": True}
    assert json_object(admin.post(f"{API}/users", json=body), 201)["admin"] is True
    assert client_for(registry, "root2", "root2-password").get(f"{API}/users").status_code == 200


def test_duplicate_user_is_409(registry: Registry) -> None:
    admin = client_for(registry, "admin")
    response = admin.post(f"{API}/users", json={"username": DEVELOPER, "password": "x" * 12})
    assert_error(response, 409, "CONFLICT")


def test_invalid_usernames_are_400(registry: Registry) -> None:
    admin = client_for(registry, "admin")
    for username in ("-dash", ".dot", "has space", "slash/name", "colon:name", "a" * 129, "ünï"):
        response = admin.post(f"{API}/users", json={"username": username, "password": "x" * 12})
        assert response.status_code == 400, username
        assert_error(response, 400, "INVALID")
    assert [u["username"] for u in json_list(admin.get(f"{API}/users"))] == ALL_USERS


def test_password_policy_on_create(registry: Registry) -> None:
    admin = client_for(registry, "admin")
    for password in ("short", "1234567", " padded-password", "padded-pass "):
        response = admin.post(f"{API}/users", json={"username": "frank", "password": password})
        assert response.status_code == 400, password
        assert_error(response, 400, "INVALID")
        assert_error(admin.get(f"{API}/users/frank"), 404)
    accepted = admin.post(f"{API}/users", json={"username": "frank", "password": "12345678"})
    assert accepted.status_code == 201, accepted.text


def test_password_policy_on_admin_reset(registry: Registry) -> None:
    admin = client_for(registry, "admin")
    assert_error(admin.patch(f"{API}/users/{DEVELOPER}", json={"password": "short"}), 400)
    assert client_for(registry, DEVELOPER).get(f"{API}/users/current").status_code == 200
    reset = admin.patch(f"{API}/users/{DEVELOPER}", json={"password": "reset-by-admin"})
    assert reset.status_code == 200, reset.text
    assert_error(client_for(registry, DEVELOPER).get(f"{API}/users/current"), 401)
    after = client_for(registry, DEVELOPER, "reset-by-admin").get(f"{API}/users/current")
    assert after.status_code == 200


def test_list_users_is_sorted_and_complete(registry: Registry) -> None:
    response = client_for(registry, "admin").get(f"{API}/users")
    users = json_list(response)
    assert [u["username"] for u in users] == ALL_USERS
    assert total_count(response) == len(ALL_USERS)
    assert links(response) == {}
    assert all(set(u) == USER_FIELDS for u in users)


def test_list_users_pages(registry: Registry) -> None:
    admin = client_for(registry, "admin")
    seen: list[str] = []
    url: str | None = f"{API}/users?page_size=3"
    pages = 0
    while url:
        response = admin.get(url)
        page = json_list(response)
        assert total_count(response) == len(ALL_USERS)
        assert len(page) == 3 or not links(response).get("next")
        seen += [u["username"] for u in page]
        pages += 1
        url = links(response).get("next")
    assert seen == ALL_USERS
    assert pages == 3  # 7 users, 3 a page

    middle = admin.get(f"{API}/users", params={"page": 2, "page_size": 3})
    assert [u["username"] for u in json_list(middle)] == ALL_USERS[3:6]
    rels = links(middle)
    assert set(rels) == {"next", "prev"}
    assert parse_qs(urlsplit(rels["prev"]).query) == {"page": ["1"], "page_size": ["3"]}
    assert parse_qs(urlsplit(rels["next"]).query) == {"page": ["3"], "page_size": ["3"]}
    assert urlsplit(rels["next"]).path == f"{API}/users"

    beyond = admin.get(f"{API}/users", params={"page": 9, "page_size": 3})
    assert json_list(beyond) == []
    assert total_count(beyond) == len(ALL_USERS)
    assert set(links(beyond)) == {"prev"}


def test_search_users(registry: Registry) -> None:
    admin = client_for(registry, "admin")
    response = admin.get(f"{API}/users", params={"q": "guest"})
    assert [u["username"] for u in json_list(response)] == ["guest", "limitedguest"]
    assert total_count(response) == 2
    # The Link keeps the search.
    paged = admin.get(f"{API}/users", params={"q": "guest", "page_size": 1})
    assert parse_qs(urlsplit(links(paged)["next"]).query)["q"] == ["guest"]
    assert json_list(admin.get(f"{API}/users", params={"q": "%"})) == []
    assert json_list(admin.get(f"{API}/users", params={"q": "_"})) == []
    assert json_list(admin.get(f"{API}/users", params={"q": "nobody-like-this"})) == []


@pytest.mark.parametrize("user", ["outsider", DEVELOPER, "projectadmin"])
def test_non_admins_may_not_manage_users(registry: Registry, user: str) -> None:
    client = client_for(registry, user)
    assert_error(client.get(f"{API}/users"), 403, "FORBIDDEN")
    assert_error(client.get(f"{API}/users/admin"), 403, "FORBIDDEN")
    assert_error(client.post(f"{API}/users", json={"username": "x", "password": "x" * 12}), 403)
    assert_error(client.patch(f"{API}/users/{user}", json={"admin": True}), 403, "FORBIDDEN")
    assert_error(client.delete(f"{API}/users/admin"), 403, "FORBIDDEN")
    assert registry.auth.accounts.get_user(user).is_admin is False


def test_anonymous_may_not_manage_users(registry: Registry) -> None:
    client = client_for(registry)
    for response in (
        client.get(f"{API}/users"),
        client.get(f"{API}/users/admin"),
        client.get(f"{API}/users/current"),
        client.post(f"{API}/users", json={"username": "x", "password": "x" * 12}),
        client.patch(f"{API}/users/admin", json={"disabled": True}),
        client.delete(f"{API}/users/admin"),
        client.put(
            f"{API}/users/current/password",
            json={"old_password": "a", "new_password": "b" * 10},
        ),
    ):
        assert_error(response, 401, "UNAUTHORIZED")
        # No Basic challenge without Basic credentials: a browser must not pop up a dialog.
        assert "www-authenticate" not in response.headers


def test_bad_basic_credentials_are_401_with_a_challenge(registry: Registry) -> None:
    response = client_for(registry, "admin", "wrong").get(f"{API}/users")
    assert_error(response, 401, "UNAUTHORIZED")
    assert response.headers["www-authenticate"].startswith("Basic")
    for header in ("Basic !!!", "Basic " + "a" * 10, "Bearer abc", "Digest x"):
        response = registry.as_caller({"Authorization": header}).get(f"{API}/users")
        assert_error(response, 401, "UNAUTHORIZED")


def test_current_user(registry: Registry) -> None:
    me = json_object(client_for(registry, DEVELOPER).get(f"{API}/users/current"))
    assert me["username"] == DEVELOPER
    assert me["admin"] is False
    assert set(me) == USER_FIELDS


def test_change_own_password(registry: Registry) -> None:
    client = client_for(registry, DEVELOPER)
    wrong_old = client.put(
        f"{API}/users/current/password",
        json={"old_password": "not-my-password", "new_password": "a-new-password"},
    )
    assert_error(wrong_old, 400, "INVALID")
    too_short = client.put(
        f"{API}/users/current/password",
        json={"old_password": PASSWORD, "new_password": "short"},
    )
    assert_error(too_short, 400, "INVALID")
    missing_old = client.put(
        f"{API}/users/current/password", json={"new_password": "a-new-password"}
    )
    assert_error(missing_old, 400, "INVALID")
    # Nothing changed yet.
    assert client.get(f"{API}/users/current").status_code == 200

    changed = client.put(
        f"{API}/users/current/password",
        json={"old_password": PASSWORD, "new_password": "a-new-password"},
    )
    assert changed.status_code == 204, changed.text
    assert_error(client.get(f"{API}/users/current"), 401)
    assert client_for(registry, DEVELOPER, "a-new-password").get(f"{API}/users/current").is_success
    assert sign_in(registry, DEVELOPER, "a-new-password").csrf_token


def test_robots_have_no_profile_or_password(registry: Registry) -> None:
    admin = client_for(registry, "admin")
    robot = json_object(
        admin.post(f"{API}/projects/acme/robots", json={"name": "ci", "permissions": ["pull"]}),
        201,
    )
    client = client_for(registry, robot["name"], robot["secret"])
    assert_error(client.get(f"{API}/users/current"), 403, "FORBIDDEN")
    response = client.put(
        f"{API}/users/current/password",
        json={"old_password": robot["secret"], "new_password": "robot-password"},
    )
    assert_error(response, 403, "FORBIDDEN")
    assert_error(client.get(f"{API}/users"), 403, "FORBIDDEN")


def test_last_admin_cannot_be_disabled_demoted_or_deleted(registry: Registry) -> None:
    admin = client_for(registry, "admin")
    for change in ({"disabled": True}, {"admin": False}):
        assert_error(admin.patch(f"{API}/users/admin", json=change), 400, "INVALID")
    assert_error(admin.delete(f"{API}/users/admin"), 400, "INVALID")
    me = json_object(admin.get(f"{API}/users/admin"))
    assert me["admin"] is True
    assert me["disabled"] is False


def test_a_disabled_admin_does_not_count_as_another_admin(registry: Registry) -> None:
    admin = client_for(registry, "admin")
    body = {"username": "backup", "password": "backup-password", "admin": True}
    assert admin.post(f"{API}/users", json=body).status_code == 201
    assert admin.patch(f"{API}/users/backup", json={"disabled": True}).status_code == 200
    assert_error(admin.delete(f"{API}/users/admin"), 400, "INVALID")
    assert_error(admin.patch(f"{API}/users/admin", json={"disabled": True}), 400, "INVALID")


def test_an_admin_can_go_once_another_exists(registry: Registry) -> None:
    admin = client_for(registry, "admin")
    body = {"username": "backup", "password": "backup-password", "admin": True}
    assert admin.post(f"{API}/users", json=body).status_code == 201
    demoted = admin.patch(f"{API}/users/admin", json={"admin": False})
    assert json_object(demoted)["admin"] is False
    assert_error(admin.get(f"{API}/users"), 403, "FORBIDDEN")
    backup = client_for(registry, "backup", "backup-password")
    assert_error(backup.delete(f"{API}/users/backup"), 400, "INVALID")  # now the last one
    assert backup.delete(f"{API}/users/admin").status_code == 204


def test_disabled_user_cannot_sign_in_until_enabled(registry: Registry) -> None:
    admin = client_for(registry, "admin")
    disabled = json_object(admin.patch(f"{API}/users/{DEVELOPER}", json={"disabled": True}))
    assert disabled["disabled"] is True
    assert_error(client_for(registry, DEVELOPER).get(f"{API}/users/current"), 401)
    admin.patch(f"{API}/users/{DEVELOPER}", json={"disabled": False})
    assert client_for(registry, DEVELOPER).get(f"{API}/users/current").status_code == 200


def test_missing_user_is_404(registry: Registry) -> None:
    admin = client_for(registry, "admin")
    assert_error(admin.get(f"{API}/users/nobody"), 404, "NOT_FOUND")
    assert_error(admin.patch(f"{API}/users/nobody", json={"admin": True}), 404, "NOT_FOUND")
    assert_error(admin.delete(f"{API}/users/nobody"), 404, "NOT_FOUND")


def test_deleting_a_user_removes_their_memberships(registry: Registry) -> None:
    admin = client_for(registry, "admin")
    assert admin.delete(f"{API}/users/{DEVELOPER}").status_code == 204
    members = json_list(admin.get(f"{API}/projects/acme/members"))
    assert DEVELOPER not in [m["name"] for m in members]
    # A new account of the same name starts with nothing.
    body = {"username": DEVELOPER, "password": "fresh-password"}
    assert admin.post(f"{API}/users", json=body).status_code == 201
    assert_error(client_for(registry, DEVELOPER, "fresh-password").get(f"{API}/projects/acme"), 404)
