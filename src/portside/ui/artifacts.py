"""How artifacts are described on the UI's pages: their type in words (image, index,
Helm chart, signature, SBOM...), and what a manifest and an image config say, read
defensively — everything here comes from pushers and may have any shape."""

from __future__ import annotations

import shlex
from typing import Any

HELM = "application/vnd.cncf.helm.config.v1+json"
INDEX_TYPES = frozenset(
    {
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    }
)
# Well-known artifact (and config) media types in words; anything else is shown as is.
TYPE_WORDS = {
    HELM: "Helm chart",
    "application/vnd.dev.cosign.artifact.sig.v1+json": "Cosign signature",
    "application/vnd.dev.cosign.simplesigning.v1+json": "Cosign signature",
    "application/vnd.dev.sigstore.bundle.v0.3+json": "Sigstore bundle",
    "application/vnd.dev.sigstore.bundle+json;version=0.3": "Sigstore bundle",
    "application/vnd.cncf.notary.signature": "Notation signature",
    "application/spdx+json": "SBOM (SPDX)",
    "text/spdx": "SBOM (SPDX)",
    "application/vnd.cyclonedx+json": "SBOM (CycloneDX)",
    "application/vnd.cyclonedx+xml": "SBOM (CycloneDX)",
    "application/vnd.syft+json": "SBOM (Syft)",
    "application/vnd.in-toto+json": "Attestation (in-toto)",
    "application/vnd.dsse.envelope.v1+json": "Attestation (DSSE)",
    "application/vnd.wasm.config.v0+json": "WebAssembly module",
    "application/vnd.wasm.config.v1+json": "WebAssembly module",
    "application/vnd.cncf.flux.config.v1+json": "Flux artifact",
    "application/vnd.cnab.config.v1+json": "CNAB bundle",
    "application/vnd.sylabs.sif.config.v1+json": "Singularity image (SIF)",
    "application/vnd.buildkit.cacheconfig.v0": "BuildKit cache",
    "application/vnd.docker.plugin.v1+json": "Docker plugin",
    "application/vnd.cncf.openpolicyagent.config.v1+json": "OPA policy bundle",
    "application/vnd.oci.image.config.v1+json": "Image",
    "application/vnd.docker.container.image.v1+json": "Image",
    "application/vnd.oci.image.manifest.v1+json": "Image",
    "application/vnd.docker.distribution.manifest.v2+json": "Image",
    "application/vnd.oci.empty.v1+json": "Artifact",
    "application/vnd.unknown.artifact.v1": "Artifact",
}


def type_words(kind: Any, artifact_type: Any, media_type: Any = None) -> str:
    """'Image', 'Index', or an artifact's type in words ('Helm chart', 'SBOM (SPDX)')."""
    if kind == "index" or (kind is None and media_type in INDEX_TYPES and not artifact_type):
        return "Index"
    if kind == "image":
        return "Image"
    for value in (artifact_type, media_type):
        if isinstance(value, str) and value:
            return TYPE_WORDS.get(value, value)
    return "Artifact"


def summary(artifact: dict[str, Any]) -> dict[str, Any]:
    """An artifact of the list with its type in words and its real platforms (not the
    unknown/unknown entries build attestations use)."""
    platforms = [
        p
        for p in artifact.get("platforms") or []
        if not (p.get("os") == "unknown" and p.get("architecture") == "unknown")
    ]
    words = type_words(artifact.get("kind"), artifact.get("artifact_type"))
    return {**artifact, "type_words": words, "shown_platforms": platforms}


def mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def descriptors(value: Any) -> list[dict[str, Any]]:
    return [d for d in value if isinstance(d, dict)] if isinstance(value, list) else []


def text(value: Any) -> str:
    return value if isinstance(value, str) else "" if value is None else str(value)


def pairs(value: Any) -> list[tuple[str, str]]:
    """Labels or annotations as sorted (key, value) text pairs."""
    return sorted((str(k), text(v)) for k, v in mapping(value).items())


def size(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def layers(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "digest": text(d.get("digest")),
            "media_type": text(d.get("mediaType")),
            "size": size(d.get("size")),
            "title": text(mapping(d.get("annotations")).get("org.opencontainers.image.title")),
        }
        for d in descriptors(manifest.get("layers"))
    ]


def command(value: Any) -> str | None:
    """Entrypoint or Cmd as a shell would read it."""
    if isinstance(value, list) and value:
        return shlex.join(text(part) for part in value)
    return value if isinstance(value, str) and value else None


def image(config: Any, layers: list[dict[str, Any]]) -> dict[str, Any] | None:
    """What the image config says: how it runs, its labels and how it was built. Each
    history step that made a layer is matched with that layer (in order)."""
    if not isinstance(config, dict):
        return None
    run = mapping(config.get("config"))
    history = []
    remaining = iter(layers)
    for step in descriptors(config.get("history")):
        empty = step.get("empty_layer") is True
        history.append(
            {
                "created": text(step.get("created")) or None,
                "created_by": text(step.get("created_by")),
                "comment": text(step.get("comment")),
                "empty": empty,
                "layer": None if empty else next(remaining, None),
            }
        )
    platform = {k: config.get(k) for k in ("os", "architecture", "variant")}
    return {
        "entrypoint": command(run.get("Entrypoint")),
        "cmd": command(run.get("Cmd")),
        "env": [text(e) for e in run.get("Env") or [] if e is not None]
        if isinstance(run.get("Env"), list)
        else [],
        "working_dir": text(run.get("WorkingDir")),
        "user": text(run.get("User")),
        "ports": sorted(str(p) for p in mapping(run.get("ExposedPorts"))),
        "volumes": sorted(str(v) for v in mapping(run.get("Volumes"))),
        "stop_signal": text(run.get("StopSignal")),
        "labels": pairs(run.get("Labels")),
        "created": text(config.get("created")) or None,
        "author": text(config.get("author")),
        "platform": platform,
        "history": history,
    }
