"""A minimal request/response layer for the /v2 hot paths, over two server interfaces.

Production runs on granian's native RSGI interface (fewer Python hops per request and per
body chunk than ASGI); the same handlers also run under ASGI, which the in-process tests
and any other ASGI server use. Handlers see only Request and Response.

No framework runs per request here: parsing a path, a few headers and the query string
is all a registry handler needs, and it is measurably cheaper than middleware stacks.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    MutableMapping,
)
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import parse_qs

from portside.errors import HeadersTooLarge, RegistryError, SizeInvalid, UriTooLong
from portside.events.outbox import Actor

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_FILE_CHUNK = 256 * 1024
# Limits on the request head, far below granian's own (it answers 414/431 with no body
# only past its ~400 KiB HTTP/1 buffer), so an oversized request gets a JSON error.
MAX_TARGET = 8 * 1024
MAX_HEADER_BYTES = 16 * 1024


def head_error(path: str, query: str, headers: Iterable[tuple[str, str]]) -> RegistryError | None:
    """UriTooLong or HeadersTooLarge when the request head is over the limits, else None.
    Header bytes are counted as on the wire: `name: value` and the line end."""
    if len(path) + len(query) + 1 > MAX_TARGET:
        return UriTooLong(
            f"the request path and query are over {MAX_TARGET} bytes",
            detail={"limit": MAX_TARGET},
        )
    if sum(len(name) + len(value) + 4 for name, value in headers) > MAX_HEADER_BYTES:
        return HeadersTooLarge(
            f"the request header fields are over {MAX_HEADER_BYTES} bytes in total",
            detail={"limit": MAX_HEADER_BYTES},
        )
    return None


class ClientDisconnected(Exception):
    """The client went away before sending the whole body."""


class Request(ABC):
    """What a handler may know about a request; subclasses read it from a server interface."""

    __slots__ = (
        "_headers",
        "_query",
        "body_done",
        "caller",
        "client",
        "method",
        "path",
        "query_string",
        "received",
        "request_id",
        "route",
    )

    def __init__(self, method: str, path: str, query_string: str) -> None:
        self.method = method
        self.path = path
        self.query_string = query_string
        self._headers: dict[str, str] | None = None
        self._query: dict[str, list[str]] | None = None
        self.received = 0
        self.body_done = False
        self.route = "other"  # for metrics, set once routed
        self.request_id = ""
        self.client = ""  # the peer's address (never X-Forwarded-For: it is not trusted)
        # Who is calling and what they may do, once the guard has looked (api.guard.Caller).
        self.caller: Any = None

    @abstractmethod
    def _raw_headers(self) -> Iterable[tuple[str, str]]:
        """(name, value) pairs, names in lowercase."""

    @abstractmethod
    def _chunks(self) -> AsyncIterator[tuple[bytes, bool]]:
        """(chunk, more to come) pairs of the body."""

    @property
    def actor(self) -> Actor:
        """Who makes this request, and from where, for the events it causes."""
        return Actor(self.caller.identity.actor, self.client)

    @property
    def headers(self) -> dict[str, str]:
        if self._headers is None:
            headers: dict[str, str] = {}
            for name, value in self._raw_headers():
                # Repeated headers (skopeo sends one Accept per media type) form one list.
                headers[name] = f"{headers[name]}, {value}" if name in headers else value
            self._headers = headers
        return self._headers

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    def query(self, name: str) -> str | None:
        if self._query is None:
            raw = self.query_string
            self._query = parse_qs(raw, keep_blank_values=True) if raw else {}
        values = self._query.get(name)
        return values[0] if values else None

    def content_length(self) -> int | None:
        value = self.header("content-length")
        if value is None:
            return None
        if not (value.isascii() and value.isdigit()):
            raise SizeInvalid(f"invalid Content-Length {value[:40]!r}")
        return int(value)

    async def stream(self) -> AsyncIterator[bytes]:
        """The body's chunks. A body that ends before its Content-Length raises SizeInvalid
        instead of ending: granian ends the stream quietly when the client closes early,
        and a consumer must never take such a prefix for the whole body."""
        if self.body_done:
            return
        declared = self.content_length()
        async for chunk, more in self._chunks():
            # Known before yielding: a consumer may stop at the last chunk, and asking the
            # server for more after the final one would wait for the disconnect.
            self.body_done = not more
            if chunk:
                self.received += len(chunk)
                yield chunk
            if not more:
                break
        self.body_done = True
        if declared is not None and self.received < declared:
            raise SizeInvalid(
                f"request body ended after {self.received} bytes; Content-Length said {declared}",
                detail={"received": self.received, "contentLength": declared},
            )

    async def drain(self, limit: int) -> bool:
        """Read and drop what is left of the body, up to limit bytes; True if it all came.
        A response sent before its request's body was read must not leave the rest on the
        connection, or the next request on it is garbled."""
        if self.body_done:
            return True
        dropped = 0
        try:
            async for chunk in self.stream():
                dropped += len(chunk)
                if dropped > limit:
                    return False
        except (ClientDisconnected, SizeInvalid):
            return False
        return True

    async def read(self, limit: int) -> bytes:
        """The whole body, or as much as limit+1 bytes so the caller can refuse it."""
        parts: list[bytes] = []
        total = 0
        async for chunk in self.stream():
            parts.append(chunk)
            total += len(chunk)
            if total > limit:
                break
        return b"".join(parts)


class AsgiRequest(Request):
    __slots__ = ("receive", "scope")

    def __init__(self, scope: Scope, receive: Receive) -> None:
        super().__init__(
            scope["method"], scope["path"], scope.get("query_string", b"").decode("latin-1")
        )
        self.scope = scope
        self.receive = receive
        client = scope.get("client")
        self.client = client[0] if client else ""

    def _raw_headers(self) -> Iterable[tuple[str, str]]:
        for name, value in self.scope["headers"]:
            yield name.decode("latin-1"), value.decode("latin-1")

    async def _chunks(self) -> AsyncIterator[tuple[bytes, bool]]:
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnected
            more = bool(message.get("more_body", False))
            yield message.get("body", b""), more
            if not more:
                return


class RsgiRequest(Request):
    __slots__ = ("protocol", "scope")

    def __init__(self, scope: Any, protocol: Any) -> None:
        super().__init__(scope.method, scope.path, scope.query_string)
        self.scope = scope
        self.protocol = protocol
        self.client = scope.client.rsplit(":", 1)[0].strip("[]")

    def _raw_headers(self) -> Iterable[tuple[str, str]]:
        return self.scope.headers.items()  # type: ignore[no-any-return]

    async def _chunks(self) -> AsyncIterator[tuple[bytes, bool]]:
        try:
            async for chunk in self.protocol:
                yield chunk, True
        except RuntimeError as error:  # granian's RSGIProtocolClosed / RSGIProtocolError
            raise ClientDisconnected from error
        yield b"", False


@dataclass(slots=True)
class FileBody:
    path: str
    offset: int
    length: int
    whole: bool


class BodyStream(Protocol):
    """A body produced while it is sent (e.g. read from a storage driver on the pool)."""

    def chunks(self) -> AsyncGenerator[bytes, None]: ...

    async def close(self) -> None:
        """Release what it holds; called once however the response ended (even unsent)."""


@dataclass(slots=True)
class Response:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    file: FileBody | None = None
    stream: BodyStream | None = None
    sent_bytes: int = 0

    def header(self, name: str, value: str) -> Response:
        self.headers.append((name, value))
        return self


def empty(status: int, headers: dict[str, str] | None = None) -> Response:
    response = Response(status)
    for name, value in (headers or {}).items():
        response.header(name, value)
    response.header("content-length", "0")
    return response


def json_body(status: int, body: bytes, content_type: str = "application/json") -> Response:
    response = Response(status, body=body)
    response.header("content-type", content_type)
    response.header("content-length", str(len(body)))
    return response


def send_rsgi(protocol: Any, response: Response, *, head: bool) -> None:
    file = response.file
    if head or file is None:
        body = b"" if head else response.body
        response.sent_bytes = len(body)
        protocol.response_bytes(response.status, response.headers, body)
        return
    # granian sends files from Rust: no blob bytes pass through Python.
    if file.whole:
        protocol.response_file(response.status, response.headers, file.path)
    else:
        protocol.response_file_range(
            response.status, response.headers, file.path, file.offset, file.offset + file.length
        )
    response.sent_bytes = file.length


async def stream_rsgi(protocol: Any, response: Response, *, head: bool) -> None:
    """send_rsgi for a response with a stream body."""
    stream = response.stream
    assert stream is not None
    try:
        if head:
            protocol.response_bytes(response.status, response.headers, b"")
            return
        transport = protocol.response_stream(response.status, response.headers)
        chunks = stream.chunks()
        try:
            async for chunk in chunks:
                try:
                    await transport.send_bytes(chunk)
                except RuntimeError:  # granian's RSGIProtocolClosed: the client left
                    return
                response.sent_bytes += len(chunk)
        finally:
            await chunks.aclose()
    finally:
        await stream.close()


async def send_asgi(scope: Scope, send_message: Send, response: Response, *, head: bool) -> None:
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in response.headers]
    await send_message(
        {"type": "http.response.start", "status": response.status, "headers": headers}
    )
    if response.stream is not None:
        try:
            if not head:
                chunks = response.stream.chunks()
                try:
                    async for chunk in chunks:
                        await send_message(
                            {"type": "http.response.body", "body": chunk, "more_body": True}
                        )
                        response.sent_bytes += len(chunk)
                finally:
                    await chunks.aclose()
            await send_message({"type": "http.response.body", "body": b""})
        finally:
            await response.stream.close()
        return
    file = response.file
    if head or file is None:
        body = b"" if head else response.body
        response.sent_bytes = len(body)
        await send_message({"type": "http.response.body", "body": body})
        return
    extensions = scope.get("extensions") or {}
    if file.whole and "http.response.pathsend" in extensions:
        await send_message({"type": "http.response.pathsend", "path": file.path})
        response.sent_bytes = file.length
        return
    fd = os.open(file.path, os.O_RDONLY)
    try:
        position, remaining = file.offset, file.length
        while remaining > 0:
            chunk = os.pread(fd, min(_FILE_CHUNK, remaining), position)
            if not chunk:
                break
            position += len(chunk)
            remaining -= len(chunk)
            await send_message(
                {"type": "http.response.body", "body": chunk, "more_body": remaining > 0}
            )
        response.sent_bytes = file.length - remaining
        if remaining > 0 or file.length == 0:  # always end the response, never hang
            await send_message({"type": "http.response.body", "body": b""})
    finally:
        os.close(fd)
