"""A do-nothing HTTP/1.1 server speaking just enough of the registry upload/download
protocol to measure the client's own ceiling: GETs stream zeros, bodies are discarded.

Run as `python -m bench.nullserver SIZE`; prints the port it listens on (127.0.0.1).
"""

from __future__ import annotations

import os
import socket
import socketserver
import sys
import tempfile
from io import BufferedReader
from typing import cast


def _drain(rf: BufferedReader, n: int, mv: memoryview) -> None:
    while n > 0:
        k = rf.readinto(mv[: min(n, len(mv))])
        if not k:
            raise ConnectionError("client closed mid-body")
        n -= k


class _Handler(socketserver.BaseRequestHandler):
    size = 0
    fd = -1  # a sparse file of `size` bytes, sent with sendfile(2) like a real server would

    def handle(self) -> None:
        sock: socket.socket = self.request
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        rf = cast(BufferedReader, sock.makefile("rb", buffering=1 << 16))
        mv = memoryview(bytearray(1 << 20))
        while True:
            line = rf.readline(65537)
            if not line.strip():
                return
            method, target = line.decode("latin-1").split(" ")[:2]
            headers: dict[str, str] = {}
            while True:
                h = rf.readline(65537)
                if h in (b"\r\n", b"\n", b""):
                    break
                k, _, v = h.decode("latin-1").partition(":")
                headers[k.strip().lower()] = v.strip()
            if headers.get("transfer-encoding", "").lower() == "chunked":
                while True:
                    n = int(rf.readline(1024).split(b";")[0], 16)
                    if n == 0:
                        while rf.readline(65537) not in (b"\r\n", b"\n", b""):
                            pass
                        break
                    _drain(rf, n, mv)
                    rf.readline(16)
            elif "content-length" in headers:
                _drain(rf, int(headers["content-length"]), mv)
            self._respond(sock, method, target)

    def _respond(self, sock: socket.socket, method: str, target: str) -> None:
        upload = "/v2/null/blobs/uploads/u1"
        if method in ("GET", "HEAD") and "/blobs/" in target:
            sock.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                b"Content-Length: %d\r\n\r\n" % self.size
            )
            if method == "GET":
                offset = 0
                while offset < self.size:
                    sent = os.sendfile(sock.fileno(), self.fd, offset, self.size - offset)
                    if sent == 0:
                        raise ConnectionError("sendfile made no progress")
                    offset += sent
        elif method in ("POST", "PATCH"):
            sock.sendall(
                b"HTTP/1.1 202 Accepted\r\nLocation: %s\r\nContent-Length: 0\r\n\r\n"
                % upload.encode()
            )
        elif method == "PUT":
            sock.sendall(
                b"HTTP/1.1 201 Created\r\nLocation: /v2/null/blobs/x\r\nContent-Length: 0\r\n\r\n"
            )
        else:
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")


class _Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


def main() -> None:
    _Handler.size = int(sys.argv[1])
    with tempfile.TemporaryFile() as f:
        f.truncate(_Handler.size)
        _Handler.fd = f.fileno()
        _serve()


def _serve() -> None:
    with _Server(("127.0.0.1", 0), _Handler) as srv:
        print(srv.server_address[1], flush=True)
        srv.serve_forever()


if __name__ == "__main__":
    main()
