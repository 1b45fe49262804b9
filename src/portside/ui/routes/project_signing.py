"""A project's signing page: the "only signed images" pull policy (project admins), the
Notation trust policy, and the keys the project trusts to sign (members see them;
project admins and maintainers add and remove them). Read and changed through the
management API as the visitor."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from portside.ui import web
from portside.ui.api import ApiError, path
from portside.ui.routes.project import load_project, render_tab

LEVELS = {
    "strict": "Strict: chain, identity, validity and expiry are all enforced",
    "permissive": "Permissive: chain and identity enforced; expiry only reported",
    "audit": "Audit: only recorded, never counts as signed",
}


async def signing(request: Request) -> Response:
    page = await load_project(request)
    if not page.may("list"):
        raise web.PageError(
            403, "Not allowed", f"Only members of project {page.name} see its signing keys."
        )
    calls = web.api(request)
    keys = (await calls.get(path("/projects", page.name, "trusted-keys"))).body
    policy = (await calls.get(path("/projects", page.name, "pull-policy"))).body
    return await render_tab(
        request,
        page,
        "project_signing.html",
        "signing",
        keys=keys,
        policy=policy,
        levels=LEVELS,
        manage_keys=page.may("keys"),
        manage_policy=page.may("settings"),
    )


async def save_policy(request: Request) -> Response:
    form = await web.checked_form(request)
    name = request.path_params["name"]
    back = web.project_url(name, "signing")
    identities = [line.strip() for line in web.text(form, "identities").splitlines()]
    body: dict[str, object] = {
        "require_signed": web.text(form, "require_signed") == "on",
        "notation_level": web.text(form, "notation_level"),
        "notation_identities": [i for i in identities if i] or ["*"],
    }
    try:
        await web.api(request).patch(path("/projects", name, "pull-policy"), body)
    except ApiError as error:
        return web.redirect(back, f"Could not save the policy: {error.explanation}", error=True)
    return web.redirect(back, "Pull policy saved.")


async def add_key(request: Request) -> Response:
    form = await web.checked_form(request)
    name = request.path_params["name"]
    back = web.project_url(name, "signing")
    key_name, pem = web.text(form, "key_name"), web.text(form, "pem")
    try:
        await web.api(request).post(
            path("/projects", name, "trusted-keys"), {"name": key_name, "pem": pem}
        )
    except ApiError as error:
        return web.redirect(back, f"Could not add the key: {error.explanation}", error=True)
    return web.redirect(back, f"Key {key_name} is trusted now.")


async def remove_key(request: Request) -> Response:
    form = await web.checked_form(request)
    name = request.path_params["name"]
    back = web.project_url(name, "signing")
    key_name = web.text(form, "key_name")
    try:
        await web.api(request).delete(path("/projects", name, "trusted-keys", key_name))
    except ApiError as error:
        return web.redirect(back, f"Could not remove the key: {error.explanation}", error=True)
    return web.redirect(back, f"Key {key_name} is no longer trusted.")


routes: list[BaseRoute] = [
    Route("/projects/{name}/signing", signing, methods=["GET"]),
    Route("/projects/{name}/signing/policy", save_policy, methods=["POST"]),
    Route("/projects/{name}/signing/keys", add_key, methods=["POST"]),
    Route("/projects/{name}/signing/keys/remove", remove_key, methods=["POST"]),
]
