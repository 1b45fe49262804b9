"""parse_manifest / resolve_media_type: pure validation of pushed manifest bytes."""

from __future__ import annotations

import contextlib
import hashlib
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portside.errors import ManifestInvalid
from portside.oci.manifest import parse_manifest, resolve_media_type

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+json"
SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"
CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def desc(media_type: str, data: bytes, **extra: Any) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": digest(data), "size": len(data), **extra}


def image(**extra: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": desc(CONFIG_TYPE, b"{}"),
        "layers": [desc("application/vnd.oci.image.layer.v1.tar", b"l1")],
    }
    document.update(extra)
    return document


def index(**extra: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [desc(OCI_MANIFEST, b"child")],
    }
    document.update(extra)
    return document


def parse(document: Any, content_type: str | None = None) -> Any:
    return parse_manifest(json.dumps(document).encode(), content_type)


def test_oci_image() -> None:
    parsed = parse(image())
    assert parsed.media_type == OCI_MANIFEST
    assert [str(d.digest) for d in parsed.blobs] == [digest(b"{}"), digest(b"l1")]
    assert parsed.children == []
    assert parsed.subject is None
    assert parsed.artifact_type == CONFIG_TYPE  # config type stands in for artifactType


def test_artifact_type_field_wins() -> None:
    parsed = parse(image(artifactType="application/x.sbom"))
    assert parsed.artifact_type == "application/x.sbom"


def test_annotations_and_subject() -> None:
    subject = desc(OCI_MANIFEST, b"subject")
    parsed = parse(image(annotations={"a": "b"}, subject=subject))
    assert parsed.annotations == {"a": "b"}
    assert parsed.subject is not None
    assert str(parsed.subject.digest) == digest(b"subject")


def test_oci_index() -> None:
    parsed = parse(index(artifactType="application/x.y"))
    assert parsed.media_type == OCI_INDEX
    assert parsed.blobs == []
    assert [str(d.digest) for d in parsed.children] == [digest(b"child")]
    assert parsed.artifact_type == "application/x.y"


def test_index_without_artifact_type() -> None:
    assert parse(index()).artifact_type is None


def test_docker_manifest_and_list() -> None:
    docker = image(mediaType=DOCKER_MANIFEST)
    assert parse(docker).media_type == DOCKER_MANIFEST
    assert parse(index(mediaType=DOCKER_LIST)).media_type == DOCKER_LIST


def test_docker_manifest_requires_layers() -> None:
    docker = image(mediaType=DOCKER_MANIFEST)
    del docker["layers"]
    with pytest.raises(ManifestInvalid):
        parse(docker)


def test_foreign_layers_are_marked() -> None:
    layer = desc(
        "application/vnd.oci.image.layer.nondistributable.v1.tar", b"f", urls=["https://x"]
    )
    parsed = parse(image(layers=[layer]))
    assert parsed.blobs[1].has_urls
    assert not parsed.blobs[0].has_urls


def test_media_type_from_content_type() -> None:
    document = image()
    del document["mediaType"]
    assert parse(document, OCI_MANIFEST).media_type == OCI_MANIFEST
    assert parse(document, OCI_MANIFEST + "; charset=utf-8").media_type == OCI_MANIFEST


def test_media_type_without_any_hint() -> None:
    document = image()
    del document["mediaType"]
    with pytest.raises(ManifestInvalid):
        parse(document, None)


@pytest.mark.parametrize("content_type", [DOCKER_MANIFEST, OCI_INDEX, "text/plain"])
def test_content_type_mismatch(content_type: str) -> None:
    with pytest.raises(ManifestInvalid) as raised:
        parse(image(), content_type)
    assert "Content-Type" in raised.value.message or "mediaType" in raised.value.message


def test_json_content_type_is_neutral() -> None:
    assert parse(image(), "application/json").media_type == OCI_MANIFEST


@pytest.mark.parametrize("media_type", [SCHEMA1, SCHEMA1_SIGNED])
def test_schema1_is_refused_by_name(media_type: str) -> None:
    document = {"schemaVersion": 1, "name": "a", "tag": "b", "fsLayers": [], "history": []}
    for content_type in (media_type, None):
        with pytest.raises(ManifestInvalid) as raised:
            parse(document, content_type)
        assert "schema 1" in raised.value.message.lower()


