"""Administration pages for registry endpoints: the list with a form to add one, and an
endpoint's page (change it, test the connection, delete it). Everything goes through the
management API, which lets only system administrators in; passwords are sent, never
shown (the API does not return them)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from portside.remote.kinds import KINDS
from portside.ui import web
from portside.ui.api import ApiError, path


def endpoint_url(name: str, action: str = "") -> str:
    return f"/admin/endpoints/{quote(name, safe='')}" + (f"/{action}" if action else "")


def _raw(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


async def list_endpoints(request: Request) -> Response:
    endpoints = (await web.api(request).get("/endpoints")).body
    return await web.render(
        request,
        "admin_endpoints.html",
        tab="endpoints",
        endpoints=endpoints,
        kinds=KINDS,
        endpoint_url=endpoint_url,
    )


def _fields(form: FormData) -> dict[str, Any]:
    return {
        "type": web.text(form, "type"),
        "url": web.text(form, "url") or None,
        "verify_tls": form.get("verify_tls") == "on",
        "ca_bundle": _raw(form, "ca_bundle").strip() or None,
        "description": web.text(form, "description") or None,
    }


async def create_endpoint(request: Request) -> Response:
    form = await web.checked_form(request)
    name = web.text(form, "name")
    body = {"name": name, **_fields(form)}
    if web.text(form, "username"):
        body["username"] = web.text(form, "username")
        body["password"] = _raw(form, "password")
    try:
        await web.api(request).post("/endpoints", body)
    except ApiError as error:
        return web.redirect(
            "/admin/endpoints#new-endpoint",
            f"Could not add the endpoint: {error.explanation}",
            error=True,
        )
    return web.redirect(endpoint_url(name), f"Endpoint {name} added.")


async def show_endpoint(request: Request) -> Response:
    name = request.path_params["name"]
    found = (await web.api(request).get(path("/endpoints", name))).body
    return await web.render(
        request,
        "admin_endpoint.html",
        tab="endpoints",
        endpoint=found,
        kinds=KINDS,
        endpoint_url=endpoint_url,
    )


async def update_endpoint(request: Request) -> Response:
    form = await web.checked_form(request)
    name = request.path_params["name"]
    body = _fields(form)
    body["ca_bundle"] = body["ca_bundle"] or ""
    body["description"] = body["description"] or ""
    if form.get("anonymous") == "on":
        body["password"] = ""
    elif _raw(form, "password"):
        body["username"] = web.text(form, "username") or None
        body["password"] = _raw(form, "password")
    try:
        await web.api(request).patch(path("/endpoints", name), body)
    except ApiError as error:
        return web.redirect(
            endpoint_url(name), f"Could not change {name}: {error.explanation}", error=True
        )
    return web.redirect(endpoint_url(name), f"Endpoint {name} saved.")


async def test_endpoint(request: Request) -> Response:
    await web.checked_form(request)
    name = request.path_params["name"]
    try:
        result = (await web.api(request).post(path("/endpoints", name, "test"), {})).body
    except ApiError as error:
        return web.redirect(endpoint_url(name), f"Test failed: {error.explanation}", error=True)
    if result["ok"]:
        return web.redirect(endpoint_url(name), f"Connection OK: {result['message']}")
    return web.redirect(endpoint_url(name), f"Connection failed: {result['message']}", error=True)


async def delete_endpoint(request: Request) -> Response:
    await web.checked_form(request)
    name = request.path_params["name"]
    try:
        await web.api(request).delete(path("/endpoints", name))
    except ApiError as error:
        return web.redirect(
            endpoint_url(name), f"Could not delete {name}: {error.explanation}", error=True
        )
    return web.redirect("/admin/endpoints", f"Endpoint {name} deleted.")


routes: list[BaseRoute] = [
    Route("/admin/endpoints", list_endpoints, methods=["GET"]),
    Route("/admin/endpoints", create_endpoint, methods=["POST"]),
    Route("/admin/endpoints/{name}", show_endpoint, methods=["GET"]),
    Route("/admin/endpoints/{name}", update_endpoint, methods=["POST"]),
    Route("/admin/endpoints/{name}/test", test_endpoint, methods=["POST"]),
    Route("/admin/endpoints/{name}/delete", delete_endpoint, methods=["POST"]),
]
