"""Validate a pushed manifest and extract what the registry must know about it.

The stored bytes are never rewritten: this module only reads them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from portside.digest import Digest
from portside.errors import DigestInvalid, ManifestInvalid
from portside.oci import mediatypes as mt


@dataclass(frozen=True, slots=True)
class Descriptor:
    media_type: str
    digest: Digest
    size: int
    has_urls: bool = False


@dataclass(frozen=True, slots=True)
class ParsedManifest:
    media_type: str
    blobs: list[Descriptor] = field(default_factory=list)
    children: list[Descriptor] = field(default_factory=list)
    subject: Descriptor | None = None
    artifact_type: str | None = None
    annotations: dict[str, str] | None = None
    config: Descriptor | None = None  # an image's config (also first in `blobs`)


# RFC 6838 media type names, as the OCI image-spec JSON schema constrains them.
_MEDIA_TYPE = re.compile(
    r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}"
)


def _media_type(value: Any, where: str) -> str:
    if not isinstance(value, str) or not _MEDIA_TYPE.fullmatch(value):
        raise ManifestInvalid(
            f"{where}: must be a media type like 'application/vnd.example+json' "
            "(RFC 6838, at most 127 characters on each side of '/')"
        )
    return value


def _descriptor(value: Any, where: str) -> Descriptor:
    if not isinstance(value, dict):
        raise ManifestInvalid(f"{where}: a descriptor must be a JSON object")
    media_type = _media_type(value.get("mediaType"), f"{where}.mediaType")
    raw_digest = value.get("digest")
    if not isinstance(raw_digest, str):
        raise ManifestInvalid(f"{where}.digest: required string")
    try:
        digest = Digest.parse(raw_digest)
    except DigestInvalid as exc:
        raise ManifestInvalid(f"{where}.digest: {exc.message}") from None
    size = value.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ManifestInvalid(f"{where}.size: required non-negative integer")
    urls = value.get("urls")
    if urls is not None and not (isinstance(urls, list) and all(isinstance(u, str) for u in urls)):
        raise ManifestInvalid(f"{where}.urls: must be a list of strings")
    _check_annotations(value.get("annotations"), f"{where}.annotations")
    return Descriptor(media_type, digest, size, bool(urls))


def _check_annotations(value: Any, where: str) -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ManifestInvalid(f"{where}: must be a map of strings to strings")
    return value


def _descriptor_list(document: dict[str, Any], key: str, *, required: bool) -> list[Descriptor]:
    value = document.get(key)
    if value is None:
        if required:
            raise ManifestInvalid(f"{key}: required list of descriptors")
        return []
    if not isinstance(value, list):
        raise ManifestInvalid(f"{key}: must be a list of descriptors")
    return [_descriptor(item, f"{key}[{i}]") for i, item in enumerate(value)]


def resolve_media_type(body_type: Any, content_type: str | None) -> str:
    """The manifest's media type from its `mediaType` field and the request's Content-Type."""
    header = (content_type or "").split(";", 1)[0].strip().lower() or None
    if body_type is not None and not isinstance(body_type, str):
        raise ManifestInvalid("mediaType: must be a string")
    declared = body_type or header
    if declared is None:
        raise ManifestInvalid(
            "cannot tell the manifest type: send a Content-Type header or a mediaType field"
        )
    if body_type and header and header not in (body_type, "application/json"):
        raise ManifestInvalid(
            f"Content-Type {header!r} does not match the manifest's mediaType {body_type!r}"
        )
    if declared in mt.DOCKER_SCHEMA1:
        raise ManifestInvalid(
            "Docker schema 1 manifests are not supported (deprecated since 2017): push "
            "schema 2 or OCI, for example with `skopeo copy --format v2s2`"
        )
    if declared not in mt.MANIFEST_TYPES:
        raise ManifestInvalid(
            f"unsupported manifest media type {declared!r}; accepted: "
            + ", ".join(sorted(mt.MANIFEST_TYPES))
        )
    return declared


def parse_manifest(body: bytes, content_type: str | None) -> ParsedManifest:
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestInvalid(f"manifest is not valid JSON: {exc}") from None
    except RecursionError:
        raise ManifestInvalid("manifest JSON is nested too deeply") from None
    if not isinstance(document, dict):
        raise ManifestInvalid("manifest must be a JSON object")
    if document.get("schemaVersion") != 2:
        media = document.get("mediaType") or content_type or ""
        if document.get("schemaVersion") == 1 or media in mt.DOCKER_SCHEMA1:
            resolve_media_type(mt.DOCKER_SCHEMA1[0], None)
        raise ManifestInvalid("schemaVersion: must be 2")
    media_type = resolve_media_type(document.get("mediaType"), content_type)
    artifact_type = document.get("artifactType")
    if artifact_type is not None:
        _media_type(artifact_type, "artifactType")
    annotations = _check_annotations(document.get("annotations"), "annotations")
    subject = (
        _descriptor(document["subject"], "subject") if document.get("subject") is not None else None
    )
    if media_type in mt.INDEXES:
        if "layers" in document or "config" in document:
            raise ManifestInvalid("an index has 'manifests', not 'config' or 'layers'")
        children = _descriptor_list(document, "manifests", required=True)
        return ParsedManifest(media_type, [], children, subject, artifact_type, annotations)
    if "manifests" in document:
        raise ManifestInvalid("an image manifest has 'config' and 'layers', not 'manifests'")
    config = _descriptor(document.get("config"), "config")
    layers = _descriptor_list(document, "layers", required=media_type == mt.DOCKER_MANIFEST)
    # OCI 1.1 referrers: with no artifactType, a manifest's artifact type is its config's type.
    effective_type = artifact_type or config.media_type
    return ParsedManifest(
        media_type, [config, *layers], [], subject, effective_type, annotations, config
    )
