"""A fault-injecting reverse proxy in front of a real registry (a real Distribution on
loopback): it forwards requests unchanged, except those a test's `fault` function picks,
which get an error answer (429 with Retry-After, 503...) or are forwarded and then have
their connection cut before the answer (the peer did the work; the client never heard).
This is the one stand-in in these tests: no real registry misbehaves on cue.

    with FaultProxy(peer.url, fault) as proxy:   # proxy.url, proxy.seen, proxy.injected
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

# What to do with a request: None forwards it; ("answer", status, headers) answers
# instead of the peer; ("cut",) forwards it, then closes the connection unanswered.
Fault = tuple[Any, ...] | None
Decide = Callable[[str, str, int], Fault]  # (method, path, how many seen so far) -> Fault

_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


@dataclass
class FaultProxy:
    upstream: str
    decide: Decide
    seen: list[tuple[str, str]] = field(default_factory=list)
    injected: list[tuple[str, str, str]] = field(default_factory=list)
    cut_after_bytes: int | None = None  # for ("cut-body",): stream this much, then cut

    def __post_init__(self) -> None:
        proxy = self
        client = httpx.Client(base_url=self.upstream, timeout=30)
        self._client = client
        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _handle(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                with lock:
                    count = len(proxy.seen)
                    proxy.seen.append((self.command, self.path))
                fault = proxy.decide(self.command, self.path, count)
                if fault is not None and fault[0] == "answer":
                    _, status, headers = fault
                    proxy.injected.append((self.command, self.path, str(status)))
                    self.send_response(status)
                    for key, value in headers.items():
                        self.send_header(key, value)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
                answer = client.request(self.command, self.path, headers=headers, content=body)
                if fault is not None and fault[0] == "cut":
                    proxy.injected.append((self.command, self.path, "cut"))
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                payload = answer.content
                if fault is not None and fault[0] == "cut-body":
                    proxy.injected.append((self.command, self.path, "cut-body"))
                    self.send_response(answer.status_code)
                    for key, value in answer.headers.items():
                        if key.lower() not in _HOP:
                            self.send_header(key, value)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload[: fault[1]])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                self.send_response(answer.status_code)
                for key, value in answer.headers.items():
                    if key.lower() not in _HOP:
                        self.send_header(key, value.replace(proxy.upstream, proxy.url))
                if self.command != "HEAD":
                    self.send_header("Content-Length", str(len(payload)))
                elif "content-length" in answer.headers:
                    self.send_header("Content-Length", answer.headers["content-length"])
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *_exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._client.close()
