"""Repositories, their artifacts and tags.

Repository names contain slashes, so sub-resources follow a `/-/` separator (as GitLab
does): `/repositories/acme/web/api/-/artifacts`. No name component can be `-`, so the
split is never ambiguous.
"""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from portside.auth.errors import Forbidden, Missing, Unauthenticated
from portside.content.browse import ARTIFACT_SORTS, REPOSITORY_SORTS, ArtifactSummary
from portside.content.manifests import StoredManifest
from portside.digest import is_digest
from portside.errors import RegistryError, Unsupported
from portside.mgmt.paging import Paging, describe_page, parse_sort
from portside.mgmt.routes import convert
from portside.mgmt.schemas import (
    ArtifactDetail,
    ArtifactOut,
    AttachedOut,
    ReferrerOut,
    RepositoryOut,
    TagIn,
)
from portside.mgmt.security import Caller, Ctx, project_access, require_repository
from portside.reference import validate_name

router = APIRouter(tags=["repositories"])

RepositoryName = Annotated[str, "a repository name, slashes included"]


def _name(name: str) -> str:
    try:
        return validate_name(name)
    except RegistryError as error:
        raise Missing(f"no repository {name!r}: {error.message}") from None


@router.get("/repositories", response_model=list[RepositoryOut])
def list_repositories(
    request: Request,
    response: Response,
    ctx: Ctx,
    caller: Caller,
    paging: Paging,
    project: Annotated[str | None, Query(max_length=64, description="Only this project.")] = None,
    q: Annotated[str | None, Query(max_length=255, description="Name contains.")] = None,
    sort: Annotated[
        str | None,
        Query(description="name, pushed_at, pulled_at, size or artifact_count; - for descending."),
    ] = None,
) -> list[RepositoryOut]:
    field, descending = parse_sort(sort, REPOSITORY_SORTS, "name")
    visible = ctx.auth.visible_projects(caller.identity)
    if project is not None:
        # One definition of "may list" for the catalog and here: Policy.visible_projects.
        project_access(ctx, caller, project)
        if visible is not None and project not in visible:
            if not caller.signed_in:
                raise Unauthenticated("sign in first")
            raise Forbidden(f"you may not list the repositories of project {project!r}")
        projects: list[str] | None = [project]
    else:
        projects = visible
    found, total = ctx.browser.repositories(
        projects=projects,
        search=q,
        sort=field,
        descending=descending,
        limit=paging.size,
        offset=paging.offset,
    )
    describe_page(request, response, paging, total)
    return [convert.repository(r) for r in found]


@router.get("/repositories/{name:path}/-/artifacts", response_model=list[ArtifactOut])
def list_artifacts(
    name: RepositoryName,
    request: Request,
    response: Response,
    ctx: Ctx,
    caller: Caller,
    paging: Paging,
    tag: Annotated[str | None, Query(max_length=128, description="Tag contains.")] = None,
    sort: Annotated[
        str | None, Query(description="pushed_at, pulled_at, size or digest; - for descending.")
    ] = None,
    grouped: Annotated[
        bool,
        Query(
            description="Only artifacts that stand on their own, each with what belongs "
            "under it (platform manifests, signatures, SBOMs, referrers) and its signature "
            "status."
        ),
    ] = False,
) -> list[ArtifactOut]:
    name = _name(name)
    require_repository(ctx, caller, name, "pull")
    field, descending = parse_sort(sort, ARTIFACT_SORTS, "-pushed_at")
    found, total = ctx.browser.artifacts(
        name,
        tag=tag,
        sort=field,
        descending=descending,
        limit=paging.size,
        offset=paging.offset,
        top_level=grouped,
    )
    if not found and total == 0 and ctx.browser.repository(name) is None:
        raise Missing(f"no repository {name!r}")
    describe_page(request, response, paging, total)
    scans = ctx.scans.store.summaries(name, [a.digest for a in found])
    listed = [convert.artifact(a) for a in found] if not grouped else _grouped(ctx, name, found)
    for out in listed:
        out.vulnerabilities = convert.vulnerabilities(scans.get(out.digest))
    return listed


def _grouped(ctx: Ctx, name: str, found: list[ArtifactSummary]) -> list[ArtifactOut]:
    """The page with what belongs under each artifact and signature statuses: a fixed
    number of queries for the page (and verification of signatures not yet judged)."""
    attached = ctx.browser.attached(name, found)
    everything = [a.digest for a in found]
    everything += [x.artifact.digest for items in attached.values() for x in items]
    reports = ctx.signatures.reports(name, everything)
    result = []
    for artifact in found:
        out = convert.artifact(artifact)
        out.signature = convert.signature_status(reports.get(artifact.digest, []))
        out.attached = []
        for item in attached[artifact.digest]:
            child = AttachedOut(
                **convert.artifact(item.artifact).model_dump(),
                relation=item.relation,  # type: ignore[arg-type]
            )
            child.signature = convert.signature_status(reports.get(item.artifact.digest, []))
            out.attached.append(child)
        result.append(out)
    return result


