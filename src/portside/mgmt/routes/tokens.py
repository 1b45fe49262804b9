"""Personal access tokens of the signed-in user: list, create (the secret is in the create
response only) and revoke. People only, signed in with their password or a session: a
token cannot manage tokens."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Request, Response

from portside.auth.access_tokens import AccessToken
from portside.metadata.db import utcnow
from portside.mgmt.schemas import AccessTokenIn, AccessTokenOut, AccessTokenSecretOut
from portside.mgmt.security import Ctx, PersonWithPassword, Principal

router = APIRouter(tags=["users"])


def _out(token: AccessToken) -> AccessTokenOut:
    return AccessTokenOut(
        id=token.id,
        name=token.name,
        created_at=token.created_at,
        expires_at=token.expires_at,
        last_used_at=token.last_used_at,
    )


def _user_id(caller: Principal) -> int:
    user_id = caller.identity.user_id
    assert user_id is not None  # a signed-in person always has their row's id
    return user_id


@router.get("/users/current/tokens", response_model=list[AccessTokenOut])
def list_tokens(ctx: Ctx, caller: PersonWithPassword) -> list[AccessTokenOut]:
    """Your personal access tokens, oldest first (never their secrets)."""
    return [_out(t) for t in ctx.auth.accounts.tokens.list_for_user(_user_id(caller))]


@router.post("/users/current/tokens", response_model=AccessTokenSecretOut, status_code=201)
def create_token(
    body: AccessTokenIn,
    request: Request,
    response: Response,
    ctx: Ctx,
    caller: PersonWithPassword,
) -> AccessTokenSecretOut:
    """A new personal access token: use its secret as your password for Basic
    credentials (`docker login`, /v2, /api/v1), not for signing in to the web UI. The
    secret is in this response only."""
    expires = utcnow() + timedelta(days=body.expires_in_days) if body.expires_in_days else None
    token, secret = ctx.auth.accounts.tokens.create(
        _user_id(caller), body.name, actor=caller.actor, expires_at=expires
    )
    response.headers["Cache-Control"] = "no-store"  # the secret must not linger in a cache
    return AccessTokenSecretOut(**_out(token).model_dump(), secret=secret)


@router.delete("/users/current/tokens/{token_id}", status_code=204)
def revoke_token(token_id: int, request: Request, ctx: Ctx, caller: PersonWithPassword) -> None:
    """Revoke one of your tokens. It stops working at once for new logins; where it was
    just used, registry bearer tokens already issued with it run out within their
    lifetime, and /v2 remembers Basic credentials for 30 seconds."""
    ctx.auth.accounts.tokens.revoke(_user_id(caller), token_id, actor=caller.actor)
