"""Failed-login throttling: per account and source, through /auth/token and /v2 (where the
TestClient's source address is always `testclient`) and on LoginThrottle directly for
other sources."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx2 as httpx
import pytest
from sqlalchemy import select, update

from portside.auth.throttle import LoginThrottle
from portside.errors import TooManyRequests
from portside.metadata import schema as s
from portside.metadata.db import utcnow
from tests.auth.conftest import PASSWORD, Registry, basic
from tests.auth.fixtures import populated

LIMIT = 3
WINDOW = 300
WRONG = "not-the-password"
SOURCE = "testclient"  # what Starlette's TestClient reports as the client address
OTHER_SOURCE = "192.0.2.7"  # a documentation address: only ever a string here


@pytest.fixture
def throttled(tmp_path: Path, database_url: str) -> Iterator[Registry]:
    settings = {"throttle": {"max_failures": LIMIT, "window_seconds": WINDOW}}
    with populated(tmp_path, database_url, auth=settings) as registry:
        yield registry


def login(registry: Registry, user: str, password: str = PASSWORD) -> httpx.Response:
    return registry.get(
        "/auth/token", params={"service": "portside"}, headers=basic(user, password)
    )


def fail(registry: Registry, user: str, times: int) -> None:
    for _ in range(times):
        assert login(registry, user, WRONG).status_code == 401


def assert_throttled(response: httpx.Response, window: int = WINDOW) -> None:
    assert response.status_code == 429, response.text
    assert response.json()["errors"][0]["code"] == "TOOMANYREQUESTS"
    retry_after = int(response.headers["retry-after"])
    assert 1 <= retry_after <= window + 1


def test_limit_then_429_even_with_right_password(throttled: Registry) -> None:
    fail(throttled, "developer", LIMIT - 1)
    # Below the limit the right password still works... (and resets the count, so fail
    # again from zero).
    assert login(throttled, "developer").status_code == 200
    fail(throttled, "developer", LIMIT)
    assert_throttled(login(throttled, "developer"))
    assert_throttled(login(throttled, "developer", WRONG))


def test_throttled_account_is_throttled_on_v2_too(throttled: Registry) -> None:
    fail(throttled, "developer", LIMIT)
    response = throttled.get("/v2/", headers=basic("developer"))
    assert_throttled(response)


def test_failures_on_v2_count_too(throttled: Registry) -> None:
    for _ in range(LIMIT):
        assert throttled.get("/v2/", headers=basic("developer", WRONG)).status_code == 401
    assert_throttled(login(throttled, "developer"))


def test_other_account_from_same_source_still_works(throttled: Registry) -> None:
    fail(throttled, "developer", LIMIT)
    assert_throttled(login(throttled, "developer"))
    assert login(throttled, "guest").status_code == 200
    assert throttled.get("/v2/", headers=basic("maintainer")).status_code == 200


def test_same_account_from_other_source_still_works(throttled: Registry) -> None:
    fail(throttled, "developer", LIMIT)
    assert_throttled(login(throttled, "developer"))
    accounts = throttled.auth.accounts
    identity = accounts.authenticate("developer", PASSWORD, OTHER_SOURCE)
    assert identity is not None
    assert identity.name == "developer"
    with pytest.raises(TooManyRequests):
        accounts.authenticate("developer", PASSWORD, SOURCE)


def test_success_resets_the_count(throttled: Registry) -> None:
    for _ in range(3):
        fail(throttled, "developer", LIMIT - 1)
        assert login(throttled, "developer").status_code == 200
    fail(throttled, "developer", LIMIT - 1)
    assert login(throttled, "developer").status_code == 200


def test_unknown_account_is_throttled_like_a_real_one(throttled: Registry) -> None:
    """Otherwise a 429 (or its absence) would tell which accounts exist."""
    fail(throttled, "no-such-user", LIMIT)
    assert_throttled(login(throttled, "no-such-user"))


def test_window_passing_lifts_the_lock(throttled: Registry) -> None:
    fail(throttled, "developer", LIMIT)
    assert_throttled(login(throttled, "developer"))
    t = s.login_failures
    with throttled.app.ctx.db.write() as conn:
        result = conn.execute(
            update(t)
            .where(t.c.account == "developer", t.c.source == SOURCE)
            .values(first_failed_at=utcnow() - timedelta(seconds=WINDOW + 1))
        )
        assert result.rowcount == 1
    assert login(throttled, "developer").status_code == 200
    with throttled.app.ctx.db.read() as conn:
        left = conn.execute(
            select(t.c.failures).where(t.c.account == "developer", t.c.source == SOURCE)
        ).first()
    assert left is None


def test_old_failures_do_not_count_toward_a_new_window(throttled: Registry) -> None:
    fail(throttled, "developer", LIMIT - 1)
    t = s.login_failures
    with throttled.app.ctx.db.write() as conn:
        conn.execute(
            update(t)
            .where(t.c.account == "developer", t.c.source == SOURCE)
            .values(first_failed_at=utcnow() - timedelta(seconds=WINDOW + 1))
        )
    # Two more failures: four in total, but only one in the current window.
    fail(throttled, "developer", LIMIT - 1)
    assert login(throttled, "developer").status_code == 200


def test_short_window_in_real_time(tmp_path: Path, database_url: str) -> None:
    settings = {"throttle": {"max_failures": 2, "window_seconds": 1}}
    with populated(tmp_path, database_url, auth=settings) as registry:
        fail(registry, "guest", 2)
        assert_throttled(login(registry, "guest"), window=1)
        time.sleep(1.2)
        assert login(registry, "guest").status_code == 200


# --- LoginThrottle directly -----------------------------------------------------------


@pytest.fixture
def throttle(throttled: Registry) -> LoginThrottle:
    return LoginThrottle(throttled.app.ctx.db, LIMIT, WINDOW)


def test_pairs_are_independent(throttle: LoginThrottle) -> None:
    for _ in range(LIMIT):
        throttle.check("alice", "198.51.100.1")
        throttle.failed("alice", "198.51.100.1")
    with pytest.raises(TooManyRequests) as raised:
        throttle.check("alice", "198.51.100.1")
    assert 1 <= int(raised.value.headers["Retry-After"]) <= WINDOW + 1
    throttle.check("alice", "198.51.100.2")  # same account, other source
    throttle.check("bob", "198.51.100.1")  # same source, other account
    throttle.succeeded("alice", "198.51.100.1")
    throttle.check("alice", "198.51.100.1")


def test_below_limit_is_not_throttled(throttle: LoginThrottle) -> None:
    for _ in range(LIMIT - 1):
        throttle.failed("alice", "198.51.100.1")
    throttle.check("alice", "198.51.100.1")
    throttle.failed("alice", "198.51.100.1")
    with pytest.raises(TooManyRequests):
        throttle.check("alice", "198.51.100.1")


def test_source_failing_across_many_accounts_is_throttled(throttle: LoginThrottle) -> None:
    """A source spraying one guess at many accounts is stopped at ten times the limit,
    without locking those accounts for other sources."""
    source = "198.51.100.9"
    for i in range(LIMIT * 10 - 1):
        throttle.failed(f"user{i}", source)
    throttle.check("fresh-account", source)
    throttle.failed(f"user{LIMIT * 10}", source)
    with pytest.raises(TooManyRequests):
        throttle.check("fresh-account", source)
    throttle.check("fresh-account", "198.51.100.10")
    throttle.check("user0", "198.51.100.10")
