"""Web UI sessions: sign-in sets an HttpOnly, SameSite=Strict cookie (Secure behind https),
state-changing requests need the session's X-CSRF-Token, sign-out is final, a disabled
user's session stops working, failed sign-ins are throttled, robots get no session."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import update

from portside.metadata import schema as s
from portside.metadata.db import utcnow
from portside.mgmt.sessions import COOKIE
from tests.auth.conftest import PASSWORD, Registry
from tests.mgmt.conftest import (
    API,
    DEVELOPER,
    MakeRegistry,
    client_for,
    session_client,
    sign_in,
)
from tests.mgmt.helpers import assert_error, json_object


def cookie_attributes(set_cookie: str) -> tuple[str, dict[str, str]]:
    """(value, {attribute (lowercased): value}) of one Set-Cookie header for our cookie."""
    first, *rest = (part.strip() for part in set_cookie.split(";"))
    name, _, value = first.partition("=")
    assert name == COOKIE, set_cookie
    attributes = {}
    for part in rest:
        key, _, attribute = part.partition("=")
        attributes[key.strip().lower()] = attribute.strip()
    return value, attributes


def test_sign_in_sets_a_strict_http_only_cookie(registry: Registry) -> None:
    response = client_for(registry).post(
        f"{API}/sessions", json={"username": DEVELOPER, "password": PASSWORD}
    )
    body = json_object(response, 201)
    value, attributes = cookie_attributes(response.headers["set-cookie"])
    assert len(value) >= 32
    assert "httponly" in attributes
    assert attributes["samesite"].lower() == "strict"
    assert attributes["path"] == "/"
    assert "secure" not in attributes  # the registry's URL is http://
    assert int(attributes["max-age"]) == 12 * 3600
    assert isinstance(body["csrf_token"], str)
    assert len(body["csrf_token"]) >= 32
    assert body["csrf_token"] != value
    assert body["user"]["username"] == DEVELOPER
    assert body["user"]["admin"] is False
    expires = datetime.fromisoformat(body["expires_at"])
    assert timedelta(hours=11) < expires - datetime.now(expires.tzinfo) <= timedelta(hours=12)
    assert value not in response.text  # the cookie is never in a body a script can read


def test_cookie_is_secure_when_the_registry_is_https(make_registry: MakeRegistry) -> None:
    registry = make_registry(external_url="https://registry.example.com")
    response = client_for(registry).post(
        f"{API}/sessions", json={"username": "admin", "password": PASSWORD}
    )
    assert response.status_code == 201, response.text
    _, attributes = cookie_attributes(response.headers["set-cookie"])
    assert "secure" in attributes
    assert "httponly" in attributes
    assert attributes["samesite"].lower() == "strict"


def test_each_sign_in_is_a_new_session(registry: Registry) -> None:
    first, second = sign_in(registry, DEVELOPER), sign_in(registry, DEVELOPER)
    assert first.cookie != second.cookie
    assert first.csrf_token != second.csrf_token
    # The token of one session does not unlock the other.
    mixed = registry.as_caller(
        {"Cookie": f"{COOKIE}={first.cookie}", "X-CSRF-Token": second.csrf_token}
    )
    assert_error(mixed.delete(f"{API}/sessions/current"), 403, "FORBIDDEN")


def test_cookie_authenticates_reads_without_a_token(registry: Registry) -> None:
    session = sign_in(registry, DEVELOPER)
    client = session_client(registry, session, csrf=False)
    me = json_object(client.get(f"{API}/users/current"))
    assert me["username"] == DEVELOPER
    projects = {p["name"] for p in client.get(f"{API}/projects").json()}
    assert projects == {"acme", "pub"}


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", f"{API}/projects/acme/robots", {"name": "ci", "permissions": ["pull"]}),
        ("PATCH", f"{API}/projects/acme", {"public": True}),
        ("PUT", f"{API}/projects/acme/members/outsider", {"role": "guest"}),
        ("DELETE", f"{API}/projects/acme/members/guest", None),
    ],
)
def test_state_changes_need_the_csrf_token(
    registry: Registry, method: str, path: str, body: dict[str, object] | None
) -> None:
    session = sign_in(registry, "projectadmin")
    without = session_client(registry, session, csrf=False)
    assert_error(without.request(method, path, json=body), 403, "FORBIDDEN")
    wrong = registry.as_caller(
        {"Cookie": f"{COOKIE}={session.cookie}", "X-CSRF-Token": session.csrf_token[:-2] + "xx"}
    )
    assert_error(wrong.request(method, path, json=body), 403, "FORBIDDEN")
    empty = registry.as_caller({"Cookie": f"{COOKIE}={session.cookie}", "X-CSRF-Token": ""})
    assert_error(empty.request(method, path, json=body), 403, "FORBIDDEN")
    # Nothing changed so far.
    acme = registry.auth.projects.get("acme")
    assert acme.public is False
    assert registry.auth.robots.find("acme") == []
    members = {m.name: m.role.value for m in registry.auth.projects.members("acme")}
    assert "outsider" not in members
    assert members["guest"] == "guest"
    # With the right token it works.
    right = session_client(registry, session)
    response = right.request(method, path, json=body)
    assert response.status_code in (200, 201, 204), response.text


def test_csrf_is_checked_before_anything_else(registry: Registry) -> None:
    """Even a request that would fail validation is refused for the missing token first,
    so a forged request learns nothing."""
    session = sign_in(registry, "admin")
    client = session_client(registry, session, csrf=False)
    assert_error(client.post(f"{API}/users", json={"nonsense": 1}), 403, "FORBIDDEN")
    assert_error(client.delete(f"{API}/users/nobody"), 403, "FORBIDDEN")


def test_csrf_token_of_a_session_works_on_every_kind_of_change(registry: Registry) -> None:
    session = sign_in(registry, "admin")
    admin = session_client(registry, session)
    created = admin.post(f"{API}/users", json={"username": "carol", "password": "carols-secret"})
    assert created.status_code == 201, created.text
    patched = admin.patch(f"{API}/users/carol", json={"email": "carol@example.com"})
    assert json_object(patched)["email"] == "carol@example.com"
    changed = admin.put(
        f"{API}/users/current/password",
        json={"old_password": PASSWORD, "new_password": "another-long-one"},
    )
    assert changed.status_code == 204, changed.text
    assert admin.delete(f"{API}/users/carol").status_code == 204


def test_basic_credentials_need_no_csrf_token(registry: Registry) -> None:
    """CSRF protects cookies, which a browser adds by itself; Basic credentials a script
    sends deliberately."""
    admin = client_for(registry, "admin")
    response = admin.post(f"{API}/users", json={"username": "dave", "password": "daves-secret"})
    assert response.status_code == 201, response.text


def test_sign_out_ends_the_session(registry: Registry) -> None:
    session = sign_in(registry, DEVELOPER)
    client = session_client(registry, session)
    response = client.delete(f"{API}/sessions/current")
    assert response.status_code == 204, response.text
    value, attributes = cookie_attributes(response.headers["set-cookie"])
    assert value in ("", '""')
    assert attributes.get("max-age") == "0" or "expires" in attributes
    # Re-sending the old cookie (and token) does not work any more.
    again = session_client(registry, session)
    assert_error(again.get(f"{API}/users/current"), 401, "UNAUTHORIZED")
    assert_error(again.post(f"{API}/projects", json={"name": "never"}), 401, "UNAUTHORIZED")
    # Another session of the same user is untouched.
    other = sign_in(registry, DEVELOPER)
    assert session_client(registry, other).get(f"{API}/users/current").status_code == 200


def test_sign_out_needs_the_csrf_token(registry: Registry) -> None:
    """Otherwise any site could sign the user out."""
    session = sign_in(registry, DEVELOPER)
    assert_error(
        session_client(registry, session, csrf=False).delete(f"{API}/sessions/current"),
        403,
        "FORBIDDEN",
    )
    assert session_client(registry, session).get(f"{API}/users/current").status_code == 200


def test_sign_out_without_a_session_is_harmless(registry: Registry) -> None:
    assert client_for(registry).delete(f"{API}/sessions/current").status_code == 204
    assert client_for(registry, "admin").delete(f"{API}/sessions/current").status_code == 204


def test_unknown_cookie_is_anonymous(registry: Registry) -> None:
    client = registry.as_caller({"Cookie": f"{COOKIE}=made-up", "X-CSRF-Token": "x"})
    assert_error(client.get(f"{API}/users/current"), 401, "UNAUTHORIZED")
    # Anonymous still sees public things.
    assert {p["name"] for p in client.get(f"{API}/projects").json()} == {"pub"}


def test_session_of_a_user_disabled_later_stops_working(registry: Registry) -> None:
    session = sign_in(registry, DEVELOPER)
    client = session_client(registry, session)
    assert client.get(f"{API}/users/current").status_code == 200
    admin = client_for(registry, "admin")
    assert admin.patch(f"{API}/users/{DEVELOPER}", json={"disabled": True}).status_code == 200
    assert_error(client.get(f"{API}/users/current"), 401, "UNAUTHORIZED")
    assert_error(client.get(f"{API}/projects/acme"), 404, "NOT_FOUND")
    # Enabling the user again does not revive the old session.
    assert admin.patch(f"{API}/users/{DEVELOPER}", json={"disabled": False}).status_code == 200
    assert_error(client.get(f"{API}/users/current"), 401, "UNAUTHORIZED")


def test_session_of_a_deleted_user_stops_working(registry: Registry) -> None:
    session = sign_in(registry, "outsider")
    client_for(registry, "admin").delete(f"{API}/users/outsider")
    assert_error(session_client(registry, session).get(f"{API}/users/current"), 401)


def test_session_follows_the_users_current_rights(registry: Registry) -> None:
    """Rights are looked up on each request, not frozen at sign-in."""
    session = sign_in(registry, "outsider")
    client = session_client(registry, session)
    assert_error(client.get(f"{API}/users"), 403, "FORBIDDEN")
    client_for(registry, "admin").patch(f"{API}/users/outsider", json={"admin": True})
    assert client.get(f"{API}/users").status_code == 200


def test_password_reset_ends_the_users_sessions(registry: Registry) -> None:
    session = sign_in(registry, DEVELOPER)
    admin = client_for(registry, "admin")
    reset = admin.patch(f"{API}/users/{DEVELOPER}", json={"password": "brand-new-password"})
    assert reset.status_code == 200, reset.text
    assert_error(session_client(registry, session).get(f"{API}/users/current"), 401)


def test_wrong_password_is_401(registry: Registry) -> None:
    client = client_for(registry)
    for username in (DEVELOPER, "nobody"):
        response = client.post(
            f"{API}/sessions", json={"username": username, "password": "wrong-password"}
        )
        entry = assert_error(response, 401, "UNAUTHORIZED")
        assert entry["message"] == "invalid username or password"
        assert COOKIE not in response.headers.get("set-cookie", "")


def test_disabled_user_cannot_sign_in(registry: Registry) -> None:
    client_for(registry, "admin").patch(f"{API}/users/{DEVELOPER}", json={"disabled": True})
    response = client_for(registry).post(
        f"{API}/sessions", json={"username": DEVELOPER, "password": PASSWORD}
    )
    assert_error(response, 401, "UNAUTHORIZED")


def test_failed_sign_ins_are_throttled(make_registry: MakeRegistry) -> None:
    registry = make_registry(auth={"throttle": {"max_failures": 3, "window_seconds": 300}})
    client = client_for(registry)
    wrong = {"username": DEVELOPER, "password": "wrong-password"}
    for _ in range(3):
        assert_error(client.post(f"{API}/sessions", json=wrong), 401, "UNAUTHORIZED")
    throttled = client.post(f"{API}/sessions", json=wrong)
    assert_error(throttled, 429, "TOOMANYREQUESTS")
    assert 0 < int(throttled.headers["retry-after"]) <= 300
    # The right password does not get through while throttled...
    right = client.post(f"{API}/sessions", json={"username": DEVELOPER, "password": PASSWORD})
    assert_error(right, 429, "TOOMANYREQUESTS")
    # ...nor Basic credentials for the same account from the same source...
    assert_error(client_for(registry, DEVELOPER).get(f"{API}/users/current"), 429)
    # ...but another account from the same source can still sign in.
    assert sign_in(registry, "guest").csrf_token


def test_robots_cannot_get_a_session(registry: Registry) -> None:
    admin = client_for(registry, "admin")
    created = json_object(
        admin.post(f"{API}/projects/acme/robots", json={"name": "ci", "permissions": ["pull"]}),
        201,
    )
    response = client_for(registry).post(
        f"{API}/sessions", json={"username": created["name"], "password": created["secret"]}
    )
    assert_error(response, 401, "UNAUTHORIZED")
    assert COOKIE not in response.headers.get("set-cookie", "")
    # The secret itself is fine: Basic works for the robot.
    robot = client_for(registry, created["name"], created["secret"])
    assert robot.get(f"{API}/projects/acme").status_code == 200


def test_sign_in_body_is_validated(registry: Registry) -> None:
    client = client_for(registry)
    for body in ({"username": "", "password": "x"}, {"username": "a"}, {"password": "x"}):
        assert_error(client.post(f"{API}/sessions", json=body), 400, "INVALID")


def test_expired_session_stops_working(registry: Registry) -> None:
    session = sign_in(registry, DEVELOPER)
    client = session_client(registry, session)
    assert client.get(f"{API}/users/current").status_code == 200
    with registry.app.ctx.db.write() as conn:
        conn.execute(update(s.sessions).values(expires_at=utcnow() - timedelta(seconds=1)))
    assert_error(client.get(f"{API}/users/current"), 401, "UNAUTHORIZED")
    # An expired session is anonymous: its token unlocks nothing either.
    assert_error(client.post(f"{API}/projects", json={"name": "late"}), 401, "UNAUTHORIZED")
