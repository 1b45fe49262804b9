"""Small building blocks for the /v2 API tests: digests, pushing blobs and manifests,
building images, indexes and artifacts, checking error bodies, and a raw ASGI caller
for requests an HTTP client library will not send (odd headers, dot segments).

Media types are spelled out here rather than imported from portside, so the tests pin
the OCI/Docker strings themselves.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx2 as httpx
from starlette.testclient import TestClient

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+json"
DOCKER_SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"

EMPTY_SHA256 = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
EMPTY_JSON = b"{}"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def sha512(data: bytes) -> str:
    return "sha512:" + hashlib.sha512(data).hexdigest()


def canonical(document: Mapping[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode()


# -- errors ------------------------------------------------------------------------------


def error_codes(response: httpx.Response) -> list[str]:
    """The codes of an OCI error body, after checking the body has the spec's shape."""
    assert response.headers.get("content-type", "").startswith("application/json"), response.headers
    body = response.json()
    assert isinstance(body, dict), body
    assert isinstance(body.get("errors"), list), body
    assert body["errors"], body
    codes: list[str] = []
    for entry in body["errors"]:
        assert isinstance(entry, dict), body
        assert isinstance(entry.get("code"), str), body
        assert isinstance(entry.get("message"), str), body
        codes.append(entry["code"])
    return codes


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> None:
    """The response is an OCI error with this status (and, if given, this code)."""
    assert response.status_code == status, (response.status_code, response.text)
    codes = error_codes(response)
    if code is not None:
        assert code in codes, codes


def error_message(response: httpx.Response) -> str:
    return " ".join(str(e["message"]) for e in response.json()["errors"])


# -- blobs ------------------------------------------------------------------------------


def push_blob(client: TestClient, repo: str, data: bytes, digest: str | None = None) -> str:
    """Monolithic POST ?digest=; returns the digest."""
    digest = digest or sha256(data)
    response = client.post(f"/v2/{repo}/blobs/uploads/?digest={digest}", content=data)
    assert response.status_code == 201, response.text
    return digest


def start_upload(client: TestClient, repo: str) -> str:
    """POST /blobs/uploads/; returns the Location to continue at."""
    response = client.post(f"/v2/{repo}/blobs/uploads/")
    assert response.status_code == 202, response.text
    location = response.headers["location"]
    assert location
    return location


def with_query(location: str, query: str) -> str:
    return f"{location}{'&' if '?' in location else '?'}{query}"


# -- manifests --------------------------------------------------------------------------


def descriptor(
    media_type: str, data: bytes, *, digest: str | None = None, **extra: Any
) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": digest or sha256(data), "size": len(data), **extra}


@dataclass(frozen=True)
class Manifest:
    body: bytes
    media_type: str

    @property
    def digest(self) -> str:
        return sha256(self.body)

    @property
    def size(self) -> int:
        return len(self.body)

    @property
    def document(self) -> dict[str, Any]:
        value = json.loads(self.body)
        assert isinstance(value, dict)
        return value

    def descriptor(self, **extra: Any) -> dict[str, Any]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size, **extra}


def image_document(
    config: bytes = EMPTY_JSON,
    layers: Sequence[bytes] = (b"layer",),
    *,
    media_type: str | None = OCI_MANIFEST,
    config_type: str = OCI_CONFIG,
    layer_type: str = OCI_LAYER,
    **extra: Any,
) -> dict[str, Any]:
    document: dict[str, Any] = {"schemaVersion": 2}
    if media_type is not None:
        document["mediaType"] = media_type
    document["config"] = descriptor(config_type, config)
    document["layers"] = [descriptor(layer_type, layer) for layer in layers]
    document.update(extra)
    return document


def make_image(
    client: TestClient,
    repo: str,
    *,
    config: bytes | None = None,
    layers: Sequence[bytes] | None = None,
    media_type: str = OCI_MANIFEST,
    seed: str = "",
    **extra: Any,
) -> Manifest:
    """Push the config and layers of a new image into repo; return its (unpushed) manifest.
    `seed` makes distinct images; extra keys (subject, artifactType, annotations) go into
    the manifest document."""
    docker = media_type == DOCKER_MANIFEST
    if config is None:
        config = canonical({"architecture": "amd64", "os": "linux", "seed": seed})
    if layers is None:
        layers = [f"layer one {seed}".encode(), f"layer two {seed}".encode()]
    for blob in (config, *layers):
        push_blob(client, repo, blob)
    document = image_document(
        config,
        layers,
        media_type=media_type,
        config_type=DOCKER_CONFIG if docker else OCI_CONFIG,
        layer_type=DOCKER_LAYER if docker else OCI_LAYER,
        **extra,
    )
    return Manifest(canonical(document), media_type)


