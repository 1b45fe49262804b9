"""Cookie sessions for the web UI: a random id in an HttpOnly cookie (only its hash is
stored), a CSRF token that state-changing requests must echo in `X-CSRF-Token`, and an
expiry. Sessions live in the database, so any replica accepts them and logout is final."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select

from portside.metadata import schema as s
from portside.metadata.db import Database, as_utc, utcnow

COOKIE = "portside_session"
LIFETIME = timedelta(hours=12)


@dataclass(frozen=True, slots=True)
class Session:
    username: str
    csrf_token: str
    expires_at: datetime


def session_id_hash(cookie: str) -> str:
    """What the sessions table stores for a cookie value."""
    return hashlib.sha256(cookie.encode()).hexdigest()


_hash = session_id_hash


class SessionStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create(self, user_id: int) -> tuple[str, Session]:
        """A new session; returns the cookie value (shown to nobody else) and the session."""
        cookie = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        now = utcnow()
        with self.db.write() as conn:
            conn.execute(delete(s.sessions).where(s.sessions.c.expires_at < now))
            conn.execute(
                s.sessions.insert().values(
                    id_hash=_hash(cookie),
                    user_id=user_id,
                    csrf_token=csrf,
                    created_at=now,
                    expires_at=now + LIFETIME,
                )
            )
            username = conn.execute(
                select(s.users.c.username).where(s.users.c.id == user_id)
            ).scalar_one()
        return cookie, Session(username, csrf, now + LIFETIME)

    def find(self, cookie: str) -> Session | None:
        t, u = s.sessions, s.users
        with self.db.read() as conn:
            row = conn.execute(
                select(u.c.username, u.c.disabled, t.c.csrf_token, t.c.expires_at)
                .join(u, u.c.id == t.c.user_id)
                .where(t.c.id_hash == _hash(cookie))
            ).first()
        if row is None or row.disabled or as_utc(row.expires_at) <= utcnow():
            return None
        return Session(row.username, row.csrf_token, as_utc(row.expires_at))

    def end(self, cookie: str) -> None:
        with self.db.write() as conn:
            conn.execute(delete(s.sessions).where(s.sessions.c.id_hash == _hash(cookie)))
