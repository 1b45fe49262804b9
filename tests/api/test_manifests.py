"""PUT/GET/HEAD /v2/<name>/manifests/<reference>: validation, references, negotiation."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from tests.api.conftest import MakeClient
from tests.api.helpers import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    DOCKER_SCHEMA1,
    DOCKER_SCHEMA1_SIGNED,
    EMPTY_JSON,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER,
    OCI_MANIFEST,
    Manifest,
    assert_error,
    assert_raw_error,
    canonical,
    descriptor,
    error_message,
    image_document,
    make_artifact,
    make_image,
    make_index,
    push_blob,
    push_image,
    push_manifest,
    put_manifest,
    raw_request,
    sha256,
    sha512,
    tags_of,
)

REPO = "acme/app"


# -- PUT ---------------------------------------------------------------------------------


def test_put_by_tag(client: TestClient) -> None:
    manifest = make_image(client, REPO)
    response = put_manifest(client, REPO, "v1", manifest.body)
    assert response.status_code == 201, response.text
    assert response.headers["docker-content-digest"] == manifest.digest
    assert response.headers["location"].endswith(f"/v2/{REPO}/manifests/{manifest.digest}")
    assert response.headers["content-length"] == "0"
    assert "oci-subject" not in response.headers


def test_put_by_digest(client: TestClient) -> None:
    manifest = make_image(client, REPO)
    response = put_manifest(client, REPO, manifest.digest, manifest.body)
    assert response.status_code == 201, response.text
    assert response.headers["docker-content-digest"] == manifest.digest
    got = client.get(f"/v2/{REPO}/manifests/{manifest.digest}")
    assert got.status_code == 200
    assert got.content == manifest.body
    assert_error(client.get(f"/v2/{REPO}/manifests/latest"), 404, "MANIFEST_UNKNOWN")


def test_put_by_sha512_digest(client: TestClient) -> None:
    manifest = make_image(client, REPO)
    digest = sha512(manifest.body)
    response = put_manifest(client, REPO, digest, manifest.body)
    assert response.status_code == 201, response.text
    assert response.headers["docker-content-digest"] == digest
    got = client.get(f"/v2/{REPO}/manifests/{digest}")
    assert got.status_code == 200
    assert got.content == manifest.body
    assert got.headers["docker-content-digest"] == digest


def test_put_by_digest_mismatch(client: TestClient) -> None:
    manifest = make_image(client, REPO)
    wrong = sha256(manifest.body + b" ")
    response = put_manifest(client, REPO, wrong, manifest.body)
    assert_error(response, 400, "DIGEST_INVALID")
    assert_error(client.get(f"/v2/{REPO}/manifests/{wrong}"), 404, "MANIFEST_UNKNOWN")
    assert_error(client.get(f"/v2/{REPO}/manifests/{manifest.digest}"), 404, "MANIFEST_UNKNOWN")


@pytest.mark.parametrize(
    "reference", ["md5:d41d8cd98f00b204e9800998ecf8427e", "sha256:abc", "sha256:" + "F" * 64]
)
def test_put_by_invalid_digest(client: TestClient, reference: str) -> None:
    manifest = make_image(client, REPO)
    assert_error(put_manifest(client, REPO, reference, manifest.body), 400, "DIGEST_INVALID")


def test_put_same_manifest_twice(client: TestClient) -> None:
    manifest = make_image(client, REPO)
    push_manifest(client, REPO, "v1", manifest)
    push_manifest(client, REPO, "v1", manifest)
    push_manifest(client, REPO, "v2", manifest)
    assert tags_of(client, REPO) == ["v1", "v2"]


def test_repush_tag_moves_it(client: TestClient) -> None:
    first = push_image(client, REPO, "v1", seed="one")
    second = make_image(client, REPO, seed="two")
    push_manifest(client, REPO, "v1", second)
    got = client.get(f"/v2/{REPO}/manifests/v1")
    assert got.content == second.body
    assert got.headers["docker-content-digest"] == second.digest
    # The old manifest is still there by digest.
    assert client.get(f"/v2/{REPO}/manifests/{first.digest}").content == first.body
    assert tags_of(client, REPO) == ["v1"]


def test_missing_layer_blob(client: TestClient) -> None:
    push_blob(client, REPO, EMPTY_JSON)
    body = canonical(image_document(EMPTY_JSON, [b"never pushed"]))
    response = put_manifest(client, REPO, "v1", body)
    assert_error(response, 400, "MANIFEST_BLOB_UNKNOWN")
    assert_error(client.get(f"/v2/{REPO}/manifests/v1"), 404, "MANIFEST_UNKNOWN")


def test_missing_config_blob(client: TestClient) -> None:
    push_blob(client, REPO, b"layer")
    body = canonical(image_document(b'{"never":"pushed"}', [b"layer"]))
    assert_error(put_manifest(client, REPO, "v1", body), 400, "MANIFEST_BLOB_UNKNOWN")


def test_every_blob_missing(client: TestClient) -> None:
    body = canonical(image_document(b"{ }", [b"a", b"b"]))
    assert_error(put_manifest(client, REPO, "v1", body), 400, "MANIFEST_BLOB_UNKNOWN")


def test_blob_only_in_another_repository(client: TestClient) -> None:
    manifest = make_image(client, "other")
    assert_error(put_manifest(client, REPO, "v1", manifest.body), 400, "MANIFEST_BLOB_UNKNOWN")


def test_foreign_layer_with_urls_need_not_be_pushed(client: TestClient) -> None:
    push_blob(client, REPO, EMPTY_JSON)
    document = image_document(EMPTY_JSON, [])
    document["layers"] = [
        descriptor(
            "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
            b"foreign",
            urls=["https://example.com/layer.tar.gz"],
        )
    ]
    response = put_manifest(client, REPO, "v1", canonical(document))
    assert response.status_code == 201, response.text


def test_image_without_layers(client: TestClient) -> None:
    push_blob(client, REPO, EMPTY_JSON)
    body = canonical(image_document(EMPTY_JSON, []))
    assert put_manifest(client, REPO, "v1", body).status_code == 201


def test_index_with_children(client: TestClient) -> None:
    amd = push_image(client, REPO, None, seed="amd64")
    arm = push_image(client, REPO, None, seed="arm64")
    index = make_index([amd, arm])
    response = push_manifest(client, REPO, "multi", index)
    assert response.status_code == 201
    got = client.get(f"/v2/{REPO}/manifests/multi")
    assert got.status_code == 200
    assert got.content == index.body
    assert got.headers["content-type"] == OCI_INDEX
    assert got.headers["docker-content-digest"] == index.digest


def test_index_with_missing_child(client: TestClient) -> None:
    present = push_image(client, REPO, None, seed="present")
    absent = make_image(client, REPO, seed="absent")  # blobs pushed, manifest not
    index = make_index([present, absent])
    response = put_manifest(client, REPO, "multi", index.body, OCI_INDEX)
    assert_error(response, 400, "MANIFEST_BLOB_UNKNOWN")
    assert_error(client.get(f"/v2/{REPO}/manifests/multi"), 404, "MANIFEST_UNKNOWN")


def test_index_child_in_another_repository(client: TestClient) -> None:
    child = push_image(client, "other", None)
    index = make_index([child])
    assert_error(
        put_manifest(client, REPO, "multi", index.body, OCI_INDEX), 400, "MANIFEST_BLOB_UNKNOWN"
    )


def test_index_of_indexes(client: TestClient) -> None:
    child = push_image(client, REPO, None)
    inner = make_index([child])
    push_manifest(client, REPO, inner.digest, inner)
    outer = make_index([inner])
    push_manifest(client, REPO, "nested", outer)


def test_empty_index(client: TestClient) -> None:
    index = make_index([])
    push_manifest(client, REPO, "empty", index)
    assert client.get(f"/v2/{REPO}/manifests/empty").content == index.body


# -- Docker schema 2 --------------------------------------------------------------------


def test_docker_schema2_manifest(client: TestClient) -> None:
    manifest = make_image(client, REPO, media_type=DOCKER_MANIFEST)
    push_manifest(client, REPO, "docker", manifest)
    got = client.get(f"/v2/{REPO}/manifests/docker", headers={"accept": DOCKER_MANIFEST})
    assert got.status_code == 200
    assert got.headers["content-type"] == DOCKER_MANIFEST
    assert got.content == manifest.body


def test_docker_manifest_list(client: TestClient) -> None:
    child = make_image(client, REPO, media_type=DOCKER_MANIFEST, seed="c")
    push_manifest(client, REPO, child.digest, child)
    index = make_index([child], media_type=DOCKER_LIST)
    push_manifest(client, REPO, "list", index)
    got = client.get(f"/v2/{REPO}/manifests/list", headers={"accept": DOCKER_LIST})
    assert got.status_code == 200
    assert got.headers["content-type"] == DOCKER_LIST
    assert got.content == index.body


def test_docker_list_missing_child(client: TestClient) -> None:
    child = make_image(client, REPO, media_type=DOCKER_MANIFEST)
    index = make_index([child], media_type=DOCKER_LIST)
    assert_error(
        put_manifest(client, REPO, "list", index.body, DOCKER_LIST), 400, "MANIFEST_BLOB_UNKNOWN"
    )


# -- media types ---------------------------------------------------------------------------


def test_content_type_mismatch(client: TestClient) -> None:
    manifest = make_image(client, REPO)
    response = put_manifest(client, REPO, "v1", manifest.body, DOCKER_MANIFEST)
    assert_error(response, 400, "MANIFEST_INVALID")
    response = put_manifest(client, REPO, "v1", manifest.body, OCI_INDEX)
    assert_error(response, 400, "MANIFEST_INVALID")


def test_content_type_with_parameters(client: TestClient) -> None:
    manifest = make_image(client, REPO)
    response = put_manifest(client, REPO, "v1", manifest.body, OCI_MANIFEST + "; charset=utf-8")
    assert response.status_code == 201, response.text


def test_manifest_without_media_type_field_uses_content_type(client: TestClient) -> None:
    manifest = make_image(client, REPO)
    document = manifest.document
    del document["mediaType"]
    body = json.dumps(document, indent=3).encode() + b"\n"  # odd formatting on purpose
    response = put_manifest(client, REPO, "v1", body, OCI_MANIFEST)
    assert response.status_code == 201, response.text
    assert response.headers["docker-content-digest"] == sha256(body)
    got = client.get(f"/v2/{REPO}/manifests/v1")
    assert got.status_code == 200
    assert got.content == body
    assert got.headers["content-type"] == OCI_MANIFEST
    assert got.headers["docker-content-digest"] == sha256(body)


def test_index_without_media_type_field(client: TestClient) -> None:
    child = push_image(client, REPO, None)
    document = make_index([child]).document
    del document["mediaType"]
    body = canonical(document)
    response = put_manifest(client, REPO, "idx", body, OCI_INDEX)
    assert response.status_code == 201, response.text
    got = client.get(f"/v2/{REPO}/manifests/idx")
    assert got.headers["content-type"] == OCI_INDEX
    assert got.content == body


def test_manifest_bytes_returned_exactly(client: TestClient) -> None:
    manifest = make_image(client, REPO)
    body = b"\n  " + json.dumps(manifest.document, indent=7).encode() + b"\t\n"
    response = put_manifest(client, REPO, "v1", body)
    assert response.status_code == 201, response.text
    assert client.get(f"/v2/{REPO}/manifests/v1").content == body
    assert client.get(f"/v2/{REPO}/manifests/{sha256(body)}").content == body


def test_plain_json_content_type_with_media_type_field(client: TestClient) -> None:
    manifest = make_image(client, REPO)
    response = put_manifest(client, REPO, "v1", manifest.body, "application/json")
    assert response.status_code == 201, response.text
    assert client.get(f"/v2/{REPO}/manifests/v1").headers["content-type"] == OCI_MANIFEST


@pytest.mark.parametrize("media_type", [DOCKER_SCHEMA1, DOCKER_SCHEMA1_SIGNED])
def test_schema1_refused_with_clear_message(client: TestClient, media_type: str) -> None:
    body = canonical(
        {
            "schemaVersion": 1,
            "name": REPO,
            "tag": "v1",
            "architecture": "amd64",
            "fsLayers": [{"blobSum": sha256(b"x")}],
            "history": [{"v1Compatibility": "{}"}],
        }
    )
    response = put_manifest(client, REPO, "v1", body, media_type)
    assert_error(response, 400, "MANIFEST_INVALID")
    message = error_message(response).lower()
    assert "schema 1" in message or "schema1" in message or "schemaversion 1" in message


def test_schema1_detected_without_content_type(client: TestClient) -> None:
    body = canonical({"schemaVersion": 1, "name": REPO, "tag": "v1", "fsLayers": []})
    response = put_manifest(client, REPO, "v1", body, None)
    assert_error(response, 400, "MANIFEST_INVALID")
    assert "1" in error_message(response)


def test_unknown_media_type(client: TestClient) -> None:
    manifest = make_image(client, REPO)
    document = manifest.document
    document["mediaType"] = "application/vnd.example.whatever+json"
    response = put_manifest(
        client, REPO, "v1", canonical(document), "application/vnd.example.whatever+json"
    )
    assert_error(response, 400, "MANIFEST_INVALID")


def test_no_media_type_at_all(client: TestClient) -> None:
    manifest = make_image(client, REPO)
    document = manifest.document
    del document["mediaType"]
    response = put_manifest(client, REPO, "v1", canonical(document), None)
    assert_error(response, 400, "MANIFEST_INVALID")


INVALID_BODIES = {
    "not json": b"this is not json",
    "truncated": b'{"schemaVersion": 2, "mediaType": ',
    "array": b"[]",
    "string": b'"manifest"',
    "empty": b"",
    "invalid utf-8": b'{"schemaVersion": 2, "x": "\xff\xfe"}',
    "no schemaVersion": canonical({"mediaType": OCI_MANIFEST, "config": {}, "layers": []}),
    "schemaVersion 3": canonical({"schemaVersion": 3, "mediaType": OCI_MANIFEST}),
    "schemaVersion string": canonical({"schemaVersion": "2", "mediaType": OCI_MANIFEST}),
    "missing config": canonical({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "layers": []}),
    "config not object": canonical(
        {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": "x", "layers": []}
    ),
    "config bad digest": canonical(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": "sha256:1234", "size": 2},
            "layers": [],
        }
    ),
    "config missing size": canonical(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": sha256(EMPTY_JSON)},
            "layers": [],
        }
    ),
    "config negative size": canonical(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": sha256(EMPTY_JSON), "size": -1},
            "layers": [],
        }
    ),
    "config string size": canonical(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": sha256(EMPTY_JSON), "size": "2"},
            "layers": [],
        }
    ),
    "config missing mediaType": canonical(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"digest": sha256(EMPTY_JSON), "size": 2},
            "layers": [],
        }
    ),
    "layers not list": canonical(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": descriptor(OCI_CONFIG, EMPTY_JSON),
            "layers": {"a": 1},
        }
    ),
    "layer not object": canonical(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": descriptor(OCI_CONFIG, EMPTY_JSON),
            "layers": ["sha256:abc"],
        }
    ),
    "layer uppercase digest": canonical(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": descriptor(OCI_CONFIG, EMPTY_JSON),
            "layers": [
                {"mediaType": OCI_LAYER, "digest": sha256(b"l").upper(), "size": 1},
            ],
        }
    ),
    "mediaType not string": canonical(
        {"schemaVersion": 2, "mediaType": 7, "config": descriptor(OCI_CONFIG, EMPTY_JSON)}
    ),
    "annotations not strings": canonical(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": descriptor(OCI_CONFIG, EMPTY_JSON),
            "layers": [],
            "annotations": {"a": 1},
        }
    ),
    "index with layers": canonical(
        {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [], "layers": []}
    ),
    "index without manifests": canonical({"schemaVersion": 2, "mediaType": OCI_INDEX}),
    "index bad child": canonical(
        {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [{"digest": "x"}]}
    ),
    "image with manifests": canonical(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": descriptor(OCI_CONFIG, EMPTY_JSON),
            "layers": [],
            "manifests": [],
        }
    ),
    "subject not descriptor": canonical(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": descriptor(OCI_CONFIG, EMPTY_JSON),
            "layers": [],
            "subject": "sha256:abc",
        }
    ),
    "artifactType not string": canonical(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": ["x"],
            "config": descriptor(OCI_CONFIG, EMPTY_JSON),
            "layers": [],
        }
    ),
}


@pytest.mark.parametrize("name", sorted(INVALID_BODIES))
def test_invalid_manifest(client: TestClient, name: str) -> None:
    push_blob(client, REPO, EMPTY_JSON)
    body = INVALID_BODIES[name]
    response = put_manifest(
        client, REPO, "v1", body, OCI_INDEX if "index" in name else OCI_MANIFEST
    )
    assert_error(response, 400, "MANIFEST_INVALID")
    assert_error(client.get(f"/v2/{REPO}/manifests/v1"), 404, "MANIFEST_UNKNOWN")


def test_deeply_nested_json_is_invalid_not_a_crash(client: TestClient) -> None:
    body = b'{"schemaVersion": 2, "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    response = put_manifest(client, REPO, "v1", body)
    assert_error(response, 400, "MANIFEST_INVALID")


def test_long_artifact_type_is_not_a_crash(client: TestClient) -> None:
    """A media type is at most 127+1+127 characters (RFC 6838); a longer artifactType is
    refused as invalid or stored, never a server error."""
    push_blob(client, REPO, EMPTY_JSON)
    document = image_document(EMPTY_JSON, [], artifactType="application/" + "x" * 400)
    response = put_manifest(client, REPO, "v1", canonical(document))
    assert response.status_code in (201, 400), response.text
    if response.status_code == 400:
        assert_error(response, 400, "MANIFEST_INVALID")


def test_manifest_too_large(make_client: MakeClient) -> None:
    client = make_client(manifest_max_bytes=2048)
    manifest = make_image(client, REPO, annotations={"filler": "x" * 3000})
    response = put_manifest(client, REPO, "v1", manifest.body)
    assert_error(response, 413)
    assert_error(client.get(f"/v2/{REPO}/manifests/v1"), 404, "MANIFEST_UNKNOWN")
    # Just under the limit is fine.
    small = make_image(client, REPO, annotations={"filler": "x" * 1000})
    assert len(small.body) <= 2048
    assert put_manifest(client, REPO, "v2", small.body).status_code == 201


def test_manifest_too_large_streamed(make_client: MakeClient) -> None:
    client = make_client(manifest_max_bytes=2048)
    manifest = make_image(client, REPO, annotations={"filler": "x" * 3000})

    def body() -> Iterator[bytes]:
        yield manifest.body[:1000]
        yield manifest.body[1000:]

    response = client.put(
        f"/v2/{REPO}/manifests/v1", content=body(), headers={"content-type": OCI_MANIFEST}
    )
    assert_error(response, 413)


def test_default_manifest_limit_is_at_least_4_mib(client: TestClient) -> None:
    manifest = make_image(client, REPO, annotations={"filler": "x" * (3 * 1024 * 1024)})
    assert put_manifest(client, REPO, "big", manifest.body).status_code == 201


# -- subject --------------------------------------------------------------------------------


def test_put_with_subject_returns_oci_subject(client: TestClient) -> None:
    subject = push_image(client, REPO, "v1")
    artifact = make_artifact(client, REPO, subject)
    response = push_manifest(client, REPO, artifact.digest, artifact)
    assert response.headers["oci-subject"] == subject.digest


def test_subject_need_not_exist(client: TestClient) -> None:
    ghost = Manifest(b'{"ghost": true}', OCI_MANIFEST)
    artifact = make_artifact(client, REPO, ghost)
    response = push_manifest(client, REPO, artifact.digest, artifact)
    assert response.headers["oci-subject"] == ghost.digest


def test_index_with_subject(client: TestClient) -> None:
    subject = push_image(client, REPO, "v1")
    child = push_image(client, REPO, None, seed="child")
    index = make_index([child], subject=subject.descriptor(), artifactType="application/x.sig")
    response = push_manifest(client, REPO, index.digest, index)
    assert response.headers["oci-subject"] == subject.digest


# -- GET / HEAD -------------------------------------------------------------------------


@pytest.fixture
def pushed(client: TestClient) -> Manifest:
    return push_image(client, REPO, "v1")


@pytest.mark.parametrize("by", ["tag", "digest"])
def test_get_manifest(client: TestClient, pushed: Manifest, by: str) -> None:
    reference = "v1" if by == "tag" else pushed.digest
    response = client.get(f"/v2/{REPO}/manifests/{reference}")
    assert response.status_code == 200
    assert response.content == pushed.body
    assert response.headers["content-type"] == OCI_MANIFEST
    assert response.headers["content-length"] == str(pushed.size)
    assert response.headers["docker-content-digest"] == pushed.digest


@pytest.mark.parametrize("by", ["tag", "digest"])
def test_head_manifest(client: TestClient, pushed: Manifest, by: str) -> None:
    reference = "v1" if by == "tag" else pushed.digest
    response = client.head(f"/v2/{REPO}/manifests/{reference}")
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["content-type"] == OCI_MANIFEST
    assert response.headers["content-length"] == str(pushed.size)
    assert response.headers["docker-content-digest"] == pushed.digest


def test_get_unknown_tag(client: TestClient, pushed: Manifest) -> None:
    assert_error(client.get(f"/v2/{REPO}/manifests/v2"), 404, "MANIFEST_UNKNOWN")


def test_get_unknown_digest(client: TestClient, pushed: Manifest) -> None:
    assert_error(client.get(f"/v2/{REPO}/manifests/{sha256(b'x')}"), 404, "MANIFEST_UNKNOWN")


def test_head_unknown_manifest(client: TestClient, pushed: Manifest) -> None:
    response = client.head(f"/v2/{REPO}/manifests/v2")
    assert response.status_code == 404
    assert response.content == b""


def test_get_manifest_unknown_repository(client: TestClient) -> None:
    response = client.get("/v2/nobody/here/manifests/latest")
    assert response.status_code == 404
    codes = [e["code"] for e in response.json()["errors"]]
    assert set(codes) & {"MANIFEST_UNKNOWN", "NAME_UNKNOWN"}


def test_manifest_from_other_repository_is_unknown(client: TestClient, pushed: Manifest) -> None:
    assert_error(client.get(f"/v2/other/manifests/{pushed.digest}"), 404, "MANIFEST_UNKNOWN")


def test_get_by_invalid_digest(client: TestClient) -> None:
    """No manifest has an invalid digest: 404 like any missing one (test_invalid_references)."""
    assert_error(client.get(f"/v2/{REPO}/manifests/sha256:123"), 404, "MANIFEST_UNKNOWN")


# -- Accept negotiation ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "accept",
    [
        OCI_MANIFEST,
        "*/*",
        "application/*",
        f"{DOCKER_MANIFEST}, {OCI_MANIFEST}",
        f"{OCI_MANIFEST};q=0.5, {DOCKER_MANIFEST}",
        "APPLICATION/VND.OCI.IMAGE.MANIFEST.V1+JSON",
    ],
)
def test_accept_allows_manifest(client: TestClient, pushed: Manifest, accept: str) -> None:
    response = client.get(f"/v2/{REPO}/manifests/v1", headers={"accept": accept})
    assert response.status_code == 200, response.text
    assert response.content == pushed.body


@pytest.mark.parametrize(
    "accept",
    [
        DOCKER_MANIFEST,
        f"{DOCKER_MANIFEST}, {DOCKER_LIST}",
        OCI_INDEX,
        "text/plain",
        f"{OCI_MANIFEST};q=0, {DOCKER_MANIFEST}",
        f"{OCI_MANIFEST};q=0.0",
        f"{OCI_MANIFEST}; q=0.000",
    ],
)
def test_accept_excludes_manifest(client: TestClient, pushed: Manifest, accept: str) -> None:
    response = client.get(f"/v2/{REPO}/manifests/v1", headers={"accept": accept})
    assert_error(response, 404, "MANIFEST_UNKNOWN")


def test_accept_excludes_manifest_on_head(client: TestClient, pushed: Manifest) -> None:
    response = client.head(f"/v2/{REPO}/manifests/v1", headers={"accept": DOCKER_MANIFEST})
    assert response.status_code == 404


def test_multiple_accept_headers_are_combined(client: TestClient, pushed: Manifest) -> None:
    headers = [("accept", DOCKER_MANIFEST), ("accept", DOCKER_LIST), ("accept", OCI_MANIFEST)]
    response = client.get(f"/v2/{REPO}/manifests/v1", headers=headers)
    assert response.status_code == 200, response.text
    assert response.content == pushed.body


def test_multiple_accept_headers_without_match(client: TestClient, pushed: Manifest) -> None:
    headers = [("accept", DOCKER_MANIFEST), ("accept", DOCKER_LIST)]
    response = client.get(f"/v2/{REPO}/manifests/v1", headers=headers)
    assert_error(response, 404, "MANIFEST_UNKNOWN")


def test_accept_for_docker_manifest(client: TestClient) -> None:
    manifest = push_image(client, REPO, "d", media_type=DOCKER_MANIFEST)
    response = client.get(f"/v2/{REPO}/manifests/d", headers={"accept": OCI_MANIFEST})
    assert_error(response, 404, "MANIFEST_UNKNOWN")
    response = client.get(
        f"/v2/{REPO}/manifests/d", headers=[("accept", OCI_MANIFEST), ("accept", DOCKER_MANIFEST)]
    )
    assert response.status_code == 200
    assert response.content == manifest.body


def test_accept_index(client: TestClient) -> None:
    child = push_image(client, REPO, None)
    index = make_index([child])
    push_manifest(client, REPO, "multi", index)
    response = client.get(
        f"/v2/{REPO}/manifests/multi", headers={"accept": f"{OCI_MANIFEST}, {OCI_INDEX}"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == OCI_INDEX
    response = client.get(f"/v2/{REPO}/manifests/multi", headers={"accept": OCI_MANIFEST})
    assert_error(response, 404, "MANIFEST_UNKNOWN")


# -- tags and names in manifest references ----------------------------------------------------


@pytest.mark.parametrize(
    "tag", [".hidden", "-dash", "a" * 129, "tag+plus", "tag@at", "t%C3%A9", "latest%0A", "a%20b"]
)
def test_invalid_tag(client: TestClient, tag: str) -> None:
    manifest = make_image(client, REPO)
    response = put_manifest(client, REPO, tag, manifest.body)
    assert_error(response, 400, "TAG_INVALID")
    assert client.get(f"/v2/{REPO}/tags/list").status_code == 404


@pytest.mark.parametrize("tag", ["a", "_underscore", "A" * 128, "v1.2.3-rc.1_build", "0"])
def test_valid_tags(client: TestClient, tag: str) -> None:
    manifest = make_image(client, REPO)
    push_manifest(client, REPO, tag, manifest)
    assert client.get(f"/v2/{REPO}/manifests/{tag}").content == manifest.body
    assert tags_of(client, REPO) == [tag]


def test_tags_are_case_sensitive(client: TestClient) -> None:
    lower = push_image(client, REPO, "tag", seed="lower")
    upper = push_image(client, REPO, "TAG", seed="upper")
    assert client.get(f"/v2/{REPO}/manifests/tag").content == lower.body
    assert client.get(f"/v2/{REPO}/manifests/TAG").content == upper.body


def test_manifest_route_rejects_other_methods(client: TestClient, pushed: Manifest) -> None:
    for method in ("POST", "PATCH"):
        assert_error(client.request(method, f"/v2/{REPO}/manifests/v1"), 405, "UNSUPPORTED")


def test_put_with_a_body_shorter_than_content_length_is_not_stored(client: TestClient) -> None:
    """The body ended (the client closed) before its declared length: nothing is stored,
    even though what arrived is a whole valid manifest (against a real server in
    tests/durability/test_short_bodies.py)."""
    manifest = make_image(client, REPO, seed="short")
    length = str(len(manifest.body) + 100).encode()
    response = raw_request(
        client.app,
        "PUT",
        f"/v2/{REPO}/manifests/short",
        headers=[(b"content-type", OCI_MANIFEST.encode()), (b"content-length", length)],
        chunks=[manifest.body],
    )
    assert_raw_error(response, 400, "SIZE_INVALID")
    for reference in ("short", manifest.digest):
        assert_error(client.get(f"/v2/{REPO}/manifests/{reference}"), 404, "MANIFEST_UNKNOWN")