@router.get("/repositories/{name:path}/-/artifacts/{reference}", response_model=ArtifactDetail)
def get_artifact(name: RepositoryName, reference: str, ctx: Ctx, caller: Caller) -> ArtifactDetail:
    """One artifact by digest or tag: its manifest, image config and referrers."""
    name = _name(name)
    require_repository(ctx, caller, name, "pull")
    stored = stored_artifact(ctx, name, reference)
    found, _ = ctx.browser.artifacts(name, digest=stored.digest, limit=1)
    summary = found[0] if found else None
    if summary is None:
        raise Missing(f"no artifact {reference!r} in {name!r}")
    manifest = json.loads(stored.content)
    config = None
    if summary.kind == "image" and isinstance(manifest.get("config"), dict):
        config = ctx.browser.read_config(manifest["config"])
    referrers = [
        ReferrerOut(
            digest=r["digest"],
            media_type=r["mediaType"],
            artifact_type=r.get("artifactType"),
            size=r["size"],
        )
        for r in ctx.manifests.referrers(name, stored.digest, None)
    ]
    latest = ctx.scans.store.latest(name, stored.digest)
    return ArtifactDetail(
        **convert.artifact(summary).model_dump(exclude={"vulnerabilities"}),
        vulnerabilities=convert.vulnerabilities(latest),
        manifest=manifest,
        config=config,
        referrers=referrers,
    )


def stored_artifact(ctx: Ctx, name: str, reference: str) -> StoredManifest:
    """The artifact's manifest by tag or digest (not counted as a pull); 404 if none."""
    try:
        return ctx.manifests.get(name, reference, pulled_by=None)
    except RegistryError:
        raise Missing(f"no artifact {reference!r} in {name!r}") from None


def _deletes_enabled(ctx: Ctx) -> None:
    if not ctx.settings.registry.delete_enabled:
        raise Unsupported("deletes are disabled on this registry (registry.delete_enabled)")


@router.delete("/repositories/{name:path}/-/artifacts/{reference}", status_code=204)
def delete_artifact(name: RepositoryName, reference: str, ctx: Ctx, caller: Caller) -> None:
    """Delete an artifact by digest (and every tag pointing at it)."""
    digest = reference
    name = _name(name)
    require_repository(ctx, caller, name, "delete")
    _deletes_enabled(ctx)
    if not is_digest(digest):
        raise Missing("artifacts are deleted by digest; remove a tag with DELETE .../-/tags/TAG")
    ctx.manifests.delete(name, digest, actor=caller.actor)


@router.post("/repositories/{name:path}/-/artifacts/{reference}/tags", status_code=201)
def add_tag(name: RepositoryName, reference: str, body: TagIn, ctx: Ctx, caller: Caller) -> None:
    """Point a tag (new or existing) at this artifact, named by digest."""
    digest = reference
    name = _name(name)
    require_repository(ctx, caller, name, "push")
    ctx.manifests.add_tag(name, body.name, digest, caller.actor)


@router.delete("/repositories/{name:path}/-/tags/{tag}", status_code=204)
def delete_tag(name: RepositoryName, tag: str, ctx: Ctx, caller: Caller) -> None:
    name = _name(name)
    require_repository(ctx, caller, name, "delete")
    _deletes_enabled(ctx)
    if is_digest(tag):
        raise Missing(f"no tag {tag!r}")
    ctx.manifests.delete(name, tag, actor=caller.actor)


@router.get("/repositories/{name:path}", response_model=RepositoryOut)
def get_repository(name: RepositoryName, ctx: Ctx, caller: Caller) -> RepositoryOut:
    name = _name(name)
    require_repository(ctx, caller, name, "pull")
    found = ctx.browser.repository(name)
    if found is None:
        raise Missing(f"no repository {name!r}")
    return convert.repository(found)


@router.delete("/repositories/{name:path}", status_code=204)
def delete_repository(name: RepositoryName, ctx: Ctx, caller: Caller) -> None:
    """Delete a repository with all its artifacts and tags (storage is reclaimed by GC)."""
    name = _name(name)
    require_repository(ctx, caller, name, "delete")
    _deletes_enabled(ctx)
    if not ctx.manifests.delete_repository(name, caller.actor):
        raise Missing(f"no repository {name!r}")
