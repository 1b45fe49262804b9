"""The access-control services of one process, and the decisions shared by the registry
API, the token endpoint and the management API: is auth on, what is granted, may this
identity create a project."""

from __future__ import annotations

import contextlib
import functools
import time
from typing import TYPE_CHECKING

from portside.auth.accounts import Accounts, LdapSource
from portside.auth.errors import Exists, ManagementError
from portside.auth.identity import Identity
from portside.auth.names import check_project_name
from portside.auth.policy import Policy
from portside.auth.projects import Projects
from portside.auth.robots import Robots
from portside.auth.scopes import Access
from portside.auth.throttle import LoginThrottle
from portside.config import Settings
from portside.errors import Denied
from portside.events.outbox import Actor
from portside.metadata.db import Database
from portside.reference import project_of

if TYPE_CHECKING:
    from portside.auth.tokens import TokenIssuer, TokenVerifier

# While no account exists, look again at most this often (an admin may be created by the
# CLI while the server runs; from then on authentication is on for good).
_RECHECK_SECONDS = 2.0


class AuthService:
    def __init__(self, settings: Settings, db: Database, ldap: LdapSource | None = None) -> None:
        self.settings = settings
        self.db = db
        self.policy = Policy(db)
        throttle = LoginThrottle(
            db, settings.auth.throttle.max_failures, settings.auth.throttle.window_seconds
        )
        self.accounts = Accounts(db, throttle, ldap)
        self.projects = Projects(db)
        self.robots = Robots(db, self.policy)
        self._enabled = settings.auth.mode == "auto" and settings.ldap is not None
        self._checked_at = 0.0

    # Token machinery (PyJWT, cryptography, the signing key) is loaded on first use: an
    # open registry never needs it, and it costs each worker ~10 MB.
    @functools.cached_property
    def issuer(self) -> TokenIssuer:
        from portside.auth.keys import load_signing_key
        from portside.auth.tokens import TokenIssuer

        token = self.settings.auth.token
        return TokenIssuer(
            load_signing_key(self.db, token), token.issuer, token.service, token.lifetime_seconds
        )

    @functools.cached_property
    def verifier(self) -> TokenVerifier:
        from portside.auth.keys import load_public_key
        from portside.auth.tokens import TokenVerifier, TrustedIssuer

        trusted = [self.issuer.trusted()]
        external = self.settings.auth.external_issuer
        if external is not None:
            key = load_public_key(external.public_key_file, "auth.external_issuer.public_key_file")
            trusted.append(
                TrustedIssuer(
                    external.issuer, external.audience, external.algorithm, key, external=True
                )
            )
        return TokenVerifier(trusted)

    @property
    def realm(self) -> str:
        return f"{self.settings.public_url}/auth/token"

    @property
    def service(self) -> str:
        return self.settings.auth.token.service

    def enabled(self) -> bool:
        """Authentication is on once any account exists or LDAP is configured, unless
        `auth.mode: none`."""
        if self._enabled or self.settings.auth.mode == "none":
            return self._enabled
        now = time.monotonic()
        if now - self._checked_at >= _RECHECK_SECONDS:
            self._checked_at = now
            self._enabled = self.accounts.any_account()
        return self._enabled

    def enabled_known(self) -> bool | None:
        """enabled() when it needs no query now; None when it does (call enabled() off
        the event loop)."""
        if self._enabled or self.settings.auth.mode == "none":
            return self._enabled
        if time.monotonic() - self._checked_at >= _RECHECK_SECONDS:
            return None
        return self._enabled

    def may_create_project(self, identity: Identity) -> bool:
        return identity.is_admin or (
            self.settings.projects.creation == "users" and identity.kind == "user"
        )

    def repository_actions(self, identity: Identity, repository: str) -> frozenset[str]:
        access = self.policy.project_access(identity, project_of(repository))
        actions = access.actions
        mirror = self.settings.proxy.mirror
        if not access.exists and mirror is not None:
            # Mirror mode: pulls of a repository of no project are served from the
            # mirror's project (portside.proxy), so they need pull there.
            actions = self.policy.project_access(identity, mirror.project).actions & {"pull"}
        if (
            not access.exists
            and self.settings.projects.auto_create
            and self.may_create_project(identity)
        ):
            return actions | {"pull", "push"}
        return frozenset(actions)

    def grant(self, identity: Identity, requested: list[Access]) -> list[Access]:
        """What of `requested` the identity gets: the intersection with what it may do."""
        granted = []
        for access in requested:
            if access.type == "registry":
                allowed = access.actions  # everyone may list; the catalog filters by caller
            else:
                allowed = access.actions & self.repository_actions(identity, access.name)
            if allowed:
                granted.append(Access(access.type, access.name, allowed))
        return granted

    def ensure_project(self, identity: Identity, repository: str) -> None:
        """Before a push: the repository's project must exist (or be auto-created)."""
        project = project_of(repository)
        if self.policy.project_access(identity, project).exists:
            return
        try:
            check_project_name(project)
        except ManagementError as error:
            raise Denied(f"cannot create project {project!r}: {error.message}") from None
        if identity.kind == "user" and identity.user_id is None:
            # A token names its user only: look up their rights now.
            identity = self.accounts.identity_for(identity.name)
        if self.settings.projects.auto_create and self.may_create_project(identity):
            with contextlib.suppress(Exists):  # created concurrently: fine
                self.projects.create(
                    project,
                    creator=identity.actor,
                    creator_user_id=identity.user_id if not identity.is_admin else None,
                    actor=Actor(identity.actor),
                )
            return
        raise Denied(
            f"project {project!r} does not exist; an administrator creates it with "
            f"`portside project create {project}` (or enable projects.auto_create)"
        )

    def visible_projects(self, identity: Identity) -> list[str] | None:
        return self.policy.visible_projects(identity)
