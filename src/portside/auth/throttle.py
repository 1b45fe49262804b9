"""Failed-login throttling, per account and source address, kept in the database so every
replica counts the same failures.

After `max_failures` failures of one account from one source within `window`, that pair
gets 429 until the window has passed. Another source can still sign in to the account,
and the source can still sign in to other accounts: an attacker cannot lock a user out.
A source failing across many accounts is throttled too (at ten times the limit).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Connection, delete, select, update

from portside.errors import TooManyRequests
from portside.metadata import schema as s
from portside.metadata.db import Database, as_utc, utcnow

_ANY_ACCOUNT = "*"
_SOURCE_FACTOR = 10


class LoginThrottle:
    def __init__(self, db: Database, max_failures: int, window_seconds: int) -> None:
        self.db = db
        self.max_failures = max_failures
        self.window = timedelta(seconds=window_seconds)

    def check(self, account: str, source: str) -> None:
        """Raise TooManyRequests if this account/source pair (or the source) is throttled."""
        t = s.login_failures
        now = utcnow()
        with self.db.read() as conn:
            rows = conn.execute(
                select(t.c.account, t.c.failures, t.c.first_failed_at).where(
                    t.c.source == source, t.c.account.in_([account, _ANY_ACCOUNT])
                )
            ).all()
        for row in rows:
            limit = self.max_failures * (_SOURCE_FACTOR if row.account == _ANY_ACCOUNT else 1)
            first = as_utc(row.first_failed_at)
            if row.failures >= limit and first + self.window > now:
                retry = int((first + self.window - now).total_seconds()) + 1
                raise TooManyRequests(
                    "too many failed logins; try again later",
                    headers={"Retry-After": str(retry)},
                )

    def failed(self, account: str, source: str) -> None:
        now = utcnow()
        with self.db.write() as conn:
            for key in (account, _ANY_ACCOUNT):
                self._count(conn, key, source, now)

    def _count(self, conn: Connection, account: str, source: str, now: datetime) -> None:
        t = s.login_failures
        where = (t.c.account == account, t.c.source == source)
        row = conn.execute(select(t.c.first_failed_at).where(*where)).first()
        if row is None:
            self.db.insert_ignore(
                conn,
                t,
                {"account": account, "source": source, "failures": 1, "first_failed_at": now},
            )
        elif as_utc(row.first_failed_at) + self.window <= now:
            conn.execute(update(t).where(*where).values(failures=1, first_failed_at=now))
        else:
            conn.execute(update(t).where(*where).values(failures=t.c.failures + 1))

    def succeeded(self, account: str, source: str) -> None:
        t = s.login_failures
        with self.db.write() as conn:
            conn.execute(delete(t).where(t.c.account == account, t.c.source == source))
