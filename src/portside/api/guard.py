"""Authentication and authorization of /v2 requests.

Callers present a bearer token (from /auth/token or a trusted external issuer), HTTP Basic
credentials (users and robots, for simple clients), or nothing (anonymous: public
projects only). A caller who may not even pull a repository gets exactly what a caller
asking for a missing repository gets — 401 with a challenge that depends only on the
request — so a private repository's existence never leaks. A caller who may pull but
not push or delete gets 403 DENIED.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from typing import Any

import structlog

from portside.api.http import Request
from portside.auth.basic import decode_basic
from portside.auth.identity import ANONYMOUS, Identity
from portside.auth.names import ROBOT_PREFIX
from portside.auth.service import AuthService
from portside.auth.tokens import TokenInvalid, VerifiedToken
from portside.errors import Denied, Unauthorized
from portside.events.outbox import Actor
from portside.offload import Offloader

log = structlog.get_logger(__name__)

# The repository action each route needs. Uploads are pushes; `base` and `catalog` are
# decided separately.
_ACTIONS: dict[tuple[str, str], str] = {
    ("manifest", "GET"): "pull",
    ("manifest", "HEAD"): "pull",
    ("manifest", "PUT"): "push",
    ("manifest", "DELETE"): "delete",
    ("blob", "GET"): "pull",
    ("blob", "HEAD"): "pull",
    ("blob", "DELETE"): "delete",
    ("tags", "GET"): "pull",
    ("referrers", "GET"): "pull",
}
_CREATING = frozenset({("upload", "POST"), ("manifest", "PUT")})
# What a challenge asks for, as Distribution does: a push needs pull too.
_CHALLENGE_SCOPE = {"pull": "pull", "push": "pull,push", "delete": "delete"}
# Basic credentials and policy answers are remembered `auth.cache_seconds` (30 s by
# default) in each process: a disabled user or a removed membership stops working on
# every replica within it. (A bearer token's pull grants last until it expires,
# `auth.token.lifetime_seconds`, as with any token registry; its writes are re-checked.)
_CACHE_SIZE = 4096

OPEN_REGISTRY = Identity("anonymous", is_admin=True)


@dataclass(slots=True)
class Caller:
    identity: Identity
    presented: str  # "none", "basic" or "bearer"
    token: VerifiedToken | None = None
    guard: Guard | None = field(default=None, repr=False)

    @property
    def owner(self) -> str | None:
        """Upload ownership label; None in an open registry (no ownership checks)."""
        return None if self.guard is None else self.identity.subject

    def actions(self, repository: str) -> frozenset[str]:
        if self.guard is None:
            return frozenset({"pull", "push", "delete"})
        if self.token is not None:
            return self.token.actions("repository", repository)
        return self.guard.policy_actions(self.identity, repository)

    def cached_actions(self, repository: str) -> frozenset[str] | None:
        """actions() when known without the database (token claims, or a cached policy
        answer); None when it needs a query (call actions() on the pool)."""
        if self.guard is None:
            return frozenset({"pull", "push", "delete"})
        if self.token is not None:
            return self.token.actions("repository", repository)
        return self.guard.cached_policy(self.identity, repository)

    def may(self, repository: str, action: str) -> bool:
        return action in self.actions(repository)

    def visible_projects(self) -> list[str] | None:
        """Projects whose repositories this caller may list (None: all of them)."""
        if self.guard is None or self.identity.kind == "external":
            return None
        identity = self.identity
        if self.token is not None and identity.kind != "anonymous":
            identity = self.guard.auth.accounts.identity_for(identity.name)
        return self.guard.auth.visible_projects(identity)


OPEN_CALLER = Caller(OPEN_REGISTRY, "none")


class Guard:
    """Decides on the event loop from what it knows in memory (token claims, answers
    cached for `auth.cache_seconds`); anything that needs the database or a password
    check runs on the blocking-work pool."""

    def __init__(self, auth: AuthService, io: Offloader) -> None:
        self.auth = auth
        self.io = io
        self.cache_seconds = auth.settings.auth.cache_seconds
        self._basic: dict[str, tuple[Identity, float]] = {}
        self._policy: dict[tuple[str, str], tuple[frozenset[str], float]] = {}

    async def check(self, request: Request, route: str, params: dict[str, str]) -> Caller:
        """Who is calling and whether the route is allowed; raises Unauthorized/Denied."""
        enabled = self.auth.enabled_known()
        if enabled is None:
            enabled = await self.io.run(self.auth.enabled)
        if not enabled:
            return OPEN_CALLER
        caller = await self._caller(request)
        if route == "base":
            if caller.presented == "none":
                raise self._challenge(None, caller)
            return caller
        if route == "catalog":
            if caller.token is not None and not caller.token.allows("registry", "catalog", "*"):
                raise self._challenge("registry:catalog:*", caller)
            return caller
        name = params["name"]
        action = "push" if route == "upload" else _ACTIONS[(route, request.method)]
        creating = (route, request.method) in _CREATING
        if not creating:
            known = caller.cached_actions(name)
            if known is not None and action in known and (caller.token is None or action == "pull"):
                return caller  # the common case, decided from memory
        return await self.io.run(self._decide, caller, name, action, creating)

    def _decide(self, caller: Caller, name: str, action: str, creating: bool) -> Caller:
        """On the pool: the full decision, with whatever queries it needs."""
        actions = caller.actions(name)
        if action in actions and action != "pull" and caller.token is not None:
            actions = self._still_allowed(caller, name, actions)
        if action in actions:
            # Only a request that can create the repository needs its project to exist
            # (one query); the PATCHes and PUT of an upload follow its POST.
            if creating:
                self.auth.ensure_project(caller.identity, name)
            return caller
        # 403 only for a signed-in caller who can see the repository; an anonymous one
        # is challenged (clients such as containerd send credentials only after a 401).
        if "pull" in actions and caller.identity.kind != "anonymous":
            token = caller.token
            if (
                token is not None
                and not token.external
                and action in self._holder_actions(caller, name)
            ):
                # The holder may, the token does not say so: ask for a wider token
                # (insufficient_scope), as the token spec and Distribution do.
                raise self._challenge(
                    f"repository:{name}:{_CHALLENGE_SCOPE[action]}", caller, name, action
                )
            raise Denied(
                f"{action} access to repository {name!r} is denied",
                detail=[{"Type": "repository", "Name": name, "Action": action}],
            )
        raise self._challenge(f"repository:{name}:{_CHALLENGE_SCOPE[action]}", caller, name, action)

    def _still_allowed(self, caller: Caller, name: str, granted: frozenset[str]) -> frozenset[str]:
        """Writes with a token are re-checked against current roles (cached
        `auth.cache_seconds`): a token
        granted push into a project that did not exist yet (auto-create) must not push
        into it once someone else has created it, nor outlive a removed membership."""
        if caller.token is None or caller.token.external:
            return granted
        return granted & self._holder_actions(caller, name)

    def _holder_actions(self, caller: Caller, name: str) -> frozenset[str]:
        """What the token's holder may do now (their roles, not the token's claims)."""
        key = (f"current:{caller.identity.subject}", name)
        now = time.monotonic()
        cached = self._policy.get(key)
        if cached is None or cached[1] <= now:
            identity = self.auth.accounts.identity_for(caller.identity.name)
            cached = (self.auth.repository_actions(identity, name), now + self.cache_seconds)
            _remember(self._policy, key, cached)
        actions: frozenset[str] = cached[0]
        return actions

    def cached_policy(self, identity: Identity, repository: str) -> frozenset[str] | None:
        cached = self._policy.get((identity.subject, repository))
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        return None

    def policy_actions(self, identity: Identity, repository: str) -> frozenset[str]:
        key = (identity.subject, repository)
        now = time.monotonic()
        cached = self._policy.get(key)
        if cached is not None and cached[1] > now:
            return cached[0]
        actions = self.auth.repository_actions(identity, repository)
        _remember(self._policy, key, (actions, now + self.cache_seconds))
        return actions

    async def _caller(self, request: Request) -> Caller:
        header = request.header("authorization")
        if not header:
            return Caller(ANONYMOUS, "none", guard=self)
        scheme, _, credentials = header.partition(" ")
        scheme = scheme.lower()
        credentials = credentials.strip()
        if scheme == "bearer" and credentials:
            try:
                token = self.auth.verifier.verify(credentials)
            except TokenInvalid as error:
                log.info("auth.token_refused", reason=str(error), request_id=request.request_id)
                raise self._challenge(None, None, error="invalid_token") from None
            return Caller(_token_identity(token), "bearer", token, guard=self)
        if scheme == "basic" and credentials:
            try:
                identity = await self._basic_identity(request, credentials)
            except Unauthorized as error:
                if "www-authenticate" in {k.lower() for k in error.headers}:
                    raise
                raise self._challenge(None, None, error="invalid_request") from None
            return Caller(identity, "basic", guard=self)
        raise self._challenge(None, None, error="invalid_request")

    async def _basic_identity(self, request: Request, credentials: str) -> Identity:
        key = hashlib.sha256(credentials.encode()).hexdigest()
        now = time.monotonic()
        cached = self._basic.get(key)
        if cached is not None and cached[1] > now:
            return cached[0]
        username, password = decode_basic(credentials)
        # A password check takes tens of milliseconds (argon2, or an LDAP round trip):
        # off the event loop, so other requests on this worker keep moving.
        identity = await self.io.run(self._authenticate, username, password, request.client)
        if identity is None:
            raise self._challenge(None, None, error="invalid_token")
        _remember(self._basic, key, (identity, now + self.cache_seconds))
        return identity

    def _authenticate(self, username: str, password: str, client: str) -> Identity | None:
        """On the pool: check the password; audit a failure."""
        identity = self.auth.accounts.authenticate(username, password, client)
        if identity is None:
            self.auth.accounts.login_attempted(Actor(username, client), "failure", via="basic")
        return identity

    def _challenge(
        self,
        scope: str | None,
        caller: Caller | None,
        name: str | None = None,
        action: str | None = None,
        error: str | None = None,
    ) -> Unauthorized:
        parts = [f'realm="{self.auth.realm}"', f'service="{self.auth.service}"']
        if scope:
            parts.append(f'scope="{scope}"')
        if error is None and caller is not None and caller.presented == "bearer":
            error = "insufficient_scope"
        if error:
            parts.append(f'error="{error}"')
        detail = None
        if name is not None:
            detail = [{"Type": "repository", "Name": name, "Action": action}]
        return Unauthorized(
            detail=detail, headers={"WWW-Authenticate": "Bearer " + ",".join(parts)}
        )


def _token_identity(token: VerifiedToken) -> Identity:
    if token.external:
        return Identity("external", token.subject)
    if not token.subject:
        return ANONYMOUS
    if token.subject.startswith(ROBOT_PREFIX):
        return Identity("robot", token.subject)
    return Identity("user", token.subject)


def _remember(cache: dict[Any, Any], key: Any, value: Any) -> None:
    cache[key] = value
    if len(cache) > _CACHE_SIZE:
        cache.pop(next(iter(cache)))
