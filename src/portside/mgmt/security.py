"""Who is calling the management API, and the permission checks every route uses.

Callers authenticate with HTTP Basic (users, robots, LDAP users: scripts and CI; a user's
personal access token works as their password) or a session cookie (the web UI).
Registry bearer tokens are not accepted here: they are scoped to repository actions and
must not become a user's full powers. With a cookie, every state-changing request must
carry the session's CSRF token in `X-CSRF-Token`.

Not being allowed to see a project answers 404, exactly as a missing one does; being
allowed to see it but not to change it answers 403.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from portside.auth.access_tokens import looks_like_token
from portside.auth.basic import decode_basic
from portside.auth.errors import Forbidden, Missing, Unauthenticated
from portside.auth.identity import ANONYMOUS, Identity
from portside.auth.policy import ProjectAccess
from portside.context import Context
from portside.errors import RegistryError
from portside.events.outbox import Actor
from portside.mgmt.sessions import COOKIE, Session, SessionStore
from portside.reference import project_of

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True, slots=True)
class Principal:
    identity: Identity
    # "basic" (a password or robot secret), "token" (Basic with a user's personal access
    # token), "session" or "anonymous"
    via: str
    session: Session | None = None
    source: str = ""  # the client's address

    @property
    def signed_in(self) -> bool:
        return self.identity.kind != "anonymous"

    @property
    def actor(self) -> Actor:
        """Who makes this request, and from where, for the events it causes."""
        return Actor(self.identity.actor, self.source)


def context(request: Request) -> Context:
    ctx: Context = request.app.state.ctx
    return ctx


Ctx = Annotated[Context, Depends(context)]


def principal(request: Request, ctx: Ctx) -> Principal:
    # A plain def on purpose: it queries sessions and accounts (and checks passwords),
    # so FastAPI runs it on its thread pool, not on the event loop.
    header = request.headers.get("authorization")
    client = request.client.host if request.client else ""
    if header:
        scheme, _, credentials = header.partition(" ")
        if scheme.lower() != "basic":
            raise Unauthenticated("use Basic credentials or a session cookie")
        try:
            username, password = decode_basic(credentials.strip())
        except RegistryError as error:
            raise Unauthenticated(error.message) from None
        identity = ctx.auth.accounts.authenticate(username, password, client)
        if identity is None:
            ctx.auth.accounts.login_attempted(Actor(username, client), "failure", via="api")
            raise Unauthenticated("invalid username or password")
        # authenticate() checks a token-shaped password as a token only: this one was.
        via = "token" if identity.kind == "user" and looks_like_token(password) else "basic"
        return Principal(identity, via, source=client)
    cookie = request.cookies.get(COOKIE)
    if cookie:
        session = SessionStore(ctx.db).find(cookie)
        if session is not None:
            if request.method not in _SAFE_METHODS:
                sent = request.headers.get("x-csrf-token", "")
                if not hmac.compare_digest(sent.encode(), session.csrf_token.encode()):
                    raise Forbidden("missing or wrong X-CSRF-Token for this session")
            identity = ctx.auth.accounts.identity_for(session.username)
            if identity.kind != "anonymous":
                return Principal(identity, "session", session, client)
    return Principal(ANONYMOUS, "anonymous", source=client)


Caller = Annotated[Principal, Depends(principal)]


def signed_in(caller: Caller) -> Principal:
    if not caller.signed_in:
        raise Unauthenticated("sign in first")
    return caller


def admin(caller: Caller) -> Principal:
    if not caller.signed_in:
        raise Unauthenticated("sign in first")
    if not caller.identity.is_admin:
        raise Forbidden("only system administrators may do this")
    return caller


def person_with_password(caller: Caller) -> Principal:
    """A user signed in with their password (Basic) or a session: what managing their
    credentials needs. A personal access token cannot mint, list or revoke tokens, nor
    change the password, so a leaked one cannot entrench itself."""
    if not caller.signed_in:
        raise Unauthenticated("sign in first")
    if caller.identity.kind != "user":
        raise Forbidden("only people have personal access tokens")
    if caller.via == "token":
        raise Forbidden(
            "a personal access token cannot manage tokens or the password: "
            "use your password or the web UI"
        )
    return caller


SignedIn = Annotated[Principal, Depends(signed_in)]
Admin = Annotated[Principal, Depends(admin)]
PersonWithPassword = Annotated[Principal, Depends(person_with_password)]


def project_access(ctx: Context, caller: Principal, project: str) -> ProjectAccess:
    """The caller's access to a project they may see; 404 if they may not see it."""
    access = ctx.auth.policy.project_access(caller.identity, project)
    if not access.exists or not access.visible:
        raise Missing(f"no project {project!r}")
    return access


def require(ctx: Context, caller: Principal, project: str, permission: str) -> ProjectAccess:
    access = project_access(ctx, caller, project)
    if permission not in access.permissions and permission not in access.actions:
        if not caller.signed_in:
            raise Unauthenticated("sign in first")
        raise Forbidden(f"you may not do this in project {project!r} ({permission})")
    return access


def require_repository(ctx: Context, caller: Principal, repository: str, action: str) -> None:
    """Pull to see a repository (404 otherwise, as if missing); then the action (403)."""
    actions = ctx.auth.policy.project_access(caller.identity, project_of(repository)).actions
    if "pull" not in actions:
        raise Missing(f"no repository {repository!r}")
    if action not in actions:
        if not caller.signed_in:
            raise Unauthenticated("sign in first")
        raise Forbidden(f"you may not {action} in repository {repository!r}")
