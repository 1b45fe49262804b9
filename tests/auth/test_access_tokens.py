"""Personal access tokens at the service level: create/list/revoke, the secret's shape and
storage, expiry, disabled and deleted users, a token presented with another username, a
token-shaped password that is no token, last_used_at, throttling, and `tokens=False`
(web UI sign-in) refusing them."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from portside.auth import passwords
from portside.auth.access_tokens import (
    MAX_TOKENS_PER_USER,
    PREFIX,
    AccessTokens,
    looks_like_token,
)
from portside.auth.accounts import Accounts, LdapUserInfo
from portside.auth.errors import Exists, Invalid, Missing
from portside.auth.throttle import LoginThrottle
from portside.errors import TooManyRequests
from portside.metadata import schema as s
from portside.metadata.db import as_utc, utcnow
from tests.auth.conftest import PASSWORD, Registry
from tests.auth.fixtures import populated

SOURCE = "198.51.100.20"
DEVELOPER = "developer"


def user_id(registry: Registry, username: str = DEVELOPER) -> int:
    return registry.auth.accounts.get_user(username).id


def tokens(registry: Registry) -> AccessTokens:
    return registry.auth.accounts.tokens


def login(registry: Registry, username: str, secret: str, *, allow: bool = True) -> str | None:
    """The name of the identity the credentials prove, or None."""
    identity = registry.auth.accounts.authenticate(username, secret, SOURCE, tokens=allow)
    return None if identity is None else identity.name


def token_row(registry: Registry, token_id: int) -> dict[str, object]:
    with registry.app.ctx.db.read() as conn:
        row = conn.execute(select(s.access_tokens).where(s.access_tokens.c.id == token_id)).one()
    return dict(row._mapping)


def set_token(registry: Registry, token_id: int, **values: object) -> None:
    with registry.app.ctx.db.write() as conn:
        result = conn.execute(
            update(s.access_tokens).where(s.access_tokens.c.id == token_id).values(**values)
        )
    assert result.rowcount == 1


def unknown_secret() -> str:
    return PREFIX + secrets.token_urlsafe(30)


# --- create, list, revoke -----------------------------------------------------------------


def test_create_returns_a_prefixed_high_entropy_secret_stored_only_as_its_hash(
    registry: Registry,
) -> None:
    before = utcnow()
    token, secret = tokens(registry).create(user_id(registry), "laptop")
    assert token.name == "laptop"
    assert token.expires_at is None
    assert token.last_used_at is None
    assert before - timedelta(seconds=1) <= token.created_at <= utcnow()
    assert secret.startswith(PREFIX)
    assert len(secret) == len(PREFIX) + 40
    assert looks_like_token(secret)
    row = token_row(registry, token.id)
    assert row["secret_hash"] == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in {str(v) for v in row.values()}
    _, other = tokens(registry).create(user_id(registry), "ci")
    assert other != secret


def test_list_shows_the_users_tokens_oldest_first_without_secrets(registry: Registry) -> None:
    first, _ = tokens(registry).create(user_id(registry), "laptop")
    second, _ = tokens(registry).create(user_id(registry), "ci")
    tokens(registry).create(user_id(registry, "guest"), "laptop")  # someone else's
    listed = tokens(registry).list_for_user(user_id(registry))
    assert [t.id for t in listed] == [first.id, second.id]
    assert [t.name for t in listed] == ["laptop", "ci"]
    assert not hasattr(listed[0], "secret")
    assert tokens(registry).list_for_user(user_id(registry, "maintainer")) == []


def test_duplicate_name_is_refused_for_the_same_user_only(registry: Registry) -> None:
    tokens(registry).create(user_id(registry), "laptop")
    with pytest.raises(Exists):
        tokens(registry).create(user_id(registry), "laptop")
    tokens(registry).create(user_id(registry, "guest"), "laptop")
    tokens(registry).create(user_id(registry), "Laptop")  # names are case-sensitive


@pytest.mark.parametrize("name", ["", " laptop", "laptop ", "a\tb", "new\nline", "x" * 65])
def test_invalid_names_are_refused(registry: Registry, name: str) -> None:
    with pytest.raises(Invalid):
        tokens(registry).create(user_id(registry), name)
    assert tokens(registry).list_for_user(user_id(registry)) == []


def test_names_may_hold_spaces_and_unicode(registry: Registry) -> None:
    token, _ = tokens(registry).create(user_id(registry), "CI für web/app #2")
    assert token.name == "CI für web/app #2"
    long, _ = tokens(registry).create(user_id(registry), "x" * 64)
    assert long.name == "x" * 64


def test_expiry_must_be_in_the_future(registry: Registry) -> None:
    with pytest.raises(Invalid):
        tokens(registry).create(user_id(registry), "old", expires_at=utcnow() - timedelta(1))
    later = utcnow() + timedelta(days=30)
    token, _ = tokens(registry).create(user_id(registry), "month", expires_at=later)
    assert token.expires_at is not None
    assert abs(token.expires_at - later) < timedelta(seconds=1)


def test_a_user_has_a_limited_number_of_tokens(registry: Registry) -> None:
    uid = user_id(registry)
    for number in range(MAX_TOKENS_PER_USER):
        tokens(registry).create(uid, f"t{number}")
    with pytest.raises(Invalid):
        tokens(registry).create(uid, "one-too-many")
    tokens(registry).revoke_by_name(uid, "t0")
    tokens(registry).create(uid, "one-too-many")


def test_revoke_by_id_and_by_name(registry: Registry) -> None:
    uid = user_id(registry)
    laptop, laptop_secret = tokens(registry).create(uid, "laptop")
    _, ci_secret = tokens(registry).create(uid, "ci")
    assert login(registry, DEVELOPER, laptop_secret) == DEVELOPER
    revoked = tokens(registry).revoke(uid, laptop.id)
    assert revoked.name == "laptop"
    assert login(registry, DEVELOPER, laptop_secret) is None
    assert login(registry, DEVELOPER, ci_secret) == DEVELOPER
    with pytest.raises(Missing):
        tokens(registry).revoke(uid, laptop.id)
    tokens(registry).revoke_by_name(uid, "ci")
    assert login(registry, DEVELOPER, ci_secret) is None
    with pytest.raises(Missing):
        tokens(registry).revoke_by_name(uid, "ci")
    assert tokens(registry).list_for_user(uid) == []


def test_nobody_revokes_or_sees_another_users_token(registry: Registry) -> None:
    token, secret = tokens(registry).create(user_id(registry), "laptop")
    guest = user_id(registry, "guest")
    with pytest.raises(Missing):
        tokens(registry).revoke(guest, token.id)
    with pytest.raises(Missing):
        tokens(registry).revoke_by_name(guest, "laptop")
    with pytest.raises(Missing):
        tokens(registry).get(guest, token.id)
    assert login(registry, DEVELOPER, secret) == DEVELOPER


def test_no_token_for_a_missing_user(registry: Registry) -> None:
    with pytest.raises(Missing):
        tokens(registry).create(999_999, "ghost")


# --- authenticate -------------------------------------------------------------------------


def test_a_token_proves_its_user_with_their_rights(registry: Registry) -> None:
    _, secret = tokens(registry).create(user_id(registry, "admin"), "laptop")
    identity = registry.auth.accounts.authenticate("admin", secret, SOURCE)
    assert identity is not None
    assert identity.kind == "user"
    assert identity.name == "admin"
    assert identity.user_id == user_id(registry, "admin")
    assert identity.is_admin is True
    assert tokens(registry).authenticate("admin", secret) == identity


def test_a_token_does_not_work_for_another_username(registry: Registry) -> None:
    _, secret = tokens(registry).create(user_id(registry), "laptop")
    for other in ("guest", "admin", "Developer", " developer", "developer ", "nobody"):
        assert login(registry, other, secret) is None, other
    assert login(registry, DEVELOPER, secret) == DEVELOPER


def test_a_token_is_not_a_robot_secret(registry: Registry) -> None:
    _, secret = tokens(registry).create(user_id(registry), "laptop")
    assert login(registry, "robot$acme+ci", secret) is None


def test_expired_token_is_refused(registry: Registry) -> None:
    token, secret = tokens(registry).create(
        user_id(registry), "short", expires_at=utcnow() + timedelta(days=1)
    )
    assert login(registry, DEVELOPER, secret) == DEVELOPER
    set_token(registry, token.id, expires_at=utcnow() - timedelta(seconds=1))
    assert login(registry, DEVELOPER, secret) is None
    # Still listed (so its owner sees why it stopped working) until revoked.
    assert [t.name for t in tokens(registry).list_for_user(user_id(registry))] == ["short"]


def test_disabled_user_is_refused_and_deleted_users_tokens_go(registry: Registry) -> None:
    token, secret = tokens(registry).create(user_id(registry), "laptop")
    accounts = registry.auth.accounts
    accounts.update_user(DEVELOPER, disabled=True)
    assert login(registry, DEVELOPER, secret) is None
    accounts.update_user(DEVELOPER, disabled=False)
    assert login(registry, DEVELOPER, secret) == DEVELOPER
    accounts.delete_user(DEVELOPER)
    with registry.app.ctx.db.read() as conn:
        left = conn.execute(select(s.access_tokens.c.id)).all()
    assert left == []
    accounts.create_user(DEVELOPER, PASSWORD)  # the same name again is someone new
    assert login(registry, DEVELOPER, secret) is None
    with pytest.raises(Missing):
        tokens(registry).get(user_id(registry), token.id)


def test_token_shaped_password_that_is_no_token_is_refused_without_a_password_check(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`psp_` + 40 characters is checked as a token only: no argon2, no LDAP bind."""

    def no_password_check(*args: object) -> bool:
        raise AssertionError("a token-shaped password was checked as a password")

    monkeypatch.setattr(passwords, "verify_password", no_password_check)
    assert login(registry, DEVELOPER, unknown_secret()) is None
    assert login(registry, "nobody", unknown_secret()) is None


