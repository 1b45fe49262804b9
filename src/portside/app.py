"""The application: /v2 (thin handlers), /healthz and /metrics, over RSGI and ASGI.

`create_app(settings)` builds everything a worker needs; `worker_app()` is the factory
granian calls in each worker process (settings arrive serialized from `portside serve`).
"""

from __future__ import annotations

import json
import random
import time
from typing import Any

import structlog
from sqlalchemy import text

from portside import metrics, readonly
from portside.api import dispatch, token
from portside.api.guard import Guard
from portside.api.http import (
    AsgiRequest,
    ClientDisconnected,
    Message,
    Receive,
    Request,
    Response,
    RsgiRequest,
    Scope,
    Send,
    head_error,
    json_body,
    send_asgi,
    send_rsgi,
    stream_rsgi,
)
from portside.config import Settings, settings_from_environment
from portside.context import Context, build_context
from portside.errors import InternalError, NotFound, RegistryError, Unsupported
from portside.lifeline import die_with_parent
from portside.logs import AccessLog, configure
from portside.mgmt.bridge import call_asgi_from_rsgi

log = structlog.get_logger("portside.http")

API_VERSION = ("docker-distribution-api-version", "registry/2.0")
MANAGEMENT_PREFIX = "/api/v1/"
_NOT_UI = ("/v2", "/api/", "/auth/", "/healthz", "/metrics")
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_READS = frozenset({"GET", "HEAD"})
# Unread request bodies up to this size are drained to keep the connection reusable;
# past it the response says `Connection: close` instead.
_DRAIN_LIMIT = 1024 * 1024


def _error_response(error: RegistryError) -> Response:
    response = json_body(error.status, error.body())
    for name, value in error.headers.items():
        response.header(name.lower(), value)
    return response


