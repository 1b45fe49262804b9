"""The projects list (search, visibility, size, quota) and creating a project."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from portside.ui import web
from portside.ui.api import ApiError
from portside.ui.paging import Pager
from portside.units import parse_size

PAGE_SIZE = 25


async def list_projects(request: Request) -> Response:
    who = await web.visitor(request)
    query = request.query_params.get("q", "").strip()[:64]
    visibility = request.query_params.get("visibility", "")
    pager = Pager.from_request(request, PAGE_SIZE)
    answer = await web.api(request).get(
        "/projects",
        q=query or None,
        public={"public": True, "private": False}.get(visibility),
        page=pager.number,
        page_size=pager.size,
    )
    pager.total = answer.total or 0
    return await web.render(
        request,
        "projects.html",
        projects=answer.body,
        query=query,
        visibility=visibility,
        pager=pager,
        may_create=_may_create(who),
    )


def _may_create(who: web.Visitor) -> bool:
    return who.is_admin or (who.signed_in and who.info.get("project_creation") == "users")


async def create_project(request: Request) -> Response:
    form = await web.checked_form(request)
    name = web.text(form, "name")
    try:
        quota = parse_size(web.text(form, "quota")) if web.text(form, "quota") else None
    except ValueError as error:
        return web.redirect("/projects", str(error), error=True)
    body = {"name": name, "public": web.text(form, "visibility") == "public", "quota_bytes": quota}
    try:
        await web.api(request).post("/projects", body)
    except ApiError as error:
        return web.redirect(
            "/projects", f"Could not create project: {error.explanation}", error=True
        )
    return web.redirect(web.project_url(name), f"Project {name} created.")


routes = [
    Route("/projects", list_projects, methods=["GET"]),
    Route("/projects", create_project, methods=["POST"]),
]