def test_only_the_exact_shape_counts_as_a_token(registry: Registry) -> None:
    _, secret = tokens(registry).create(user_id(registry), "laptop")
    assert looks_like_token(secret)
    for near in (secret[:-1], secret + "a", "PSP_" + secret[4:], secret[:10] + "!" + secret[11:]):
        assert not looks_like_token(near), near
        assert login(registry, DEVELOPER, near) is None
    assert not looks_like_token(PASSWORD)
    assert login(registry, DEVELOPER, PASSWORD) == DEVELOPER  # passwords still work


def test_a_password_may_not_look_like_a_token(registry: Registry) -> None:
    """It would be checked as a token at every Basic login, and never work there."""
    accounts = registry.auth.accounts
    with pytest.raises(Invalid):
        accounts.create_user("tokenish", unknown_secret())
    with pytest.raises(Invalid):
        accounts.update_user(DEVELOPER, password=unknown_secret())
    assert login(registry, DEVELOPER, PASSWORD) == DEVELOPER


def test_tokens_false_refuses_tokens_and_counts_a_failure(
    tmp_path: Path, database_url: str
) -> None:
    """What web UI sign-in and the current-password check use: the real password only."""
    with populated(tmp_path, database_url, auth={"throttle": {"max_failures": 2}}) as registry:
        _, secret = tokens(registry).create(user_id(registry), "laptop")
        assert login(registry, DEVELOPER, secret, allow=False) is None
        assert login(registry, DEVELOPER, PASSWORD, allow=False) == DEVELOPER
        for _ in range(2):
            assert login(registry, DEVELOPER, secret, allow=False) is None
        with pytest.raises(TooManyRequests):
            login(registry, DEVELOPER, PASSWORD, allow=False)


