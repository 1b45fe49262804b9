"""LDAP login through the registry app in-process, against the real slapd of conftest.py:
tokens and Basic credentials for directory users, the local row an LDAP login creates,
group roles, the admin group, logins spelled in another case, a directory that is down,
a disabled local row, the audit log, and signing in to the web UI.

The directory (see slapd.py): alice (alice-pw, alice@example.org) and bob in
`developers`; carol in `registry-admins`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from portside.auth.errors import Invalid
from portside.auth.roles import Role
from portside.config import LdapSettings
from portside.metadata import schema as s
from tests.api.helpers import assert_error, push_image, tags_of
from tests.auth.conftest import PASSWORD, Registry, basic, bearer, build_registry
from tests.ui.conftest import Browser, browser_for

from .slapd import Slapd

ADMIN_GROUP = "registry-admins"
PUSH = "repository:acme/app:pull,push"
PULL = "repository:acme/app:pull"

MakeRegistry = Callable[..., Registry]


@pytest.fixture
def make_registry(tmp_path: Path, database_url: str) -> Iterator[MakeRegistry]:
    """`make_registry(ldap_settings, **settings)`: a registry app with this LDAP setup on
    the test's database (every app built in one test shares it), with project `acme`
    created by the first one."""
    with ExitStack() as stack:
        built: list[Registry] = []

        def build(ldap: LdapSettings, **settings: Any) -> Registry:
            app = build_registry(tmp_path, database_url, ldap=ldap.model_dump(), **settings)
            stack.callback(app.ctx.close)
            client = stack.enter_context(TestClient(app, base_url="http://registry.test"))
            registry = Registry(app, client)
            if not built:
                registry.auth.projects.create("acme")
            built.append(registry)
            return registry

        yield build


@pytest.fixture
def registry(slapd: Slapd, make_registry: MakeRegistry) -> Registry:
    """LDAP on, `registry-admins` are system admins; no local account; project `acme`."""
    return make_registry(slapd.settings(groups={"admin_group": ADMIN_GROUP}))


def token_response(
    registry: Registry, username: str, password: str, *scopes: str
) -> httpx.Response:
    return registry.client.get(
        "/auth/token",
        params={"service": "portside", "scope": list(scopes)},
        headers=basic(username, password),
    )


def subject_of(registry: Registry, token: str) -> str:
    return registry.auth.verifier.verify(token).subject


def user_rows(registry: Registry) -> list[tuple[str, str]]:
    with registry.app.ctx.db.read() as conn:
        rows = conn.execute(
            select(s.users.c.username, s.users.c.source).order_by(s.users.c.username)
        ).all()
    return [(row.username, row.source) for row in rows]


def ldap_groups(registry: Registry, username: str) -> list[str]:
    with registry.app.ctx.db.read() as conn:
        raw = conn.execute(
            select(s.users.c.ldap_groups).where(s.users.c.username == username)
        ).scalar_one()
    groups = json.loads(raw) if raw else []
    assert isinstance(groups, list)
    return [str(group) for group in groups]


def comparable(response: httpx.Response) -> tuple[int, Any, dict[str, str]]:
    """Status, body and headers, without what differs per request."""
    varying = {"x-request-id", "content-length"}
    headers = {k: v for k, v in response.headers.items() if k not in varying}
    return response.status_code, response.json(), headers


# --- logging in ----------------------------------------------------------------------


def test_alice_gets_a_token_and_an_ldap_account(registry: Registry) -> None:
    assert user_rows(registry) == []
    token = registry.token(user="alice", password="alice-pw")
    assert subject_of(registry, token) == "alice"
    user = registry.auth.accounts.get_user("alice")
    assert user.source == "ldap"
    assert user.email == "alice@example.org"
    assert not user.is_admin
    assert not user.disabled
    assert user.last_login_at is not None
    assert ldap_groups(registry, "alice") == ["developers"]
    assert user_rows(registry) == [("alice", "ldap")]
    with registry.app.ctx.db.read() as conn:
        password_hash = conn.execute(
            select(s.users.c.password_hash).where(s.users.c.username == "alice")
        ).scalar_one()
    assert password_hash is None  # the password lives in LDAP only


def test_a_second_login_reuses_the_account(registry: Registry) -> None:
    registry.token(user="alice", password="alice-pw")
    first = registry.auth.accounts.get_user("alice")
    registry.token(user="alice", password="alice-pw")
    second = registry.auth.accounts.get_user("alice")
    assert second.id == first.id
    assert first.last_login_at is not None
    assert second.last_login_at is not None
    assert second.last_login_at >= first.last_login_at
    assert user_rows(registry) == [("alice", "ldap")]


def test_wrong_password_and_unknown_user_are_refused_alike(registry: Registry) -> None:
    wrong = token_response(registry, "alice", "bob-pw")
    unknown = token_response(registry, "nobody", "alice-pw")
    empty = token_response(registry, "alice", "")
    for response in (wrong, unknown, empty):
        assert_error(response, 401, "UNAUTHORIZED")
        assert "token" not in response.text
    assert comparable(wrong) == comparable(unknown) == comparable(empty)
    assert wrong.headers["www-authenticate"].startswith("Basic realm=")
    # A refused login creates nothing.
    assert user_rows(registry) == []


def test_wrong_ldap_password_is_refused_on_v2_too(registry: Registry) -> None:
    wrong = registry.get("/v2/", headers=basic("alice", "bob-pw"))
    unknown = registry.get("/v2/", headers=basic("nobody", "alice-pw"))
    assert_error(wrong, 401, "UNAUTHORIZED")
    assert comparable(wrong) == comparable(unknown)
    assert wrong.headers["www-authenticate"].startswith("Bearer realm=")
    assert registry.get("/v2/", headers=basic("alice", "alice-pw")).status_code == 200


@pytest.mark.parametrize("login", ["ALICE", "Alice", " alice "])
def test_a_login_in_another_case_is_the_same_account(registry: Registry, login: str) -> None:
    registry.auth.projects.set_group("acme", "developers", Role.DEVELOPER)
    registry.token(user="alice", password="alice-pw")
    token = registry.token(PUSH, user=login, password="alice-pw")
    assert subject_of(registry, token) == "alice"
    assert user_rows(registry) == [("alice", "ldap")]
    # The token carries alice's group role.
    push_image(registry.as_caller(bearer(token)), "acme/app", "v1")
    # Basic on /v2 with that spelling is alice as well.
    assert tags_of(registry.as_caller(basic(login, "alice-pw")), "acme/app") == ["v1"]
    assert user_rows(registry) == [("alice", "ldap")]


def test_auth_is_on_with_ldap_and_no_local_account(registry: Registry) -> None:
    assert not registry.auth.accounts.any_account()
    assert registry.auth.enabled()
    response = registry.get("/v2/")
    assert_error(response, 401, "UNAUTHORIZED")
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="http://127.0.0.1:5000/auth/token"')
    assert 'service="portside"' in challenge
    anonymous = registry.get("/v2/acme/app/tags/list")
    assert_error(anonymous, 401, "UNAUTHORIZED")
    assert "repository:acme/app:pull" in anonymous.headers["www-authenticate"]
    # An anonymous token carries nothing private.
    token = registry.token(PUSH)
    assert registry.auth.verifier.verify(token).grants == {}


# --- group roles and the admin group -------------------------------------------------


def test_group_role_lets_alice_push_and_pull_with_a_token(registry: Registry) -> None:
    registry.auth.projects.set_group("acme", "developers", Role.DEVELOPER)
    token = registry.token(PUSH, user="alice", password="alice-pw")
    assert registry.auth.verifier.verify(token).actions("repository", "acme/app") == {
        "pull",
        "push",
    }
    alice = registry.as_caller(bearer(token))
    manifest = push_image(alice, "acme/app", "v1")
    response = alice.get("/v2/acme/app/manifests/v1")
    assert response.status_code == 200
    assert response.headers["docker-content-digest"] == manifest.digest
    # Developers may not delete.
    deleting = registry.token("repository:acme/app:delete", user="alice", password="alice-pw")
    assert registry.auth.verifier.verify(deleting).grants == {}
    # The catalog shows alice the project her group gives her (rebuilt from her row).
    catalog = registry.token("registry:catalog:*", user="alice", password="alice-pw")
    listing = registry.get("/v2/_catalog", headers=bearer(catalog))
    assert listing.status_code == 200
    assert listing.json()["repositories"] == ["acme/app"]


def test_group_role_lets_alice_push_and_pull_with_basic(registry: Registry) -> None:
    registry.auth.projects.set_group("acme", "developers", Role.DEVELOPER)
    alice = registry.as_caller(basic("alice", "alice-pw"))
    manifest = push_image(alice, "acme/app", "v1")
    assert alice.get(f"/v2/acme/app/manifests/{manifest.digest}").status_code == 200
    # bob, the other developer, too.
    assert tags_of(registry.as_caller(basic("bob", "bob-pw")), "acme/app") == ["v1"]
    denied = alice.delete(f"/v2/acme/app/manifests/{manifest.digest}")
    assert_error(denied, 403, "DENIED")


def test_a_group_role_only_reaches_its_project(registry: Registry) -> None:
    registry.auth.projects.create("other")
    registry.auth.projects.set_group("acme", "developers", Role.GUEST)
    token = registry.token(
        PUSH, "repository:other/app:pull,push", user="alice", password="alice-pw"
    )
    grants = registry.auth.verifier.verify(token).grants
    assert grants == {("repository", "acme/app"): frozenset({"pull"})}


def test_outside_the_group_carol_sees_nothing(slapd: Slapd, make_registry: MakeRegistry) -> None:
    # No admin group here: carol is an ordinary directory user.
    registry = make_registry(slapd.settings())
    registry.auth.projects.set_group("acme", "developers", Role.DEVELOPER)
    push_image(registry.as_caller(basic("alice", "alice-pw")), "acme/app", "v1")
    token = registry.token(PUSH, user="carol", password="carol-pw")
    assert registry.auth.verifier.verify(token).grants == {}
    assert not registry.auth.accounts.get_user("carol").is_admin
    for headers in (bearer(token), basic("carol", "carol-pw")):
        existing = registry.get("/v2/acme/app/manifests/v1", headers=headers)
        missing = registry.get("/v2/acme/nothing/manifests/v1", headers=headers)
        assert_error(existing, 401, "UNAUTHORIZED")
        assert_error(missing, 401, "UNAUTHORIZED")
        assert existing.json()["errors"][0]["detail"][0]["Action"] == "pull"
        assert "repository:acme/app:pull" in existing.headers["www-authenticate"]
        assert "repository:acme/nothing:pull" in missing.headers["www-authenticate"]
        strip = {"x-request-id", "www-authenticate", "content-length"}
        assert {k: v for k, v in existing.headers.items() if k not in strip} == {
            k: v for k, v in missing.headers.items() if k not in strip
        }
        upload = registry.client.post("/v2/acme/app/blobs/uploads/", headers=headers)
        assert_error(upload, 401, "UNAUTHORIZED")


def test_carol_is_a_system_admin_through_the_admin_group(registry: Registry) -> None:
    registry.auth.projects.create("other")
    registry.auth.projects.set_group("acme", "developers", Role.DEVELOPER)
    push_image(registry.as_caller(basic("alice", "alice-pw")), "acme/app", "v1")
    token = registry.token(
        PUSH,
        "repository:acme/app:delete",
        "repository:other/tool:pull,push",
        user="carol",
        password="carol-pw",
    )
    carol_user = registry.auth.accounts.get_user("carol")
    assert carol_user.is_admin
    assert carol_user.source == "ldap"
    assert ldap_groups(registry, "carol") == [ADMIN_GROUP]
    carol = registry.as_caller(bearer(token))
    assert tags_of(carol, "acme/app") == ["v1"]
    push_image(carol, "acme/app", "v2")
    push_image(carol, "other/tool", "v1")
    # By Basic too, in any existing project; a missing project is not created.
    by_basic = registry.as_caller(basic("carol", "carol-pw"))
    push_image(by_basic, "other/tool", "v2")
    assert tags_of(by_basic, "acme/app") == ["v1", "v2"]
    nowhere = by_basic.post("/v2/nowhere/app/blobs/uploads/")
    assert_error(nowhere, 403, "DENIED")
    assert not [p.name for p in registry.auth.projects.find() if p.name == "nowhere"]


# --- the local row -------------------------------------------------------------------


def test_a_disabled_local_row_blocks_alice(slapd: Slapd, make_registry: MakeRegistry) -> None:
    # Several refused logins of alice (in two spellings) follow: keep the throttle out.
    registry = make_registry(
        slapd.settings(groups={"admin_group": ADMIN_GROUP}),
        auth={"throttle": {"max_failures": 50}},
    )
    registry.auth.projects.set_group("acme", "developers", Role.DEVELOPER)
    registry.token(user="alice", password="alice-pw")
    registry.auth.accounts.update_user("alice", disabled=True)
    refused = token_response(registry, "alice", "alice-pw", PUSH)
    assert_error(refused, 401, "UNAUTHORIZED")
    assert comparable(refused) == comparable(token_response(registry, "alice", "wrong"))
    # "ALICE" is the same (disabled) account.
    assert_error(token_response(registry, "ALICE", "alice-pw"), 401, "UNAUTHORIZED")
    assert_error(registry.get("/v2/", headers=basic("alice", "alice-pw")), 401, "UNAUTHORIZED")
    upload = registry.client.post("/v2/acme/app/blobs/uploads/", headers=basic("alice", "alice-pw"))
    assert_error(upload, 401, "UNAUTHORIZED")
    # The LDAP login does not re-enable the row.
    assert registry.auth.accounts.get_user("alice").disabled
    # bob, in the same group, is unaffected.
    assert registry.get("/v2/", headers=basic("bob", "bob-pw")).status_code == 200
    # Enabled again, alice is back.
    registry.auth.accounts.update_user("alice", disabled=False)
    registry.forget_caches()
    push_image(registry.as_caller(basic("alice", "alice-pw")), "acme/app", "v1")


def test_no_local_password_for_an_ldap_user(registry: Registry) -> None:
    registry.token(user="alice", password="alice-pw")
    with pytest.raises(Invalid, match="LDAP user"):
        registry.auth.accounts.update_user("alice", password="a-local-password-1234")
    assert_error(token_response(registry, "alice", "a-local-password-1234"), 401)


# --- the directory is down -----------------------------------------------------------


def test_local_admin_logs_in_while_ldap_is_down(
    slapd: Slapd, make_registry: MakeRegistry, closed_ldap_url: str
) -> None:
    # First with the directory up: alice gets her local row.
    up = make_registry(slapd.settings())
    up.token(user="alice", password="alice-pw")
    # Then the same database served with LDAP unreachable.
    down = make_registry(slapd.settings(url=closed_ldap_url))
    down.auth.accounts.create_user("admin", PASSWORD, admin=True)
    token = down.token(PUSH, user="admin")
    push_image(down.as_caller(bearer(token)), "acme/app", "v1")
    assert tags_of(down.as_caller(basic("admin")), "acme/app") == ["v1"]
    for login in ("alice", "bob"):  # with and without a local row
        started = time.monotonic()
        refused = token_response(down, login, f"{login}-pw", PULL)
        on_v2 = down.get("/v2/acme/app/tags/list", headers=basic(login, f"{login}-pw"))
        elapsed = time.monotonic() - started
        assert_error(refused, 401, "UNAUTHORIZED")
        assert_error(on_v2, 401, "UNAUTHORIZED")
        assert elapsed < 2.0, elapsed  # a refused connection, not the 5 s timeout
    # An outage looks like any failed login to the caller.
    assert comparable(token_response(down, "alice", "alice-pw")) == comparable(
        token_response(down, "admin", "wrong")
    )


# --- throttling and the audit log ----------------------------------------------------


def test_failed_ldap_logins_are_throttled(registry: Registry) -> None:
    for _ in range(5):
        assert_error(token_response(registry, "alice", "wrong"), 401)
    throttled = token_response(registry, "alice", "alice-pw")
    assert_error(throttled, 429, "TOOMANYREQUESTS")
    assert int(throttled.headers["retry-after"]) > 0
    # Another account from the same source is not affected.
    assert token_response(registry, "bob", "bob-pw").status_code == 200


def test_ldap_logins_are_audited_without_the_password(registry: Registry) -> None:
    registry.token(user="alice", password="alice-pw")
    assert_error(token_response(registry, "alice", "Wrong-Secret-1"), 401)
    assert_error(token_response(registry, "nobody", "Wrong-Secret-2"), 401)
    entries, total = registry.app.ctx.audit.find(action="login")
    assert total == 3
    seen = sorted((e.actor, e.resource, e.result) for e in entries)
    assert seen == [
        ("alice", "alice", "failure"),
        ("alice", "alice", "success"),
        ("nobody", "nobody", "failure"),
    ]
    for entry in entries:
        assert entry.resource_type == "account"
        assert entry.source == "testclient"
        text = repr(entry)
        for secret in ("alice-pw", "Wrong-Secret-1", "Wrong-Secret-2"):
            assert secret not in text


# --- bugs ----------------------------------------------------------------------------


def test_ldap_login_cannot_take_over_a_local_account(registry: Registry) -> None:
    # A local admin `bob`, unrelated to the directory's uid=bob.
    registry.auth.accounts.create_user("bob", PASSWORD, admin=True)
    registry.auth.projects.create("secret")
    registry.auth.projects.set_member("secret", "bob", Role.PROJECT_ADMIN)
    # The directory's bob cannot log in as "bob": that name is the local account.
    assert_error(token_response(registry, "bob", "bob-pw"), 401)
    # Nor by spelling it differently (the directory matches uid ignoring case).
    response = token_response(registry, "BOB", "bob-pw", "repository:secret/app:pull")
    try:
        assert_error(response, 401, "UNAUTHORIZED")
    finally:
        # Whatever happened, the local account must be untouched.
        bob = registry.auth.accounts.get_user("bob")
        assert (bob.source, bob.is_admin) == ("local", True)
        assert ldap_groups(registry, "bob") == []


@pytest.mark.parametrize("variant", ["ALICE", " alice"])
def test_throttle_covers_other_spellings_of_an_ldap_login(registry: Registry, variant: str) -> None:
    for _ in range(5):
        assert_error(token_response(registry, "alice", "wrong"), 401)
    assert_error(token_response(registry, "alice", "alice-pw"), 429, "TOOMANYREQUESTS")
    assert_error(token_response(registry, variant, "alice-pw"), 429, "TOOMANYREQUESTS")


# -- the web UI ----------------------------------------------------------------------


def test_directory_user_signs_in_to_the_ui(slapd: Slapd, make_registry: MakeRegistry) -> None:
    registry = make_registry(slapd.settings(groups={"admin_group": ADMIN_GROUP}))
    registry.auth.projects.set_group("acme", "developers", Role.DEVELOPER)
    browser = browser_for(registry, "alice", "alice-pw")
    projects = browser.get("/projects").text
    assert 'href="/projects/acme"' in projects
    assert "Administration" not in projects
    profile = browser.get("/profile").text
    assert "directory" in profile.lower()


def test_directory_admin_group_gets_administration(
    slapd: Slapd, make_registry: MakeRegistry
) -> None:
    registry = make_registry(slapd.settings(groups={"admin_group": ADMIN_GROUP}))
    browser = browser_for(registry, "carol", "carol-pw")
    assert "Administration" in browser.get("/projects").text
    assert browser.get("/admin/users").status_code == 200


def test_wrong_directory_password_is_refused_in_words(
    slapd: Slapd, make_registry: MakeRegistry
) -> None:
    registry = make_registry(slapd.settings())
    browser = Browser(registry.as_caller({}))
    browser.get("/login")
    page = browser.post("/login", {"username": "alice", "password": "nope", "next": "/"})
    assert page.status_code == 401
    assert "Wrong username or password." in page.text
