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
from starlette.exceptions import HTTPException

from portside.api.context import Context
from portside.auth.errors import ManagementError
from portside.errors import RegistryError
from portside.mgmt.routes import audit, projects, repositories, robots, system, users

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
    return _error(error.status_code, code, str(error.detail))


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
    )
    app.state.ctx = ctx
    for module in (system, users, projects, robots, repositories, audit):
        app.include_router(module.router, prefix=PREFIX)
    app.add_exception_handler(ManagementError, _management_error)
    app.add_exception_handler(RegistryError, _registry_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
    return app
