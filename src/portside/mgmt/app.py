"""The management API application: routers under /api/v1, the OpenAPI document at
/api/v1/openapi.json, and one error format for everything —
`{"errors":[{"code": ..., "message": ..., "detail": ...}]}`, as on /v2."""

from __future__ import annotations

from importlib.metadata import version
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.routing import compile_path

from portside import readonly
from portside.auth.errors import ManagementError
from portside.context import Context
from portside.errors import RegistryError
from portside.mgmt.routes import (
    audit,
    endpoints,
    immutability,
    jobs,
    projects,
    proxy,
    replication,
    repositories,
    retention,
    robots,
    scans,
    signatures,
    system,
    tokens,
    usage,
    users,
    vulndb,
    webhooks,
)

log = structlog.get_logger(__name__)

PREFIX = "/api/v1"


def _error(
    status: int, code: str, message: str, detail: Any = None, **headers: str
) -> JSONResponse:
    entry: dict[str, Any] = {"code": code, "message": message}
    if detail is not None:
        entry["detail"] = detail
    return JSONResponse({"errors": [entry]}, status_code=status, headers=headers or None)


async def _management_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, ManagementError)
    headers = {}
    if error.status == 401 and request.headers.get("authorization", "").lower().startswith("basic"):
        headers["WWW-Authenticate"] = 'Basic realm="portside"'
    return _error(error.status, error.code, error.message, **headers)


async def _registry_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RegistryError)
    return _error(error.status, error.code, error.message, error.detail, **error.headers)


async def _validation_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    detail = [
        {"location": ".".join(str(p) for p in e["loc"]), "message": e["msg"]}
        for e in error.errors()
    ]
    return _error(400, "INVALID", "invalid request", detail)


async def _http_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, HTTPException)
    code = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}.get(error.status_code, "INVALID")
    headers: dict[str, str] = {}
    if error.status_code == 405:
        headers["Allow"] = ", ".join(_allowed_methods(request))
    return _error(error.status_code, code, str(error.detail), **headers)


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route accepts for this path (Starlette names only the first
    route's)."""
    methods: set[str] = set()
    for pattern, route_methods in request.app.state.method_table:
        if pattern.match(request.url.path):
            methods |= route_methods
    if "GET" in methods:
        methods.add("HEAD")
    return sorted(methods)


async def _refuse_nul(request: Request, call_next: Any) -> Any:
    """A NUL character is never valid in a name, filter or path here, and PostgreSQL
    refuses it in text: answer 400 at the edge instead of a database error."""
    if "\x00" in request.url.path or "%00" in request.url.query or "\x00" in request.url.query:
        return _error(400, "INVALID", "NUL characters are not allowed")
    return await call_next(request)


async def _refuse_writes(request: Request, call_next: Any) -> Any:
    """Read-only mode (portside.readonly): refuse every write, the UI's included."""
    if readonly.refuses(request.method, request.url.path):
        return _error(405, "UNSUPPORTED", readonly.MESSAGE)
    return await call_next(request)


async def _unexpected(request: Request, error: Exception) -> JSONResponse:
    log.exception("api.internal_error", path=request.url.path)
    return _error(500, "UNKNOWN", "internal server error")


def create_management_app(ctx: Context) -> FastAPI:
    app = FastAPI(
        title="Portside management API",
        version=version("portside"),
        openapi_url=f"{PREFIX}/openapi.json",
        docs_url=None,  # the interactive pages load scripts from a CDN; serve only the spec
        redoc_url=None,
        # A trailing-slash redirect would be built from the request's Host header.
        redirect_slashes=False,
    )
    app.middleware("http")(_refuse_nul)
    if ctx.settings.registry.read_only:
        app.middleware("http")(_refuse_writes)
    app.state.ctx = ctx
    table = []
    routers = (
        system,
        users,
        tokens,
        projects,
        robots,
        signatures,  # before repositories: /repositories/{name:path} would take its paths
        scans,  # before repositories: its /repositories/{name:path} would take .../scan
        repositories,
        audit,
        jobs,
        immutability,
        usage,
        retention,
        webhooks,
        vulndb,
        proxy,
        endpoints,
        replication,
    )
    for module in routers:
        app.include_router(module.router, prefix=PREFIX)
        for route in module.router.routes:
            if isinstance(route, APIRoute) and route.methods:
                table.append((compile_path(PREFIX + route.path)[0], set(route.methods)))
    app.state.method_table = table
    app.add_exception_handler(ManagementError, _management_error)
    app.add_exception_handler(RegistryError, _registry_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
    return app
