"""GET/HEAD/DELETE /v2/<name>/blobs/<digest>, with single byte ranges (RFC 9110)."""

from __future__ import annotations

import os
import re

from portside.api.http import FileBody, Request, Response, empty
from portside.context import Context
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
    # A validated cache hit is memory only (content.hotpath); a miss queries on the pool.
    version, info = ctx.blobs.cached(name, digest)
    if info is None:
        info = await ctx.io.run(ctx.blobs.stat, name, digest, version)
    digest_text = str(digest)
    headers = [
        ("docker-content-digest", digest_text),
        ("content-type", "application/octet-stream"),
        ("accept-ranges", "bytes"),
        ("etag", f'"{digest_text}"'),
        ("cache-control", "max-age=31536000"),
    ]
    if request.method == "HEAD":
        headers.append(("content-length", str(info.size)))
        return Response(200, headers)
    path = ctx.blobs.local_path(info)
    if path is None or not await ctx.io.run(os.path.isfile, path):
        # Metadata says yes but the bytes are gone: say so rather than send a broken body.
        raise BlobUnknown(f"blob {digest} is missing from storage", detail={"digest": digest_text})
    range_header = request.header("range")
    byte_range = parse_range(range_header, info.size) if range_header else None
    if byte_range is None:
        headers.append(("content-length", str(info.size)))
        return Response(200, headers, file=FileBody(path, 0, info.size, whole=True))
    start, end = byte_range
    headers.append(("content-range", f"bytes {start}-{end}/{info.size}"))
    headers.append(("content-length", str(end - start + 1)))
    return Response(206, headers, file=FileBody(path, start, end - start + 1, whole=False))


async def delete(ctx: Context, request: Request, name: str, digest_text: str) -> Response:
    if not ctx.settings.registry.delete_enabled:
        raise Unsupported("deletes are disabled on this registry (registry.delete_enabled)")
    digest = Digest.parse(digest_text)
    await ctx.io.run(ctx.blobs.unlink, name, digest, request.actor)
    return empty(202)
