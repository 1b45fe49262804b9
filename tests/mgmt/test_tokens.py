"""Personal access tokens through the management API (/api/v1/users/current/tokens): who
may manage them (people with their password or a session; not robots, not a token), the
secret shown once, 409 and 404, audit entries; and the token at work as the password for
Basic on /v2, /auth/token and /api/v1, but never for a web UI sign-in or a password change."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import update
from starlette.testclient import TestClient

from portside.auth.access_tokens import PREFIX
from portside.metadata import schema as s
from portside.metadata.db import utcnow
from tests.api.helpers import push_image
from tests.auth.conftest import PASSWORD, Registry, basic, bearer
from tests.auth.fixtures import access_of, audit_rows, make_robot
from tests.mgmt.conftest import (
    API,
    DEVELOPER,
    GUEST,
    MAINTAINER,
    MakeRegistry,
    client_for,
    session_client,
    sign_in,
)
from tests.mgmt.helpers import assert_error, json_list, json_object

TOKENS = f"{API}/users/current/tokens"
TOKEN_FIELDS = {"id", "name", "created_at", "expires_at", "last_used_at"}


def create(client: TestClient, name: str = "laptop", **body: Any) -> dict[str, Any]:
    return json_object(client.post(TOKENS, json={"name": name, **body}), 201)


def token_client(registry: Registry, user: str, secret: str) -> TestClient:
    return client_for(registry, user, secret)


# --- create, list, revoke -------------------------------------------------------------------


def test_create_shows_the_secret_once(registry: Registry) -> None:
    developer = client_for(registry, DEVELOPER)
    before = datetime.now().astimezone()
    response = developer.post(TOKENS, json={"name": "laptop"})
    assert response.headers["cache-control"] == "no-store"
    created = json_object(response, 201)
    assert set(created) == TOKEN_FIELDS | {"secret"}
    secret = created["secret"]
    assert secret.startswith(PREFIX)
    assert len(secret) == len(PREFIX) + 40
    assert created["name"] == "laptop"
    assert created["expires_at"] is None
    assert created["last_used_at"] is None
    created_at = datetime.fromisoformat(created["created_at"])
    assert before - timedelta(seconds=1) <= created_at <= datetime.now().astimezone()

    listing = developer.get(TOKENS)
    listed = json_list(listing)
    assert listed == [{k: v for k, v in created.items() if k != "secret"}]
    assert secret not in listing.text
    assert secret not in developer.get(f"{API}/openapi.json").text


def test_list_has_only_the_callers_tokens_oldest_first(registry: Registry) -> None:
    developer = client_for(registry, DEVELOPER)
    first, second = create(developer, "laptop"), create(developer, "ci")
    create(client_for(registry, GUEST), "laptop")
    assert [t["id"] for t in json_list(developer.get(TOKENS))] == [first["id"], second["id"]]
    assert json_list(client_for(registry, "outsider").get(TOKENS)) == []


def test_expiry_in_days(registry: Registry) -> None:
    created = create(client_for(registry, DEVELOPER), expires_in_days=30)
    expires = datetime.fromisoformat(created["expires_at"])
    expected = datetime.now().astimezone() + timedelta(days=30)
    assert abs(expires - expected) < timedelta(minutes=1)


def test_duplicate_name_is_409(registry: Registry) -> None:
    developer = client_for(registry, DEVELOPER)
    create(developer)
    assert_error(developer.post(TOKENS, json={"name": "laptop"}), 409, "CONFLICT")
    assert len(json_list(developer.get(TOKENS))) == 1
    create(client_for(registry, GUEST))  # another user's namespace


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": ""},
        {"name": "x" * 65},
        {"name": 5},
        {"name": "ok", "expires_in_days": 0},
        {"name": "ok", "expires_in_days": 36501},
        {"name": "ok", "expires_in_days": -1},
        {"name": "ok", "secret": "psp_chosen-by-me"},
        {"name": "ok", "scopes": ["pull"]},
        {"name": " padded "},
        {"name": "tab\there"},
    ],
)
def test_invalid_bodies_are_400(registry: Registry, body: dict[str, Any]) -> None:
    developer = client_for(registry, DEVELOPER)
    assert_error(developer.post(TOKENS, json=body), 400, "INVALID")
    assert json_list(developer.get(TOKENS)) == []


def test_longest_name_and_longest_expiry_are_accepted(registry: Registry) -> None:
    created = create(client_for(registry, DEVELOPER), "x" * 64, expires_in_days=36500)
    assert created["name"] == "x" * 64


def test_revoke_is_204_then_404(registry: Registry) -> None:
    developer = client_for(registry, DEVELOPER)
    laptop, ci = create(developer, "laptop"), create(developer, "ci")
    assert developer.delete(f"{TOKENS}/{laptop['id']}").status_code == 204
    assert [t["name"] for t in json_list(developer.get(TOKENS))] == ["ci"]
    assert_error(developer.delete(f"{TOKENS}/{laptop['id']}"), 404, "NOT_FOUND")
    assert_error(developer.delete(f"{TOKENS}/999999"), 404, "NOT_FOUND")
    assert_error(developer.delete(f"{TOKENS}/not-a-number"), 400, "INVALID")
    assert token_client(registry, DEVELOPER, ci["secret"]).get("/v2/").status_code == 200
    assert_error(token_client(registry, DEVELOPER, laptop["secret"]).get(f"{API}/projects"), 401)


def test_another_users_token_cannot_be_revoked_and_looks_missing(registry: Registry) -> None:
    created = create(client_for(registry, DEVELOPER))
    for user in (GUEST, "admin"):
        response = client_for(registry, user).delete(f"{TOKENS}/{created['id']}")
        assert_error(response, 404, "NOT_FOUND")
    assert token_client(registry, DEVELOPER, created["secret"]).get("/v2/").status_code == 200


def test_a_session_manages_tokens_with_its_csrf_token(registry: Registry) -> None:
    session = sign_in(registry, DEVELOPER)
    client = session_client(registry, session)
    created = create(client)
    assert [t["name"] for t in json_list(client.get(TOKENS))] == ["laptop"]
    no_csrf = session_client(registry, session, csrf=False)
    assert_error(no_csrf.post(TOKENS, json={"name": "forged"}), 403, "FORBIDDEN")
    assert_error(no_csrf.delete(f"{TOKENS}/{created['id']}"), 403, "FORBIDDEN")
    assert client.delete(f"{TOKENS}/{created['id']}").status_code == 204


# --- who may manage tokens ----------------------------------------------------------------


def test_anonymous_is_401(registry: Registry) -> None:
    anonymous = client_for(registry)
    assert_error(anonymous.get(TOKENS), 401, "UNAUTHORIZED")
    assert_error(anonymous.post(TOKENS, json={"name": "x"}), 401, "UNAUTHORIZED")
    assert_error(anonymous.delete(f"{TOKENS}/1"), 401, "UNAUTHORIZED")


def test_robots_are_403(registry: Registry) -> None:
    created = create(client_for(registry, DEVELOPER))
    for name, secret in (make_robot(registry), make_robot(registry, "sys", project=None)):
        robot = client_for(registry, name, secret)
        assert_error(robot.get(TOKENS), 403, "FORBIDDEN")
        assert_error(robot.post(TOKENS, json={"name": "x"}), 403, "FORBIDDEN")
        assert_error(robot.delete(f"{TOKENS}/{created['id']}"), 403, "FORBIDDEN")
    assert len(json_list(client_for(registry, DEVELOPER).get(TOKENS))) == 1


def test_a_token_cannot_manage_tokens_or_change_the_password(registry: Registry) -> None:
    """A leaked token must not mint more tokens, revoke the owner's, or take the
    account over by changing the password: those need the password or a session."""
    created = create(client_for(registry, DEVELOPER))
    by_token = token_client(registry, DEVELOPER, created["secret"])
    assert by_token.get(f"{API}/users/current").status_code == 200  # it does sign in
    for response in (
        by_token.get(TOKENS),
        by_token.post(TOKENS, json={"name": "more"}),
        by_token.delete(f"{TOKENS}/{created['id']}"),
        by_token.put(
            f"{API}/users/current/password",
            json={"old_password": PASSWORD, "new_password": "taken-over-now"},
        ),
    ):
        entry = assert_error(response, 403, "FORBIDDEN")
        assert "token" in entry["message"]
    assert [t["name"] for t in json_list(client_for(registry, DEVELOPER).get(TOKENS))] == ["laptop"]
    assert client_for(registry, DEVELOPER).get(f"{API}/users/current").status_code == 200


def test_a_token_is_not_the_current_password(registry: Registry) -> None:
    """Nor may a token stand in for the old password of a password change."""
    created = create(client_for(registry, DEVELOPER))
    for client in (
        client_for(registry, DEVELOPER),
        session_client(registry, sign_in(registry, DEVELOPER)),
    ):
        response = client.put(
            f"{API}/users/current/password",
            json={"old_password": created["secret"], "new_password": "taken-over-now"},
        )
        assert_error(response, 400, "INVALID")
    assert client_for(registry, DEVELOPER).get(f"{API}/users/current").status_code == 200


def test_an_admins_token_keeps_admin_rights_elsewhere(registry: Registry) -> None:
    created = create(client_for(registry, "admin"))
    admin = token_client(registry, "admin", created["secret"])
    assert json_list(admin.get(f"{API}/users"))
    response = admin.post(f"{API}/users", json={"username": "erin", "password": "erins-password"})
    assert response.status_code == 201, response.text


# --- the token at work ----------------------------------------------------------------------


def test_token_works_as_basic_on_v2(registry: Registry) -> None:
    push_image(client_for(registry, "admin"), "acme/app", "v1")
    secret = create(client_for(registry, GUEST))["secret"]
    guest = token_client(registry, GUEST, secret)
    assert guest.get("/v2/").status_code == 200
    assert guest.get("/v2/acme/app/tags/list").json()["tags"] == ["v1"]
    assert guest.get("/v2/acme/app/manifests/v1").status_code == 200
    # Only what the user may do: a guest cannot push.
    assert guest.delete("/v2/acme/app/manifests/v1").status_code == 403


def test_token_works_at_the_token_endpoint(registry: Registry) -> None:
    secret = create(client_for(registry, DEVELOPER))["secret"]
    response = registry.as_caller(basic(DEVELOPER, secret)).get(
        "/auth/token",
        params={"service": "portside", "scope": "repository:acme/app:pull,push,delete"},
    )
    assert response.status_code == 200, response.text
    token = response.json()["token"]
    assert access_of(token) == {("repository", "acme/app"): ["pull", "push"]}
    push_image(registry.as_caller(bearer(token)), "acme/app", "v1")
    # OAuth2 password grant (containerd) too.
    form = registry.as_caller({}).post(
        "/auth/token",
        data={
            "grant_type": "password",
            "username": DEVELOPER,
            "password": secret,
            "service": "portside",
            "scope": "repository:acme/app:pull",
        },
    )
    assert form.status_code == 200, form.text


def test_token_works_as_basic_on_the_management_api(registry: Registry) -> None:
    secret = create(client_for(registry, DEVELOPER))["secret"]
    client = token_client(registry, DEVELOPER, secret)
    assert json_object(client.get(f"{API}/users/current"))["username"] == DEVELOPER
    assert {p["name"] for p in json_list(client.get(f"{API}/projects"))} == {"acme", "pub"}
    assert client.get(f"{API}/projects/acme").status_code == 200


def test_token_is_refused_for_web_ui_sign_in(registry: Registry) -> None:
    secret = create(client_for(registry, DEVELOPER))["secret"]
    response = client_for(registry).post(
        f"{API}/sessions", json={"username": DEVELOPER, "password": secret}
    )
    entry = assert_error(response, 401, "UNAUTHORIZED")
    assert entry["message"] == "invalid username or password"
    assert "set-cookie" not in response.headers
    failures = [
        r
        for r in audit_rows(registry)
        if r["action"] == "login" and r["result"] == "failure" and r["actor"] == DEVELOPER
    ]
    assert [json.loads(r["detail"]) for r in failures] == [{"via": "session"}]
    assert sign_in(registry, DEVELOPER).csrf_token  # the password still signs in


def test_token_of_one_user_is_refused_for_another(registry: Registry) -> None:
    secret = create(client_for(registry, DEVELOPER))["secret"]
    for user in (GUEST, "admin", DEVELOPER.upper()):
        client = token_client(registry, user, secret)
        assert_error(client.get(f"{API}/users/current"), 401, "UNAUTHORIZED")
        assert client.get("/v2/").status_code == 401
        response = client.get("/auth/token", params={"service": "portside"})
        assert response.status_code == 401, response.text


def test_revoked_expired_or_disabled_token_is_refused_everywhere(registry: Registry) -> None:
    # One user per case: each refusal is three failed logins, within the throttle's limit.
    revoked = create(client_for(registry, DEVELOPER), "revoked")
    expired = create(client_for(registry, GUEST), "expired")
    disabled = create(client_for(registry, MAINTAINER), "disabled")
    for user, secret in ((DEVELOPER, revoked), (GUEST, expired), (MAINTAINER, disabled)):
        assert token_client(registry, user, secret["secret"]).get("/v2/").status_code == 200

    response = client_for(registry, DEVELOPER).delete(f"{TOKENS}/{revoked['id']}")
    assert response.status_code == 204
    with registry.app.ctx.db.write() as conn:
        conn.execute(
            update(s.access_tokens)
            .where(s.access_tokens.c.id == expired["id"])
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    admin = client_for(registry, "admin")
    assert admin.patch(f"{API}/users/{MAINTAINER}", json={"disabled": True}).status_code == 200

    registry.forget_caches()  # /v2 remembers Basic credentials for 30 seconds
    for user, secret in ((DEVELOPER, revoked), (GUEST, expired), (MAINTAINER, disabled)):
        client = token_client(registry, user, secret["secret"])
        assert_error(client.get(f"{API}/users/current"), 401, "UNAUTHORIZED")
        assert client.get("/v2/").status_code == 401, user
        response = client.get("/auth/token", params={"service": "portside"})
        assert response.status_code == 401, (user, response.text)


def test_failed_token_logins_are_throttled(make_registry: MakeRegistry) -> None:
    registry = make_registry(auth={"throttle": {"max_failures": 3, "window_seconds": 300}})
    secret = create(client_for(registry, DEVELOPER))["secret"]
    wrong = PREFIX + "x" * 40
    for _ in range(3):
        assert_error(token_client(registry, DEVELOPER, wrong).get(f"{API}/projects"), 401)
    assert_error(token_client(registry, DEVELOPER, secret).get(f"{API}/projects"), 429)
    response = token_client(registry, DEVELOPER, secret).get(
        "/auth/token", params={"service": "portside"}
    )
    assert response.status_code == 429, response.text
    assert int(response.headers["retry-after"]) >= 1


def test_last_used_shows_in_the_list(registry: Registry) -> None:
    developer = client_for(registry, DEVELOPER)
    created = create(developer)
    assert token_client(registry, DEVELOPER, created["secret"]).get("/v2/").status_code == 200
    listed = json_list(developer.get(TOKENS))
    last_used = datetime.fromisoformat(listed[0]["last_used_at"])
    assert abs(last_used - datetime.now().astimezone()) < timedelta(minutes=1)


# --- audit ----------------------------------------------------------------------------------


def test_create_and_revoke_are_audited_without_the_secret(registry: Registry) -> None:
    developer = client_for(registry, DEVELOPER)
    created = create(developer, "laptop", expires_in_days=7)
    assert developer.delete(f"{TOKENS}/{created['id']}").status_code == 204
    rows = [r for r in audit_rows(registry) if r["resource_type"] == "access_token"]
    assert [(r["actor"], r["action"], r["resource"], r["result"]) for r in rows] == [
        (DEVELOPER, "create", f"{DEVELOPER}/laptop", "success"),
        (DEVELOPER, "revoke", f"{DEVELOPER}/laptop", "success"),
    ]
    assert json.loads(rows[0]["detail"])["id"] == created["id"]
    assert json.loads(rows[0]["detail"])["expires_at"].startswith(created["expires_at"][:10])
    everything = json.dumps([{k: str(v) for k, v in r.items()} for r in audit_rows(registry)])
    assert created["secret"] not in everything
    assert created["secret"][len(PREFIX) :] not in everything


def test_token_logins_are_audited_like_password_logins(registry: Registry) -> None:
    secret = create(client_for(registry, DEVELOPER))["secret"]
    registry.as_caller(basic(DEVELOPER, secret)).get("/auth/token")
    registry.as_caller(basic(GUEST, secret)).get("/auth/token")
    logins = [(r["actor"], r["result"]) for r in audit_rows(registry) if r["action"] == "login"]
    assert logins == [(DEVELOPER, "success"), (GUEST, "failure")]
    assert secret not in json.dumps(
        [{k: str(v) for k, v in r.items()} for r in audit_rows(registry)]
    )
