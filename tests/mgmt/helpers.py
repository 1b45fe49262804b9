"""Helpers for the management API tests: error-body checks, paging headers, and pushing a
known set of content (an image, a two-platform index, an artifact referring to the image)
through /v2, with every size worked out here from the bytes pushed."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import httpx2 as httpx
from starlette.testclient import TestClient

from tests.api.helpers import (
    EMPTY_JSON,
    OCI_INDEX,
    Manifest,
    canonical,
    make_artifact,
    make_image,
    push_manifest,
    sha256,
)

SBOM_TYPE = "application/vnd.example.sbom.v1"
SBOM_PAYLOAD = b"sbom payload for the image"


def errors_of(response: httpx.Response) -> list[dict[str, Any]]:
    """The entries of a `{"errors":[{"code","message"}]}` body, after checking its shape."""
    assert response.headers.get("content-type", "").startswith("application/json"), (
        response.status_code,
        response.headers,
        response.text,
    )
    body = response.json()
    assert isinstance(body, dict), body
    assert set(body) == {"errors"}, body
    entries = body["errors"]
    assert isinstance(entries, list), body
    assert entries, body
    for entry in entries:
        assert isinstance(entry, dict), body
        assert isinstance(entry.get("code"), str), body
        assert isinstance(entry.get("message"), str), body
        assert set(entry) <= {"code", "message", "detail"}, body
    return entries


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """The response is an error of this status (and code); returns its first entry."""
    assert response.status_code == status, (response.status_code, response.text)
    entries = errors_of(response)
    if code is not None:
        assert [e["code"] for e in entries] == [code], entries
    return entries[0]


def detail_locations(response: httpx.Response) -> list[str]:
    """The `location` of each entry in a 400 INVALID validation error's detail."""
    entry = assert_error(response, 400, "INVALID")
    detail = entry.get("detail")
    assert isinstance(detail, list), entry
    locations = []
    for item in detail:
        assert isinstance(item, dict), detail
        assert isinstance(item.get("message"), str), detail
        locations.append(str(item["location"]))
    return locations


_LINK = re.compile(r'<([^>]*)>;\s*rel="([a-z]+)"')


def links(response: httpx.Response) -> dict[str, str]:
    """rel -> URL from an RFC 8288 Link header ({} without one)."""
    return {rel: url for url, rel in _LINK.findall(response.headers.get("link", ""))}


def total_count(response: httpx.Response) -> int:
    return int(response.headers["x-total-count"])


def json_list(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.status_code == 200, (response.status_code, response.text)
    body = response.json()
    assert isinstance(body, list), body
    return body


def json_object(response: httpx.Response, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.text)
    body = response.json()
    assert isinstance(body, dict), body
    return body


# -- content -----------------------------------------------------------------------------


@dataclass
class Image:
    manifest: Manifest
    config: bytes
    layers: list[bytes]

    @property
    def digest(self) -> str:
        return self.manifest.digest

    @property
    def size(self) -> int:
        """What the API calls an image's size: manifest + config + layers, in bytes."""
        return self.manifest.size + len(self.config) + sum(len(layer) for layer in self.layers)


@dataclass
class Content:
    """What `push_content` put into one repository."""

    repository: str
    image: Image  # tagged `v1`
    index: Manifest  # tagged `multi`
    children: list[Image]  # the index's linux/amd64 and linux/arm64/v8 images, untagged
    artifact: Manifest  # an SBOM whose subject is `image`, untagged
    blobs: dict[str, int] = field(default_factory=dict)  # every blob pushed: digest -> size

    @property
    def index_size(self) -> int:
        return self.index.size + sum(child.size for child in self.children)

    @property
    def artifact_size(self) -> int:
        return self.artifact.size + len(EMPTY_JSON) + len(SBOM_PAYLOAD)

    @property
    def repository_size(self) -> int:
        """The distinct blobs the repository links (manifests are not blobs)."""
        return sum(self.blobs.values())


def _image(client: TestClient, repository: str, platform: dict[str, str], seed: str) -> Image:
    config = canonical({**platform, "rootfs": {"type": "layers"}, "seed": seed})
    layers = [f"{seed} layer one".encode(), f"{seed} second, longer layer".encode() * 3]
    manifest = make_image(client, repository, config=config, layers=layers)
    return Image(manifest, config, layers)


def push_content(client: TestClient, repository: str, seed: str = "") -> Content:
    """Push an image (tag v1), a linux/amd64 + linux/arm64/v8 index (tag multi) and an
    SBOM artifact whose subject is the image, with a client allowed to push there."""
    seed = seed or repository
    image = _image(client, repository, {"architecture": "amd64", "os": "linux"}, seed + "-main")
    push_manifest(client, repository, "v1", image.manifest)
    platforms = [
        {"architecture": "amd64", "os": "linux"},
        {"architecture": "arm64", "os": "linux", "variant": "v8"},
    ]
    children = []
    for number, platform in enumerate(platforms):
        child = _image(client, repository, platform, f"{seed}-child{number}")
        push_manifest(client, repository, child.digest, child.manifest)
        children.append(child)
    index_document = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            child.manifest.descriptor(platform=platform)
            for child, platform in zip(children, platforms, strict=True)
        ],
    }
    index = Manifest(canonical(index_document), OCI_INDEX)
    push_manifest(client, repository, "multi", index)
    artifact = make_artifact(
        client, repository, image.manifest, artifact_type=SBOM_TYPE, payload=SBOM_PAYLOAD
    )
    push_manifest(client, repository, artifact.digest, artifact)
    content = Content(repository, image, index, children, artifact)
    for pushed in (image, *children):
        for blob in (pushed.config, *pushed.layers):
            content.blobs[sha256(blob)] = len(blob)
    for blob in (EMPTY_JSON, SBOM_PAYLOAD):
        content.blobs[sha256(blob)] = len(blob)
    return content
