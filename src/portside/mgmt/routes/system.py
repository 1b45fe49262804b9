"""System information and signing in/out of the web UI (cookie sessions)."""

from __future__ import annotations

from importlib.metadata import version

from fastapi import APIRouter, Request, Response

from portside.auth.errors import Unauthenticated
from portside.events.outbox import Actor
from portside.mgmt.routes import convert
from portside.mgmt.schemas import LoginIn, SessionOut, SystemInfo
from portside.mgmt.security import Caller, Ctx
from portside.mgmt.sessions import COOKIE, LIFETIME, SessionStore

router = APIRouter(tags=["system"])


@router.get("/systeminfo", response_model=SystemInfo)
def system_info(ctx: Ctx) -> SystemInfo:
    """What a client or the UI needs to know before signing in."""
    return SystemInfo(
        version=version("portside"),
        auth_enabled=ctx.auth.enabled(),
        registry_url=ctx.settings.public_url,
        token_realm=ctx.auth.realm,
        token_service=ctx.auth.service,
        ldap=ctx.settings.ldap is not None,
        project_creation=ctx.settings.projects.creation,
    )


@router.post("/sessions", response_model=SessionOut, status_code=201)
def sign_in(body: LoginIn, request: Request, response: Response, ctx: Ctx) -> SessionOut:
    """Sign in: sets an HttpOnly session cookie; send the returned csrf_token back in
    `X-CSRF-Token` on every state-changing request. Only the real password signs in,
    never a personal access token."""
    client = request.client.host if request.client else ""
    identity = ctx.auth.accounts.authenticate(body.username, body.password, client, tokens=False)
    ok = identity is not None and identity.kind == "user" and identity.user_id is not None
    ctx.auth.accounts.login_attempted(
        Actor(identity.name if ok and identity else body.username, client),
        "success" if ok else "failure",
        via="session",
    )
    if not ok or identity is None or identity.user_id is None:
        raise Unauthenticated("invalid username or password")
    cookie, session = SessionStore(ctx.db).create(identity.user_id)
    response.set_cookie(
        COOKIE,
        cookie,
        max_age=int(LIFETIME.total_seconds()),
        httponly=True,
        samesite="strict",
        secure=ctx.settings.public_url.startswith("https://"),
        path="/",
    )
    user = ctx.auth.accounts.get_user(session.username)
    return SessionOut(
        csrf_token=session.csrf_token, expires_at=session.expires_at, user=convert.user(user)
    )


@router.delete("/sessions/current", status_code=204)
def sign_out(request: Request, response: Response, caller: Caller, ctx: Ctx) -> None:
    """Sign out: the session ends on every replica at once."""
    cookie = request.cookies.get(COOKIE)
    if caller.via == "session" and cookie:
        SessionStore(ctx.db).end(cookie)
    response.delete_cookie(COOKIE, path="/")
