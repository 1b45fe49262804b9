"""Running an ASGI application (the management API, the web UI) inside the RSGI server,
and calling one in-process.

The /v2 hot paths use granian's RSGI interface directly; the management API is a FastAPI
(ASGI) app. Its requests and responses are small JSON documents, so this adapter reads
the request body whole (up to a limit) and sends the response in one piece.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from portside.api.http import Message, Scope
from portside.errors import SizeInvalid

BODY_LIMIT = 1024 * 1024


class BodyTooLarge(Exception):
    pass


Headers = list[tuple[bytes, bytes]]
Respond = Callable[[int, Headers, bytes], None]


async def call_asgi(app: Any, scope: Scope, body: bytes, respond: Respond) -> None:
    """Run an ASGI app on a request whose body is all here. `respond` gets the status,
    the headers and the whole response body as soon as the app has sent its last part.
    Used by the RSGI entry point below and by the web UI's in-process API calls."""
    # ASGI 2.4: the app must not wait on receive() for a disconnect to end a streamed
    # response (Starlette's FileResponse would otherwise see the disconnect this adapter
    # reports once the body is read, and stop sending).
    full_scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "root_path": "",
        **scope,
    }
    received = False

    async def receive() -> Message:
        nonlocal received
        if received:
            return {"type": "http.disconnect"}
        received = True
        return {"type": "http.request", "body": body, "more_body": False}

    status = 500
    headers: Headers = []
    parts: list[bytes] = []

    async def send(message: Message) -> None:
        nonlocal status, headers
        if message["type"] == "http.response.start":
            status = int(message["status"])
            headers = list(message.get("headers", []))
        elif message["type"] == "http.response.body":
            parts.append(message.get("body", b""))
            if not message.get("more_body", False):
                respond(status, headers, b"".join(parts))

    await app(full_scope, receive, send)


async def call_asgi_from_rsgi(app: Any, scope: Any, protocol: Any) -> int:
    """Serve one RSGI request with an ASGI app; returns the response status."""
    body = bytearray()
    async for chunk in protocol:
        body += chunk
        if len(body) > BODY_LIMIT:
            protocol.response_bytes(413, [("content-type", "application/json")], _TOO_LARGE)
            return 413
    declared = scope.headers.get("content-length")
    if declared is not None and declared.isdigit() and len(body) < int(declared):
        # The client closed before its body was all sent (granian then just ends the
        # stream): never hand the app a prefix as if it were the request.
        error = SizeInvalid(
            f"request body ended after {len(body)} bytes; Content-Length said {declared}"
        )
        protocol.response_bytes(error.status, [("content-type", "application/json")], error.body())
        return error.status
    client_host, _, client_port = scope.client.rpartition(":")
    server_host, _, server_port = scope.server.rpartition(":")
    asgi_scope: Scope = {
        "http_version": scope.http_version,
        "method": scope.method,
        "scheme": scope.scheme,
        "path": scope.path,
        "raw_path": scope.path.encode("utf-8"),
        "query_string": scope.query_string.encode("latin-1"),
        "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in scope.headers.items()],
        "client": (client_host.strip("[]"), int(client_port or 0)),
        "server": (server_host.strip("[]"), int(server_port or 0)),
    }
    status = 500

    def respond(code: int, headers: Headers, content: bytes) -> None:
        nonlocal status
        status = code
        text = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in headers]
        protocol.response_bytes(code, text, content)

    await call_asgi(app, asgi_scope, bytes(body), respond)
    return status


_TOO_LARGE = b'{"errors":[{"code":"INVALID","message":"request body too large"}]}'
