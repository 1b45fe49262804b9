"""Personal access tokens: a user's named secrets that work instead of their password
wherever Basic credentials are accepted (`docker login`, /auth/token, /v2, /api/v1).

This is how an LDAP user gets a CLI secret that is not their directory password. A
secret looks like `psp_` followed by 40 URL-safe characters, so a login can tell it from
a password without a database query; it is shown once, when it is created, and only its
SHA-256 is stored. A token acts as its user (their roles, admin rights and LDAP groups as
of their last password login), stops working when it expires, is revoked, or its user is
disabled or deleted, and is never accepted for a web UI sign-in or to manage tokens.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from portside.auth.errors import Exists, Invalid, Missing
from portside.auth.identity import Identity
from portside.events import outbox
from portside.events.outbox import SYSTEM, Actor
from portside.metadata import schema as s
from portside.metadata.db import Database, as_utc, utcnow

PREFIX = "psp_"
_SECRET_BYTES = 30  # 240 random bits: 40 URL-safe base64 characters, no padding
_SECRET = re.compile(r"psp_[A-Za-z0-9_-]{40}")
_NAME = re.compile(r"[^\x00-\x1f\x7f]{1,64}")
MAX_NAME_LENGTH = 64
MAX_TOKENS_PER_USER = 100
# last_used_at is written at most this often per token: every docker pull logs in, and a
# write per login would turn a read-heavy path into a write-heavy one.
TOUCH_INTERVAL = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class AccessToken:
    id: int
    name: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None

    @classmethod
    def from_row(cls, row: Any) -> AccessToken:
        return cls(
            int(row.id),
            row.name,
            as_utc(row.created_at),
            as_utc(row.expires_at) if row.expires_at else None,
            as_utc(row.last_used_at) if row.last_used_at else None,
        )


def looks_like_token(password: str) -> bool:
    """Whether a password has the exact shape of a token secret (then it is checked as a
    token only, never as a password: see `Accounts.authenticate`)."""
    return len(password) == len(PREFIX) + 40 and _SECRET.fullmatch(password) is not None


def hash_secret(secret: str) -> str:
    # A plain SHA-256 is enough: the secret is 240 random bits, so there is nothing for a
    # slow KDF (argon2) to protect against brute force; it would only slow every login.
    return hashlib.sha256(secret.encode()).hexdigest()


def check_token_name(name: str) -> str:
    if not _NAME.fullmatch(name) or name.strip() != name:
        raise Invalid(
            f"invalid token name {name!r}: 1-{MAX_NAME_LENGTH} characters, no control "
            "characters, no leading or trailing whitespace"
        )
    return name


_COLUMNS = (
    s.access_tokens.c.id,
    s.access_tokens.c.name,
    s.access_tokens.c.created_at,
    s.access_tokens.c.expires_at,
    s.access_tokens.c.last_used_at,
)


class AccessTokens:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create(
        self, user_id: int, name: str, *, actor: Actor = SYSTEM, expires_at: datetime | None = None
    ) -> tuple[AccessToken, str]:
        """Create a token for a user; returns it and its secret (the only time the secret
        exists). Exists if the user already has a token of that name."""
        check_token_name(name)
        if expires_at is not None and expires_at <= utcnow():
            raise Invalid("expiry must be in the future")
        secret = PREFIX + secrets.token_urlsafe(_SECRET_BYTES)
        t = s.access_tokens
        try:
            with self.db.write() as conn:
                user = conn.execute(
                    select(s.users.c.username).where(s.users.c.id == user_id)
                ).scalar_one_or_none()
                if user is None:
                    raise Missing("no such user")
                taken = conn.execute(
                    select(t.c.id).where(t.c.user_id == user_id, t.c.name == name)
                ).first()
                if taken is not None:
                    raise Exists(f"you already have a token named {name!r}")
                count = conn.execute(
                    select(func.count()).select_from(t).where(t.c.user_id == user_id)
                ).scalar_one()
                if count >= MAX_TOKENS_PER_USER:
                    raise Invalid(f"at most {MAX_TOKENS_PER_USER} tokens per user; revoke one")
                token_id = conn.execute(
                    t.insert()
                    .values(
                        user_id=user_id,
                        name=name,
                        secret_hash=hash_secret(secret),
                        created_at=utcnow(),
                        expires_at=expires_at,
                    )
                    .returning(t.c.id)
                ).scalar_one()
                data = {
                    "id": int(token_id),
                    "expires_at": expires_at.isoformat() if expires_at else None,
                }
                _emit(conn, outbox.TOKEN_CREATED, actor, f"{user}/{name}", data)
        except IntegrityError:
            # The same name created concurrently (PostgreSQL checks the unique constraint
            # at insert; SQLite's BEGIN IMMEDIATE serializes the check above).
            raise Exists(f"you already have a token named {name!r}") from None
        return self.get(user_id, int(token_id)), secret

    def get(self, user_id: int, token_id: int) -> AccessToken:
        t = s.access_tokens
        with self.db.read() as conn:
            row = conn.execute(
                select(*_COLUMNS).where(t.c.user_id == user_id, t.c.id == token_id)
            ).first()
        if row is None:
            raise Missing(f"no token {token_id}")
        return AccessToken.from_row(row)

    def list_for_user(self, user_id: int) -> list[AccessToken]:
        """The user's tokens (expired ones too, until revoked), oldest first."""
        t = s.access_tokens
        with self.db.read() as conn:
            rows = conn.execute(
                select(*_COLUMNS).where(t.c.user_id == user_id).order_by(t.c.id)
            ).all()
        return [AccessToken.from_row(row) for row in rows]

    def revoke(self, user_id: int, token_id: int, *, actor: Actor = SYSTEM) -> AccessToken:
        """Delete one of the user's tokens by id (Missing if they have no such token)."""
        which = s.access_tokens.c.id == token_id
        return self._revoke(user_id, which, f"no token {token_id}", actor)

    def revoke_by_name(self, user_id: int, name: str, *, actor: Actor = SYSTEM) -> AccessToken:
        which = s.access_tokens.c.name == name
        return self._revoke(user_id, which, f"no token named {name!r}", actor)

    def _revoke(
        self, user_id: int, which: ColumnElement[bool], missing: str, actor: Actor
    ) -> AccessToken:
        t = s.access_tokens
        with self.db.write() as conn:
            row = conn.execute(
                select(*_COLUMNS, s.users.c.username)
                .join(s.users, s.users.c.id == t.c.user_id)
                .where(t.c.user_id == user_id, which)
            ).first()
            if row is None:
                raise Missing(missing)
            conn.execute(delete(t).where(t.c.id == row.id))
            data = {"id": int(row.id)}
            _emit(conn, outbox.TOKEN_REVOKED, actor, f"{row.username}/{row.name}", data)
        return AccessToken.from_row(row)

    def authenticate(self, username: str, secret: str) -> Identity | None:
        """The user this token secret proves, if it is theirs (`username`, exactly as
        stored), unexpired, and they are enabled; else None. Found by the secret's hash:
        an indexed lookup of a value the caller cannot steer, so its timing says nothing
        about which tokens or users exist."""
        if not looks_like_token(secret):
            return None
        digest = hash_secret(secret)
        t, u = s.access_tokens, s.users
        with self.db.read() as conn:
            row = conn.execute(
                select(
                    t.c.id,
                    t.c.secret_hash,
                    t.c.expires_at,
                    t.c.last_used_at,
                    u.c.id.label("user_id"),
                    u.c.username,
                    u.c.is_admin,
                    u.c.disabled,
                    u.c.ldap_groups,
                )
                .join(u, u.c.id == t.c.user_id)
                .where(t.c.secret_hash == digest)
            ).first()
        if row is None or not hmac.compare_digest(row.secret_hash, digest):
            return None
        now = utcnow()
        if (
            row.username != username
            or row.disabled
            or (row.expires_at is not None and as_utc(row.expires_at) <= now)
        ):
            return None
        if row.last_used_at is None or as_utc(row.last_used_at) + TOUCH_INTERVAL <= now:
            self._touch(int(row.id), now)
        groups = frozenset(json.loads(row.ldap_groups)) if row.ldap_groups else frozenset()
        return Identity(
            "user",
            row.username,
            user_id=int(row.user_id),
            is_admin=bool(row.is_admin),
            groups=groups,
        )

    def _touch(self, token_id: int, now: datetime) -> None:
        """Record a use; conditional, so replicas racing within a minute write once."""
        t = s.access_tokens
        with self.db.write() as conn:
            conn.execute(
                update(t)
                .where(
                    t.c.id == token_id,
                    or_(t.c.last_used_at.is_(None), t.c.last_used_at <= now - TOUCH_INTERVAL),
                )
                .values(last_used_at=now)
            )


def _emit(conn: Connection, type_: str, actor: Actor, resource: str, data: dict[str, Any]) -> None:
    """A token event, named `user/token`; it never carries the secret or its hash."""
    outbox.emit(conn, type_, actor, resource=resource, data=data)
