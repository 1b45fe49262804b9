"""The /v2 dispatcher: route, validate the name, call the handler, render errors."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from portside.api import blobs, discovery, manifests, uploads
from portside.api.http import Request, Response, json_body
from portside.api.routes import match
from portside.context import Context
from portside.errors import NotFound, Unsupported
from portside.reference import validate_name

Handler = Callable[[Context, Request, dict[str, str]], Awaitable[Response]]


async def _base(ctx: Context, request: Request, p: dict[str, str]) -> Response:
    return json_body(200, b"{}")


async def _catalog(ctx: Context, request: Request, p: dict[str, str]) -> Response:
    return await discovery.catalog(ctx, request)


async def _manifest_get(ctx: Context, request: Request, p: dict[str, str]) -> Response:
    return await manifests.get(ctx, request, p["name"], p["reference"])


async def _manifest_put(ctx: Context, request: Request, p: dict[str, str]) -> Response:
    return await manifests.put(ctx, request, p["name"], p["reference"])


async def _manifest_delete(ctx: Context, request: Request, p: dict[str, str]) -> Response:
    return await manifests.delete(ctx, request, p["name"], p["reference"])


async def _blob_get(ctx: Context, request: Request, p: dict[str, str]) -> Response:
    return await blobs.get(ctx, request, p["name"], p["digest"])


async def _blob_delete(ctx: Context, request: Request, p: dict[str, str]) -> Response:
    return await blobs.delete(ctx, request, p["name"], p["digest"])


async def _upload_post(ctx: Context, request: Request, p: dict[str, str]) -> Response:
    if p["id"]:
        raise Unsupported("POST goes to /blobs/uploads/ without an upload id")
    return await uploads.post(ctx, request, p["name"])


async def _upload_patch(ctx: Context, request: Request, p: dict[str, str]) -> Response:
    return await uploads.patch(ctx, request, p["name"], _upload_id(p))


async def _upload_put(ctx: Context, request: Request, p: dict[str, str]) -> Response:
    return await uploads.put(ctx, request, p["name"], _upload_id(p))


async def _upload_get(ctx: Context, request: Request, p: dict[str, str]) -> Response:
    return await uploads.status(ctx, request, p["name"], _upload_id(p))


async def _upload_delete(ctx: Context, request: Request, p: dict[str, str]) -> Response:
    return await uploads.cancel(ctx, request, p["name"], _upload_id(p))


async def _tags(ctx: Context, request: Request, p: dict[str, str]) -> Response:
    return await discovery.tags(ctx, request, p["name"])


async def _referrers(ctx: Context, request: Request, p: dict[str, str]) -> Response:
    return await discovery.referrers(ctx, request, p["name"], p["digest"])


def _upload_id(p: dict[str, str]) -> str:
    if not p["id"]:
        raise Unsupported("this method needs an upload id: /blobs/uploads/<id>")
    return p["id"]


TABLE: dict[str, dict[str, Handler]] = {
    "base": {"GET": _base, "HEAD": _base},
    "catalog": {"GET": _catalog},
    "manifest": {
        "GET": _manifest_get,
        "HEAD": _manifest_get,
        "PUT": _manifest_put,
        "DELETE": _manifest_delete,
    },
    "blob": {"GET": _blob_get, "HEAD": _blob_get, "DELETE": _blob_delete},
    "upload": {
        "POST": _upload_post,
        "PATCH": _upload_patch,
        "PUT": _upload_put,
        "GET": _upload_get,
        "DELETE": _upload_delete,
    },
    "tags": {"GET": _tags},
    "referrers": {"GET": _referrers},
}


def resolve(request: Request) -> tuple[str, Handler, dict[str, str]]:
    """(route name, handler, path parameters) or a RegistryError."""
    found = match(request.path)
    if found is None:
        raise NotFound()
    methods = TABLE[found.route]
    handler = methods.get(request.method)
    if handler is None:
        raise Unsupported(
            f"method {request.method} not allowed here; allowed: {', '.join(methods)}",
            headers={"allow": ", ".join(methods)},
        )
    name = found.params.get("name")
    if name is not None:
        validate_name(name)
    return found.route, handler, found.params
