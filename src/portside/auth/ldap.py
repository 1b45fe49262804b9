"""LDAP / Active Directory user source: check a login against the directory and read the
user's e-mail and group names.

`LdapDirectory.authenticate` binds with the search account (`ldap.bind_dn`, or anonymously),
finds exactly one entry under `ldap.base_dn` whose `uid_attribute` equals the login, binds
as that entry's DN with the password on a second connection, and reads the names of the
groups under `ldap.groups.base_dn` that list the DN as a member. Every value put into a
filter is escaped, an empty password is refused before any bind (it would be an
unauthenticated bind, which many servers accept), and passwords are never logged.

Calls block (ldap3 is synchronous) and open their own connections: run them in a worker
thread. A directory that cannot be reached or used raises `LdapUnavailable`; a wrong
password or an unknown user is just `None`.
"""

from __future__ import annotations

import math
import ssl
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

import structlog
from ldap3 import NONE, SUBTREE, Connection, Server, Tls  # type: ignore[import-untyped]
from ldap3.core.exceptions import LDAPException  # type: ignore[import-untyped]
from ldap3.utils.conv import escape_filter_chars  # type: ignore[import-untyped]

from portside.config import LdapSettings

log = structlog.get_logger("portside.ldap")

# Search results that are answers: success, sizeLimitExceeded (more than one user matched).
# Anything else, noSuchObject for a missing or hidden base included, is a broken setup.
_SEARCH_OK = frozenset({0, 4})
# Bind results that refuse the credentials rather than signal a broken server:
# inappropriateAuthentication, invalidCredentials, insufficientAccessRights, unwillingToPerform.
_BIND_REFUSED = frozenset({48, 49, 50, 53})


@dataclass(frozen=True)
class LdapUser:
    username: str  # the directory's spelling of the login (its `uid_attribute` value)
    dn: str
    email: str | None
    groups: frozenset[str]  # `ldap.groups.name_attribute` values of the user's groups
    is_admin: bool = False  # member of `ldap.groups.admin_group` (compared ignoring case)


class LdapUnavailable(Exception):
    """The directory cannot be used: unreachable, timed out, TLS failed, or the search
    account's bind or a search was refused."""


class _Refused(Exception):
    """A bind was refused because of its credentials."""


class _Tls(Tls):  # type: ignore[misc]
    """ldap3's TLS with the standard library doing the hostname check (ldap3's own calls the
    deprecated `ssl.match_hostname`) and sending SNI."""

    def __init__(self, context: ssl.SSLContext) -> None:
        super().__init__(validate=context.verify_mode)
        self.context = context

    def wrap_socket(self, connection: Any, do_handshake: bool = False) -> None:
        connection.socket = self.context.wrap_socket(
            connection.socket,
            server_side=False,
            do_handshake_on_connect=do_handshake,
            server_hostname=connection.server.host,
        )


