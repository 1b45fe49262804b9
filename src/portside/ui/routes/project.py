"""A project's pages: the header and tabs they share (`load_project`, `render_tab`), its
repositories, its members and its audit log. Robots, settings, policies and webhooks
have their own modules (project_robots, project_settings, project_policies,
project_webhooks).

What a visitor may do is the API's to say: tabs and buttons follow the role the API
reports for the project (system administrators get `project-admin` from it), and any
refusal the API still makes is shown in words.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from portside.auth.roles import Role, project_permissions, repository_actions
from portside.ui import web
from portside.ui.api import ApiError, path
from portside.ui.paging import Pager

PAGE_SIZE = 25
AUDIT_PAGE_SIZE = 50

# Sortable columns of the repositories list: API sort key -> label; the first click on
# a column sorts it this way (names A-Z, everything else biggest / newest first).
SORTS = {
    "name": "Name",
    "artifact_count": "Artifacts",
    "size": "Size",
    "pushed_at": "Last pushed",
    "pulled_at": "Last pulled",
}
ROLE_HELP = {
    Role.PROJECT_ADMIN: "everything: members, robots, webhooks, settings, policies",
    Role.MAINTAINER: "pull, push and delete; sees robots and webhooks",
    Role.DEVELOPER: "pull and push",
    Role.GUEST: "pull, and see repositories and the audit log",
    Role.LIMITED_GUEST: "pull only (cannot list repositories)",
}


@dataclass(slots=True)
class ProjectPage:
    """A project as the visitor sees it: the API's record and what their role allows."""

    project: dict[str, Any]
    permissions: frozenset[str]
    actions: frozenset[str]
    signed_in: bool
    proxy: dict[str, Any] | None = None  # the proxy-cache settings, if it is one

    @property
    def name(self) -> str:
        return str(self.project["name"])

    @property
    def member(self) -> bool:
        return self.project.get("role") is not None

    def may(self, *permissions: str) -> bool:
        return any(p in self.permissions or p in self.actions for p in permissions)

    @property
    def tabs(self) -> list[tuple[str, str, str]]:
        """(key, label, url) of the tabs this visitor can use."""
        shown = [
            ("repositories", "Repositories", True),
            ("members", "Members", self.member and self.may("list")),
            ("robots", "Robots", self.may("robots", "robots:read")),
            ("policies", "Policies", self.member),
            ("signing", "Signing", self.member and self.may("list")),
            ("webhooks", "Webhooks", self.may("webhooks", "webhooks:read")),
            ("audit", "Audit log", self.signed_in and self.may("log")),
            ("settings", "Settings", self.may("settings")),
            ("cache", "Cache", self.proxy is not None),
        ]
        return [
            (key, label, web.project_url(self.name, "" if key == "repositories" else key))
            for key, label, visible in shown
            if visible
        ]


async def load_project(request: Request) -> ProjectPage:
    """The project named in the path (the API's 404 for missing and hidden ones alike)."""
    name = request.path_params["name"]
    who = await web.visitor(request)
    project = (await web.api(request).get(path("/projects", name))).body
    role = Role(project["role"]) if project.get("role") else None
    permissions = project_permissions(role) if role else frozenset()
    actions = repository_actions(role) if role else frozenset()
    if project.get("public"):
        permissions |= {"list"}
        actions |= {"pull"}
    proxy = (await web.api(request).get(path("/projects", name, "proxy"), status="false")).body
    return ProjectPage(
        project, permissions, actions, who.signed_in, proxy if proxy.get("proxy") else None
    )


async def render_tab(
    request: Request, page: ProjectPage, template: str, tab: str, **values: Any
) -> Response:
    return await web.render(request, template, page=page, project=page.project, tab=tab, **values)


# -- repositories ------------------------------------------------------------------------


async def repositories(request: Request) -> Response:
    page = await load_project(request)
    query = request.query_params.get("q", "").strip()[:255]
    sort = request.query_params.get("sort", "name")
    if sort.removeprefix("-") not in SORTS:
        sort = "name"
    pager = Pager.from_request(request, PAGE_SIZE)
    found: list[dict[str, Any]] = []
    refused = None
    try:
        answer = await web.api(request).get(
            "/repositories",
            project=page.name,
            q=query or None,
            sort=sort,
            page=pager.number,
            page_size=pager.size,
        )
        found = answer.body
        pager.total = answer.total or 0
    except ApiError as error:
        if error.status != 403:
            raise
        refused = error.explanation
    return await render_tab(
        request,
        page,
        "project.html",
        "repositories",
        repositories=found,
        refused=refused,
        query=query,
        sort=sort,
        sorts=SORTS,
        columns=_columns(page.name, query, sort),
        pager=pager,
    )


