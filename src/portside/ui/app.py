"""The web UI: server-rendered pages (Jinja2) at `/`, over the management API.

Pages are plain HTML forms and links that work without JavaScript; a small script adds
copy buttons, confirmations, loading feedback and the theme switch. Every page gets a
strict Content-Security-Policy (scripts and styles only from /static, no inline code),
and every form post must come from this site with the session's CSRF token.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

import structlog
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

from portside.api.http import Message, Receive, Scope, Send
from portside.context import Context
from portside.ui import filters, web
from portside.ui.api import ApiError
from portside.ui.routes import ROUTES

log = structlog.get_logger(__name__)

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ]
)
SECURITY_HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
]
STATIC = Path(__file__).parent / "static"


@dataclass(slots=True)
class UiState:
    ctx: Context
    management: Any
    templates: Environment
    system_info: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def templates() -> Environment:
    env = Environment(
        loader=PackageLoader("portside.ui", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(filters.FILTERS)
    env.globals.update(
        project_url=web.project_url,
        repository_url=web.repository_url,
        artifact_url=web.artifact_url,
        version=version("portside"),
    )
    return env


async def _page_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, web.PageError)
    return await web.render(
        request, "error.html", status=error.status, title=error.title, message=error.message
    )


async def _api_error(request: Request, error: Exception) -> Response:
    """An API refusal the page did not handle itself, in words: signed-out visitors are
    sent to sign in; a hidden or missing thing is simply not found."""
    assert isinstance(error, ApiError)
    who = await web.visitor(request)
    if error.status in (401, 403, 404) and not who.signed_in and request.method == "GET":
        return web.redirect(web.login_url(request))
    titles = {
        400: "Not accepted",
        401: "Sign in required",
        403: "Not allowed",
        404: "Not found",
        405: "Not allowed",
        409: "Conflict",
        413: "Too large",
        429: "Too many attempts",
    }
    return await web.render(
        request,
        "error.html",
        status=error.status if error.status in titles else 502,
        title=titles.get(error.status, "Something went wrong"),
        message=error.explanation,
    )


async def _http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, HTTPException)
    if error.status_code == 405:
        title, message = "Not allowed", "This page does not accept that kind of request."
    else:
        title, message = "Not found", "There is no page at this address."
    return await web.render(
        request, "error.html", status=error.status_code, title=title, message=message
    )


async def _unexpected(request: Request, error: Exception) -> Response:
    log.exception("ui.internal_error", path=request.url.path)
    return await web.render(
        request,
        "error.html",
        status=500,
        title="Something went wrong",
        message="The server could not show this page. The error is in its log.",
    )


class SecurityHeaders:
    """Adds the security headers to every UI response, and refuses a form post that a
    browser says came from another site (SameSite cookies already keep the session out
    of such requests; this keeps out the sign-in form too)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["method"] not in ("GET", "HEAD") and _cross_site(scope):
            body = b"cross-site form posts are refused"
            await send(
                {
                    "type": "http.response.start",
                    "status": 403,
                    "headers": [
                        (b"content-type", b"text/plain; charset=utf-8"),
                        *SECURITY_HEADERS,
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return

        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = list(message.get("headers", []))
                headers.extend(SECURITY_HEADERS)
                if not scope["path"].startswith("/static/"):
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception:
            # Starlette re-raises after its error page was sent (see _unexpected).
            if not started:
                log.exception("ui.internal_error", path=scope["path"])
                await send(
                    {
                        "type": "http.response.start",
                        "status": 500,
                        "headers": [(b"content-type", b"text/plain"), *SECURITY_HEADERS],
                    }
                )
                await send({"type": "http.response.body", "body": b"internal server error"})


def _cross_site(scope: Scope) -> bool:
    headers: dict[str, str] = {
        k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]
    }
    if headers.get("sec-fetch-site", "") == "cross-site":
        return True
    origin = headers.get("origin")
    if origin is None or origin == "null":
        return origin == "null"
    host = headers.get("host", "")
    return origin.split("://", 1)[-1] != host


def create_ui_app(ctx: Context, management: Any) -> Any:
    routes: list[BaseRoute] = [
        *ROUTES,
        Mount("/static", app=StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={
            web.PageError: _page_error,
            ApiError: _api_error,
            HTTPException: _http_error,
            Exception: _unexpected,
        },
    )
    env = templates()
    # portside.readonly: a banner on every page, and post forms disabled (portside.js);
    # the management API refuses the writes themselves.
    env.globals["read_only"] = ctx.settings.registry.read_only
    app.state.ui = UiState(ctx, management, env)
    return SecurityHeaders(app)