class PortsideApp:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.guard = Guard(ctx.auth, ctx.io)
        self._management: Any = None
        self._ui: Any = None
        self.ui_enabled = ctx.settings.ui.enabled
        self.read_only = ctx.settings.registry.read_only
        self.mirror = ctx.proxy.mirror
        self.access_log = AccessLog(ctx.settings.log.format) if ctx.settings.log.access else None

    async def __call__(self, scope: Scope, receive: Receive, send_message: Send) -> None:
        """ASGI entry point (tests, other ASGI servers)."""
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send_message)
            return
        if scope["type"] != "http":
            return
        started = time.perf_counter()
        bridged = scope["path"].startswith(MANAGEMENT_PREFIX) or (
            self.ui_enabled and _is_ui(scope["path"])
        )
        if bridged:
            headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
            query = scope.get("query_string", b"").decode("latin-1")
            error = head_error(scope["path"], query, headers)
            if error is not None:
                await send_asgi(scope, send_message, _error_response(error), head=False)
                self._record_management(scope["method"], scope["path"], error.status, started)
                return
        if scope["path"].startswith(MANAGEMENT_PREFIX):
            await self._management_asgi(scope, receive, send_message, started=started)
            return
        if self.ui_enabled and _is_ui(scope["path"]):
            await self._ui_asgi(scope, receive, send_message, started=started)
            return
        request = AsgiRequest(scope, receive)
        response = await self._handle(request)
        if response is None:
            return
        try:
            await send_asgi(scope, send_message, response, head=request.method == "HEAD")
        finally:
            self._record(request, response, started)

    async def __rsgi__(self, scope: Any, protocol: Any) -> None:
        """RSGI entry point: what `portside serve` runs under granian."""
        if scope.proto != "http":
            return
        started = time.perf_counter()
        bridged = scope.path.startswith(MANAGEMENT_PREFIX) or (
            self.ui_enabled and _is_ui(scope.path)
        )
        if bridged:
            error = head_error(scope.path, scope.query_string, scope.headers.items())
            if error is not None:
                send_rsgi(protocol, _error_response(error), head=scope.method == "HEAD")
                self._record_management(scope.method, scope.path, error.status, started)
                return
        if scope.path.startswith(MANAGEMENT_PREFIX):
            status = await call_asgi_from_rsgi(self.management, scope, protocol)
            self._record_management(scope.method, scope.path, status, started)
            return
        if self.ui_enabled and _is_ui(scope.path):
            status = await call_asgi_from_rsgi(self.ui, scope, protocol)
            self._record_management(scope.method, scope.path, status, started, route="ui")
            return
        request = RsgiRequest(scope, protocol)
        response = await self._handle(request)
        if response is None:
            return
        try:
            if response.stream is None:
                send_rsgi(protocol, response, head=request.method == "HEAD")
            else:
                await stream_rsgi(protocol, response, head=request.method == "HEAD")
        finally:
            self._record(request, response, started)

    def __rsgi_init__(self, loop: Any) -> None:
        """Nothing to start: connections open on first use."""

    def __rsgi_del__(self, loop: Any) -> None:
        if self.access_log is not None:
            self.access_log.flush()
        self.ctx.close()

    async def _handle(self, request: Request) -> Response | None:
        """Route and run a request; the response to send, or None if the client left."""
        request_id = request.request_id = request.header("x-request-id") or _request_id()
        response: Response
        try:
            too_large = head_error(request.path, request.query_string, request.headers.items())
            if too_large is not None:
                raise too_large
            if self.read_only and readonly.refuses(request.method, request.path):
                # Before routing and auth: the answer depends only on the method.
                raise Unsupported(readonly.MESSAGE)
            if request.path.startswith("/v2"):
                request.route, handler, params = dispatch.resolve(request)
                request.caller = await self.guard.check(request, request.route, params)
                if self.mirror and request.method in _READS and "name" in params:
                    # Mirror mode: a pull of a repository of no project is served from
                    # the mirror's project (portside.proxy; the guard asked that
                    # project's pull permission, auth.service).
                    mirrored = await self.ctx.proxy.mirrored(params["name"])
                    if mirrored is not None:
                        params = {**params, "name": mirrored}
                response = await handler(self.ctx, request, params)
            elif request.path == "/auth/token":
                request.route = "token"
                if request.method == "GET":
                    response = await token.get(self.ctx, request)
                elif request.method == "POST":
                    response = await token.post(self.ctx, request)
                else:
                    raise Unsupported("use GET or POST", headers={"allow": "GET, POST"})
            elif request.path == "/healthz":
                request.route = "healthz"
                response = await self.ctx.io.run(self._health)
            elif request.path == "/metrics":
                request.route = "metrics"
                body = await self.ctx.io.run(metrics.render, self.ctx.db)
                response = json_body(200, body, "text/plain; version=0.0.4")
            else:
                raise NotFound()
        except RegistryError as error:
            response = _error_response(error)
        except ClientDisconnected:
            log.info(
                "http.client_disconnected",
                method=request.method,
                path=request.path,
                received=request.received,
                request_id=request_id,
            )
            return None
        except Exception:
            log.exception(
                "http.internal_error",
                method=request.method,
                path=request.path,
                request_id=request_id,
            )
            response = _error_response(InternalError(detail={"request_id": request_id}))
        if request.path.startswith("/v2"):
            response.headers.append(API_VERSION)
        if request.method in _BODY_METHODS and not await request.drain(_DRAIN_LIMIT):
            response.headers.append(("connection", "close"))
        response.headers.append(("x-request-id", request_id))
        return response

    def _record(self, request: Request, response: Response, started: float) -> None:
        metrics.count_request(request.route, request.method, response.status)
        if request.received:
            metrics.BYTES_IN.inc(request.received)
        if response.sent_bytes:
            metrics.BYTES_OUT.inc(response.sent_bytes)
        if self.access_log is not None:
            self.access_log.write(
                method=request.method,
                path=request.path,
                status=response.status,
                received=request.received,
                sent=response.sent_bytes,
                duration_ms=round((time.perf_counter() - started) * 1000, 3),
                request_id=request.request_id,
            )

    @property
    def management(self) -> Any:
        """The management API app, built on first use: FastAPI and pydantic's schema
        machinery cost each worker ~20 MB that a pull-only registry never needs."""
        if self._management is None:
            from portside.mgmt.app import create_management_app

            self._management = create_management_app(self.ctx)
        return self._management

    @property
    def ui(self) -> Any:
        """The web UI, built on first use like the management API it calls."""
        if self._ui is None:
            from portside.ui.app import create_ui_app

            self._ui = create_ui_app(self.ctx, self.management)
        return self._ui

    async def _management_asgi(
        self, scope: Scope, receive: Receive, send_message: Send, started: float
    ) -> None:
        await self._asgi_app(self.management, "api", scope, receive, send_message, started=started)

    async def _ui_asgi(
        self, scope: Scope, receive: Receive, send_message: Send, started: float
    ) -> None:
        await self._asgi_app(self.ui, "ui", scope, receive, send_message, started=started)

    async def _asgi_app(
        self,
        app: Any,
        route: str,
        scope: Scope,
        receive: Receive,
        send_message: Send,
        *,
        started: float,
    ) -> None:
        status = 500

        async def send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send_message(message)

        try:
            await app(scope, receive, send)
        finally:
            self._record_management(scope["method"], scope["path"], status, started, route)

    def _record_management(
        self, method: str, path: str, status: int, started: float, route: str = "api"
    ) -> None:
        metrics.count_request(route, method, status)
        if self.access_log is not None:
            self.access_log.write(
                method=method,
                path=path,
                status=status,
                received=0,
                sent=0,
                duration_ms=round((time.perf_counter() - started) * 1000, 3),
                request_id="",
            )

    def _health(self) -> Response:
        problems = []
        try:
            with self.ctx.db.read() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as error:
            problems.append(f"database: {type(error).__name__}")
        if not self.ctx.storage.exists("v1") and not self._storage_writable():
            problems.append("storage: not writable")
        body = json.dumps({"status": "ok" if not problems else "unhealthy", "problems": problems})
        return json_body(200 if not problems else 503, body.encode())

    def _storage_writable(self) -> bool:
        try:
            self.ctx.storage.put("v1/.healthcheck", b"ok")
        except OSError:
            return False
        return True

    async def _lifespan(self, receive: Receive, send_message: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send_message({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.access_log is not None:
                    self.access_log.flush()
                self.ctx.close()
                await send_message({"type": "lifespan.shutdown.complete"})
                return


def _request_id() -> str:
    """16 hex digits to correlate logs, unique enough, not secret: from `random` (reseeded
    in each forked worker), not os.urandom, whose syscall releases the GIL on every
    request: with the pool's threads busy, getting it back cost up to tens of us."""
    return f"{random.getrandbits(64):016x}"


def _is_ui(path: str) -> bool:
    """Everything outside the registry, token, management and health paths is the UI."""
    return not path.startswith(_NOT_UI)


def create_app(settings: Settings) -> PortsideApp:
    configure(settings.log.level, settings.log.format)
    return PortsideApp(build_context(settings))


def worker_app() -> PortsideApp:
    # Killed with granian's master, even by SIGKILL: a worker left behind would keep
    # serving the old code on the port and block the next `portside serve`.
    die_with_parent()
    return create_app(settings_from_environment())


__all__ = ["PortsideApp", "create_app", "worker_app"]
