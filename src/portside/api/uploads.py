"""Blob uploads: POST (start, monolithic, mount), PATCH, PUT, GET status, DELETE."""

from __future__ import annotations

from portside.api.http import Request, Response, empty
from portside.content.uploads import ContentRange, parse_content_range
from portside.context import Context
from portside.digest import Digest
from portside.errors import BlobUploadInvalid, RegistryError
from portside.reference import validate_name


def _location(ctx: Context, name: str, upload_id: str) -> str:
    return ctx.url(f"/v2/{name}/blobs/uploads/{upload_id}")


def _progress(ctx: Context, name: str, upload_id: str, size: int, status: int) -> Response:
    return empty(
        status,
        {
            "location": _location(ctx, name, upload_id),
            "range": f"0-{max(size - 1, 0)}",
            "docker-upload-uuid": upload_id,
        },
    )


def _created(ctx: Context, name: str, digest: Digest) -> Response:
    return empty(
        201,
        {"location": ctx.url(f"/v2/{name}/blobs/{digest}"), "docker-content-digest": str(digest)},
    )


def _content_range(request: Request) -> ContentRange | None:
    value = request.header("content-range")
    return parse_content_range(value) if value else None


async def post(ctx: Context, request: Request, name: str) -> Response:
    await ctx.proxy.refuse_writes(name, "a blob upload")
    mount = request.query("mount")
    if mount is not None:
        digest = Digest.parse(mount)
        source = request.query("from")
        # Only from a repository the caller may pull: otherwise (and when the blob is not
        # there) fall back to a normal upload, as the spec requires, revealing nothing.
        if source:
            validate_name(source)
            if await ctx.io.run(_mount, ctx, request, name, digest, source):
                return _created(ctx, name, digest)
    else:
        digest_text = request.query("digest")
        if digest_text is not None:
            digest = Digest.parse(digest_text)
            await ctx.uploads.monolithic(
                name, digest, request.stream(), request.content_length(), request.actor
            )
            return _created(ctx, name, digest)
    upload_id = await ctx.io.run(ctx.uploads.start, name, request.caller.owner)
    return _progress(ctx, name, upload_id, 0, 202)


async def patch(ctx: Context, request: Request, name: str, upload_id: str) -> Response:
    try:
        size = await ctx.uploads.append(
            name,
            upload_id,
            request.stream(),
            content_range=_content_range(request),
            length=request.content_length(),
            owner=request.caller.owner,
        )
    except RegistryError as error:
        if error.status == 416:
            error.headers.setdefault("location", _location(ctx, name, upload_id))
            error.headers.setdefault("docker-upload-uuid", upload_id)
        raise
    return _progress(ctx, name, upload_id, size, 202)


async def put(ctx: Context, request: Request, name: str, upload_id: str) -> Response:
    digest_text = request.query("digest")
    if digest_text is None:
        raise BlobUploadInvalid("the digest query parameter is required to finish an upload")
    digest = Digest.parse(digest_text)
    await ctx.uploads.finish(
        name,
        upload_id,
        digest,
        request.stream(),
        content_range=_content_range(request),
        length=request.content_length(),
        actor=request.actor,
        owner=request.caller.owner,
    )
    return _created(ctx, name, digest)


async def status(ctx: Context, request: Request, name: str, upload_id: str) -> Response:
    size = await ctx.io.run(ctx.uploads.size, name, upload_id, request.caller.owner)
    return _progress(ctx, name, upload_id, size, 204)


async def cancel(ctx: Context, request: Request, name: str, upload_id: str) -> Response:
    await ctx.io.run(ctx.uploads.cancel, name, upload_id, request.caller.owner)
    return empty(204)


def _mount(ctx: Context, request: Request, name: str, digest: Digest, source: str) -> bool:
    """On the pool: mount if the caller may pull the source and the blob is there."""
    if not request.caller.may(source, "pull"):
        return False
    return ctx.blobs.try_mount(name, digest, source, request.actor) is not None
