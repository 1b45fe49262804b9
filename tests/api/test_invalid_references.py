"""Invalid references, digests and upload ids, including `../` sent percent-encoded
(granian and Starlette hand the app the decoded path): each gets its route's own error,
never UNSUPPORTED, and a manifest GET/HEAD by an invalid reference is a plain 404
MANIFEST_UNKNOWN, as for any missing manifest (Distribution and the conformance tests)."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from tests.api.helpers import (
    assert_error,
    assert_raw_error,
    make_image,
    put_manifest,
    raw_request,
    sha256,
    start_upload,
)

REPO = "acme/app"
VALID = sha256(b"not stored")

BAD_REFERENCES = [
    ".INVALID_MANIFEST_NAME",  # what the conformance suite asks for
    "-dash",
    "a" * 129,
    "tag+plus",
    "sha256:123",
    "sha256:" + "A" * 64,
    "md5:" + "0" * 32,
    "sha256:..%2F..%2Fetc%2Fpasswd",
    "..%2F..%2Fetc%2Fpasswd",
    "%2E%2E%2F%2E%2E%2Fv2%2F_catalog",
    "latest%2F..%2F..",
]
BAD_DIGESTS = [
    "sha256:123",
    "sha256:..%2F..%2Fetc%2Fpasswd",
    "..%2F..%2Fetc%2Fpasswd",
    "%2E%2E%2Fsha256:" + "0" * 64,
    "sha256:" + "0" * 64 + "%2F..",
]
BAD_UPLOADS = [
    "..%2F..%2Fetc",
    "%2E%2E%2F%2E%2E%2Fv1%2Fblobs",
    "00000000-0000-0000-0000-000000000000%2F..%2F..",
    "not-an-upload",
    "x" * 300,
]


@pytest.mark.parametrize("reference", BAD_REFERENCES)
@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_get_by_invalid_reference_is_manifest_unknown(
    client: TestClient, method: str, reference: str
) -> None:
    response = client.request(method, f"/v2/{REPO}/manifests/{reference}")
    assert response.status_code == 404, (reference, response.status_code, response.text)
    if method == "GET":
        assert_error(response, 404, "MANIFEST_UNKNOWN")


@pytest.mark.parametrize("reference", [".hidden", "-dash", "a" * 129, "..%2F..%2Fx", "a%2Fb"])
def test_put_by_invalid_tag_stays_tag_invalid(client: TestClient, reference: str) -> None:
    manifest = make_image(client, REPO)
    assert_error(put_manifest(client, REPO, reference, manifest.body), 400, "TAG_INVALID")


@pytest.mark.parametrize("reference", ["sha256:123", "sha256:..%2F..%2Fetc"])
def test_put_and_delete_by_invalid_digest_is_digest_invalid(
    client: TestClient, reference: str
) -> None:
    manifest = make_image(client, REPO)
    assert_error(put_manifest(client, REPO, reference, manifest.body), 400, "DIGEST_INVALID")
    assert_error(client.delete(f"/v2/{REPO}/manifests/{reference}"), 400, "DIGEST_INVALID")


@pytest.mark.parametrize("digest", BAD_DIGESTS)
@pytest.mark.parametrize("method", ["GET", "HEAD", "DELETE"])
def test_blob_by_invalid_digest(client: TestClient, method: str, digest: str) -> None:
    start_upload(client, REPO)  # the repository exists
    response = client.request(method, f"/v2/{REPO}/blobs/{digest}")
    assert response.status_code == 400, (digest, response.status_code, response.text)
    if method != "HEAD":
        assert_error(response, 400, "DIGEST_INVALID")


@pytest.mark.parametrize("method", ["GET", "HEAD", "DELETE"])
def test_blob_by_valid_unknown_digest(client: TestClient, method: str) -> None:
    start_upload(client, REPO)
    response = client.request(method, f"/v2/{REPO}/blobs/{VALID}")
    assert response.status_code == 404
    if method != "HEAD":
        assert_error(response, 404, "BLOB_UNKNOWN")


@pytest.mark.parametrize("upload", BAD_UPLOADS)
@pytest.mark.parametrize("method", ["GET", "PATCH", "PUT", "DELETE"])
def test_invalid_upload_id(client: TestClient, method: str, upload: str) -> None:
    start_upload(client, REPO)
    query = {"digest": VALID} if method == "PUT" else None
    response = client.request(
        method, f"/v2/{REPO}/blobs/uploads/{upload}", params=query, content=b"data"
    )
    assert_error(response, 404, "BLOB_UPLOAD_UNKNOWN")


@pytest.mark.parametrize("digest", BAD_DIGESTS)
def test_finishing_an_upload_with_an_invalid_digest(client: TestClient, digest: str) -> None:
    location = start_upload(client, REPO)
    separator = "&" if "?" in location else "?"
    response = client.put(f"{location}{separator}digest={digest}", content=b"data")
    assert_error(response, 400, "DIGEST_INVALID")


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", f"/v2/{REPO}/manifests/../../etc/passwd", 404, "MANIFEST_UNKNOWN"),
        ("GET", f"/v2/{REPO}/blobs/sha256:../../etc/passwd", 400, "DIGEST_INVALID"),
        ("DELETE", f"/v2/{REPO}/blobs/../../../x", 400, "DIGEST_INVALID"),
        ("PATCH", f"/v2/{REPO}/blobs/uploads/../../x", 404, "BLOB_UPLOAD_UNKNOWN"),
        ("PUT", f"/v2/{REPO}/blobs/uploads/../../x", 404, "BLOB_UPLOAD_UNKNOWN"),
        ("GET", f"/v2/{REPO}/blobs/uploads/../../x", 404, "BLOB_UPLOAD_UNKNOWN"),
        ("DELETE", f"/v2/{REPO}/blobs/uploads/../../x", 404, "BLOB_UPLOAD_UNKNOWN"),
        ("GET", f"/v2/{REPO}/referrers/sha256:../../x", 400, "DIGEST_INVALID"),
        # the name itself holding `..`: not a valid repository name
        ("GET", "/v2/acme/../app/blobs/" + VALID, 400, "NAME_INVALID"),
    ],
)
def test_decoded_dot_segments_reach_the_route(
    client: TestClient, method: str, path: str, status: int, code: str
) -> None:
    """The path as granian delivers it (decoded; no client-side normalisation here)."""
    start_upload(client, REPO)
    query = f"digest={VALID}".encode() if method == "PUT" else b""
    response = raw_request(client.app, method, path, query=query, chunks=[b"data"])
    assert_raw_error(response, status, code)
