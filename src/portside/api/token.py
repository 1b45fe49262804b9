"""The token endpoint of Docker token authentication (`/auth/token`).

GET with optional Basic credentials (what docker, podman and skopeo do), or POST with an
OAuth2 password grant (what containerd tries first). The token's access is the
intersection of the scopes asked for and what the caller may do; asking for more is not
an error, the token simply does not carry it. Failed logins are throttled and audited.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qs

from portside.api.http import Request, Response, json_body
from portside.auth.basic import decode_basic
from portside.auth.identity import ANONYMOUS, Identity
from portside.auth.scopes import ScopeInvalid, parse_scopes
from portside.auth.service import AuthService
from portside.context import Context
from portside.errors import RegistryError, Unauthorized, Unsupported
from portside.events.outbox import Actor

_FORM_LIMIT = 64 * 1024


class TokenRequestInvalid(RegistryError):
    code, status, default_message = "INVALID_REQUEST", 400, "invalid token request"


async def get(ctx: Context, request: Request) -> Response:
    query = parse_qs(request.query_string, keep_blank_values=True)
    identity = await _login(ctx, request)
    # Granting reads roles from the database and signing costs CPU: on the pool.
    return await ctx.io.run(
        _issue, ctx, identity, query.get("service", []), query.get("scope", []), oauth=False
    )


async def post(ctx: Context, request: Request) -> Response:
    content_type = (request.header("content-type") or "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise TokenRequestInvalid("POST a form (application/x-www-form-urlencoded)")
    body = await request.read(_FORM_LIMIT)
    if len(body) > _FORM_LIMIT:
        raise TokenRequestInvalid("form too large")
    form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    grant = form.get("grant_type", [""])[0]
    if grant != "password":
        # Refresh tokens are not issued, so only the password grant exists; clients then
        # fall back to GET as the token spec describes.
        raise TokenRequestInvalid(f"unsupported grant_type {grant!r}; use password")
    username = form.get("username", [""])[0]
    password = form.get("password", [""])[0]
    identity = await _authenticate(ctx, request, username, password)
    return await ctx.io.run(
        _issue, ctx, identity, form.get("service", []), form.get("scope", []), oauth=True
    )


async def _login(ctx: Context, request: Request) -> Identity:
    header = request.header("authorization")
    if not header:
        return ANONYMOUS
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() != "basic":
        raise _refused(ctx, "send Basic credentials, or none for anonymous access")
    try:
        username, password = decode_basic(credentials.strip())
    except Unauthorized as error:
        raise _refused(ctx, error.message) from None
    return await _authenticate(ctx, request, username, password)


async def _authenticate(ctx: Context, request: Request, username: str, password: str) -> Identity:
    # Slow on purpose (argon2) or remote (LDAP), and audited: off the event loop.
    identity = await ctx.io.run(_check_password, ctx, username, password, request.client)
    if identity is None:
        raise _refused(ctx, "invalid username or password")
    return identity


def _check_password(ctx: Context, username: str, password: str, client: str) -> Identity | None:
    accounts = _auth(ctx).accounts
    identity = accounts.authenticate(username, password, client)
    accounts.login_attempted(
        Actor(identity.name if identity else username, client),
        "success" if identity else "failure",
        via="token",
    )
    return identity


def _refused(ctx: Context, message: str) -> Unauthorized:
    realm = ctx.settings.auth.token.service
    return Unauthorized(message, headers={"WWW-Authenticate": f'Basic realm="{realm}"'})


def _issue(
    ctx: Context, identity: Identity, services: list[str], scopes: list[str], *, oauth: bool
) -> Response:
    auth = _auth(ctx)
    if services and services[0] != auth.service:
        raise TokenRequestInvalid(f"unknown service {services[0]!r}; this is {auth.service!r}")
    try:
        requested = parse_scopes(scopes)
    except ScopeInvalid as error:
        raise TokenRequestInvalid(str(error)) from None
    granted = auth.grant(identity, requested)
    issued = auth.issuer.issue(identity.name, granted)
    body: dict[str, object] = {
        "token": issued.token,
        "access_token": issued.token,
        "expires_in": issued.expires_in,
        "issued_at": issued.issued_at.isoformat().replace("+00:00", "Z"),
    }
    if oauth:
        body["scope"] = " ".join(a.scope() for a in granted)
    response = json_body(200, json.dumps(body).encode())
    response.header("cache-control", "no-store")
    return response


def _auth(ctx: Context) -> AuthService:
    if not ctx.auth.enabled():
        raise Unsupported("authentication is not enabled on this registry")
    return ctx.auth
