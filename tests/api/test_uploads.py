"""Blob uploads: monolithic, POST+PUT, chunked PATCH, status, cancel, mount, digests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from tests.api.helpers import (
    EMPTY_SHA256,
    assert_error,
    assert_raw_error,
    push_blob,
    raw_request,
    sha256,
    sha512,
    start_upload,
    with_query,
)

REPO = "acme/app"
DATA = b"0123456789abcdefghijklmnopqrstuvwxyz" * 100  # 3600 bytes


def blob_visible(client: TestClient, repo: str, digest: str) -> bool:
    return client.head(f"/v2/{repo}/blobs/{digest}").status_code == 200


# -- monolithic ---------------------------------------------------------------------------


def test_monolithic_post(client: TestClient) -> None:
    digest = sha256(DATA)
    response = client.post(f"/v2/{REPO}/blobs/uploads/?digest={digest}", content=DATA)
    assert response.status_code == 201, response.text
    assert response.headers["docker-content-digest"] == digest
    assert response.headers["location"].endswith(f"/v2/{REPO}/blobs/{digest}")
    assert response.headers["content-length"] == "0"
    pulled = client.get(response.headers["location"])
    assert pulled.content == DATA


def test_monolithic_post_twice_is_idempotent(client: TestClient) -> None:
    digest = push_blob(client, REPO, DATA)
    assert push_blob(client, REPO, DATA) == digest
    assert client.get(f"/v2/{REPO}/blobs/{digest}").content == DATA


def test_monolithic_post_wrong_digest(client: TestClient) -> None:
    wrong = sha256(b"something else")
    response = client.post(f"/v2/{REPO}/blobs/uploads/?digest={wrong}", content=DATA)
    assert_error(response, 400, "DIGEST_INVALID")
    assert not blob_visible(client, REPO, wrong)
    assert not blob_visible(client, REPO, sha256(DATA))


def test_monolithic_post_sha512(client: TestClient) -> None:
    digest = sha512(DATA)
    response = client.post(f"/v2/{REPO}/blobs/uploads/?digest={digest}", content=DATA)
    assert response.status_code == 201, response.text
    assert response.headers["docker-content-digest"] == digest
    assert client.get(f"/v2/{REPO}/blobs/{digest}").content == DATA


def test_monolithic_post_sha512_wrong(client: TestClient) -> None:
    wrong = sha512(b"other")
    response = client.post(f"/v2/{REPO}/blobs/uploads/?digest={wrong}", content=DATA)
    assert_error(response, 400, "DIGEST_INVALID")
    assert not blob_visible(client, REPO, wrong)


def test_monolithic_empty_blob(client: TestClient) -> None:
    response = client.post(f"/v2/{REPO}/blobs/uploads/?digest={EMPTY_SHA256}", content=b"")
    assert response.status_code == 201, response.text
    assert response.headers["docker-content-digest"] == EMPTY_SHA256
    head = client.head(f"/v2/{REPO}/blobs/{EMPTY_SHA256}")
    assert head.status_code == 200
    assert head.headers["content-length"] == "0"


BAD_DIGESTS = [
    "md5:d41d8cd98f00b204e9800998ecf8427e",
    "sha256:" + "a" * 63,
    "sha256:" + "a" * 65,
    "sha256:" + sha256(DATA)[7:].upper(),
    "sha512:" + "a" * 64,
    "sha256",
    "sha256:",
    ":abc",
    "sha256:" + "g" * 64,
]


@pytest.mark.parametrize("digest", BAD_DIGESTS)
def test_monolithic_post_invalid_digest(client: TestClient, digest: str) -> None:
    response = client.post(f"/v2/{REPO}/blobs/uploads/", params={"digest": digest}, content=DATA)
    assert_error(response, 400, "DIGEST_INVALID")


@pytest.mark.parametrize("digest", BAD_DIGESTS)
def test_put_invalid_digest(client: TestClient, digest: str) -> None:
    location = start_upload(client, REPO)
    response = client.put(location, params={"digest": digest}, content=DATA)
    assert_error(response, 400, "DIGEST_INVALID")


def test_monolithic_content_length_too_large(client: TestClient) -> None:
    """Content-Length says more than the body holds: SIZE_INVALID, nothing stored."""
    digest = sha256(b"12345")
    response = raw_request(
        client.app,
        "POST",
        f"/v2/{REPO}/blobs/uploads/",
        query=f"digest={digest}".encode(),
        headers=[(b"content-length", b"10")],
        chunks=[b"12345"],
    )
    assert_raw_error(response, 400, "SIZE_INVALID")
    assert not blob_visible(client, REPO, digest)


def test_monolithic_content_length_too_small(client: TestClient) -> None:
    digest = sha256(b"12345")
    response = raw_request(
        client.app,
        "POST",
        f"/v2/{REPO}/blobs/uploads/",
        query=f"digest={digest}".encode(),
        headers=[(b"content-length", b"3")],
        chunks=[b"12345"],
    )
    assert_raw_error(response, 400, "SIZE_INVALID")
    assert not blob_visible(client, REPO, digest)


@pytest.mark.parametrize("value", [b"abc", b"-1", b"1e3", b"\xb2"])
def test_invalid_content_length(client: TestClient, value: bytes) -> None:
    digest = sha256(b"12345")
    response = raw_request(
        client.app,
        "POST",
        f"/v2/{REPO}/blobs/uploads/",
        query=f"digest={digest}".encode(),
        headers=[(b"content-length", value)],
        chunks=[b"12345"],
    )
    assert 400 <= response.status < 500, (value, response.status, response.body[:300])
    assert_raw_error(response, response.status)


# -- POST then PUT ------------------------------------------------------------------------


def test_post_starts_upload(client: TestClient) -> None:
    response = client.post(f"/v2/{REPO}/blobs/uploads/")
    assert response.status_code == 202
    location = response.headers["location"]
    assert f"/v2/{REPO}/blobs/uploads/" in location
    assert response.headers["docker-upload-uuid"]
    assert response.headers["content-length"] == "0"


def test_post_then_put_with_body(client: TestClient) -> None:
    location = start_upload(client, REPO)
    digest = sha256(DATA)
    response = client.put(with_query(location, f"digest={digest}"), content=DATA)
    assert response.status_code == 201, response.text
    assert response.headers["docker-content-digest"] == digest
    assert response.headers["location"].endswith(f"/v2/{REPO}/blobs/{digest}")
    assert client.get(f"/v2/{REPO}/blobs/{digest}").content == DATA


def test_upload_is_gone_after_put(client: TestClient) -> None:
    location = start_upload(client, REPO)
    assert (
        client.put(with_query(location, f"digest={sha256(DATA)}"), content=DATA).status_code == 201
    )
    assert_error(client.get(location), 404, "BLOB_UPLOAD_UNKNOWN")
    assert_error(client.patch(location, content=b"more"), 404, "BLOB_UPLOAD_UNKNOWN")


def test_put_wrong_digest(client: TestClient) -> None:
    location = start_upload(client, REPO)
    wrong = sha256(b"not it")
    response = client.put(with_query(location, f"digest={wrong}"), content=DATA)
    assert_error(response, 400, "DIGEST_INVALID")
    assert not blob_visible(client, REPO, wrong)
    assert not blob_visible(client, REPO, sha256(DATA))


def test_put_without_digest(client: TestClient) -> None:
    location = start_upload(client, REPO)
    response = client.put(location, content=DATA)
    assert response.status_code == 400
    codes = [e["code"] for e in response.json()["errors"]]
    assert set(codes) & {"DIGEST_INVALID", "BLOB_UPLOAD_INVALID"}, codes


def test_post_then_put_empty_blob(client: TestClient) -> None:
    location = start_upload(client, REPO)
    response = client.put(with_query(location, f"digest={EMPTY_SHA256}"))
    assert response.status_code == 201, response.text
    assert client.get(f"/v2/{REPO}/blobs/{EMPTY_SHA256}").content == b""


def test_put_sha512(client: TestClient) -> None:
    location = start_upload(client, REPO)
    digest = sha512(DATA)
    response = client.put(with_query(location, f"digest={digest}"), content=DATA)
    assert response.status_code == 201, response.text
    assert response.headers["docker-content-digest"] == digest
    assert client.get(f"/v2/{REPO}/blobs/{digest}").content == DATA


# -- chunked ------------------------------------------------------------------------------


def chunks_of(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def test_chunked_upload_in_order(client: TestClient) -> None:
    location = start_upload(client, REPO)
    offset = 0
    for chunk in chunks_of(DATA, 1000):
        end = offset + len(chunk) - 1
        response = client.patch(
            location,
            content=chunk,
            headers={
                "content-range": f"{offset}-{end}",
                "content-type": "application/octet-stream",
            },
        )
        assert response.status_code == 202, response.text
        assert response.headers["range"] == f"0-{end}"
        assert response.headers["content-length"] == "0"
        location = response.headers["location"]
        assert response.headers["docker-upload-uuid"]
        offset = end + 1
        status = client.get(location)
        assert status.status_code == 204
        assert status.headers["range"] == f"0-{end}"
        assert status.headers["location"]
    digest = sha256(DATA)
    response = client.put(with_query(location, f"digest={digest}"))
    assert response.status_code == 201, response.text
    assert response.headers["docker-content-digest"] == digest
    assert client.get(f"/v2/{REPO}/blobs/{digest}").content == DATA


def test_chunked_upload_with_final_chunk_in_put(client: TestClient) -> None:
    location = start_upload(client, REPO)
    response = client.patch(location, content=DATA[:2000], headers={"content-range": "0-1999"})
    assert response.status_code == 202
    location = response.headers["location"]
    digest = sha256(DATA)
    response = client.put(
        with_query(location, f"digest={digest}"),
        content=DATA[2000:],
        headers={"content-range": f"2000-{len(DATA) - 1}"},
    )
    assert response.status_code == 201, response.text
    assert client.get(f"/v2/{REPO}/blobs/{digest}").content == DATA


def test_chunked_upload_sha512(client: TestClient) -> None:
    location = start_upload(client, REPO)
    for chunk in chunks_of(DATA, 1500):
        response = client.patch(location, content=chunk)
        assert response.status_code == 202
        location = response.headers["location"]
    digest = sha512(DATA)
    assert client.put(with_query(location, f"digest={digest}")).status_code == 201
    assert client.get(f"/v2/{REPO}/blobs/{digest}").content == DATA


def test_patch_streamed_without_length_or_range(client: TestClient) -> None:
    location = start_upload(client, REPO)

    def body() -> Iterator[bytes]:
        yield from chunks_of(DATA, 700)

    response = client.patch(location, content=body())
    assert response.status_code == 202, response.text
    assert response.headers["range"] == f"0-{len(DATA) - 1}"
    location = response.headers["location"]

    def more() -> Iterator[bytes]:
        yield b"tail"
        yield b" end"

    response = client.patch(location, content=more())
    assert response.status_code == 202
    assert response.headers["range"] == f"0-{len(DATA) + 7}"
    digest = sha256(DATA + b"tail end")
    assert (
        client.put(with_query(response.headers["location"], f"digest={digest}")).status_code == 201
    )
    assert client.get(f"/v2/{REPO}/blobs/{digest}").content == DATA + b"tail end"


def test_put_streamed_without_length(client: TestClient) -> None:
    location = start_upload(client, REPO)

    def body() -> Iterator[bytes]:
        yield from chunks_of(DATA, 999)

    digest = sha256(DATA)
    response = client.put(with_query(location, f"digest={digest}"), content=body())
    assert response.status_code == 201, response.text
    assert client.get(f"/v2/{REPO}/blobs/{digest}").content == DATA


@pytest.mark.parametrize("content_range", ["100-199", "5-104"])
def test_out_of_order_chunk(client: TestClient, content_range: str) -> None:
    location = start_upload(client, REPO)
    response = client.patch(location, content=DATA[:50], headers={"content-range": "0-49"})
    assert response.status_code == 202
    location = response.headers["location"]
    response = client.patch(location, content=DATA[:100], headers={"content-range": content_range})
    assert_error(response, 416)
    assert response.headers["range"] == "0-49"
    assert f"/v2/{REPO}/blobs/uploads/" in response.headers["location"]
    # The upload is untouched and can go on from where it stands.
    status = client.get(location)
    assert status.status_code == 204
    assert status.headers["range"] == "0-49"
    response = client.patch(
        location, content=DATA[50:], headers={"content-range": f"50-{len(DATA) - 1}"}
    )
    assert response.status_code == 202
    digest = sha256(DATA)
    assert (
        client.put(with_query(response.headers["location"], f"digest={digest}")).status_code == 201
    )
    assert client.get(f"/v2/{REPO}/blobs/{digest}").content == DATA


def test_overlapping_chunk(client: TestClient) -> None:
    location = start_upload(client, REPO)
    response = client.patch(location, content=DATA[:100], headers={"content-range": "0-99"})
    location = response.headers["location"]
    response = client.patch(location, content=DATA[:100], headers={"content-range": "0-99"})
    assert_error(response, 416)
    assert response.headers["range"] == "0-99"
    assert response.headers["location"]


def test_first_chunk_not_at_zero(client: TestClient) -> None:
    location = start_upload(client, REPO)
    response = client.patch(location, content=DATA[:10], headers={"content-range": "10-19"})
    assert_error(response, 416)
    assert response.headers["location"]
    assert "range" in response.headers


def test_chunk_length_disagrees_with_content_range(client: TestClient) -> None:
    location = start_upload(client, REPO)
    response = client.patch(location, content=DATA[:10], headers={"content-range": "0-99"})
    assert response.status_code in (400, 416), response.text
    assert_error(response, response.status_code)


@pytest.mark.parametrize("content_range", ["abc", "5", "-5", "a-b", "9-3"])
def test_invalid_content_range(client: TestClient, content_range: str) -> None:
    location = start_upload(client, REPO)
    response = client.patch(location, content=b"x", headers={"content-range": content_range})
    assert response.status_code in (400, 416), response.text
    assert_error(response, response.status_code)


@pytest.mark.parametrize("content_range", [b"\xb2-3", b"0-\xb2", b"\xd9\xa3-4"])
def test_non_ascii_digits_in_content_range(client: TestClient, content_range: bytes) -> None:
    location = start_upload(client, REPO)
    response = raw_request(
        client.app, "PATCH", location, headers=[(b"content-range", content_range)], chunks=[b"x"]
    )
    assert response.status in (400, 416), (response.status, response.body[:300])
    assert_raw_error(response, response.status)


def test_status_of_new_upload(client: TestClient) -> None:
    location = start_upload(client, REPO)
    response = client.get(location)
    assert response.status_code == 204
    assert response.headers["location"]
    assert response.headers["range"] == "0-0"
    assert response.headers["docker-upload-uuid"]
    assert response.content == b""


# -- cancel and unknown uploads -------------------------------------------------------------


def test_cancel_upload(client: TestClient) -> None:
    location = start_upload(client, REPO)
    client.patch(location, content=b"some data")
    response = client.delete(location)
    assert response.status_code == 204
    assert_error(client.get(location), 404, "BLOB_UPLOAD_UNKNOWN")
    assert_error(client.patch(location, content=b"x"), 404, "BLOB_UPLOAD_UNKNOWN")
    assert_error(
        client.put(with_query(location, f"digest={sha256(b'x')}")), 404, "BLOB_UPLOAD_UNKNOWN"
    )
    assert_error(client.delete(location), 404, "BLOB_UPLOAD_UNKNOWN")


@pytest.mark.parametrize("method", ["GET", "PATCH", "PUT", "DELETE"])
def test_unknown_upload_id(client: TestClient, method: str) -> None:
    location = f"/v2/{REPO}/blobs/uploads/3f2a1b7c-0000-4000-8000-000000000000"
    response = client.request(method, with_query(location, f"digest={sha256(b'x')}"), content=b"x")
    assert_error(response, 404, "BLOB_UPLOAD_UNKNOWN")


@pytest.mark.parametrize("upload_id", ["not-a-uuid", "..", "%2E%2E", "x" * 300])
def test_odd_upload_ids_are_unknown(client: TestClient, upload_id: str) -> None:
    response = raw_request(client.app, "GET", f"/v2/{REPO}/blobs/uploads/{upload_id}")
    assert_raw_error(response, 404, "BLOB_UPLOAD_UNKNOWN")


@pytest.mark.parametrize("method", ["GET", "PATCH", "PUT", "DELETE"])
def test_upload_id_from_another_repository(client: TestClient, method: str) -> None:
    location = start_upload(client, "other/repo")
    upload_id = location.rstrip("/").rsplit("/", 1)[1].split("?")[0]
    foreign = f"/v2/{REPO}/blobs/uploads/{upload_id}?digest={sha256(b'x')}"
    assert_error(client.request(method, foreign, content=b"x"), 404, "BLOB_UPLOAD_UNKNOWN")
    # The upload in its own repository is untouched.
    status = client.get(location)
    assert status.status_code == 204
    assert status.headers["range"] == "0-0"


def test_post_to_upload_id_is_unsupported(client: TestClient) -> None:
    location = start_upload(client, REPO)
    assert_error(client.post(location), 405, "UNSUPPORTED")


def test_patch_without_upload_id_is_unsupported(client: TestClient) -> None:
    assert_error(client.patch(f"/v2/{REPO}/blobs/uploads/", content=b"x"), 405, "UNSUPPORTED")


# -- cross-repository mount -----------------------------------------------------------------


def test_mount_from_other_repository(client: TestClient) -> None:
    digest = push_blob(client, "source/repo", DATA)
    response = client.post(f"/v2/{REPO}/blobs/uploads/?mount={digest}&from=source/repo")
    assert response.status_code == 201, response.text
    assert response.headers["docker-content-digest"] == digest
    assert response.headers["location"].endswith(f"/v2/{REPO}/blobs/{digest}")
    assert client.get(f"/v2/{REPO}/blobs/{digest}").content == DATA


def test_mount_blob_not_in_source_falls_back_to_upload(client: TestClient) -> None:
    digest = push_blob(client, "third", DATA)
    client.post(f"/v2/source/blobs/uploads/?digest={sha256(b'x')}", content=b"x")
    response = client.post(f"/v2/{REPO}/blobs/uploads/?mount={digest}&from=source")
    assert response.status_code == 202, response.text
    location = response.headers["location"]
    assert f"/v2/{REPO}/blobs/uploads/" in location
    assert not blob_visible(client, REPO, digest)
    # The fallback is a working upload session.
    assert client.put(with_query(location, f"digest={digest}"), content=DATA).status_code == 201
    assert blob_visible(client, REPO, digest)


def test_mount_unknown_source_repository_falls_back(client: TestClient) -> None:
    digest = push_blob(client, "third", DATA)
    response = client.post(f"/v2/{REPO}/blobs/uploads/?mount={digest}&from=no/such/repo")
    assert response.status_code == 202, response.text
    assert f"/v2/{REPO}/blobs/uploads/" in response.headers["location"]
    assert not blob_visible(client, REPO, digest)


def test_mount_without_from_falls_back(client: TestClient) -> None:
    digest = push_blob(client, "third", DATA)
    response = client.post(f"/v2/{REPO}/blobs/uploads/?mount={digest}")
    assert response.status_code == 202, response.text
    assert f"/v2/{REPO}/blobs/uploads/" in response.headers["location"]
    assert not blob_visible(client, REPO, digest)


def test_mount_invalid_digest(client: TestClient) -> None:
    response = client.post(f"/v2/{REPO}/blobs/uploads/?mount=sha256:nope&from=source")
    assert_error(response, 400, "DIGEST_INVALID")


def test_mount_within_same_repository(client: TestClient) -> None:
    digest = push_blob(client, REPO, DATA)
    response = client.post(f"/v2/{REPO}/blobs/uploads/?mount={digest}&from={REPO}")
    assert response.status_code == 201


def test_mount_sha512(client: TestClient) -> None:
    digest = push_blob(client, "source", DATA, sha512(DATA))
    response = client.post(f"/v2/{REPO}/blobs/uploads/?mount={digest}&from=source")
    assert response.status_code == 201
    assert client.get(f"/v2/{REPO}/blobs/{digest}").content == DATA


def test_mount_of_unlinked_blob_falls_back(client: TestClient) -> None:
    digest = push_blob(client, "source", DATA)
    assert client.delete(f"/v2/source/blobs/{digest}").status_code == 202
    response = client.post(f"/v2/{REPO}/blobs/uploads/?mount={digest}&from=source")
    assert response.status_code == 202
