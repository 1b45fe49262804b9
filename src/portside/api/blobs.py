"""GET/HEAD/DELETE /v2/<name>/blobs/<digest>, with single byte ranges (RFC 9110).

A GET is served, in this order of preference: by redirect (307) when the storage driver
offers a URL for the blob (object stores); from a local file the server sends itself
(the filesystem driver: no blob bytes pass through Python); else streamed from the
driver's reader, a chunk at a time on the blocking-work pool."""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncGenerator
from dataclasses import dataclass

from portside.api.http import FileBody, Request, Response, empty
from portside.content.blobs import BlobInfo
from portside.context import Context
from portside.digest import Digest
from portside.errors import BlobUnknown, RangeUnsatisfiable, Unsupported
from portside.proxy.service import Streamed
from portside.storage.base import PathNotFound, Reader

# Reads from a driver without local files (object storage): two of these in flight per
# download, at most.
_STREAM_CHUNK = 512 * 1024
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
        try:
            info = await _stat(ctx, name, digest, version)
        except BlobUnknown:
            # A proxy-cache project fetches what a cached manifest lists (portside.proxy).
            binding = await ctx.proxy.bound_now(name)
            if binding is None:
                raise
            filling = await ctx.proxy.blob(binding, name, digest, head=request.method == "HEAD")
            if filling is not None:
                return _filling(request, digest, filling)
            info = await _stat(ctx, name, digest, None)
    digest_text = str(digest)
    headers = [
        ("docker-content-digest", digest_text),
        ("content-type", "application/octet-stream"),
        ("accept-ranges", "bytes"),
        ("etag", f'"{digest_text}"'),
        ("cache-control", "max-age=31536000"),
    ]
    if request.method == "HEAD":
        # Answered from the database alone: storage is never asked (nor redirected to).
        headers.append(("content-length", str(info.size)))
        return Response(200, headers)
    range_header = request.header("range")
    byte_range = parse_range(range_header, info.size) if range_header else None
    start, end = (0, info.size - 1) if byte_range is None else byte_range
    length = end - start + 1
    source = await ctx.io.run(_locate, ctx, info, start, length)
    if source.url is not None:
        # The driver serves the bytes itself (an object store's signed URL), as
        # Distribution does; the client sends its Range header there.
        redirect = [("location", source.url), ("docker-content-digest", digest_text)]
        return Response(307, [*redirect, ("content-length", "0")])
    if byte_range is None:
        status = 200
    else:
        status = 206
        headers.append(("content-range", f"bytes {start}-{end}/{info.size}"))
    headers.append(("content-length", str(length)))
    if source.path is not None:
        # Sent by the server from the file (sendfile/pathsend): no bytes through Python.
        return Response(
            status, headers, file=FileBody(source.path, start, length, byte_range is None)
        )
    assert source.reader is not None
    return Response(status, headers, stream=_ReaderStream(ctx, source.reader, length))


async def _stat(ctx: Context, name: str, digest: Digest, version: int | None) -> BlobInfo:
    if version is None:  # no cache (PostgreSQL): each request queries
        return await ctx.io.run(ctx.blobs.stat, name, digest)
    # requests missing under the same version share one query
    key = ("blob", name, digest, version)
    return await ctx.io.shared(key, ctx.blobs.stat, name, digest, version)


def _filling(request: Request, digest: Digest, streamed: Streamed) -> Response:
    """A blob fetched from the upstream: streamed from its fill as it arrives, or passed
    through (the whole blob; a Range is ignored, as RFC 9110 allows)."""
    headers = [
        ("docker-content-digest", str(digest)),
        ("content-type", "application/octet-stream"),
        ("content-length", str(streamed.size)),
        ("x-portside-cache", streamed.cache),
    ]
    if request.method == "HEAD":
        return Response(200, headers)
    return Response(200, headers, stream=streamed.body)


@dataclass(frozen=True, slots=True)
class _Source:
    """Where a blob GET's bytes come from: a redirect, a local file, or a reader."""

    url: str | None = None
    path: str | None = None
    reader: Reader | None = None


def _locate(ctx: Context, info: BlobInfo, start: int, length: int) -> _Source:
    """On the pool: ask the driver for a URL, then a local path, else open a reader at
    `start`. Metadata says the blob exists; if its bytes are gone, say so rather than
    send a broken body."""
    missing = BlobUnknown(
        f"blob {info.digest} is missing from storage", detail={"digest": str(info.digest)}
    )
    url = ctx.storage.redirect_url(info.storage_path, "GET")
    if url is not None:
        return _Source(url=url)
    path = ctx.blobs.local_path(info)
    if path is not None:
        if not os.path.isfile(path):
            raise missing
        return _Source(path=path)
    try:
        return _Source(reader=ctx.storage.reader(info.storage_path, start))
    except PathNotFound:
        raise missing from None


class _ReaderStream:
    """`length` bytes from a driver's reader, read on the pool _STREAM_CHUNK at a time,
    the next read running while the current chunk is sent: memory stays at two chunks
    per download whatever the blob's size."""

    def __init__(self, ctx: Context, reader: Reader, length: int) -> None:
        self.io = ctx.io
        self.reader: Reader | None = reader
        self.length = length

    async def chunks(self) -> AsyncGenerator[bytes, None]:
        reader = self.reader
        assert reader is not None
        remaining = self.length
        pending: asyncio.Future[bytes] | None = None
        try:
            if remaining > 0:
                pending = self.io.start(reader.read, min(_STREAM_CHUNK, remaining))
            while pending is not None:
                chunk = await pending
                pending = None
                if not chunk:
                    break  # shorter than recorded: the response ends short, never hangs
                remaining -= len(chunk)
                if remaining > 0:
                    pending = self.io.start(reader.read, min(_STREAM_CHUNK, remaining))
                yield chunk
        finally:
            if pending is not None:  # the client left: let the read finish before close
                await asyncio.wait([pending])

    async def close(self) -> None:
        reader, self.reader = self.reader, None
        if reader is not None:
            await self.io.run(reader.close)


async def delete(ctx: Context, request: Request, name: str, digest_text: str) -> Response:
    if not ctx.settings.registry.delete_enabled:
        raise Unsupported("deletes are disabled on this registry (registry.delete_enabled)")
    digest = Digest.parse(digest_text)
    await ctx.proxy.refuse_writes(name, "a delete")
    await ctx.io.run(ctx.blobs.unlink, name, digest, request.actor)
    return empty(202)
