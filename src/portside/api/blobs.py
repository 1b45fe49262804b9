"""GET/HEAD/DELETE /v2/<name>/blobs/<digest>, with single byte ranges (RFC 9110)."""

from __future__ import annotations

import os
import re

from portside.api.context import Context
from portside.api.http import FileBody, Request, Response, empty
from portside.digest import Digest
from portside.errors import BlobUnknown, RangeUnsatisfiable, Unsupported

_RANGE = re.compile(r"\s*bytes=([0-9]*)-([0-9]*)\s*", re.ASCII | re.IGNORECASE)


def parse_range(value: str, size: int) -> tuple[int, int] | None:
    """(start, end inclusive) for a single `bytes=` range; None means serve it all
    (malformed, another unit, or several ranges, which RFC 9110 lets a server ignore)."""
    found = _RANGE.fullmatch(value)
    if found is None:
        return None
    first, last = found.groups()
    if not first and not last:
        return None
    unsatisfiable = RangeUnsatisfiable(headers={"Content-Range": f"bytes */{size}"})
    if not first:
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise unsatisfiable
        return max(size - suffix, 0), size - 1
    start = int(first)
    if last and int(last) < start:
        return None  # an invalid range-spec is ignored, not refused (RFC 9110 14.1.1)
    if start >= size:
        raise unsatisfiable
    end = min(int(last), size - 1) if last else size - 1
    return start, end


async def get(ctx: Context, request: Request, name: str, digest_text: str) -> Response:
    digest = Digest.parse(digest_text)
    info = ctx.blobs.stat(name, digest)
    path = ctx.blobs.local_path(info)
    if path is None or (request.method == "GET" and not os.path.isfile(path)):
        # Metadata says yes but the bytes are gone: say so rather than send a broken body.
        raise BlobUnknown(f"blob {digest} is missing from storage", detail={"digest": str(digest)})
    response = Response(200)
    response.header("docker-content-digest", str(digest))
    response.header("content-type", "application/octet-stream")
    response.header("accept-ranges", "bytes")
    response.header("etag", f'"{digest}"')
    response.header("cache-control", "max-age=31536000")
    byte_range = None
    range_header = request.header("range")
    if range_header and request.method == "GET":
        byte_range = parse_range(range_header, info.size)
    if byte_range is None:
        response.header("content-length", str(info.size))
        response.file = FileBody(path, 0, info.size, whole=True)
        return response
    start, end = byte_range
    response.status = 206
    response.header("content-range", f"bytes {start}-{end}/{info.size}")
    response.header("content-length", str(end - start + 1))
    response.file = FileBody(path, start, end - start + 1, whole=False)
    return response


async def delete(ctx: Context, name: str, digest_text: str) -> Response:
    if not ctx.settings.registry.delete_enabled:
        raise Unsupported("deletes are disabled on this registry (registry.delete_enabled)")
    digest = Digest.parse(digest_text)
    ctx.blobs.unlink(name, digest)
    return empty(202)
