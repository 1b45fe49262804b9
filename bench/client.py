"""A lean HTTP/1.1 registry client on http.client: bodies are streamed, reads go into
a reusable buffer with readinto and are discarded."""

from __future__ import annotations

import http.client
import json
import random
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from bench.payload import MiB, Payload

READ_BUF = 1 * MiB
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MANIFEST_ACCEPT = ", ".join(
    [
        OCI_MANIFEST,
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    ]
)


class RegistryError(RuntimeError):
    pass


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    timeout: float = 600.0
    # "Bearer <token>" for registries with authentication (the token-auth figures).
    authorization: str | None = None

    def auth(self, headers: dict[str, str] | None = None) -> dict[str, str]:
        merged = dict(headers or {})
        if self.authorization:
            merged["Authorization"] = self.authorization
        return merged

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes


def call(
    conn: http.client.HTTPConnection,
    method: str,
    url: str,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
) -> Reply:
    hdrs = dict(headers or {})
    if body is None and method in ("POST", "PUT", "PATCH"):
        body = b""
    conn.request(method, url, body=body, headers=hdrs)
    resp = conn.getresponse()
    data = resp.read()
    return Reply(resp.status, resp.headers, data)


def expect(reply: Reply, *codes: int, what: str) -> Reply:
    if reply.status not in codes:
        raise RegistryError(f"{what}: HTTP {reply.status}: {reply.body[:300]!r}")
    return reply


def _location(reply: Reply) -> str:
    loc = reply.headers.get("Location")
    if not loc:
        raise RegistryError(f"HTTP {reply.status} without Location")
    parts = urlsplit(loc)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _with_digest(url: str, digest: str) -> str:
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}digest={quote(digest, safe=':')}"


def _start_upload(
    conn: http.client.HTTPConnection, repo: str, headers: dict[str, str] | None = None
) -> str:
    r = call(conn, "POST", f"/v2/{repo}/blobs/uploads/", headers)
    return _location(expect(r, 202, what="start upload"))


def _send_body(
    conn: http.client.HTTPConnection,
    method: str,
    url: str,
    headers: dict[str, str],
    parts: Iterable[memoryview],
    *,
    chunked: bool,
) -> Reply:
    conn.putrequest(method, url, skip_accept_encoding=True)
    for k, v in headers.items():
        conn.putheader(k, v)
    if chunked:
        conn.putheader("Transfer-Encoding", "chunked")
    conn.endheaders()
    for part in parts:
        if chunked:
            conn.send(b"%x\r\n" % len(part))
            conn.send(part)
            conn.send(b"\r\n")
        else:
            conn.send(part)
    if chunked:
        conn.send(b"0\r\n\r\n")
    resp = conn.getresponse()
    return Reply(resp.status, resp.headers, resp.read())


def push_monolithic(ep: Endpoint, repo: str, blob: Payload) -> None:
    """POST to open a session, then one PUT with the whole body and the digest."""
    conn = ep.connect()
    try:
        url = _start_upload(conn, repo)
        r = _send_body(
            conn,
            "PUT",
            _with_digest(url, blob.digest),
            {"Content-Type": "application/octet-stream", "Content-Length": str(blob.size)},
            blob.segments(),
            chunked=False,
        )
        expect(r, 201, what="monolithic PUT")
    finally:
        conn.close()


def push_chunked(ep: Endpoint, repo: str, blob: Payload) -> None:
    """POST, one PATCH per 8 MiB segment (Content-Range + Content-Length), closing PUT."""
    conn = ep.connect()
    try:
        url = _start_upload(conn, repo)
        offset = 0
        for seg in blob.segments():
            n = len(seg)
            r = _send_body(
                conn,
                "PATCH",
                url,
                {
                    "Content-Type": "application/octet-stream",
                    "Content-Length": str(n),
                    "Content-Range": f"{offset}-{offset + n - 1}",
                },
                [seg],
                chunked=False,
            )
            url = _location(expect(r, 202, what=f"PATCH at {offset}"))
            offset += n
        r = call(conn, "PUT", _with_digest(url, blob.digest), {"Content-Length": "0"})
        expect(r, 201, what="closing PUT")
    finally:
        conn.close()


