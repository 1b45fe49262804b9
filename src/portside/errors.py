"""OCI distribution error codes, their HTTP statuses, and the JSON error body.

Every error a client can see is one of the classes below; the /v2 handlers raise them
and one place renders them, so no handler writes an error body by hand.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar


class RegistryError(Exception):
    """Base for errors rendered as `{"errors":[{"code":..., "message":..., "detail":...}]}`."""

    code: ClassVar[str] = "UNKNOWN"
    status: ClassVar[int] = 500
    default_message: ClassVar[str] = "unknown error"

    def __init__(
        self,
        message: str | None = None,
        *,
        detail: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.message = message or self.default_message
        self.detail = detail
        self.headers = headers or {}
        super().__init__(self.message)

    def body(self) -> bytes:
        entry: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.detail is not None:
            entry["detail"] = self.detail
        return json.dumps({"errors": [entry]}).encode()


class BlobUnknown(RegistryError):
    code, status, default_message = "BLOB_UNKNOWN", 404, "blob unknown to registry"


class BlobUploadInvalid(RegistryError):
    code, status, default_message = "BLOB_UPLOAD_INVALID", 400, "blob upload invalid"


class BlobUploadUnknown(RegistryError):
    code, status, default_message = "BLOB_UPLOAD_UNKNOWN", 404, "blob upload unknown to registry"


class DigestInvalid(RegistryError):
    code, status, default_message = (
        "DIGEST_INVALID",
        400,
        "provided digest did not match uploaded content",
    )


class ManifestBlobUnknown(RegistryError):
    code, status, default_message = (
        "MANIFEST_BLOB_UNKNOWN",
        400,
        "manifest references a manifest or blob unknown to registry",
    )


class ManifestInvalid(RegistryError):
    code, status, default_message = "MANIFEST_INVALID", 400, "manifest invalid"


class ManifestTooLarge(ManifestInvalid):
    status = 413


class ManifestUnknown(RegistryError):
    code, status, default_message = "MANIFEST_UNKNOWN", 404, "manifest unknown to registry"


class NameInvalid(RegistryError):
    code, status, default_message = "NAME_INVALID", 400, "invalid repository name"


class NameUnknown(RegistryError):
    code, status, default_message = "NAME_UNKNOWN", 404, "repository name not known to registry"


class SizeInvalid(RegistryError):
    code, status, default_message = (
        "SIZE_INVALID",
        400,
        "provided length did not match content length",
    )


class TagInvalid(RegistryError):
    code, status, default_message = "TAG_INVALID", 400, "invalid tag"


class Unauthorized(RegistryError):
    code, status, default_message = "UNAUTHORIZED", 401, "authentication required"


class Denied(RegistryError):
    code, status, default_message = "DENIED", 403, "requested access to the resource is denied"


class QuotaExceeded(Denied):
    """A push that would take its project past its storage quota (content.quota)."""

    default_message = "storage quota exceeded"


class Unsupported(RegistryError):
    code, status, default_message = "UNSUPPORTED", 405, "the operation is unsupported"


class NotFound(Unsupported):
    """A path outside the API; rendered as UNSUPPORTED with 404 so clients see JSON."""

    status, default_message = 404, "no such API endpoint"


class TooManyRequests(RegistryError):
    code, status, default_message = "TOOMANYREQUESTS", 429, "too many requests"


class RangeNotSatisfiable(RegistryError):
    """A chunk that does not continue the upload where it stands (416 with the current Range)."""

    code, status, default_message = (
        "BLOB_UPLOAD_INVALID",
        416,
        "chunk does not start at the end of the upload",
    )


class RangeUnsatisfiable(RegistryError):
    """A blob GET whose Range lies outside the blob (416 with `Content-Range: bytes */size`)."""

    code, status, default_message = "RANGE_INVALID", 416, "requested range not satisfiable"


class PaginationNumberInvalid(RegistryError):
    code, status, default_message = (
        "PAGINATION_NUMBER_INVALID",
        400,
        "invalid number of results requested",
    )


class UriTooLong(RegistryError):
    """A request-target (path and query) over api.http.MAX_TARGET bytes. No OCI code
    covers it; this one is Portside's (granian itself answers 414 without a body, but
    only past its ~400 KiB buffer)."""

    code, status, default_message = "URI_TOO_LONG", 414, "request URI too long"


class HeadersTooLarge(RegistryError):
    """Request header fields over api.http.MAX_HEADER_BYTES in total; Portside's code."""

    code, status, default_message = (
        "HEADERS_TOO_LARGE",
        431,
        "request header fields too large",
    )


class Conflict(RegistryError):
    """A delete that would leave a dangling reference; the body names what still needs it."""

    code, status, default_message = "DENIED", 409, "resource is still referenced"


class Unavailable(RegistryError):
    code, status, default_message = "UNAVAILABLE", 503, "service unavailable"


class InternalError(RegistryError):
    """Our fault, never the client's: logged with its traceback, shown only as this."""

    code, status, default_message = "UNKNOWN", 500, "internal server error"
