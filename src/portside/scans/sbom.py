"""SBOMs attached to artifacts as OCI 1.1 referrers: which referrers are SBOMs, and their
documents (the referrer's first layer, streamed from storage).

Recognised by artifact type: SPDX (`application/spdx+json`, `text/spdx`), CycloneDX
(`application/vnd.cyclonedx+json`, `+xml`) and Syft's own format. Clients attach them
with `oras attach`, `cosign attach sbom --type` as referrers, `docker buildx` (BuildKit
puts SBOM attestations in the index instead, not listed here) and the like.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from portside.content.manifests import ManifestService
from portside.content.uploads import UploadService
from portside.digest import Digest
from portside.errors import BlobUnknown, ManifestUnknown
from portside.events.outbox import Actor
from portside.metadata import schema as s
from portside.metadata.db import Database, utcnow
from portside.oci import mediatypes as mt
from portside.scanning.model import Inventory
from portside.storage.base import StorageDriver
from portside.storage.paths import blob_path

FORMATS = {
    "application/spdx+json": "spdx",
    "text/spdx": "spdx",
    "application/vnd.cyclonedx+json": "cyclonedx",
    "application/vnd.cyclonedx+xml": "cyclonedx",
    "application/vnd.syft+json": "syft",
}
CREATED = "org.opencontainers.image.created"
CREATOR = "dev.portside.sbom.generator"  # set on SBOMs Portside attaches
_CHUNK = 256 * 1024


@dataclass(frozen=True, slots=True)
class Sbom:
    digest: str
    artifact_type: str
    format: str
    size: int
    created_by: str | None
    created_at: str | None


@dataclass(frozen=True, slots=True)
class Document:
    media_type: str
    size: int
    chunks: Iterator[bytes]


def sboms_of(manifests: ManifestService, repository: str, digest: str) -> list[Sbom]:
    found = []
    for referrer in manifests.referrers(repository, digest, None):
        kind = FORMATS.get(str(referrer.get("artifactType") or ""))
        if kind is None:
            continue
        annotations: dict[str, Any] = referrer.get("annotations") or {}
        found.append(
            Sbom(
                digest=referrer["digest"],
                artifact_type=referrer["artifactType"],
                format=kind,
                size=int(referrer["size"]),
                created_by=annotations.get(CREATOR),
                created_at=annotations.get(CREATED),
            )
        )
    return found


def document(db: Database, storage: StorageDriver, repository: str, sbom: Sbom) -> Document:
    """The SBOM's document: the first layer of its manifest (ManifestUnknown/BlobUnknown
    if it went away meanwhile)."""
    m = s.manifests
    with db.read() as conn:
        content = conn.execute(
            select(m.c.content)
            .join(s.repositories, s.repositories.c.id == m.c.repository_id)
            .where(s.repositories.c.name == repository, m.c.digest == sbom.digest)
        ).scalar_one_or_none()
    if content is None:
        raise ManifestUnknown(f"no manifest {sbom.digest} in {repository}")
    layers = json.loads(bytes(content)).get("layers") or []
    if not layers or not isinstance(layers[0], dict):
        raise BlobUnknown(f"SBOM {sbom.digest} has no document layer")
    layer = layers[0]
    path = blob_path(Digest.parse(str(layer.get("digest"))))
    if not storage.exists(path):
        raise BlobUnknown(f"SBOM document {layer.get('digest')} is not stored here")
    size = storage.stat(path).size

    def chunks() -> Iterator[bytes]:
        reader = storage.reader(path)
        try:
            while chunk := reader.read(_CHUNK):
                yield chunk
        finally:
            reader.close()

    return Document(str(layer.get("mediaType") or sbom.artifact_type), size, chunks())


EMPTY_CONFIG = b"{}"
TITLES = {"spdx": "sbom.spdx.json", "cyclonedx": "sbom.cdx.json", "syft": "sbom.syft.json"}

Generator = Callable[[Inventory, str, str], list[tuple[str, bytes]]]
"""Renders an image's inventory (with its repository and digest) as SBOM documents:
(artifact type, document bytes) pairs."""


def attach(
    uploads: UploadService,
    manifests: ManifestService,
    repository: str,
    *,
    subject: tuple[str, str, int],
    artifact_type: str,
    document: bytes,
    actor: Actor,
) -> str:
    """Push `document` as an OCI 1.1 referrer of `subject` (digest, media type, size):
    an image manifest with `artifactType`, the empty config and the document as its one
    layer, through the normal upload and manifest services (so quota, events and the
    referrers API see it like a client's push). Returns the referrer's digest."""
    config = Digest.of(EMPTY_CONFIG, "sha256")
    layer = Digest.of(document, "sha256")
    uploads.store(repository, config, [EMPTY_CONFIG], actor)
    uploads.store(repository, layer, [document], actor)
    digest, media_type, size = subject
    kind = FORMATS.get(artifact_type, "sbom")
    manifest = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": {"mediaType": mt.OCI_EMPTY_CONFIG, "digest": str(config), "size": 2},
        "layers": [
            {
                "mediaType": artifact_type,
                "digest": str(layer),
                "size": len(document),
                "annotations": {"org.opencontainers.image.title": TITLES.get(kind, "sbom.json")},
            }
        ],
        "subject": {"mediaType": media_type, "digest": digest, "size": size},
        "annotations": {
            CREATED: utcnow().strftime("%Y-%m-%dT%H:%M:%SZ"),
            CREATOR: "portside",
        },
    }
    body = json.dumps(manifest, separators=(",", ":"), sort_keys=True).encode()
    pushed = str(Digest.of(body, "sha256"))
    manifests.put(repository, pushed, body, mt.OCI_MANIFEST, actor)
    return pushed