def push_streamed(ep: Endpoint, repo: str, blob: Payload) -> None:
    """POST, one PATCH streamed with Transfer-Encoding: chunked (as docker does), PUT."""
    conn = ep.connect()
    try:
        url = _start_upload(conn, repo)
        r = _send_body(
            conn,
            "PATCH",
            url,
            {"Content-Type": "application/octet-stream"},
            blob.segments(),
            chunked=True,
        )
        url = _location(expect(r, 202, what="streamed PATCH"))
        r = call(conn, "PUT", _with_digest(url, blob.digest), {"Content-Length": "0"})
        expect(r, 201, what="closing PUT")
    finally:
        conn.close()


def push_small(ep: Endpoint, repo: str, data: bytes, digest: str) -> None:
    conn = ep.connect()
    try:
        url = _start_upload(conn, repo, ep.auth())
        r = call(
            conn,
            "PUT",
            _with_digest(url, digest),
            ep.auth({"Content-Type": "application/octet-stream"}),
            data,
        )
        expect(r, 201, what="small blob PUT")
    finally:
        conn.close()


def put_manifest(ep: Endpoint, repo: str, ref: str, manifest: dict[str, object]) -> None:
    conn = ep.connect()
    try:
        body = json.dumps(manifest).encode()
        headers = ep.auth({"Content-Type": OCI_MANIFEST})
        r = call(conn, "PUT", f"/v2/{repo}/manifests/{ref}", headers, body)
        expect(r, 201, what="manifest PUT")
    finally:
        conn.close()


def pull(ep: Endpoint, repo: str, digest: str, buf: memoryview) -> int:
    """GET a blob and discard it; returns the byte count."""
    conn = ep.connect()
    try:
        conn.request("GET", f"/v2/{repo}/blobs/{digest}")
        resp = conn.getresponse()
        if resp.status != 200:
            raise RegistryError(f"blob GET: HTTP {resp.status}: {resp.read(300)!r}")
        total = 0
        while True:
            n = resp.readinto(buf)
            if not n:
                return total
            total += n
    finally:
        conn.close()


def pull_concurrent(ep: Endpoint, repo: str, digest: str, clients: int) -> tuple[int, float]:
    """`clients` threads each GET the whole blob at once; returns (bytes, seconds)."""
    barrier = threading.Barrier(clients + 1)
    totals = [0] * clients
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        buf = memoryview(bytearray(READ_BUF))
        barrier.wait()
        try:
            totals[i] = pull(ep, repo, digest, buf)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    if errors:
        raise errors[0]
    return sum(totals), elapsed


def range_reads(
    ep: Endpoint,
    repo: str,
    digest: str,
    *,
    blob_size: int,
    length: int,
    clients: int,
    duration: float,
    seed: int,
) -> tuple[int, int, float]:
    """Keep-alive Range GETs of `length` bytes at random offsets, for `duration` seconds
    on `clients` connections. Returns (requests, bytes, seconds)."""
    barrier = threading.Barrier(clients + 1)
    counts = [0] * clients
    sizes = [0] * clients
    errors: list[BaseException] = []
    deadline = [0.0]

    def worker(i: int) -> None:
        rng = random.Random(seed + i)
        buf = memoryview(bytearray(READ_BUF))
        conn = ep.connect()
        barrier.wait()
        try:
            while time.perf_counter() < deadline[0]:
                start = rng.randrange(0, blob_size - length)
                conn.request(
                    "GET",
                    f"/v2/{repo}/blobs/{digest}",
                    headers={"Range": f"bytes={start}-{start + length - 1}"},
                )
                resp = conn.getresponse()
                if resp.status != 206:
                    conn.close()
                    raise RegistryError(f"Range GET answered HTTP {resp.status}, not 206")
                got = 0
                while True:
                    n = resp.readinto(buf)
                    if not n:
                        break
                    got += n
                if got != length:
                    raise RegistryError(f"Range GET returned {got} bytes, wanted {length}")
                counts[i] += 1
                sizes[i] += got
        except BaseException as exc:
            errors.append(exc)
        finally:
            conn.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    t0 = time.perf_counter()
    deadline[0] = t0 + duration
    barrier.wait()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    if errors:
        raise errors[0]
    return sum(counts), sum(sizes), elapsed


def get_ok(ep: Endpoint, url: str, accept: str | None = None) -> int:
    conn = ep.connect()
    try:
        r = call(conn, "GET", url, ep.auth({"Accept": accept} if accept else None))
        return r.status
    finally:
        conn.close()