def make_index(
    children: Iterable[Manifest], *, media_type: str = OCI_INDEX, **extra: Any
) -> Manifest:
    manifests = []
    for number, child in enumerate(children):
        item = child.descriptor(platform={"architecture": f"arch{number}", "os": "linux"})
        manifests.append(item)
    document: dict[str, Any] = {"schemaVersion": 2, "mediaType": media_type}
    document["manifests"] = manifests
    document.update(extra)
    return Manifest(canonical(document), media_type)


def make_artifact(
    client: TestClient,
    repo: str,
    subject: Manifest,
    *,
    artifact_type: str | None = "application/vnd.example.sbom.v1",
    config_type: str = OCI_EMPTY,
    annotations: dict[str, str] | None = None,
    payload: bytes = b"artifact payload",
) -> Manifest:
    """An OCI 1.1 artifact manifest whose subject is `subject` (blobs pushed, not the
    manifest)."""
    push_blob(client, repo, EMPTY_JSON)
    push_blob(client, repo, payload)
    document: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(config_type, EMPTY_JSON),
        "layers": [descriptor("application/vnd.example.payload", payload)],
        "subject": subject.descriptor(),
    }
    if artifact_type is not None:
        document["artifactType"] = artifact_type
    if annotations is not None:
        document["annotations"] = annotations
    return Manifest(canonical(document), OCI_MANIFEST)


def put_manifest(
    client: TestClient,
    repo: str,
    reference: str,
    body: bytes,
    content_type: str | None = OCI_MANIFEST,
) -> httpx.Response:
    headers = {"content-type": content_type} if content_type is not None else {}
    return client.put(f"/v2/{repo}/manifests/{reference}", content=body, headers=headers)


def push_manifest(
    client: TestClient, repo: str, reference: str, manifest: Manifest
) -> httpx.Response:
    response = put_manifest(client, repo, reference, manifest.body, manifest.media_type)
    assert response.status_code == 201, response.text
    assert response.headers["docker-content-digest"] == manifest.digest
    return response


def push_image(
    client: TestClient, repo: str, tag: str | None = "latest", *, seed: str = "", **kw: Any
) -> Manifest:
    """Blobs and manifest of a new image, tagged (or pushed by digest if tag is None)."""
    manifest = make_image(client, repo, seed=seed or repo + (tag or ""), **kw)
    push_manifest(client, repo, tag or manifest.digest, manifest)
    return manifest


def tags_of(client: TestClient, repo: str) -> list[str]:
    response = client.get(f"/v2/{repo}/tags/list")
    assert response.status_code == 200, response.text
    tags = response.json()["tags"]
    assert isinstance(tags, list)
    return tags


# -- raw ASGI ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RawResponse:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    complete: bool  # the app ended the response with a final http.response.body message

    def header(self, name: str) -> str | None:
        wanted = name.lower().encode()
        for key, value in self.headers:
            if key.lower() == wanted:
                return value.decode("latin-1")
        return None

    def json(self) -> Any:
        return json.loads(self.body)


def raw_request(
    app: Any,
    method: str,
    path: str,
    *,
    query: bytes = b"",
    headers: Sequence[tuple[bytes, bytes]] = (),
    chunks: Sequence[bytes] = (),
) -> RawResponse:
    """Call the ASGI app directly with exactly these headers and body chunks."""

    async def run() -> RawResponse:
        pending = [
            {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1}
            for i, chunk in enumerate(chunks)
        ] or [{"type": "http.request", "body": b"", "more_body": False}]
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            if pending:
                return pending.pop(0)
            await asyncio.sleep(0)
            return {"type": "http.disconnect"}

        async def send(message: Any) -> None:
            sent.append(dict(message))

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode("latin-1", "replace"),
            "query_string": query,
            "root_path": "",
            "headers": [(b"host", b"registry.test"), *headers],
            "client": ("127.0.0.1", 1234),
            "server": ("registry.test", 80),
            "extensions": {},
        }
        await app(scope, receive, send)
        start = next(m for m in sent if m["type"] == "http.response.start")
        parts = [m for m in sent if m["type"] in ("http.response.body", "http.response.pathsend")]
        body = b"".join(m.get("body", b"") for m in parts)
        complete = bool(parts) and (
            parts[-1]["type"] == "http.response.pathsend" or not parts[-1].get("more_body", False)
        )
        return RawResponse(int(start["status"]), list(start.get("headers", [])), body, complete)

    return asyncio.run(run())


def assert_raw_error(response: RawResponse, status: int, code: str | None = None) -> None:
    assert response.status == status, (response.status, response.body[:500])
    assert (response.header("content-type") or "").startswith("application/json")
    body = response.json()
    assert isinstance(body["errors"], list)
    assert body["errors"]
    for entry in body["errors"]:
        assert isinstance(entry["code"], str)
        assert isinstance(entry["message"], str)
    if code is not None:
        assert code in [entry["code"] for entry in body["errors"]], body