def test_ldap_users_token_carries_their_groups_and_never_asks_the_directory(
    registry: Registry,
) -> None:
    class Directory:
        calls = 0

        def authenticate(self, username: str, password: str) -> LdapUserInfo | None:
            Directory.calls += 1
            return None

    db = registry.app.ctx.db
    accounts = Accounts(db, LoginThrottle(db, 5, 60), Directory())
    uid, _ = accounts._upsert_ldap_user("carol", None, frozenset({"developers"}), False)
    _, secret = accounts.tokens.create(uid, "cli")
    identity = accounts.authenticate("carol", secret, SOURCE)
    assert identity is not None
    assert (identity.name, identity.user_id, identity.groups) == (
        "carol",
        uid,
        frozenset({"developers"}),
    )
    assert accounts.authenticate("carol", unknown_secret(), SOURCE) is None
    assert Directory.calls == 0
    assert accounts.authenticate("carol", "directory-password", SOURCE) is None
    assert Directory.calls == 1


# --- last_used_at -------------------------------------------------------------------------


def last_used(registry: Registry, token_id: int) -> datetime | None:
    value = token_row(registry, token_id)["last_used_at"]
    assert value is None or isinstance(value, datetime)
    return as_utc(value) if value else None


def test_last_used_is_written_at_most_once_a_minute(registry: Registry) -> None:
    token, secret = tokens(registry).create(user_id(registry), "laptop")
    assert last_used(registry, token.id) is None
    assert login(registry, DEVELOPER, secret) == DEVELOPER
    first = last_used(registry, token.id)
    assert first is not None
    assert utcnow() - first < timedelta(seconds=5)
    for _ in range(3):
        assert login(registry, DEVELOPER, secret) == DEVELOPER
    assert last_used(registry, token.id) == first
    two_minutes_ago = utcnow() - timedelta(minutes=2)
    set_token(registry, token.id, last_used_at=two_minutes_ago)
    assert login(registry, DEVELOPER, secret) == DEVELOPER
    touched = last_used(registry, token.id)
    assert touched is not None
    assert touched > two_minutes_ago + timedelta(minutes=1)
    listed = tokens(registry).list_for_user(user_id(registry))
    assert listed[0].last_used_at == touched


