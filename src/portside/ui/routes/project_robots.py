"""A project's robot accounts: list, create (the secret shown once, on the page the
creating post renders: it is never stored where a reload could show it again), new
secret, disable / enable, delete. Maintainers see robots; project admins manage them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from portside.ui import web
from portside.ui.api import ApiError, path
from portside.ui.routes.project import ProjectPage, load_project, render_tab

ACTIONS = ("pull", "push", "delete")


async def robots(request: Request) -> Response:
    page = await load_project(request)
    return await _page(request, page)


async def _page(
    request: Request,
    page: ProjectPage,
    *,
    created: dict[str, Any] | None = None,
    rotated: bool = False,
) -> Response:
    found = (await web.api(request).get(path("/projects", page.name, "robots"))).body
    now = datetime.now(UTC)
    expired = {
        r["name"]
        for r in found
        if r.get("expires_at") and datetime.fromisoformat(r["expires_at"]) <= now
    }
    return await render_tab(
        request,
        page,
        "project_robots.html",
        "robots",
        robots=found,
        expired=expired,
        actions=ACTIONS,
        created=created,
        rotated=rotated,
    )


async def create_robot(request: Request) -> Response:
    form = await web.checked_form(request)
    name = request.path_params["name"]
    back = web.project_url(name, "robots")
    robot = web.text(form, "robot")
    permissions = [a for a in ACTIONS if a in form.getlist("permission")]
    days_text = web.text(form, "expires_in_days")
    if not robot:
        return web.redirect(back, "Enter a name for the robot.", error=True)
    if not permissions:
        return web.redirect(
            back, "Choose at least one permission (pull, push or delete).", error=True
        )
    if days_text and not 1 <= (web.whole_number(days_text) or 0) <= 36500:
        return web.redirect(
            back, "Expiry must be a whole number of days from 1 to 36500, or empty.", error=True
        )
    body = {
        "name": robot,
        "permissions": permissions,
        "expires_in_days": int(days_text) if days_text else None,
        "description": web.text(form, "description") or None,
    }
    try:
        created = (await web.api(request).post(path("/projects", name, "robots"), body)).body
    except ApiError as error:
        return web.redirect(back, f"Could not create the robot: {error.explanation}", error=True)
    return await _page(request, await load_project(request), created=created)


async def rotate_secret(request: Request) -> Response:
    form = await web.checked_form(request)
    name = request.path_params["name"]
    robot = web.text(form, "robot")
    try:
        created = (await web.api(request).post(path("/robots", robot, "secret"))).body
    except ApiError as error:
        return web.redirect(
            web.project_url(name, "robots"),
            f"Could not make a new secret: {error.explanation}",
            error=True,
        )
    return await _page(request, await load_project(request), created=created, rotated=True)


async def set_state(request: Request) -> Response:
    form = await web.checked_form(request)
    name = request.path_params["name"]
    back = web.project_url(name, "robots")
    robot = web.text(form, "robot")
    disabled = web.text(form, "disabled") == "true"
    try:
        await web.api(request).patch(path("/robots", robot), {"disabled": disabled})
    except ApiError as error:
        return web.redirect(back, f"Could not change {robot}: {error.explanation}", error=True)
    return web.redirect(back, f"Robot {robot} {'disabled' if disabled else 'enabled'}.")


async def delete_robot(request: Request) -> Response:
    form = await web.checked_form(request)
    name = request.path_params["name"]
    back = web.project_url(name, "robots")
    robot = web.text(form, "robot")
    try:
        await web.api(request).delete(path("/robots", robot))
    except ApiError as error:
        return web.redirect(back, f"Could not delete {robot}: {error.explanation}", error=True)
    return web.redirect(back, f"Robot {robot} deleted.")


routes: list[BaseRoute] = [
    Route("/projects/{name}/robots", robots, methods=["GET"]),
    Route("/projects/{name}/robots", create_robot, methods=["POST"]),
    Route("/projects/{name}/robots/secret", rotate_secret, methods=["POST"]),
    Route("/projects/{name}/robots/state", set_state, methods=["POST"]),
    Route("/projects/{name}/robots/delete", delete_robot, methods=["POST"]),
]
