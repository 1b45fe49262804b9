"""Administration pages: users (create, make or revoke administrator, disable, reset the
password, delete), storage usage across projects and system information; jobs and GC
are in admin_jobs.

Only system administrators see these pages, and that is the API's answer, not ours:
each page starts with an administrators-only call, which refuses everybody else (a
403 page in words; signed-out visitors are sent to sign in)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from portside.ui import web
from portside.ui.api import ApiError, path
from portside.ui.paging import Pager
from portside.ui.routes import admin_endpoints, admin_jobs, admin_replication

PAGE_SIZE = 50


def user_url(username: str, action: str = "") -> str:
    return f"/admin/users/{quote(username, safe='')}" + (f"/{action}" if action else "")


def _password(form: FormData, name: str) -> str:
    """A password field as typed (not stripped: spaces may be part of it)."""
    value = form.get(name)
    return value if isinstance(value, str) else ""


async def overview(request: Request) -> Response:
    return web.redirect("/admin/users")


# -- users -------------------------------------------------------------------------------


async def list_users(request: Request) -> Response:
    query = request.query_params.get("q", "").strip()[:128]
    pager = Pager.from_request(request, PAGE_SIZE)
    answer = await web.api(request).get(
        "/users", q=query or None, page=pager.number, page_size=pager.size
    )
    pager.total = answer.total or 0
    return await web.render(
        request,
        "admin_users.html",
        tab="users",
        users=answer.body,
        query=query,
        pager=pager,
        user_url=user_url,
    )


async def create_user(request: Request) -> Response:
    form = await web.checked_form(request)
    username = web.text(form, "username")
    password = _password(form, "password")
    if password != _password(form, "repeat"):
        return web.redirect(
            "/admin/users#new-user", "The two passwords are not the same.", error=True
        )
    body = {
        "username": username,
        "password": password,
        "email": web.text(form, "email") or None,
        "admin": form.get("admin") == "on",
    }
    try:
        await web.api(request).post("/users", body)
    except ApiError as error:
        return web.redirect(
            "/admin/users#new-user", f"Could not create the user: {error.explanation}", error=True
        )
    return web.redirect(user_url(username), f"User {username} created.")


async def show_user(request: Request) -> Response:
    username = request.path_params["username"]
    who = await web.visitor(request)
    user = (await web.api(request).get(path("/users", username))).body
    return await web.render(
        request,
        "admin_user.html",
        tab="users",
        user=user,
        is_self=bool(who.user and who.user["username"] == user["username"]),
        user_url=user_url,
    )


async def _change(request: Request, body: dict[str, Any], done: str) -> Response:
    """PATCH the user; back to their page (or away from it, when you changed yourself
    out of the right to see it)."""
    username = request.path_params["username"]
    who = await web.visitor(request)
    try:
        await web.api(request).patch(path("/users", username), body)
    except ApiError as error:
        return web.redirect(
            user_url(username), f"Could not change {username}: {error.explanation}", error=True
        )
    if who.user and who.user["username"] == username:
        if body.get("disabled"):
            return web.redirect("/projects", f"{done} You are signed out.")
        if body.get("admin") is False:
            return web.redirect("/profile", done)
    return web.redirect(user_url(username), done)


async def set_admin(request: Request) -> Response:
    form = await web.checked_form(request)
    username = request.path_params["username"]
    admin = web.text(form, "admin") == "true"
    done = (
        f"{username} is now a system administrator."
        if admin
        else f"{username} is no longer a system administrator."
    )
    return await _change(request, {"admin": admin}, done)


async def set_disabled(request: Request) -> Response:
    form = await web.checked_form(request)
    username = request.path_params["username"]
    disabled = web.text(form, "disabled") == "true"
    done = (
        f"{username} is disabled and signed out everywhere."
        if disabled
        else f"{username} is enabled again."
    )
    return await _change(request, {"disabled": disabled}, done)


async def set_email(request: Request) -> Response:
    form = await web.checked_form(request)
    username = request.path_params["username"]
    return await _change(
        request, {"email": web.text(form, "email")}, f"E-mail of {username} saved."
    )


async def reset_password(request: Request) -> Response:
    form = await web.checked_form(request)
    username = request.path_params["username"]
    password = _password(form, "password")
    if password != _password(form, "repeat"):
        return web.redirect(user_url(username), "The two passwords are not the same.", error=True)
    if not password:
        return web.redirect(user_url(username), "Enter the new password.", error=True)
    return await _change(
        request,
        {"password": password},
        f"Password of {username} reset; their sessions were signed out.",
    )


async def delete_user(request: Request) -> Response:
    await web.checked_form(request)
    username = request.path_params["username"]
    who = await web.visitor(request)
    try:
        await web.api(request).delete(path("/users", username))
    except ApiError as error:
        return web.redirect(
            user_url(username), f"Could not delete {username}: {error.explanation}", error=True
        )
    if who.user and who.user["username"] == username:
        return web.redirect("/projects", "Your account was deleted.")
    return web.redirect("/admin/users", f"User {username} deleted.")


# -- storage and system ------------------------------------------------------------------


async def storage(request: Request) -> Response:
    usage = (await web.api(request).get("/usage")).body
    projects = sorted(usage["projects"], key=lambda p: (-p["used_bytes"], p["name"]))
    return await web.render(
        request, "admin_storage.html", tab="storage", usage=usage, projects=projects
    )


async def system(request: Request) -> Response:
    calls = web.api(request)
    users = await calls.get("/users", page_size=1)  # administrators only: the gate
    info = (await calls.get("/systeminfo")).body
    projects = await calls.get("/projects", page_size=1)
    failed = await calls.get("/jobs", status="failed", page_size=1)
    schedules = (await calls.get("/schedules")).body
    return await web.render(
        request,
        "admin_system.html",
        tab="system",
        system=info,
        user_count=users.total or 0,
        project_count=projects.total or 0,
        failed_jobs=failed.total or 0,
        schedules=schedules,
    )


routes: list[BaseRoute] = [
    Route("/admin", overview, methods=["GET"]),
    Route("/admin/users", list_users, methods=["GET"]),
    Route("/admin/users", create_user, methods=["POST"]),
    Route("/admin/users/{username}", show_user, methods=["GET"]),
    Route("/admin/users/{username}/admin", set_admin, methods=["POST"]),
    Route("/admin/users/{username}/disabled", set_disabled, methods=["POST"]),
    Route("/admin/users/{username}/email", set_email, methods=["POST"]),
    Route("/admin/users/{username}/password", reset_password, methods=["POST"]),
    Route("/admin/users/{username}/delete", delete_user, methods=["POST"]),
    Route("/admin/storage", storage, methods=["GET"]),
    Route("/admin/system", system, methods=["GET"]),
    *admin_jobs.routes,
    *admin_endpoints.routes,
    *admin_replication.routes,
]
