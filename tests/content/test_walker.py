"""content.walker: an artifact's parts from the stored manifests (image, index, referrers),
depth first, chunked, each manifest descended once."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from starlette.testclient import TestClient

from portside.app import PortsideApp
from portside.content import walker
from portside.content.walker import Part, walk
from portside.errors import ManifestUnknown
from portside.metadata.db import Database
from tests.api.helpers import (
    OCI_CONFIG,
    OCI_EMPTY,
    OCI_LAYER,
    OCI_MANIFEST,
    Manifest,
    canonical,
    make_artifact,
    make_image,
    make_index,
    push_image,
    push_manifest,
    sha256,
)

REPO = "team/app"


Shape = tuple[str, str, int, str | None]


def shape(parts: list[Part]) -> list[Shape]:
    return [(p.role, p.digest, p.depth, p.parent) for p in parts]


def blobs(manifest: Manifest) -> list[tuple[str, str, int]]:
    document = manifest.document
    config = document["config"]
    return [
        ("config", config["digest"], config["size"]),
        *(("layer", layer["digest"], layer["size"]) for layer in document["layers"]),
    ]


def test_an_image_is_its_manifest_config_and_layers(app: PortsideApp, client: TestClient) -> None:
    image = push_image(client, REPO, "v1", layers=[b"one", b"two"])
    parts = list(walk(app.ctx.db, REPO, image.digest))
    assert [(p.role, p.media_type, p.digest, p.size, p.depth) for p in parts] == [
        ("manifest", OCI_MANIFEST, image.digest, image.size, 0),
        ("config", OCI_CONFIG, blobs(image)[0][1], blobs(image)[0][2], 0),
        ("layer", OCI_LAYER, sha256(b"one"), 3, 0),
        ("layer", OCI_LAYER, sha256(b"two"), 3, 0),
    ]
    assert parts[0].artifact_type == OCI_CONFIG  # OCI 1.1: an image's type is its config's
    assert {p.parent for p in parts[1:]} == {image.digest}
    assert [p.is_manifest for p in parts] == [True, False, False, False]


def test_an_index_with_children_and_referrers_recursively(
    app: PortsideApp, client: TestClient
) -> None:
    amd, arm = (make_image(client, REPO, seed=seed) for seed in ("amd", "arm"))
    for child in (amd, arm):
        push_manifest(client, REPO, child.digest, child)
    index = make_index([amd, arm])
    push_manifest(client, REPO, "multi", index)
    signature = make_artifact(client, REPO, index, payload=b"signature of the index")
    push_manifest(client, REPO, signature.digest, signature)
    sbom = make_artifact(client, REPO, amd, payload=b"sbom of amd")
    push_manifest(client, REPO, sbom.digest, sbom)
    sbom_signature = make_artifact(client, REPO, sbom, payload=b"signature of the sbom")
    push_manifest(client, REPO, sbom_signature.digest, sbom_signature)

    without = list(walk(app.ctx.db, REPO, index.digest))
    expected: list[Shape] = [("manifest", index.digest, 0, None)]
    for child in (amd, arm):
        expected.append(("child", child.digest, 1, index.digest))
        expected += [(role, digest, 1, child.digest) for role, digest, _ in blobs(child)]
    assert shape(without) == expected

    parts = list(walk(app.ctx.db, REPO, index.digest, referrers=True))

    def with_blobs(manifest: Manifest, role: str, depth: int, parent: str) -> list[Shape]:
        own: list[Shape] = [(role, manifest.digest, depth, parent)]
        return own + [(r, d, depth, manifest.digest) for r, d, _ in blobs(manifest)]

    assert shape(parts) == [
        ("manifest", index.digest, 0, None),
        *with_blobs(amd, "child", 1, index.digest),
        *with_blobs(sbom, "referrer", 2, amd.digest),
        *with_blobs(sbom_signature, "referrer", 3, sbom.digest),
        *with_blobs(arm, "child", 1, index.digest),
        *with_blobs(signature, "referrer", 1, index.digest),
    ]
    by_digest = {p.digest: p for p in parts if p.is_manifest}
    assert by_digest[sbom.digest].artifact_type == "application/vnd.example.sbom.v1"
    config_of_sbom = [p for p in parts if p.parent == sbom.digest and p.role == "config"]
    assert [p.media_type for p in config_of_sbom] == [OCI_EMPTY]
    # Depth limit: the root and its own parts only.
    assert {p.depth for p in walk(app.ctx.db, REPO, index.digest, max_depth=0)} == {0}


def test_a_huge_index_is_read_in_chunks_and_repeats_are_not_descended(
    app: PortsideApp, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(walker, "_CHUNK", 2)
    children = [make_image(client, REPO, seed=f"c{n}", layers=[b"shared"]) for n in range(5)]
    for child in children:
        push_manifest(client, REPO, child.digest, child)
    # The first child twice: listed again, yielded again as a repeat, not descended.
    document = make_index(children).document
    document["manifests"].append(children[0].descriptor())
    index = Manifest(canonical(document), document["mediaType"])
    push_manifest(client, REPO, "big", index)
    calls: list[int] = []
    fetch = walker._fetch

    def counted(db: Database, repo_id: int, digests: Sequence[str]) -> Any:
        calls.append(len(digests))
        return fetch(db, repo_id, digests)

    monkeypatch.setattr(walker, "_fetch", counted)
    parts = walk(app.ctx.db, REPO, index.digest)
    first = next(parts)
    assert first.digest == index.digest
    assert calls == [1]  # only the root so far: nothing is read ahead of the consumer
    rest = list(parts)
    assert calls == [1, 2, 2, 2]
    manifests = [p for p in rest if p.is_manifest]
    assert [p.digest for p in manifests] == [c.digest for c in children] + [children[0].digest]
    assert [p.repeated for p in manifests] == [False] * 5 + [True]
    assert len(rest) == 6 + 5 * 2  # six child entries, five descended into config + layer


def test_unknown_manifest(app: PortsideApp, client: TestClient) -> None:
    push_image(client, REPO, "v1")
    with pytest.raises(ManifestUnknown):
        walk(app.ctx.db, REPO, sha256(b"nothing"))
    with pytest.raises(ManifestUnknown):
        walk(app.ctx.db, "team/none", sha256(b"nothing"))