def test_failed_logins_do_not_touch_last_used(registry: Registry) -> None:
    token, secret = tokens(registry).create(user_id(registry), "laptop")
    assert login(registry, "guest", secret) is None
    registry.auth.accounts.update_user(DEVELOPER, disabled=True)
    assert login(registry, DEVELOPER, secret) is None
    assert last_used(registry, token.id) is None


# --- throttling -----------------------------------------------------------------------------

LIMIT = 3


@pytest.fixture
def throttled(tmp_path: Path, database_url: str) -> Iterator[Registry]:
    settings = {"throttle": {"max_failures": LIMIT, "window_seconds": 300}}
    with populated(tmp_path, database_url, auth=settings) as registry:
        yield registry


def test_failed_token_logins_are_throttled_like_passwords(throttled: Registry) -> None:
    _, secret = tokens(throttled).create(user_id(throttled), "laptop")
    for _ in range(LIMIT - 1):
        assert login(throttled, DEVELOPER, unknown_secret()) is None
    assert login(throttled, DEVELOPER, secret) == DEVELOPER  # resets the count
    for _ in range(LIMIT):
        assert login(throttled, DEVELOPER, unknown_secret()) is None
    with pytest.raises(TooManyRequests):
        login(throttled, DEVELOPER, secret)
    with pytest.raises(TooManyRequests):
        login(throttled, DEVELOPER, PASSWORD)
    # The account from elsewhere, and other accounts from here, still work.
    accounts = throttled.auth.accounts
    assert accounts.authenticate(DEVELOPER, secret, "198.51.100.21") is not None
    assert login(throttled, "guest", PASSWORD) == "guest"


def test_wrong_password_failures_throttle_token_logins_too(throttled: Registry) -> None:
    _, secret = tokens(throttled).create(user_id(throttled), "laptop")
    for _ in range(LIMIT):
        assert login(throttled, DEVELOPER, "not-the-password") is None
    with pytest.raises(TooManyRequests):
        login(throttled, DEVELOPER, secret)


def test_a_token_for_another_user_counts_against_the_named_account(throttled: Registry) -> None:
    _, secret = tokens(throttled).create(user_id(throttled), "laptop")
    for _ in range(LIMIT):
        assert login(throttled, "guest", secret) is None
    with pytest.raises(TooManyRequests):
        login(throttled, "guest", PASSWORD)
    assert login(throttled, DEVELOPER, secret) == DEVELOPER
