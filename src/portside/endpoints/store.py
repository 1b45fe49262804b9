"""Registry endpoints: create, read, change, delete, and the client to talk to one.

Only administrators manage endpoints (the management API checks). The URL is checked by
the egress policy of `endpoints.*` when an endpoint is saved (a refused target is a 400
saying why) and again at every connection. A password is stored only encrypted
(`secrets.Cipher`) and leaves this module only inside a `RegistryClient`; readers see
`has_credentials`. Every change raises its `endpoint.*` event in its transaction,
without secrets.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, update

from portside.auth.errors import Exists, Invalid, Missing
from portside.config import Settings
from portside.egress import EgressPolicy, Refused, policy_from, tls_context
from portside.endpoints.secrets import Cipher, SecretUnreadable
from portside.events import outbox
from portside.metadata import schema as s
from portside.metadata.db import Database, as_utc, utcnow
from portside.remote import KINDS, Credentials, Ping, RegistryClient, RetryPolicy

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
MAX_URL = 2048
MAX_SECRET = 4096  # registry tokens (ECR's) run to a few KB
MAX_CA = 256 * 1024


@dataclass(frozen=True, slots=True)
class Endpoint:
    id: int
    name: str
    description: str | None
    kind: str
    url: str
    username: str | None
    has_credentials: bool
    verify_tls: bool
    ca_pem: str | None
    created_by: str
    created_at: datetime
    updated_at: datetime
    secret: str | None = field(default=None, repr=False)  # encrypted; never shown

    def describe(self) -> str:
        return f"endpoint {self.name!r} ({self.url})"


def _endpoint(row: Any) -> Endpoint:
    return Endpoint(
        id=int(row.id),
        name=row.name,
        description=row.description,
        kind=row.kind,
        url=row.url,
        username=row.username,
        has_credentials=row.secret is not None,
        verify_tls=bool(row.verify_tls),
        ca_pem=row.ca_pem,
        created_by=row.created_by,
        created_at=as_utc(row.created_at),
        updated_at=as_utc(row.updated_at),
        secret=row.secret,
    )


def endpoint_egress(settings: Settings) -> EgressPolicy:
    options = settings.endpoints
    return policy_from(
        allow_private=options.allow_private_targets,
        allowed_networks=options.allowed_networks,
        timeout_seconds=options.timeout_seconds,
        max_redirects=options.max_redirects,
    )


class EndpointStore:
    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        self.egress = endpoint_egress(settings)
        self.cipher = Cipher(settings.secrets.encryption_key)

    # -- checks -----------------------------------------------------------------------
    def check_url(self, url: str) -> str:
        """The URL, normalised (no trailing slash), if endpoints may be there."""
        url = url.strip().rstrip("/")
        if len(url) > MAX_URL:
            raise Invalid(f"the URL is longer than {MAX_URL} characters")
        try:
            parsed = self.egress.check_saved(url)
        except Refused as refused:
            raise Invalid(f"endpoint URL {url!r} refused: {refused}") from None
        if parsed.query or parsed.fragment or parsed.path not in ("", "/"):
            raise Invalid(
                "the URL is the registry's root, such as https://registry.example.com "
                "(the registry API lives under /v2/ there)"
            )
        return url

    @staticmethod
    def check_kind(kind: str) -> str:
        if kind not in KINDS:
            raise Invalid(f"unknown endpoint type {kind!r}; types are: {', '.join(KINDS)}")
        return kind

    @staticmethod
    def check_ca(ca_pem: str | None) -> str | None:
        if not ca_pem:
            return None
        if len(ca_pem) > MAX_CA:
            raise Invalid(f"the CA bundle is larger than {MAX_CA} bytes")
        try:
            tls_context(verify=True, ca_pem=ca_pem)
        except ValueError as error:
            raise Invalid(str(error)) from None
        return ca_pem

    # -- reading ----------------------------------------------------------------------
    def find(self) -> list[Endpoint]:
        with self.db.read() as conn:
            rows = conn.execute(
                select(s.registry_endpoints).order_by(s.registry_endpoints.c.name)
            ).all()
        return [_endpoint(r) for r in rows]

    def get(self, name: str) -> Endpoint:
        with self.db.read() as conn:
            return self._get(conn, name)

    def by_id(self, endpoint_id: int) -> Endpoint | None:
        with self.db.read() as conn:
            row = conn.execute(
                select(s.registry_endpoints).where(s.registry_endpoints.c.id == endpoint_id)
            ).first()
        return None if row is None else _endpoint(row)

    @staticmethod
    def _get(conn: Connection, name: str) -> Endpoint:
        row = conn.execute(
            select(s.registry_endpoints).where(s.registry_endpoints.c.name == name)
        ).first()
        if row is None:
            raise Missing(f"no endpoint {name!r}")
        return _endpoint(row)

    # -- changing ---------------------------------------------------------------------
    def create(
        self,
        *,
        name: str,
        kind: str,
        url: str | None = None,
        username: str | None = None,
        password: str | None = None,
        verify_tls: bool = True,
        ca_pem: str | None = None,
        description: str | None = None,
        actor: outbox.Actor,
    ) -> Endpoint:
        if not NAME.match(name):
            raise Invalid(
                "an endpoint name is 1-64 letters, digits, '.', '_' or '-', starting with a "
                "letter or digit"
            )
        self.check_kind(kind)
        url = url or KINDS[kind].default_url
        if not url:
            raise Invalid(f"an endpoint of type {kind!r} needs a URL")
        url = self.check_url(url)
        username, secret = self._credentials(username, password)
        e = s.registry_endpoints
        now = utcnow()
        with self.db.write() as conn:
            if conn.execute(select(e.c.id).where(e.c.name == name)).first():
                raise Exists(f"an endpoint named {name!r} exists")
            conn.execute(
                e.insert().values(
                    name=name,
                    description=description or None,
                    kind=kind,
                    url=url,
                    username=username,
                    secret=secret,
                    verify_tls=verify_tls,
                    ca_pem=self.check_ca(ca_pem),
                    created_by=actor.name,
                    created_at=now,
                    updated_at=now,
                )
            )
            endpoint = self._get(conn, name)
            self._emit(
                conn,
                outbox.ENDPOINT_CREATED,
                actor,
                endpoint,
                url=url,
                kind=kind,
                username=username,
                verify_tls=verify_tls,
                ca_bundle=endpoint.ca_pem is not None,
            )
            return endpoint

    def update(
        self,
        name: str,
        *,
        kind: str | None = None,
        url: str | None = None,
        username: str | None = None,
        password: str | None = None,
        clear_credentials: bool = False,
        verify_tls: bool | None = None,
        ca_pem: str | None = None,
        description: str | None = None,
        actor: outbox.Actor,
    ) -> Endpoint:
        """Change what is given. New credentials need both username and password (or a
        password alone, keeping the username); `clear_credentials` makes it anonymous;
        `ca_pem=""` removes the CA bundle."""
        values: dict[str, Any] = {}
        if kind is not None:
            values["kind"] = self.check_kind(kind)
        if url is not None:
            values["url"] = self.check_url(url)
        if verify_tls is not None:
            values["verify_tls"] = verify_tls
        if ca_pem is not None:
            values["ca_pem"] = self.check_ca(ca_pem)
        if description is not None:
            values["description"] = description or None
        e = s.registry_endpoints
        with self.db.write() as conn:
            current = self._get(conn, name)
            if clear_credentials:
                values["username"], values["secret"] = None, None
            elif password is not None:
                values["username"], values["secret"] = self._credentials(
                    username or current.username, password
                )
            elif username is not None:
                if current.secret is None:
                    raise Invalid("give a password with the username")
                values["username"] = username
            changed: dict[str, Any] = {
                k: v for k, v in values.items() if k not in ("secret", "ca_pem")
            }
            if "secret" in values:
                changed["credentials"] = "changed" if values["secret"] else "removed"
            if "ca_pem" in values:
                changed["ca_bundle"] = "changed" if values["ca_pem"] else "removed"
            values["updated_at"] = utcnow()
            conn.execute(update(e).where(e.c.id == current.id).values(**values))
            endpoint = self._get(conn, name)
            self._emit(conn, outbox.ENDPOINT_UPDATED, actor, endpoint, **changed)
            return endpoint

    def delete(self, name: str, *, actor: outbox.Actor) -> Endpoint:
        """Remove an endpoint no replication rule and no proxy-cache project uses (409
        naming them if any)."""
        e, r = s.registry_endpoints, s.replication_rules
        with self.db.write() as conn:
            current = self._get(conn, name)
            users = (
                conn.execute(
                    select(r.c.name).where(r.c.endpoint_id == current.id).order_by(r.c.name)
                )
                .scalars()
                .all()
            )
            if users:
                raise Exists(f"endpoint {name!r} is used by replication rules: {', '.join(users)}")
            p, proj = s.proxy_projects, s.projects
            caches = (
                conn.execute(
                    select(proj.c.name)
                    .join(p, p.c.project_id == proj.c.id)
                    .where(p.c.endpoint == current.name)
                    .order_by(proj.c.name)
                )
                .scalars()
                .all()
            )
            if caches:
                listed = ", ".join(caches)
                raise Exists(f"endpoint {name!r} is the upstream of proxy-cache projects: {listed}")
            self._emit(conn, outbox.ENDPOINT_DELETED, actor, current, url=current.url)
            conn.execute(e.delete().where(e.c.id == current.id))
        return current

    def _credentials(
        self, username: str | None, password: str | None
    ) -> tuple[str | None, str | None]:
        if password is None or password == "":
            if username:
                raise Invalid("give a password (or token) with the username")
            return None, None
        if not username:
            raise Invalid("give a username with the password")
        if len(password) > MAX_SECRET:
            raise Invalid(f"the password is longer than {MAX_SECRET} characters")
        return username, self.cipher.encrypt(password)

    @staticmethod
    def _emit(
        conn: Connection, type_: str, actor: outbox.Actor, endpoint: Endpoint, **data: Any
    ) -> None:
        outbox.emit(conn, type_, actor, resource=f"endpoints/{endpoint.name}", data=data)

    # -- talking to it ----------------------------------------------------------------
    def credentials(self, endpoint: Endpoint) -> Credentials | None:
        """The decrypted credentials (SecretUnreadable if the key cannot open them)."""
        if endpoint.secret is None or endpoint.username is None:
            return None
        return Credentials(endpoint.username, self.cipher.decrypt(endpoint.secret))

    def client(self, endpoint: Endpoint, **options: Any) -> RegistryClient:
        """A client for the endpoint, with its credentials, TLS settings and the
        `endpoints.*` egress, retry and chunk settings (`options` override)."""
        config = self.settings.endpoints
        arguments: dict[str, Any] = {
            "egress": self.egress,
            "credentials": self.credentials(endpoint),
            "verify_tls": endpoint.verify_tls,
            "ca_pem": endpoint.ca_pem,
            "retry": RetryPolicy(attempts=config.retry_attempts, max_wait=config.retry_max_seconds),
            "timeout_seconds": config.timeout_seconds,
            "chunk_size": config.chunk_bytes,
            "user_agent": "portside",
        }
        arguments.update(options)
        return RegistryClient(endpoint.url, **arguments)

    def test(self, endpoint: Endpoint) -> Ping:
        """GET /v2/ with the endpoint's credentials; the result says precisely what
        worked or failed."""
        try:
            client = self.client(endpoint)
        except SecretUnreadable as error:
            return Ping(False, str(error))
        with client:
            return client.ping()
