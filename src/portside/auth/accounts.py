"""Local user accounts and credential checks (users, robots, LDAP users).

`Accounts.authenticate` is the one place a username and password become an Identity:
robots (`robot$…`) by their secret, a personal access token (`psp_…`) by its hash, local
users by their argon2 hash, anyone else by LDAP when it is configured (creating or
refreshing the local row that carries their memberships). Every failure looks the same
to the caller, and a failed password costs the time of a real check.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import structlog
from sqlalchemy import Row, delete, func, select, update

from portside.auth import passwords
from portside.auth.access_tokens import AccessTokens, looks_like_token
from portside.auth.errors import Exists, Invalid, Missing
from portside.auth.identity import Identity
from portside.auth.names import ROBOT_PREFIX, check_username
from portside.auth.throttle import LoginThrottle
from portside.events import outbox
from portside.events.outbox import SYSTEM, Actor
from portside.metadata import schema as s
from portside.metadata.db import Database, as_utc, utcnow

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class User:
    id: int
    username: str
    email: str | None
    source: str
    is_admin: bool
    disabled: bool
    created_at: datetime
    last_login_at: datetime | None

    @classmethod
    def from_row(cls, row: Row[Any, Any, Any, Any, Any, Any, Any, Any]) -> User:
        return cls(
            int(row.id),
            row.username,
            row.email,
            row.source,
            bool(row.is_admin),
            bool(row.disabled),
            row.created_at,
            row.last_login_at,
        )


class LdapUserInfo(Protocol):
    @property
    def username(self) -> str: ...
    @property
    def email(self) -> str | None: ...
    @property
    def groups(self) -> frozenset[str]: ...
    @property
    def is_admin(self) -> bool: ...


class DirectoryUnavailable(Exception):
    """The external directory (LDAP) cannot be asked right now."""


class LdapSource(Protocol):
    """Checks a login against LDAP: the user's details, or None; raises
    DirectoryUnavailable when the directory is down."""

    def authenticate(self, username: str, password: str) -> LdapUserInfo | None: ...


MAX_LOGIN_LENGTH = 255

_USER_COLUMNS = (
    s.users.c.id,
    s.users.c.username,
    s.users.c.email,
    s.users.c.source,
    s.users.c.is_admin,
    s.users.c.disabled,
    s.users.c.created_at,
    s.users.c.last_login_at,
)


class Accounts:
    def __init__(
        self, db: Database, throttle: LoginThrottle, ldap: LdapSource | None = None
    ) -> None:
        self.db = db
        self.throttle = throttle
        self.ldap = ldap
        self.tokens = AccessTokens(db)

    # --- users ---------------------------------------------------------------------

    def any_account(self) -> bool:
        with self.db.read() as conn:
            return conn.execute(select(s.users.c.id).limit(1)).first() is not None

    def create_user(
        self,
        username: str,
        password: str,
        *,
        admin: bool = False,
        email: str | None = None,
        actor: Actor = SYSTEM,
    ) -> User:
        check_username(username)
        problem = _password_problem(password)
        if problem:
            raise Invalid(problem)
        values = {
            "username": username,
            "password_hash": passwords.hash_password(password),
            "email": email,
            "source": "local",
            "is_admin": admin,
            "disabled": False,
            "created_at": utcnow(),
        }
        with self.db.write() as conn:
            if conn.execute(select(s.users.c.id).where(s.users.c.username == username)).first():
                raise Exists(f"user {username!r} already exists")
            conn.execute(s.users.insert().values(**values))
            _emit(conn, outbox.USER_CREATED, actor, username, {"admin": admin})
        return self.get_user(username)

    def get_user(self, username: str) -> User:
        with self.db.read() as conn:
            row = conn.execute(select(*_USER_COLUMNS).where(s.users.c.username == username)).first()
        if row is None:
            raise Missing(f"no user {username!r}")
        return User.from_row(row)

    def list_users(self, search: str | None = None) -> list[User]:
        query = select(*_USER_COLUMNS).order_by(s.users.c.username)
        if search:
            query = query.where(s.users.c.username.contains(search, autoescape=True))
        with self.db.read() as conn:
            return [User.from_row(r) for r in conn.execute(query)]

    def update_user(
        self,
        username: str,
        *,
        disabled: bool | None = None,
        admin: bool | None = None,
        password: str | None = None,
        email: str | None = None,
        keep_session: str | None = None,
        actor: Actor = SYSTEM,
        own_password: bool = False,
    ) -> User:
        """Change a user. Disabling them or setting their password ends their sessions,
        except `keep_session` (the hashed id of the session making the change). The event
        names what changed (a password only as `password_changed`); `own_password` is a
        user (or the operator) setting the password as such: `user.password`."""
        values: dict[str, Any] = {}
        if disabled is not None:
            values["disabled"] = disabled
        if admin is not None:
            values["is_admin"] = admin
        if email is not None:
            values["email"] = email
        if password is not None:
            problem = _password_problem(password)
            if problem:
                raise Invalid(problem)
            values["password_hash"] = passwords.hash_password(password)
        with self.db.write() as conn:
            user = conn.execute(
                select(s.users.c.id, s.users.c.source, s.users.c.is_admin).where(
                    s.users.c.username == username
                )
            ).first()
            if user is None:
                raise Missing(f"no user {username!r}")
            if password is not None and user.source != "local":
                raise Invalid(f"{username!r} is an LDAP user: change the password in LDAP")
            if (disabled or admin is False) and user.is_admin:
                self._keep_one_admin(conn, int(user.id))
            if values:
                conn.execute(update(s.users).where(s.users.c.id == user.id).values(**values))
            if disabled or password is not None:
                # A disabled account or a reset password ends every signed-in session.
                conn.execute(
                    delete(s.sessions).where(
                        s.sessions.c.user_id == user.id,
                        s.sessions.c.id_hash != (keep_session or ""),
                    )
                )
            if own_password:
                _emit(conn, outbox.USER_PASSWORD, actor, username, {})
            else:
                changed = {k: v for k, v in values.items() if k != "password_hash"}
                if "is_admin" in changed:
                    changed["admin"] = changed.pop("is_admin")
                if password is not None:
                    changed["password_changed"] = True
                _emit(conn, outbox.USER_UPDATED, actor, username, changed)
        return self.get_user(username)

    def delete_user(self, username: str, *, actor: Actor = SYSTEM) -> None:
        with self.db.write() as conn:
            user = conn.execute(
                select(s.users.c.id, s.users.c.is_admin).where(s.users.c.username == username)
            ).first()
            if user is None:
                raise Missing(f"no user {username!r}")
            if user.is_admin:
                self._keep_one_admin(conn, int(user.id))
            conn.execute(delete(s.users).where(s.users.c.id == user.id))
            _emit(conn, outbox.USER_DELETED, actor, username, {})

    def _keep_one_admin(self, conn: Any, user_id: int) -> None:
        others = conn.execute(
            select(func.count())
            .select_from(s.users)
            .where(s.users.c.is_admin, ~s.users.c.disabled, s.users.c.id != user_id)
        ).scalar_one()
        if not others:
            raise Invalid("this is the last enabled administrator; create another first")

    # --- credentials ---------------------------------------------------------------

    def login_attempted(self, actor: Actor, result: str, *, via: str) -> None:
        """Record a sign-in attempt as `account.login` (never with the password), in a
        transaction of its own: a failed attempt changes nothing else. The callers are
        the sign-ins (token endpoint, session, Basic refused), not every Basic request."""
        with self.db.write() as conn:
            data = {"result": result, "via": via}
            outbox.emit(conn, outbox.ACCOUNT_LOGIN, actor, resource=actor.name, data=data)

    def authenticate(
        self, username: str, password: str, source: str, *, tokens: bool = True
    ) -> Identity | None:
        """The identity these credentials prove, or None. Raises TooManyRequests when
        this account/source pair has failed too often recently.

        With `tokens` (Basic logins), a password shaped like a personal access token
        (`psp_` + 40 characters) is checked against the user's tokens only, never as a
        password (nor sent to LDAP). Without (web UI sign-in, checking the current
        password before changing it), only the real password is accepted."""
        if (
            len(username) > MAX_LOGIN_LENGTH
            or len(password) > MAX_LOGIN_LENGTH * 4
            or "\x00" in username
        ):
            passwords.verify_nothing(password[:64])
            return None  # no account has such a name; not worth a throttle row
        # Throttle per account as the directory sees it: "ALICE" and " alice" are alice.
        account = username if username.startswith(ROBOT_PREFIX) else username.strip().casefold()
        self.throttle.check(account, source)
        try:
            if username.startswith(ROBOT_PREFIX):
                identity = self._robot(username, password)
            elif tokens and looks_like_token(password):
                identity = self.tokens.authenticate(username, password)
            else:
                identity = self._user(username, password)
        except DirectoryUnavailable:
            # Not the caller's fault: no failure is counted against them.
            log.warning("login.directory_unavailable", account=username, source=source)
            return None
        if identity is None:
            self.throttle.failed(account, source)
            log.info("login.failed", account=username, source=source)
        else:
            self.throttle.succeeded(account, source)
        return identity

    def _user(self, username: str, password: str) -> Identity | None:
        with self.db.read() as conn:
            row = conn.execute(
                select(
                    s.users.c.id,
                    s.users.c.password_hash,
                    s.users.c.source,
                    s.users.c.is_admin,
                    s.users.c.disabled,
                ).where(s.users.c.username == username)
            ).first()
        if row is not None and row.source == "local":
            valid = passwords.verify_password(row.password_hash or "", password)
            if not valid or row.disabled:
                return None
            self._touch(int(row.id))
            return Identity("user", username, user_id=int(row.id), is_admin=bool(row.is_admin))
        if self.ldap is None:
            passwords.verify_nothing(password)
            return None
        found = self.ldap.authenticate(username, password)
        if found is None:
            return None
        # The directory's spelling of the login names the account ("ALICE" -> "alice").
        name = found.username
        user_id, disabled = self._upsert_ldap_user(name, found.email, found.groups, found.is_admin)
        if disabled:
            return None
        return Identity("user", name, user_id=user_id, is_admin=found.is_admin, groups=found.groups)

    def _upsert_ldap_user(
        self, username: str, email: str | None, groups: frozenset[str], is_admin: bool
    ) -> tuple[int, bool]:
        now = utcnow()
        values = {
            "email": email,
            "ldap_groups": json.dumps(sorted(groups)),
            "is_admin": is_admin,
            "last_login_at": now,
        }
        with self.db.write() as conn:
            self.db.insert_ignore(
                conn,
                s.users,
                {
                    "username": username,
                    "source": "ldap",
                    "disabled": False,
                    "created_at": now,
                    **values,
                },
            )
            row = conn.execute(
                select(s.users.c.id, s.users.c.disabled, s.users.c.source).where(
                    s.users.c.username == username
                )
            ).one()
            if row.source != "ldap":
                # A local account of the same name is not the directory's to claim.
                log.warning("login.ldap_name_taken_by_local_account", account=username)
                return int(row.id), True
            conn.execute(update(s.users).where(s.users.c.id == row.id).values(**values))
        return int(row.id), bool(row.disabled)

    def _touch(self, user_id: int) -> None:
        with self.db.write() as conn:
            conn.execute(
                update(s.users).where(s.users.c.id == user_id).values(last_login_at=utcnow())
            )

    def _robot(self, name: str, secret: str) -> Identity | None:
        r = s.robots
        with self.db.read() as conn:
            row = conn.execute(
                select(r.c.id, r.c.secret_hash, r.c.disabled, r.c.expires_at).where(
                    r.c.name == name
                )
            ).first()
        if row is None:
            passwords.verify_secret("0" * 64, secret)
            return None
        if not passwords.verify_secret(row.secret_hash, secret) or row.disabled:
            return None
        if row.expires_at is not None and as_utc(row.expires_at) <= utcnow():
            return None
        return Identity("robot", name, robot_id=int(row.id))

    def identity_for(self, subject: str) -> Identity:
        """Rebuild the identity named in a token's `sub` (for the catalog filter)."""
        if subject.startswith(ROBOT_PREFIX):
            with self.db.read() as conn:
                robot_id = conn.execute(
                    select(s.robots.c.id).where(s.robots.c.name == subject, ~s.robots.c.disabled)
                ).scalar_one_or_none()
            return Identity("robot", subject, robot_id=robot_id) if robot_id else _ANON
        with self.db.read() as conn:
            row = conn.execute(
                select(
                    s.users.c.id, s.users.c.is_admin, s.users.c.disabled, s.users.c.ldap_groups
                ).where(s.users.c.username == subject)
            ).first()
        if row is None or row.disabled:
            return _ANON
        groups = frozenset(json.loads(row.ldap_groups)) if row.ldap_groups else frozenset()
        return Identity(
            "user", subject, user_id=int(row.id), is_admin=bool(row.is_admin), groups=groups
        )


_ANON = Identity("anonymous")


def _emit(conn: Any, type_: str, actor: Actor, username: str, data: dict[str, Any]) -> None:
    outbox.emit(conn, type_, actor, resource=username, data=data)


def _password_problem(password: str) -> str | None:
    if looks_like_token(password):
        # It would be taken for a token at every Basic login, and never work there.
        return "password must not have the form of a personal access token (psp_...)"
    return passwords.password_problem(password)
