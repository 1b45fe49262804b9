"""The error classes: OCI codes, HTTP statuses, and the JSON body."""

from __future__ import annotations

import json

import pytest

from portside import errors as e

EXPECTED = [
    (e.BlobUnknown, "BLOB_UNKNOWN", 404),
    (e.BlobUploadInvalid, "BLOB_UPLOAD_INVALID", 400),
    (e.BlobUploadUnknown, "BLOB_UPLOAD_UNKNOWN", 404),
    (e.DigestInvalid, "DIGEST_INVALID", 400),
    (e.ManifestBlobUnknown, "MANIFEST_BLOB_UNKNOWN", 400),
    (e.ManifestInvalid, "MANIFEST_INVALID", 400),
    (e.ManifestUnknown, "MANIFEST_UNKNOWN", 404),
    (e.NameInvalid, "NAME_INVALID", 400),
    (e.NameUnknown, "NAME_UNKNOWN", 404),
    (e.SizeInvalid, "SIZE_INVALID", 400),
    (e.TagInvalid, "TAG_INVALID", 400),
    (e.Unauthorized, "UNAUTHORIZED", 401),
    (e.Denied, "DENIED", 403),
    (e.Unsupported, "UNSUPPORTED", 405),
    (e.TooManyRequests, "TOOMANYREQUESTS", 429),
]


@pytest.mark.parametrize(("cls", "code", "status"), EXPECTED)
def test_codes_and_statuses(cls: type[e.RegistryError], code: str, status: int) -> None:
    error = cls()
    assert error.code == code
    assert error.status == status
    body = json.loads(error.body())
    assert body == {"errors": [{"code": code, "message": error.message}]}
    assert error.message


def test_body_with_detail_and_message() -> None:
    error = e.BlobUnknown("gone", detail={"digest": "sha256:x"})
    assert json.loads(error.body()) == {
        "errors": [{"code": "BLOB_UNKNOWN", "message": "gone", "detail": {"digest": "sha256:x"}}]
    }


def test_headers_default_to_empty_and_are_per_instance() -> None:
    first = e.RangeNotSatisfiable(headers={"Range": "0-1"})
    second = e.RangeNotSatisfiable()
    assert first.headers == {"Range": "0-1"}
    assert second.headers == {}
    second.headers["x"] = "y"
    assert e.RangeNotSatisfiable().headers == {}


def test_special_statuses() -> None:
    assert e.ManifestTooLarge.status == 413
    assert e.NotFound.status == 404
    assert e.RangeNotSatisfiable.status == 416
    assert e.RangeUnsatisfiable.status == 416
    assert e.Conflict.status == 409
    assert e.PaginationNumberInvalid.status == 400
    assert all(issubclass(cls, e.RegistryError) for cls, _, _ in EXPECTED)
