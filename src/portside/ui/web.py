"""What every UI page handler uses: who is looking, the API as them, rendering, forms
with their CSRF check, redirects with a one-time message, and links to pages."""

from __future__ import annotations

import hmac
import json
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote

from jinja2 import Environment
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from portside.context import Context
from portside.mgmt.sessions import COOKIE, Session, SessionStore
from portside.ui.api import Api, ApiError

FLASH_COOKIE = "portside_flash"
LOGIN_COOKIE = "portside_login"  # pre-session CSRF token of the sign-in form
CSRF_FIELD = "csrf"


class PageError(Exception):
    """Stop a handler and show an error page in words."""

    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.title = title
        self.message = message


@dataclass(slots=True)
class Visitor:
    """The person looking at the page: signed in (a user record from the API) or not."""

    session: Session | None
    user: dict[str, Any] | None
    info: dict[str, Any]

    @property
    def signed_in(self) -> bool:
        return self.user is not None

    @property
    def is_admin(self) -> bool:
        return bool(self.user and self.user.get("admin"))

    @property
    def csrf_token(self) -> str:
        return self.session.csrf_token if self.session else ""


def ui_state(request: Request) -> Any:
    return request.app.state.ui


def context(request: Request) -> Context:
    ctx: Context = ui_state(request).ctx
    return ctx


def _session(request: Request) -> tuple[str | None, Session | None]:
    cookie = request.cookies.get(COOKIE)
    if not cookie:
        return None, None
    return cookie, SessionStore(context(request).db).find(cookie)


def api(request: Request) -> Api:
    """The management API as this browser's user (anonymous without a valid session)."""
    cached = getattr(request.state, "api", None)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    cookie, session = _session(request)
    client = request.client
    made = Api(
        ui_state(request).management,
        cookie=cookie if session else None,
        csrf_token=session.csrf_token if session else None,
        client=(client.host, client.port) if client else ("", 0),
        scheme=request.url.scheme,
    )
    request.state.api = made
    request.state.session = session
    return made


async def visitor(request: Request) -> Visitor:
    cached = getattr(request.state, "visitor", None)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    calls = api(request)
    session: Session | None = request.state.session
    user = None
    if session is not None:
        try:
            user = (await calls.get("/users/current")).body
        except ApiError:
            session = None
    info = ui_state(request).system_info
    if info is None:
        info = ui_state(request).system_info = (await calls.get("/systeminfo")).body
    found = Visitor(session, user, info)
    request.state.visitor = found
    return found


async def render(
    request: Request, template: str, *, status: int = 200, **values: Any
) -> HTMLResponse:
    env: Environment = ui_state(request).templates
    who = await visitor(request)
    flash = _read_flash(request)
    body = env.get_template(template).render(
        request=request, me=who, flash=flash, csrf_field=CSRF_FIELD, **values
    )
    response = HTMLResponse(body, status_code=status)
    if flash is not None:
        response.delete_cookie(FLASH_COOKIE, path="/")
    return response


async def checked_form(request: Request) -> FormData:
    """The posted form, after checking its CSRF token against the session's (403 page
    otherwise). Signed-out visitors have no session and so cannot change anything."""
    form = await request.form()
    who = await visitor(request)
    sent = form.get(CSRF_FIELD)
    if (
        who.session is None
        or not isinstance(sent, str)
        or not hmac.compare_digest(sent.encode(), who.session.csrf_token.encode())
    ):
        raise PageError(
            403,
            "Form expired",
            "This form was not sent from your current session (it may have expired). "
            "Reload the page and try again.",
        )
    return form


def text(form: FormData, name: str, default: str = "") -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else default


def redirect(location: str, message: str | None = None, *, error: bool = False) -> Response:
    """303 to a page of ours, with a message shown once there."""
    response = RedirectResponse(location, status_code=303)
    if message is not None:
        payload = json.dumps({"error": error, "text": message[:1500]})
        response.set_cookie(
            FLASH_COOKIE, quote(payload), max_age=60, httponly=True, samesite="strict", path="/"
        )
    return response


def _read_flash(request: Request) -> dict[str, Any] | None:
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw:
        return None
    try:
        value = json.loads(unquote(raw))
    except ValueError:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("text"), str):
        return None
    return {"error": bool(value.get("error")), "text": value["text"]}


def safe_next(target: str | None, default: str = "/projects") -> str:
    """Where to go after signing in: only a path on this site. `//evil`, `/\\evil`,
    schemes and control characters fall back to the default (no open redirects)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return default
    if any(c in target for c in "\\\r\n\t") or any(ord(c) < 32 for c in target):
        return default
    return target


def new_login_token() -> str:
    return secrets.token_urlsafe(24)


def login_url(request: Request) -> str:
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return "/login?next=" + quote(here, safe="")


def project_url(name: str, tab: str = "") -> str:
    return f"/projects/{quote(name, safe='')}" + (f"/{tab}" if tab else "")


def repository_url(name: str, *rest: str) -> str:
    tail = "".join("/" + quote(part, safe="") for part in rest)
    return f"/repositories/{quote(name, safe='/')}" + (f"/-{tail}" if rest else "")


def artifact_url(repository: str, digest: str) -> str:
    return repository_url(repository, "artifacts", digest)


def whole_number(value: str | None, *, most: int = 10**12) -> int | None:
    """A non-negative whole number typed or sent by a browser, or None. Only ASCII
    digits: `"²".isdigit()` is true but int() refuses it, and Python refuses to convert
    very long digit strings — either would otherwise be a 500."""
    if not value or not value.isascii() or not value.isdigit() or len(value) > 15:
        return None
    number = int(value)
    return number if number <= most else None
