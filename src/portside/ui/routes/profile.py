"""The signed-in user's profile: who they are, their projects and roles, changing their
password, and their personal access tokens ("CLI secrets": a token's secret is shown
once, on the page that answers its creation)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from portside.ui import web
from portside.ui.api import ApiError

PROJECTS_SHOWN = 100
MAX_ID = 2**31 - 1


async def _page(
    request: Request, *, new_token: dict[str, Any] | None = None, status: int = 200
) -> Response:
    who = await web.visitor(request)
    if not who.signed_in:
        return web.redirect(web.login_url(request) if request.method == "GET" else "/login")
    calls = web.api(request)
    tokens = (await calls.get("/users/current/tokens")).body
    projects = await calls.get("/projects", page_size=PROJECTS_SHOWN)
    return await web.render(
        request,
        "profile.html",
        status=status,
        user=who.user,
        tokens=tokens,
        member_of=[p for p in projects.body if p.get("role")],
        more_projects=(projects.total or 0) > PROJECTS_SHOWN,
        new_token=new_token,
        registry_host=str(who.info.get("registry_url", "")).split("://", 1)[-1].rstrip("/"),
    )


async def profile(request: Request) -> Response:
    return await _page(request)


async def change_password(request: Request) -> Response:
    form = await web.checked_form(request)
    old, new, repeat = (form.get(name) for name in ("old_password", "new_password", "repeat"))
    if not isinstance(old, str) or not isinstance(new, str) or not old or not new:
        return web.redirect(
            "/profile#password", "Enter your current password and a new one.", error=True
        )
    if new != repeat:
        return web.redirect(
            "/profile#password", "The two new passwords are not the same.", error=True
        )
    try:
        await web.api(request).put(
            "/users/current/password", {"old_password": old, "new_password": new}
        )
    except ApiError as error:
        return web.redirect(
            "/profile#password",
            f"Your password was not changed: {error.explanation}",
            error=True,
        )
    return web.redirect(
        "/profile", "Password changed. Your other sessions were signed out; this one stays."
    )


async def create_token(request: Request) -> Response:
    form = await web.checked_form(request)
    name = web.text(form, "name")
    days = web.text(form, "expires_in_days")
    if days and web.whole_number(days) is None:
        return web.redirect(
            "/profile#tokens", "Expiry must be a whole number of days (or empty).", error=True
        )
    body: dict[str, Any] = {"name": name, "expires_in_days": int(days) if days else None}
    try:
        answer = await web.api(request).post("/users/current/tokens", body)
    except ApiError as error:
        return web.redirect(
            "/profile#tokens", f"Could not create the token: {error.explanation}", error=True
        )
    # The secret is in this answer only: show it now, on this page (no redirect).
    return await _page(request, new_token=answer.body)


async def revoke_token(request: Request) -> Response:
    form = await web.checked_form(request)
    token_id: int = request.path_params["token_id"]
    name = web.text(form, "token_name") or f"#{token_id}"
    if token_id > MAX_ID:
        return web.redirect("/profile#tokens", f"There is no token {name}.", error=True)
    try:
        await web.api(request).delete(f"/users/current/tokens/{token_id}")
    except ApiError as error:
        return web.redirect(
            "/profile#tokens", f"Could not revoke token {name}: {error.explanation}", error=True
        )
    return web.redirect("/profile#tokens", f"Token {name} revoked: it no longer works.")


routes: list[BaseRoute] = [
    Route("/profile", profile, methods=["GET"]),
    Route("/profile/password", change_password, methods=["POST"]),
    Route("/profile/tokens", create_token, methods=["POST"]),
    Route("/profile/tokens/{token_id:int}/revoke", revoke_token, methods=["POST"]),
]
