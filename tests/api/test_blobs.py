"""GET/HEAD/DELETE /v2/<name>/blobs/<digest>: headers, byte ranges, repository scoping."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from tests.api.helpers import (
    EMPTY_SHA256,
    assert_error,
    make_image,
    push_blob,
    push_manifest,
    raw_request,
    sha256,
    sha512,
)

REPO = "acme/app"
DATA = bytes(range(256)) * 4  # 1024 bytes, every byte value


@pytest.fixture
def blob(client: TestClient) -> str:
    return push_blob(client, REPO, DATA)


def test_blob_body_without_pathsend(client: TestClient, blob: str) -> None:
    """Servers without the pathsend extension get the bytes streamed, ending the response."""
    response = raw_request(client.app, "GET", f"/v2/{REPO}/blobs/{blob}")
    assert response.status == 200
    assert response.body == DATA
    assert response.complete


def test_get_blob_headers_and_body(client: TestClient, blob: str) -> None:
    response = client.get(f"/v2/{REPO}/blobs/{blob}")
    assert response.status_code == 200
    assert response.content == DATA
    assert response.headers["content-length"] == str(len(DATA))
    assert response.headers["docker-content-digest"] == blob
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["docker-distribution-api-version"] == "registry/2.0"


def test_head_blob_has_headers_and_no_body(client: TestClient, blob: str) -> None:
    response = client.head(f"/v2/{REPO}/blobs/{blob}")
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["content-length"] == str(len(DATA))
    assert response.headers["docker-content-digest"] == blob


def test_head_blob_ignores_range(client: TestClient, blob: str) -> None:
    response = client.head(f"/v2/{REPO}/blobs/{blob}", headers={"range": "bytes=0-9"})
    assert response.status_code == 200
    assert response.headers["content-length"] == str(len(DATA))


def test_get_unknown_blob(client: TestClient, blob: str) -> None:
    missing = sha256(b"never pushed")
    response = client.get(f"/v2/{REPO}/blobs/{missing}")
    assert_error(response, 404, "BLOB_UNKNOWN")


def test_head_unknown_blob_is_404_without_body(client: TestClient, blob: str) -> None:
    response = client.head(f"/v2/{REPO}/blobs/{sha256(b'never pushed')}")
    assert response.status_code == 404
    assert response.content == b""


def test_blob_in_another_repository_is_unknown(client: TestClient, blob: str) -> None:
    response = client.get(f"/v2/other/repo/blobs/{blob}")
    assert_error(response, 404, "BLOB_UNKNOWN")
    response = client.head(f"/v2/other/repo/blobs/{blob}")
    assert response.status_code == 404


def test_blob_unknown_repository(client: TestClient) -> None:
    response = client.get(f"/v2/nobody/blobs/{sha256(b'x')}")
    assert_error(response, 404, "BLOB_UNKNOWN")


@pytest.mark.parametrize(
    "digest",
    [
        "sha256:abc",
        "md5:d41d8cd98f00b204e9800998ecf8427e",
        "sha256:" + "A" * 64,
        "notadigest",
    ],
)
def test_get_blob_invalid_digest(client: TestClient, digest: str) -> None:
    response = client.get(f"/v2/{REPO}/blobs/{digest}")
    assert_error(response, 400, "DIGEST_INVALID")


def test_sha512_blob(client: TestClient) -> None:
    digest = push_blob(client, REPO, DATA, sha512(DATA))
    response = client.get(f"/v2/{REPO}/blobs/{digest}")
    assert response.status_code == 200
    assert response.content == DATA
    assert response.headers["docker-content-digest"] == digest


def test_empty_blob(client: TestClient) -> None:
    assert push_blob(client, REPO, b"") == EMPTY_SHA256
    response = client.get(f"/v2/{REPO}/blobs/{EMPTY_SHA256}")
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["content-length"] == "0"
    head = client.head(f"/v2/{REPO}/blobs/{EMPTY_SHA256}")
    assert head.status_code == 200
    assert head.headers["content-length"] == "0"


def test_empty_blob_sends_a_body_message(client: TestClient) -> None:
    """ASGI needs at least one http.response.body message, even for an empty file."""
    push_blob(client, REPO, b"")
    response = raw_request(client.app, "GET", f"/v2/{REPO}/blobs/{EMPTY_SHA256}")
    assert response.status == 200
    assert response.body == b""
    assert response.complete, "no final http.response.body message: the client would hang"


# -- ranges ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=0-9", 0, 9),
        ("bytes=10-19", 10, 19),
        ("bytes=1000-", 1000, 1023),
        ("bytes=0-", 0, 1023),
        ("bytes=-24", 1000, 1023),
        ("bytes=-5000", 0, 1023),
        ("bytes=1020-5000", 1020, 1023),
        ("bytes=1023-1023", 1023, 1023),
        ("BYTES=0-1", 0, 1),
    ],
)
def test_range(client: TestClient, blob: str, header: str, start: int, end: int) -> None:
    response = client.get(f"/v2/{REPO}/blobs/{blob}", headers={"range": header})
    assert response.status_code == 206, response.text
    assert response.content == DATA[start : end + 1]
    assert response.headers["content-range"] == f"bytes {start}-{end}/{len(DATA)}"
    assert response.headers["content-length"] == str(end - start + 1)
    assert response.headers["docker-content-digest"] == blob


@pytest.mark.parametrize(
    "header", ["bytes=1024-", "bytes=5000-6000", "bytes=1024-2000", "bytes=-0"]
)
def test_range_not_satisfiable(client: TestClient, blob: str, header: str) -> None:
    response = client.get(f"/v2/{REPO}/blobs/{blob}", headers={"range": header})
    assert response.status_code == 416, response.text
    assert response.headers["content-range"] == f"bytes */{len(DATA)}"
    assert_error(response, 416)


def test_range_on_empty_blob_not_satisfiable(client: TestClient) -> None:
    push_blob(client, REPO, b"")
    response = client.get(f"/v2/{REPO}/blobs/{EMPTY_SHA256}", headers={"range": "bytes=0-"})
    assert response.status_code == 416
    assert response.headers["content-range"] == "bytes */0"


@pytest.mark.parametrize("header", ["bytes=0-1,5-6", "bytes=0-1, 3-"])
def test_multiple_ranges_serve_everything(client: TestClient, blob: str, header: str) -> None:
    response = client.get(f"/v2/{REPO}/blobs/{blob}", headers={"range": header})
    assert response.status_code == 200
    assert response.content == DATA
    assert "content-range" not in response.headers


@pytest.mark.parametrize(
    "header",
    [
        "bytes=abc",
        "bytes=",
        "bytes=-",
        "bytes",
        "items=0-5",
        "bytes=1-x",
        "bytes=x-1",
        "bytes=1x-2",
        "bytes=--5",
        "bytes=0x10-0x20",
        "bytes=1.5-2",
        "bytes=+1-2",
    ],
)
def test_malformed_range_serves_everything(client: TestClient, blob: str, header: str) -> None:
    """RFC 9110 14.2: a Range that does not parse (or has last < first) is ignored."""
    response = client.get(f"/v2/{REPO}/blobs/{blob}", headers={"range": header})
    assert response.status_code == 200, (header, response.status_code, response.text[:300])
    assert response.content == DATA


def test_range_with_last_before_first_is_ignored_or_rejected(client: TestClient, blob: str) -> None:
    """RFC 9110 14.2: an invalid range-spec (last < first) MAY be ignored or rejected."""
    response = client.get(f"/v2/{REPO}/blobs/{blob}", headers={"range": "bytes=5-3"})
    assert response.status_code in (200, 416)
    if response.status_code == 200:
        assert response.content == DATA
    else:
        assert response.headers["content-range"] == f"bytes */{len(DATA)}"


def test_non_ascii_digits_in_range_are_not_a_server_error(client: TestClient, blob: str) -> None:
    response = raw_request(
        client.app, "GET", f"/v2/{REPO}/blobs/{blob}", headers=[(b"range", b"bytes=\xb2-3")]
    )
    assert response.status == 200, response.body[:300]
    assert response.body == DATA


# -- delete ------------------------------------------------------------------------------


def test_delete_blob_link(client: TestClient, blob: str) -> None:
    response = client.delete(f"/v2/{REPO}/blobs/{blob}")
    assert response.status_code == 202, response.text
    assert_error(client.get(f"/v2/{REPO}/blobs/{blob}"), 404, "BLOB_UNKNOWN")
    assert client.head(f"/v2/{REPO}/blobs/{blob}").status_code == 404


def test_delete_blob_only_unlinks_this_repository(client: TestClient, blob: str) -> None:
    push_blob(client, "other", DATA)
    assert client.delete(f"/v2/{REPO}/blobs/{blob}").status_code == 202
    response = client.get(f"/v2/other/blobs/{blob}")
    assert response.status_code == 200
    assert response.content == DATA


def test_delete_blob_twice(client: TestClient, blob: str) -> None:
    assert client.delete(f"/v2/{REPO}/blobs/{blob}").status_code == 202
    assert_error(client.delete(f"/v2/{REPO}/blobs/{blob}"), 404, "BLOB_UNKNOWN")


def test_delete_unknown_blob(client: TestClient) -> None:
    assert_error(client.delete(f"/v2/{REPO}/blobs/{sha256(b'nope')}"), 404, "BLOB_UNKNOWN")


def test_delete_blob_invalid_digest(client: TestClient) -> None:
    assert_error(client.delete(f"/v2/{REPO}/blobs/sha256:zz"), 400, "DIGEST_INVALID")


def test_delete_blob_used_by_manifest_conflicts(client: TestClient) -> None:
    manifest = make_image(client, REPO)
    push_manifest(client, REPO, "v1", manifest)
    layer = manifest.document["layers"][0]["digest"]
    config = manifest.document["config"]["digest"]
    for digest in (layer, config):
        response = client.delete(f"/v2/{REPO}/blobs/{digest}")
        assert_error(response, 409)
        assert client.get(f"/v2/{REPO}/blobs/{digest}").status_code == 200
    # Once the manifest is gone the blob may be unlinked.
    assert client.delete(f"/v2/{REPO}/manifests/{manifest.digest}").status_code == 202
    assert client.delete(f"/v2/{REPO}/blobs/{layer}").status_code == 202


def test_delete_blob_used_by_manifest_elsewhere_is_allowed(client: TestClient) -> None:
    manifest = make_image(client, "other")
    push_manifest(client, "other", "v1", manifest)
    layer = manifest.document["layers"][0]["digest"]
    response = client.post(f"/v2/{REPO}/blobs/uploads/?mount={layer}&from=other")
    assert response.status_code == 201
    assert client.delete(f"/v2/{REPO}/blobs/{layer}").status_code == 202
    assert client.get(f"/v2/other/blobs/{layer}").status_code == 200


def test_delete_blob_disabled(no_delete_client: TestClient) -> None:
    digest = push_blob(no_delete_client, REPO, DATA)
    response = no_delete_client.delete(f"/v2/{REPO}/blobs/{digest}")
    assert_error(response, 405, "UNSUPPORTED")
    assert no_delete_client.get(f"/v2/{REPO}/blobs/{digest}").status_code == 200


def test_blob_route_rejects_other_methods(client: TestClient, blob: str) -> None:
    for method in ("PUT", "POST", "PATCH"):
        assert_error(client.request(method, f"/v2/{REPO}/blobs/{blob}"), 405, "UNSUPPORTED")
