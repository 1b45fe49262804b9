"""Users: administrators manage accounts; everyone signed in sees and changes their own."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from portside.auth import passwords
from portside.auth.errors import Forbidden, Invalid
from portside.mgmt.paging import Paging, describe_page
from portside.mgmt.routes import convert
from portside.mgmt.schemas import PasswordChange, UserIn, UserOut, UserPatch
from portside.mgmt.security import Admin, Ctx, SignedIn
from portside.mgmt.sessions import COOKIE, session_id_hash

router = APIRouter(tags=["users"])


@router.get("/users", response_model=list[UserOut])
def list_users(
    request: Request,
    response: Response,
    ctx: Ctx,
    caller: Admin,
    paging: Paging,
    q: Annotated[str | None, Query(max_length=128, description="Name contains.")] = None,
) -> list[UserOut]:
    users = ctx.auth.accounts.list_users(q)
    describe_page(request, response, paging, len(users))
    return [convert.user(u) for u in users[paging.offset : paging.offset + paging.size]]


@router.post("/users", response_model=UserOut, status_code=201)
def create_user(body: UserIn, ctx: Ctx, caller: Admin) -> UserOut:
    user = ctx.auth.accounts.create_user(
        body.username, body.password, admin=body.admin, email=body.email, actor=caller.actor
    )
    return convert.user(user)


@router.get("/users/current", response_model=UserOut)
def current_user(ctx: Ctx, caller: SignedIn) -> UserOut:
    if caller.identity.kind != "user":
        raise Forbidden("only people have a user profile")
    return convert.user(ctx.auth.accounts.get_user(caller.identity.name))


@router.put("/users/current/password", status_code=204)
def change_password(body: PasswordChange, request: Request, ctx: Ctx, caller: SignedIn) -> None:
    if caller.identity.kind != "user":
        raise Forbidden("only people have a password")
    if caller.via == "token":
        raise Forbidden("a personal access token cannot change the password")
    client = request.client.host if request.client else ""
    # The current password itself: a personal access token does not stand in for it.
    checked = ctx.auth.accounts.authenticate(
        caller.identity.name,
        body.old_password,
        client,
        tokens=False,
    )
    if checked is None:
        raise Invalid("the current password is wrong")
    problem = passwords.password_problem(body.new_password)
    if problem:
        raise Invalid(problem)
    # Other sessions end; the one making the change stays signed in.
    cookie = request.cookies.get(COOKIE) if caller.via == "session" else None
    ctx.auth.accounts.update_user(
        caller.identity.name,
        password=body.new_password,
        keep_session=session_id_hash(cookie) if cookie else None,
        actor=caller.actor,
        own_password=True,
    )


@router.get("/users/{username}", response_model=UserOut)
def get_user(username: str, ctx: Ctx, caller: Admin) -> UserOut:
    return convert.user(ctx.auth.accounts.get_user(username))


@router.patch("/users/{username}", response_model=UserOut)
def update_user(username: str, body: UserPatch, ctx: Ctx, caller: Admin) -> UserOut:
    user = ctx.auth.accounts.update_user(
        username,
        disabled=body.disabled,
        admin=body.admin,
        email=body.email,
        password=body.password,
        actor=caller.actor,
    )
    return convert.user(user)


@router.delete("/users/{username}", status_code=204)
def delete_user(username: str, ctx: Ctx, caller: Admin) -> None:
    ctx.auth.accounts.delete_user(username, actor=caller.actor)
