"""The web UI's way to the management API: in-process calls, as the signed-in user.

Every page asks the management API (`/api/v1`) for what it shows and sends every change
through it, with the browser's own session cookie and CSRF token, so the UI can never
show or do more than the API allows that user: permissions live in one place. The
call is an ASGI call inside the process (no socket, no HTTP parsing), with the
browser's address as the client, so login throttling and audit see the real source.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote, urlencode

from portside.mgmt.bridge import Headers, call_asgi
from portside.mgmt.sessions import COOKIE

PREFIX = "/api/v1"


class ApiError(Exception):
    """The management API refused: its status, error code and message in words."""

    def __init__(self, status: int, code: str, message: str, detail: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.detail = detail

    @property
    def explanation(self) -> str:
        """The message, with the fields a validation error names."""
        if isinstance(self.detail, list):
            parts = [
                f"{d.get('location', '').removeprefix('body.')}: {d.get('message', '')}"
                for d in self.detail
                if isinstance(d, dict)
            ]
            if parts:
                return f"{self.message} ({'; '.join(parts)})"
        return self.message


@dataclass(slots=True)
class ApiResponse:
    status: int
    headers: dict[str, str]
    body: Any
    cookies: list[str] = field(default_factory=list)  # Set-Cookie values, as sent

    @property
    def total(self) -> int | None:
        value = self.headers.get("x-total-count")
        return int(value) if value and value.isascii() and value.isdigit() else None


def path(*segments: str) -> str:
    """An API path from segments, each quoted (a repository name keeps its slashes)."""
    return "/".join(quote(s, safe="/" if i == 0 else "") for i, s in enumerate(segments))


def repository_path(name: str, *rest: str) -> str:
    """`/repositories/<name>/-/<rest...>`: repository names keep their slashes."""
    tail = "".join("/" + quote(part, safe="") for part in rest)
    return f"/repositories/{quote(name, safe='/')}" + (f"/-{tail}" if rest else "")


class Api:
    """One browser request's view of the management API."""

    def __init__(
        self,
        app: Any,
        *,
        cookie: str | None,
        csrf_token: str | None,
        client: tuple[str, int],
        scheme: str,
    ) -> None:
        self._app = app
        self._cookie = cookie
        self._csrf = csrf_token
        self._client = client
        self._scheme = scheme

    async def get(self, where: str, **params: Any) -> ApiResponse:
        return await self.call("GET", where, params=params)

    async def post(self, where: str, body: Any = None) -> ApiResponse:
        return await self.call("POST", where, body=body)

    async def put(self, where: str, body: Any = None) -> ApiResponse:
        return await self.call("PUT", where, body=body)

    async def patch(self, where: str, body: Any = None) -> ApiResponse:
        return await self.call("PATCH", where, body=body)

    async def delete(self, where: str, **params: Any) -> ApiResponse:
        return await self.call("DELETE", where, params=params)

    async def call(
        self, method: str, where: str, *, params: dict[str, Any] | None = None, body: Any = None
    ) -> ApiResponse:
        """Call the API; the response for 2xx, ApiError for anything else."""
        query = urlencode(
            [(k, _param(v)) for k, v in (params or {}).items() if v is not None and v != ""]
        )
        payload = b"" if body is None else json.dumps(body).encode()
        headers = [(b"accept", b"application/json")]
        if body is not None:
            headers.append((b"content-type", b"application/json"))
        if self._cookie:
            headers.append((b"cookie", f"{COOKIE}={self._cookie}".encode("latin-1")))
        if self._csrf and method not in ("GET", "HEAD"):
            headers.append((b"x-csrf-token", self._csrf.encode("latin-1")))
        full = PREFIX + where
        scope = {
            "http_version": "1.1",
            "method": method,
            "scheme": self._scheme,
            "path": unquote(full),  # ASGI: decoded; raw_path keeps the quoting
            "raw_path": full.encode(),
            "query_string": query.encode(),
            "headers": headers,
            "client": self._client,
            "server": ("portside.internal", 80),
        }
        answers: list[tuple[int, Headers, bytes]] = []
        await call_asgi(self._app, scope, payload, lambda *answer: answers.append(answer))
        status, raw_headers, raw = answers[0] if answers else (500, [], b"")
        response_headers: dict[str, str] = {}
        cookies: list[str] = []
        for key, value in raw_headers:
            name = key.decode("latin-1").lower()
            if name == "set-cookie":
                cookies.append(value.decode("latin-1"))
            else:
                response_headers[name] = value.decode("latin-1")
        decoded: Any = None
        if raw and response_headers.get("content-type", "").startswith("application/json"):
            decoded = json.loads(raw)
        if status >= 400:
            error = (decoded or {}).get("errors", [{}])[0] if isinstance(decoded, dict) else {}
            raise ApiError(
                status,
                str(error.get("code", "UNKNOWN")),
                str(error.get("message", f"the request failed ({status})")),
                error.get("detail"),
            )
        return ApiResponse(status, response_headers, decoded, cookies)


def _param(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
