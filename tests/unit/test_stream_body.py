"""Streamed response bodies over RSGI (granian's interface), with a stand-in protocol:
the in-process API tests run over ASGI and never reach this path."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Any

from portside.api.http import Response, stream_rsgi


class Body:
    def __init__(self, parts: list[bytes]) -> None:
        self.parts = parts
        self.closed = 0
        self.finished = False

    async def chunks(self) -> AsyncGenerator[bytes, None]:
        try:
            for part in self.parts:
                yield part
        finally:
            self.finished = True

    async def close(self) -> None:
        self.closed += 1


class Transport:
    def __init__(self, fail_after: int | None = None) -> None:
        self.sent: list[bytes] = []
        self.fail_after = fail_after

    async def send_bytes(self, data: bytes) -> None:
        if self.fail_after is not None and len(self.sent) >= self.fail_after:
            raise RuntimeError("RSGIProtocolClosed")  # what granian raises when the client left
        self.sent.append(data)


class Protocol:
    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        self.started: Any = None
        self.bytes_response: Any = None

    def response_stream(self, status: int, headers: list[tuple[str, str]]) -> Transport:
        self.started = (status, headers)
        return self.transport

    def response_bytes(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.bytes_response = (status, headers, body)


def test_stream_is_sent_and_closed() -> None:
    body = Body([b"ab", b"cd", b"e"])
    protocol = Protocol(Transport())
    response = Response(200, [("content-length", "5")], stream=body)
    asyncio.run(stream_rsgi(protocol, response, head=False))
    assert protocol.started == (200, [("content-length", "5")])
    assert protocol.transport.sent == [b"ab", b"cd", b"e"]
    assert response.sent_bytes == 5
    assert body.closed == 1
    assert body.finished


def test_stream_is_closed_when_the_client_leaves() -> None:
    body = Body([b"ab", b"cd", b"e"])
    protocol = Protocol(Transport(fail_after=1))
    response = Response(200, stream=body)
    # The client leaving ends the response quietly (granian raises RSGIProtocolClosed, a
    # RuntimeError, on the next send): nothing to answer, but the stream must be closed.
    asyncio.run(stream_rsgi(protocol, response, head=False))
    assert response.sent_bytes == 2
    assert body.closed == 1
    assert body.finished


def test_head_sends_no_body_and_closes() -> None:
    body = Body([b"ab"])
    protocol = Protocol(Transport())
    asyncio.run(stream_rsgi(protocol, Response(200, stream=body), head=True))
    assert protocol.bytes_response == (200, [], b"")
    assert body.closed == 1
