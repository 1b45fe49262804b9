"""Listing: tags, the catalog (both paginated with n/last and Link), and referrers."""

from __future__ import annotations

import json
from collections.abc import Callable
from urllib.parse import quote

from portside.api.http import Request, Response, json_body
from portside.context import Context
from portside.digest import Digest
from portside.errors import PaginationNumberInvalid
from portside.oci.mediatypes import OCI_INDEX
from portside.reference import is_ascii_int, is_valid_name, is_valid_tag

MAX_PAGE = 10_000


def _page(request: Request, last_valid: Callable[[str], bool]) -> tuple[int | None, str | None]:
    """`n` and `last`. Like Distribution, an `n` past the page limit is refused rather than
    cut short, and a `last` that could not be in the list (an invalid tag or repository
    name) is refused as well: both 400 PAGINATION_NUMBER_INVALID, the spec's code for a
    bad pagination request."""
    raw_n = request.query("n")
    limit: int | None = None
    if raw_n is not None and raw_n != "":
        if not is_ascii_int(raw_n):
            raise PaginationNumberInvalid(
                f"n must be a non-negative integer, got {raw_n[:20]!r}", detail={"n": raw_n[:20]}
            )
        if len(raw_n) > len(str(MAX_PAGE)) or int(raw_n) > MAX_PAGE:
            raise PaginationNumberInvalid(
                f"n must be at most {MAX_PAGE}, got {raw_n[:20]}", detail={"n": raw_n[:20]}
            )
        limit = int(raw_n)
    last = request.query("last") or None
    if last is not None and not last_valid(last):
        raise PaginationNumberInvalid(
            f"last must be a name from a previous page, got {last[:200]!r}",
            detail={"last": last[:200]},
        )
    return limit, last


def _paginated(
    path: str, key: str, items: list[str], limit: int | None, extra: dict[str, str]
) -> Response:
    body = json.dumps({**extra, key: items}).encode()
    response = json_body(200, body)
    if limit is not None and limit > 0 and len(items) == limit:
        link = f"{path}?n={limit}&last={quote(items[-1], safe='')}"
        response.header("link", f'<{link}>; rel="next"')
    return response


async def tags(ctx: Context, request: Request, name: str) -> Response:
    limit, last = _page(request, is_valid_tag)
    names = await ctx.io.run(_tags, ctx, name, limit, last)
    return _paginated(ctx.url(f"/v2/{name}/tags/list"), "tags", names, limit, {"name": name})


async def catalog(ctx: Context, request: Request) -> Response:
    limit, last = _page(request, is_valid_name)
    names = await ctx.io.run(_catalog, ctx, request, limit, last)
    return _paginated(ctx.url("/v2/_catalog"), "repositories", names, limit, {})


async def referrers(ctx: Context, request: Request, name: str, digest_text: str) -> Response:
    subject = Digest.parse(digest_text)
    artifact_type = request.query("artifactType") or None
    descriptors = await ctx.io.run(ctx.manifests.referrers, name, str(subject), artifact_type)
    body = json.dumps(
        {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": descriptors}
    ).encode()
    response = json_body(200, body, OCI_INDEX)
    if artifact_type is not None:
        response.header("oci-filters-applied", "artifactType")
    return response


def _tags(ctx: Context, name: str, limit: int | None, last: str | None) -> list[str]:
    if limit == 0:
        ctx.manifests.tags(name, 1, None)  # still 404 for an unknown repository
        return []
    return ctx.manifests.tags(name, limit, last)


def _catalog(ctx: Context, request: Request, limit: int | None, last: str | None) -> list[str]:
    projects = request.caller.visible_projects()
    return [] if limit == 0 else ctx.manifests.catalog(limit, last, projects)
