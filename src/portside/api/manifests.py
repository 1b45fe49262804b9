"""GET/HEAD/PUT/DELETE /v2/<name>/manifests/<reference>."""

from __future__ import annotations

import contextlib

from portside.api.http import Request, Response, empty, json_body
from portside.auth.tokens import TokenInvalid
from portside.content.manifests import StoredManifest
from portside.content.pull_policy import refuse
from portside.content.vulnerability import SCANNER_SUBJECT_PREFIX
from portside.context import Context
from portside.digest import is_digest
from portside.errors import ManifestTooLarge, ManifestUnknown, Unsupported
from portside.proxy.bindings import Binding
from portside.proxy.service import STALE_HEADERS


def accepts(accept_header: str | None, media_type: str) -> bool:
    """Does the client's Accept list allow this media type? No header means anything."""
    if not accept_header:
        return True
    super_type = media_type.split("/", 1)[0] + "/*"
    for item in accept_header.split(","):
        value, *params = item.split(";")
        if value.strip().lower() not in (media_type, "*/*", super_type):
            continue
        if all(_quality(param) != 0 for param in params):
            return True
    return False


def _quality(param: str) -> float | None:
    """The q value of one Accept parameter (None if it is not q=...)."""
    key, _, value = param.partition("=")
    if key.strip().lower() != "q":
        return None
    try:
        return float(value.strip())
    except ValueError:
        return None


async def get(ctx: Context, request: Request, name: str, reference: str) -> Response:
    head = request.method == "HEAD"
    stale = False
    # A proxy-cache project (a dict lookup; portside.proxy): its tags are revalidated
    # against the upstream after their TTL, and misses are fetched from it.
    binding = ctx.proxy.bound(name)
    if binding is None and not ctx.proxy.store.loaded:
        await ctx.proxy.ensure_loaded()
        binding = ctx.proxy.bound(name)
    if binding is not None and (
        is_digest(reference) or not ctx.proxy.confirmed(binding, name, reference)
    ):
        manifest, stale = await _proxied(ctx, binding, name, reference)
    else:
        try:
            manifest = await _local(ctx, name, reference)
        except ManifestUnknown:
            if binding is None:
                binding = await ctx.proxy.bound_now(name)
                if binding is None:
                    raise
            manifest, stale = await _proxied(ctx, binding, name, reference)
    if not accepts(request.header("accept"), manifest.media_type):
        raise ManifestUnknown(
            f"manifest is {manifest.media_type}, which the request's Accept header excludes",
            detail={"reference": reference[:200], "mediaType": manifest.media_type},
        )
    if manifest.policed and not head:
        await _police(ctx, request, name, manifest)
    if not head and ctx.manifests.pulled(name, reference, manifest, request.actor):
        await ctx.io.run(ctx.manifests.record_pull, manifest)
    response = json_body(200, manifest.content, manifest.media_type)
    response.header("docker-content-digest", manifest.digest)
    response.header("etag", f'"{manifest.digest}"')
    if stale:
        response.headers.extend(STALE_HEADERS)
    return response


async def _police(ctx: Context, request: Request, name: str, manifest: StoredManifest) -> None:
    """The project has pull policies (content.pull_policy): refuse the GET if they do.
    Only policed projects get here; their decision is cached under the hot path's data
    version (one more probe; none on PostgreSQL, where each policed GET decides)."""
    policy = ctx.pull_policy
    if policy.exempt(getattr(request.caller, "identity", None)) or _is_scanner(ctx, request):
        return
    version = ctx.hot.version()
    decision = policy.cached(name, manifest.digest, version)
    if decision is None:
        decision = await ctx.io.run(
            policy.decide, name, manifest.digest, manifest.media_type, manifest.content, version
        )
    if decision:
        raise refuse(decision, name, manifest.digest)


async def _local(ctx: Context, name: str, reference: str) -> StoredManifest:
    # A validated cache hit is memory only (content.hotpath); a miss queries on the pool.
    version, manifest = ctx.manifests.cached(name, reference)
    if manifest is None:
        lookup = ctx.manifests.lookup
        if version is None:  # no cache (PostgreSQL): each request queries
            manifest = await ctx.io.run(lookup, name, reference)
        else:  # requests missing under the same version share one query
            key = ("manifest", name, reference, version)
            manifest = await ctx.io.shared(key, lookup, name, reference, version)
    return manifest


async def _proxied(
    ctx: Context, binding: Binding, name: str, reference: str
) -> tuple[StoredManifest, bool]:
    """A proxy project's manifest: by digest from the cache when there, else (and for
    tags not confirmed within their TTL) through the proxy service."""
    if is_digest(reference):
        with contextlib.suppress(ManifestUnknown):
            return await _local(ctx, name, reference), False
    return await ctx.proxy.manifest(binding, name, reference)


def _is_scanner(ctx: Context, request: Request) -> bool:
    """A scanner pulling with the token minted for its scan (exempt, as in Harbor). In an
    open registry the guard reads no tokens, so the header is verified here."""
    caller = request.caller
    token = getattr(caller, "token", None)
    if token is None:
        header = request.header("authorization") or ""
        scheme, _, credentials = header.partition(" ")
        if scheme.lower() != "bearer" or not credentials.strip():
            return False
        try:
            token = ctx.auth.verifier.verify(credentials.strip())
        except TokenInvalid:
            return False
    return not token.external and token.subject.startswith(SCANNER_SUBJECT_PREFIX)


async def put(ctx: Context, request: Request, name: str, reference: str) -> Response:
    await ctx.proxy.refuse_writes(name, "a manifest push")
    limit = ctx.settings.registry.manifest_max_bytes
    length = request.content_length()
    if length is not None and length > limit:
        raise ManifestTooLarge(f"manifest is {length} bytes; the limit is {limit}")
    body = await request.read(limit)
    content_type = request.header("content-type")
    result = await ctx.io.run(ctx.manifests.put, name, reference, body, content_type, request.actor)
    headers = {
        "location": ctx.url(f"/v2/{name}/manifests/{result.digest}"),
        "docker-content-digest": result.digest,
    }
    if result.subject:
        headers["oci-subject"] = result.subject
    return empty(201, headers)


async def delete(ctx: Context, request: Request, name: str, reference: str) -> Response:
    if not ctx.settings.registry.delete_enabled:
        raise Unsupported("deletes are disabled on this registry (registry.delete_enabled)")
    await ctx.proxy.refuse_writes(name, "a delete")
    await ctx.io.run(ctx.manifests.delete, name, reference, actor=request.actor)
    return empty(202)
