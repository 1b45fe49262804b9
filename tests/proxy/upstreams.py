"""Upstream registries for the proxy-cache tests: a real Distribution 2.8 (from
tests/remote/peers.py) behind a tiny counting HTTP proxy, so a test can say how many
times each blob was fetched from the upstream and can cut the upstream off.

The counting proxy is ours (no real part counts per-path requests for us: Distribution's
access log is off in the peer's config and mixes in its own probes); it forwards every
request unchanged, streaming bodies both ways.
"""

from __future__ import annotations

import collections
import hashlib
import http.server
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx

from tests.durability.server import free_port

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "host"}


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Image:
    repository: str
    tag: str
    manifest: bytes
    digest: str
    config: bytes
    layers: tuple[bytes, ...]

    @property
    def blobs(self) -> dict[str, bytes]:
        return {sha256(b): b for b in (self.config, *self.layers)}


def push_blobs(client: httpx.Client, repository: str, blobs: list[bytes]) -> None:
    """Monolithic uploads (POST, then PUT with the digest) over plain HTTP."""
    for blob in blobs:
        started = client.post(f"/v2/{repository}/blobs/uploads/")
        assert started.status_code == 202, started.text
        location = started.headers["location"]
        separator = "&" if "?" in location else "?"
        done = client.put(
            f"{location}{separator}digest={sha256(blob)}",
            content=blob,
            headers={"content-type": "application/octet-stream"},
        )
        assert done.status_code == 201, done.text


def push_manifest(
    client: httpx.Client, repository: str, tag: str, manifest: bytes, media_type: str
) -> None:
    put = client.put(
        f"/v2/{repository}/manifests/{tag}", content=manifest, headers={"content-type": media_type}
    )
    assert put.status_code == 201, put.text


def push_image(client: httpx.Client, repository: str, tag: str, layers: list[bytes]) -> Image:
    """Push a small OCI image (its layers need not be tar archives) to a registry."""
    config = json.dumps({"architecture": "amd64", "os": "linux", "tag": tag}).encode()
    push_blobs(client, repository, [config, *layers])
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": sha256(config), "size": len(config)},
            "layers": [
                {"mediaType": OCI_LAYER, "digest": sha256(b), "size": len(b)} for b in layers
            ],
        }
    ).encode()
    push_manifest(client, repository, tag, manifest, OCI_MANIFEST)
    return Image(repository, tag, manifest, sha256(manifest), config, tuple(layers))


class CountingProxy:
    """Forwards every request to `target`, counting (method, path) pairs: all requests,
    and those answered 2xx (`served`: an auth challenge's 401 is not a fetch)."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.counts: collections.Counter[tuple[str, str]] = collections.Counter()
        # Requests the upstream answered 2xx (not auth challenges).
        self.served: collections.Counter[tuple[str, str]] = collections.Counter()
        self.lock = threading.Lock()
        self.cut = False  # answer nothing (close the connection) while set
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def _forward(self) -> None:
                path = self.path.split("?", 1)[0]
                with proxy.lock:
                    proxy.counts[(self.command, path)] += 1
                if proxy.cut:
                    self.close_connection = True
                    self.connection.close()
                    return
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
                with (
                    httpx.Client(timeout=60) as client,
                    client.stream(
                        self.command, proxy.target + self.path, headers=headers, content=body
                    ) as answer,
                ):
                    self.send_response(answer.status_code)
                    if answer.status_code < 300:
                        with proxy.lock:
                            proxy.served[(self.command, path)] += 1
                    for key, value in answer.headers.items():
                        if key.lower() not in _HOP:
                            self.send_header(key, value)
                    if "content-length" not in answer.headers:
                        self.send_header("content-length", "0")
                        self.end_headers()
                        return
                    self.end_headers()
                    if self.command != "HEAD":
                        for chunk in answer.iter_raw(64 * 1024):
                            self.wfile.write(chunk)

            do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _forward

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def count(self, method: str, path: str) -> int:
        """Requests the upstream answered 2xx."""
        with self.lock:
            return self.served[(method, path)]

    def blob_fetches(self, repository: str, digest: str) -> int:
        return self.count("GET", f"/v2/{repository}/blobs/{digest}")

    def total(self) -> int:
        with self.lock:
            return sum(self.counts.values())

    def reset(self) -> None:
        with self.lock:
            self.counts.clear()
            self.served.clear()


@contextmanager
def counting_proxy(target: str) -> Iterator[CountingProxy]:
    proxy = CountingProxy(target)
    proxy.thread.start()
    try:
        yield proxy
    finally:
        proxy.server.shutdown()
        proxy.server.server_close()