def test_resolve_media_type() -> None:
    assert resolve_media_type(OCI_MANIFEST, None) == OCI_MANIFEST
    assert resolve_media_type(None, OCI_INDEX) == OCI_INDEX
    assert resolve_media_type(OCI_INDEX, "application/json") == OCI_INDEX
    with pytest.raises(ManifestInvalid):
        resolve_media_type(None, None)
    with pytest.raises(ManifestInvalid):
        resolve_media_type("application/x.unknown", None)
    with pytest.raises(ManifestInvalid):
        resolve_media_type(5, None)


BAD: dict[str, Any] = {
    "array": [],
    "string": "x",
    "number": 2,
    "no schemaVersion": {k: v for k, v in image().items() if k != "schemaVersion"},
    "schemaVersion 3": image(schemaVersion=3),
    "no config": {k: v for k, v in image().items() if k != "config"},
    "config null": image(config=None),
    "config list": image(config=[]),
    "config no digest": image(config={"mediaType": CONFIG_TYPE, "size": 2}),
    "config bad digest": image(config={"mediaType": CONFIG_TYPE, "digest": "sha256:1", "size": 2}),
    "config md5 digest": image(
        config={"mediaType": CONFIG_TYPE, "digest": "md5:" + "0" * 32, "size": 2}
    ),
    "config bool size": image(
        config={"mediaType": CONFIG_TYPE, "digest": digest(b""), "size": True}
    ),
    "config float size": image(
        config={"mediaType": CONFIG_TYPE, "digest": digest(b""), "size": 1.5}
    ),
    "config negative size": image(
        config={"mediaType": CONFIG_TYPE, "digest": digest(b""), "size": -2}
    ),
    "config empty mediaType": image(config={"mediaType": "", "digest": digest(b""), "size": 0}),
    "layers object": image(layers={}),
    "layer null": image(layers=[None]),
    "urls not strings": image(layers=[desc("x/y", b"l", urls=[1])]),
    "urls not list": image(layers=[desc("x/y", b"l", urls="https://x")]),
    "descriptor annotations": image(layers=[desc("x/y", b"l", annotations={"a": 1})]),
    "annotations list": image(annotations=["a"]),
    "artifactType number": image(artifactType=1),
    "subject string": image(subject="sha256:x"),
    "subject bad": image(subject={"mediaType": OCI_MANIFEST}),
    "image with manifests": image(manifests=[]),
    "index with config": index(config=desc(CONFIG_TYPE, b"{}")),
    "index with layers": index(layers=[]),
    "index manifests missing": {k: v for k, v in index().items() if k != "manifests"},
    "index manifests object": index(manifests={}),
    "index bad child": index(manifests=[{"mediaType": OCI_MANIFEST}]),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_invalid(name: str) -> None:
    with pytest.raises(ManifestInvalid) as raised:
        parse(BAD[name])
    assert raised.value.code == "MANIFEST_INVALID"
    assert raised.value.status == 400


@pytest.mark.parametrize("body", [b"", b"{", b"not json", b"\xff\xfe\x00", b'{"a": "\xff"}'])
def test_not_json(body: bytes) -> None:
    with pytest.raises(ManifestInvalid):
        parse_manifest(body, OCI_MANIFEST)


def test_deep_nesting_is_invalid_not_recursion_error() -> None:
    body = b'{"schemaVersion": 2, "x": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"
    with pytest.raises(ManifestInvalid):
        parse_manifest(body, OCI_MANIFEST)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=15,
)
keys = st.sampled_from(
    [
        "schemaVersion",
        "mediaType",
        "config",
        "layers",
        "manifests",
        "subject",
        "artifactType",
        "annotations",
    ]
)


@given(
    base=st.sampled_from([image(), index()]),
    key=keys,
    value=json_values,
    content_type=st.none() | st.sampled_from([OCI_MANIFEST, OCI_INDEX, "application/json"]),
)
def test_mutations_parse_or_raise_manifest_invalid(
    base: dict[str, Any], key: str, value: Any, content_type: str | None
) -> None:
    document = dict(base)
    document[key] = value
    try:
        parsed = parse(document, content_type)
    except ManifestInvalid:
        return  # any other exception fails the test
    assert parsed.media_type in (OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST)


@given(st.binary(max_size=200))
def test_random_bytes_parse_or_raise_manifest_invalid(body: bytes) -> None:
    with contextlib.suppress(ManifestInvalid):
        parse_manifest(body, OCI_MANIFEST)
