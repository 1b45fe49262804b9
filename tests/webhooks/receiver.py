"""A real HTTP receiver for webhook tests: `http.server` in a thread on a loopback
address, recording every request; it can fail its first N requests, hold requests until
released, or redirect elsewhere."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def event_id(self) -> str:
        return self.headers["x-portside-event-id"]

    def signed_by(self, secret: str) -> bool:
        expected = "sha256=" + hmac.new(secret.encode(), self.body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(self.headers.get("x-portside-signature", ""), expected)


@dataclass
class Receiver:
    host: str
    port: int = 0
    fail_first: int = 0  # answer 500 to this many requests first
    redirect_to: str | None = None  # answer 307 with this Location
    hold: threading.Event | None = None  # when set: requests wait until it is set
    received: list[Received] = field(default_factory=list)
    arrived: threading.Condition = field(default_factory=threading.Condition)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/hook"

    def wait_for(self, count: int, timeout: float = 30.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        with self.arrived:
            while len(self.received) < count:
                left = deadline - time.monotonic()
                assert left > 0, f"expected {count} requests, got {len(self.received)}"
                self.arrived.wait(left)
            return list(self.received)

    def event_ids(self) -> list[str]:
        return [r.event_id for r in self.received]


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", "0"))
            body = self.rfile.read(length)
            request = Received(
                self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body
            )
            with receiver.arrived:
                receiver.received.append(request)
                number = len(receiver.received)
                receiver.arrived.notify_all()
            if receiver.hold is not None:
                receiver.hold.wait(60)
            if receiver.redirect_to is not None:
                self.send_response(307)
                self.send_header("Location", receiver.redirect_to)
            elif number <= receiver.fail_first:
                self.send_response(500)
            else:
                self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_POST

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def receiving(host: str = "127.0.0.1", **options: Any) -> Iterator[Receiver]:
    receiver = Receiver(host, **options)
    server_class = ThreadingHTTPServer
    if ":" in host:
        import socket

        class V6Server(ThreadingHTTPServer):
            address_family = socket.AF_INET6

        server_class = V6Server
    server = server_class((host, 0), _handler(receiver))
    server.daemon_threads = True
    receiver.port = int(server.server_address[1])
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        if receiver.hold is not None:
            receiver.hold.set()
        server.shutdown()
        server.server_close()
