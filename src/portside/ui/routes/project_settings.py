"""A project's settings (project admins): visibility and quota, storage usage per
repository, and deleting the project (the API refuses while it holds images)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from portside.ui import web
from portside.ui.api import ApiError, path
from portside.ui.routes.project import load_project, render_tab
from portside.units import parse_size

_BINARY = (("TiB", 1024**4), ("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024))
_DECIMAL = (("TB", 1000**4), ("GB", 1000**3), ("MB", 1000**2), ("kB", 1000))


def exact_size(size: int | None) -> str:
    """A quota as it can be typed back without changing it: `10 GiB`, `500 MB`, bytes."""
    if not size:
        return "" if size is None else "0"
    for unit, factor in (*_BINARY, *_DECIMAL):
        if size % factor == 0:
            return f"{size // factor} {unit}"
    return str(size)


async def settings(request: Request) -> Response:
    page = await load_project(request)
    if not page.may("settings"):
        raise web.PageError(
            403,
            "Not allowed",
            f"Only administrators of project {page.name} can see and change its settings.",
        )
    usage = (
        await web.api(request).get(path("/projects", page.name, "usage"), repositories=True)
    ).body
    calls = web.api(request)
    scanning = (await calls.get(path("/projects", page.name, "scan-settings"))).body
    allowlist = (await calls.get(path("/projects", page.name, "cve-allowlist"))).body
    return await render_tab(
        request,
        page,
        "project_settings.html",
        "settings",
        usage=usage,
        scanning=scanning,
        allowlist=allowlist,
        severities=("critical", "high", "medium", "low", "negligible", "unknown"),
        quota_text=exact_size(page.project.get("quota_bytes")),
    )


async def save_settings(request: Request) -> Response:
    form = await web.checked_form(request)
    name = request.path_params["name"]
    back = web.project_url(name, "settings")
    quota_text = web.text(form, "quota")
    body: dict[str, object] = {"public": web.text(form, "visibility") == "public"}
    if quota_text:
        try:
            body["quota_bytes"] = parse_size(quota_text)
        except ValueError as error:
            return web.redirect(back, f"Quota: {error}", error=True)
    else:
        body["clear_quota"] = True
    try:
        await web.api(request).patch(path("/projects", name), body)
    except ApiError as error:
        return web.redirect(back, f"Could not save the settings: {error.explanation}", error=True)
    return web.redirect(back, "Settings saved.")


async def save_scanning(request: Request) -> Response:
    """The Vulnerabilities card: scan settings, the pull policy and the project's CVE
    allowlist (ids separated by spaces, commas or new lines; an optional expiry date)."""
    form = await web.checked_form(request)
    name = request.path_params["name"]
    back = web.project_url(name, "settings") + "#vulnerabilities"
    body = {
        "auto_scan": web.text(form, "auto_scan") == "on",
        "generate_sbom": web.text(form, "generate_sbom") == "on",
        "prevent_vulnerable": web.text(form, "prevent_vulnerable") == "on",
        "severity": web.text(form, "severity", "critical"),
        "reuse_system_allowlist": web.text(form, "allowlist_source") == "system",
    }
    ids = [i for i in web.text(form, "allowlist").replace(",", " ").split() if i]
    expires = web.text(form, "expires_at")
    allowlist: dict[str, object] = {"items": ids}
    if expires:
        allowlist["expires_at"] = f"{expires}T00:00:00Z"
    calls = web.api(request)
    try:
        # The allowlist first: it is what can be refused (a malformed id).
        await calls.put(path("/projects", name, "cve-allowlist"), allowlist)
        await calls.put(path("/projects", name, "scan-settings"), body)
    except ApiError as error:
        return web.redirect(back, f"Could not save: {error.explanation}", error=True)
    return web.redirect(back, "Vulnerability settings saved.")


async def delete_project(request: Request) -> Response:
    form = await web.checked_form(request)
    name = request.path_params["name"]
    back = web.project_url(name, "settings")
    if web.text(form, "confirm_name") != name:
        return web.redirect(
            back, f"To delete the project, type its name ({name}) in the box.", error=True
        )
    try:
        await web.api(request).delete(path("/projects", name))
    except ApiError as error:
        return web.redirect(back, f"Could not delete the project: {error.explanation}", error=True)
    return web.redirect("/projects", f"Project {name} deleted.")


routes: list[BaseRoute] = [
    Route("/projects/{name}/settings", settings, methods=["GET"]),
    Route("/projects/{name}/settings", save_settings, methods=["POST"]),
    Route("/projects/{name}/delete", delete_project, methods=["POST"]),
    Route("/projects/{name}/scanning", save_scanning, methods=["POST"]),
]