def _columns(project: str, query: str, sort: str) -> dict[str, dict[str, str]]:
    """Per sortable column: the link that sorts by it (flipping the order if it is the
    current sort) and its aria-sort value."""
    columns = {}
    for key in SORTS:
        if sort.removeprefix("-") == key:
            aria = "descending" if sort.startswith("-") else "ascending"
            target = key if sort.startswith("-") else f"-{key}"
        else:
            aria = ""
            target = key if key == "name" else f"-{key}"
        params = {"q": query, "sort": target} if query else {"sort": target}
        columns[key] = {"url": f"{web.project_url(project)}?{urlencode(params)}", "aria": aria}
    return columns


# -- members -----------------------------------------------------------------------------


async def members(request: Request) -> Response:
    page = await load_project(request)
    found = (await web.api(request).get(path("/projects", page.name, "members"))).body
    return await render_tab(
        request,
        page,
        "project_members.html",
        "members",
        members=found,
        roles=[(role.value, ROLE_HELP[role]) for role in Role],
    )


async def set_member(request: Request) -> Response:
    form = await web.checked_form(request)
    name = request.path_params["name"]
    back = web.project_url(name, "members")
    member, kind, role = web.text(form, "member"), web.text(form, "kind"), web.text(form, "role")
    if not member:
        return web.redirect(back, "Enter the user or group name to add.", error=True)
    if kind not in ("user", "group"):
        kind = "user"
    try:
        await web.api(request).put(
            path("/projects", name, "members", member), {"role": role, "kind": kind}
        )
    except ApiError as error:
        return web.redirect(back, f"Could not set {member}'s role: {error.explanation}", error=True)
    return web.redirect(back, f"{kind.capitalize()} {member} now has the role {role}.")


async def remove_member(request: Request) -> Response:
    form = await web.checked_form(request)
    name = request.path_params["name"]
    back = web.project_url(name, "members")
    member, kind = web.text(form, "member"), web.text(form, "kind", "user")
    try:
        await web.api(request).delete(
            path("/projects", name, "members", member), kind="group" if kind == "group" else None
        )
    except ApiError as error:
        return web.redirect(back, f"Could not remove {member}: {error.explanation}", error=True)
    who = await web.visitor(request)
    if kind != "group" and who.user and member == who.user.get("username"):
        return web.redirect(web.project_url(name), f"You are no longer a member of project {name}.")
    return web.redirect(back, f"Removed {member} from project {name}.")


# -- audit log ---------------------------------------------------------------------------


async def audit(request: Request) -> Response:
    page = await load_project(request)
    action = request.query_params.get("action", "").strip()[:32]
    actor = request.query_params.get("actor", "").strip()[:255]
    pager = Pager.from_request(request, AUDIT_PAGE_SIZE)
    answer = await web.api(request).get(
        path("/projects", page.name, "audit-logs"),
        action=action or None,
        actor=actor or None,
        page=pager.number,
        page_size=pager.size,
    )
    pager.total = answer.total or 0
    return await render_tab(
        request,
        page,
        "project_audit.html",
        "audit",
        entries=answer.body,
        action=action,
        actor=actor,
        pager=pager,
    )


# -- proxy cache -------------------------------------------------------------------------


async def cache(request: Request) -> Response:
    page = await load_project(request)
    if page.proxy is None:
        raise web.PageError(404, "Not found", f"Project {page.name} is not a proxy cache.")
    status = (await web.api(request).get(path("/projects", page.name, "proxy"))).body
    return await render_tab(request, page, "project_cache.html", "cache", cache=status)


routes: list[BaseRoute] = [
    Route("/projects/{name}", repositories, methods=["GET"]),
    Route("/projects/{name}/members", members, methods=["GET"]),
    Route("/projects/{name}/members", set_member, methods=["POST"]),
    Route("/projects/{name}/members/remove", remove_member, methods=["POST"]),
    Route("/projects/{name}/audit", audit, methods=["GET"]),
    Route("/projects/{name}/cache", cache, methods=["GET"]),
]