class LdapDirectory:
    def __init__(self, settings: LdapSettings) -> None:
        self.settings = settings
        context = ssl.create_default_context(cafile=settings.ca_file)
        if not settings.verify_certificate:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        self._tls = _Tls(context)

    def authenticate(self, username: str, password: str) -> LdapUser | None:
        """The user if `password` is theirs; None for an unknown user or a wrong password."""
        if not username or not password:
            return None
        with self._searching() as search:
            found = self._find(search, username)
            if found is None:
                return None
            try:
                with self._connection(found[0], password):
                    pass
            except _Refused:
                log.info("ldap login refused", username=username)
                return None
            return self._user(search, *found)

    def lookup(self, username: str) -> LdapUser | None:
        """The user's current entry and groups, without checking a password."""
        if not username:
            return None
        with self._searching() as search:
            found = self._find(search, username)
            return None if found is None else self._user(search, *found)

    @contextmanager
    def _searching(self) -> Iterator[Any]:
        """A connection bound as the search account; its refusal is `LdapUnavailable`."""
        s = self.settings
        try:
            with self._connection(s.bind_dn, s.bind_password) as conn:
                yield conn
        except _Refused as exc:
            raise LdapUnavailable(f"LDAP bind as {s.bind_dn or 'anonymous'}: {exc}") from None

    @contextmanager
    def _connection(self, user: str | None, password: str | None) -> Iterator[Any]:
        """An open connection bound as `user` (anonymously when None): `_Refused` when the
        server rejects the credentials, `LdapUnavailable` for every other failure."""
        s = self.settings
        server = Server(s.url, connect_timeout=s.timeout_seconds, get_info=NONE, tls=self._tls)
        conn = Connection(
            server,
            user=user,
            password=password,
            receive_timeout=math.ceil(s.timeout_seconds),  # ldap3 needs whole seconds
            auto_referrals=False,
            read_only=True,
            raise_exceptions=False,
        )
        try:
            conn.open()
            if s.start_tls and not server.ssl:
                conn.start_tls()
            if not conn.bind():
                if conn.result["result"] in _BIND_REFUSED:
                    raise _Refused(_describe(conn))
                raise LdapUnavailable(f"LDAP bind as {user or 'anonymous'}: {_describe(conn)}")
            yield conn
        except LDAPException as exc:
            raise LdapUnavailable(f"LDAP server {s.url}: {exc}") from exc
        finally:
            with suppress(LDAPException, OSError):
                conn.unbind()
            if conn.socket is not None:  # ldap3 leaves it open when connecting fails
                conn.socket.close()

    def _search(
        self, conn: Any, base: str, query: str, attributes: list[str], limit: int = 0
    ) -> list[dict[str, Any]]:
        timeout = math.ceil(self.settings.timeout_seconds)
        conn.search(
            base, query, SUBTREE, attributes=attributes, size_limit=limit, time_limit=timeout
        )
        if conn.result["result"] not in _SEARCH_OK:
            raise LdapUnavailable(f"LDAP search under {base}: {_describe(conn)}")
        return [r for r in conn.response or [] if r.get("type") == "searchResEntry"]

    def _find(self, conn: Any, username: str) -> tuple[str, str, str | None] | None:
        """(dn, username as spelled in the directory, e-mail) of the one matching entry."""
        s = self.settings
        uid, mail = s.uid_attribute, s.email_attribute
        query = f"(&{_parenthesized(s.user_filter)}({uid}={escape_filter_chars(username)}))"
        entries = self._search(conn, s.base_dn, query, [uid, mail], limit=2)
        if len(entries) != 1:
            if entries:
                log.warning("ldap login matches several entries", username=username)
            return None
        entry = entries[0]
        # The directory matched ignoring case and spaces: use its spelling of the login.
        names = _values(entry, uid)
        typed = [v for v in names if v.casefold() == username.strip().casefold()]
        name = (typed or names or [username])[0]
        emails = _values(entry, mail)
        return entry["dn"], name, emails[0] if emails else None

    def _user(self, conn: Any, dn: str, username: str, email: str | None) -> LdapUser:
        g = self.settings.groups
        names: set[str] = set()
        if g.base_dn is not None:
            query = f"(&{_parenthesized(g.filter)}({g.member_attribute}={escape_filter_chars(dn)}))"
            for entry in self._search(conn, g.base_dn, query, [g.name_attribute]):
                names.update(_values(entry, g.name_attribute))
        admin = g.admin_group is not None and g.admin_group.casefold() in {
            name.casefold() for name in names
        }
        return LdapUser(username, dn, email, frozenset(names), is_admin=admin)


def _parenthesized(query: str) -> str:
    query = query.strip()
    return query if query.startswith("(") else f"({query})"


def _values(entry: dict[str, Any], attribute: str) -> list[str]:
    """An attribute's values as text (raw values: the same shape with or without schema)."""
    raw = entry.get("raw_attributes", {}).get(attribute) or []
    return [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in raw]


def _describe(conn: Any) -> str:
    result = conn.result or {}
    return f"{result.get('description')} ({result.get('result')}) {result.get('message') or ''}"
