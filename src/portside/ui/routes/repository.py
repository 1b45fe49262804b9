"""A repository's page (facts, pull commands, its artifacts with tags, type, platforms,
sizes and times; add and remove tags, delete an artifact or the repository) and an
artifact's page (layers, image config and history, the platforms of an index,
annotations, referrers, the manifest). All read and changed through the management API
as the visitor; the change forms are hidden from roles that cannot use them, and the
API's refusal is shown in words when they are used anyway."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from portside.auth.roles import Role, repository_actions
from portside.errors import RegistryError
from portside.reference import project_of, validate_name
from portside.ui import web
from portside.ui.api import ApiError, path, repository_path
from portside.ui.artifacts import HELM, summary
from portside.ui.filters import short_digest
from portside.ui.paging import Pager

PAGE_SIZE = 25
DEFAULT_SORT = "-pushed_at"
SORTS = {
    "-pushed_at": "Newest push first",
    "pushed_at": "Oldest push first",
    "-pulled_at": "Last pulled first",
    "-size": "Largest first",
    "size": "Smallest first",
    "digest": "Digest",
}
ALL_ACTIONS = frozenset({"pull", "push", "delete"})


# -- who may change what ------------------------------------------------------------------


async def visible_project(request: Request, name: str) -> dict[str, Any] | None:
    """The repository's project as the API shows it to the visitor (None: not visible)."""
    try:
        body = (await web.api(request).get(path("/projects", project_of(name)))).body
    except ApiError:
        return None
    return body if isinstance(body, dict) else None


def offered_actions(who: web.Visitor, project: dict[str, Any] | None) -> frozenset[str]:
    """What to offer (pull, push, delete) from the role the API reports. Only for showing
    forms: the API decides when one is sent."""
    if who.is_admin:
        return ALL_ACTIONS
    role = (project or {}).get("role")
    if not who.signed_in or not isinstance(role, str):
        return frozenset()
    try:
        return repository_actions(Role(role))
    except ValueError:
        return frozenset()


def registry_host(who: web.Visitor) -> str:
    return str(who.info.get("registry_url", "")).split("://", 1)[-1].rstrip("/")


def _valid_name(name: str) -> bool:
    try:
        validate_name(name)
    except RegistryError:
        return False
    return True


# -- pages -------------------------------------------------------------------------------


async def repository_page(request: Request) -> Response:
    name = request.path_params["name"]
    who = await web.visitor(request)
    calls = web.api(request)
    try:
        repo = (await calls.get(repository_path(name))).body
    except ApiError as error:
        return await _no_repository(request, name, error)
    project = await visible_project(request, name)
    tag = "".join(c for c in request.query_params.get("tag", "") if c.isprintable())
    tag = tag.strip()[:128]
    sort = request.query_params.get("sort", DEFAULT_SORT)
    sort = sort if sort in SORTS else DEFAULT_SORT
    pager = Pager.from_request(request, PAGE_SIZE)
    where = repository_path(name, "artifacts")
    # Grouped: an index's platform manifests, signatures, SBOMs and other referrers
    # are listed under the artifact they belong to (as Harbor shows them).
    listed = await calls.get(
        where,
        tag=tag or None,
        sort=sort,
        page=pager.number,
        page_size=pager.size,
        grouped="true",
    )
    pager.total = listed.total or 0
    artifacts = [
        {**summary(a), "attached": [summary(x) for x in a.get("attached") or []]}
        for a in listed.body
    ]
    if not tag and sort == DEFAULT_SORT and pager.number == 1:
        newest = artifacts
    else:
        newest = (await calls.get(where, sort=DEFAULT_SORT, page_size=100)).body
    latest_tag, latest = _latest(newest)
    actions = offered_actions(who, project)
    return await web.render(
        request,
        "repository.html",
        repo=repo,
        name=name,
        project=project_of(name),
        artifacts=artifacts,
        tag=tag,
        sort=sort,
        sorts=SORTS,
        pager=pager,
        host=registry_host(who),
        latest_tag=latest_tag,
        latest_is_helm=bool(latest and latest.get("artifact_type") == HELM),
        may_push="push" in actions,
        may_delete="delete" in actions,
        view=request.url.query,
    )


async def _no_repository(request: Request, name: str, error: ApiError) -> Response:
    """No such repository: in a project the visitor can see, teach how to push to it;
    otherwise the API's answer (not found, or sign in)."""
    if error.status != 404 or not _valid_name(name):
        raise error
    project = await visible_project(request, name)
    if project is None:
        raise error
    who = await web.visitor(request)
    return await web.render(
        request,
        "repository_empty.html",
        name=name,
        project=project_of(name),
        host=registry_host(who),
        may_push="push" in offered_actions(who, project),
    )


def _latest(artifacts: list[dict[str, Any]]) -> tuple[str | None, dict[str, Any] | None]:
    """The tag to show pull commands for: `latest` if there is one, else the first tag of
    the most recently pushed tagged artifact."""
    for artifact in artifacts:
        if "latest" in artifact.get("tags", []):
            return "latest", artifact
    for artifact in artifacts:
        if artifact.get("tags"):
            return str(artifact["tags"][0]), artifact
    return None, None


# -- changes -----------------------------------------------------------------------------


def _shown(tag: str) -> str:
    """A tag as echoed in a message (what was typed may be long: messages ride in a
    cookie)."""
    return tag if len(tag) <= 64 else tag[:64] + "…"


def _back(name: str, form: FormData, digest: str = "") -> str:
    """Where a change returns to: the artifact page it was made on, or the repository
    page with the filters it had (only known parameters are kept)."""
    if web.text(form, "back") == "artifact" and ":" in digest:
        return web.artifact_url(name, digest)
    kept = [(k, v) for k, v in parse_qsl(web.text(form, "view")) if k in ("tag", "sort", "page")]
    return web.repository_url(name) + (f"?{urlencode(kept)}" if kept else "")


async def add_tag(request: Request) -> Response:
    form = await web.checked_form(request)
    name = request.path_params["name"]
    digest, tag = web.text(form, "digest"), web.text(form, "tag")
    back = _back(name, form, digest)
    if not tag or ":" not in digest:
        return web.redirect(back, "Enter the tag to add.", error=True)
    try:
        await web.api(request).post(
            repository_path(name, "artifacts", digest, "tags"), {"name": tag}
        )
    except ApiError as error:
        message = f"Could not add tag {_shown(tag)}: {error.explanation}"
        return web.redirect(back, message, error=True)
    return web.redirect(back, f"Tag {tag} now points at {short_digest(digest)}.")


async def remove_tag(request: Request) -> Response:
    form = await web.checked_form(request)
    name, tag = request.path_params["name"], request.path_params["tag"]
    back = _back(name, form, web.text(form, "digest"))
    try:
        await web.api(request).delete(repository_path(name, "tags", tag))
    except ApiError as error:
        message = f"Could not remove tag {_shown(tag)}: {error.explanation}"
        return web.redirect(back, message, error=True)
    return web.redirect(back, f"Tag {_shown(tag)} removed; the artifact stays.")


async def delete_artifact(request: Request) -> Response:
    form = await web.checked_form(request)
    name, digest = request.path_params["name"], request.path_params["digest"]
    try:
        await web.api(request).delete(repository_path(name, "artifacts", digest))
    except ApiError as error:
        message = f"Could not delete artifact {short_digest(digest)}: {error.explanation}"
        return web.redirect(_back(name, form, digest), message, error=True)
    return web.redirect(
        web.repository_url(name), f"Artifact {short_digest(digest)} and its tags deleted."
    )


async def delete_repository(request: Request) -> Response:
    form = await web.checked_form(request)
    name = request.path_params["name"]
    if web.text(form, "confirm") != name:
        message = f"Type the repository name ({name}) to confirm deleting it."
        return web.redirect(web.repository_url(name), message, error=True)
    try:
        await web.api(request).delete(repository_path(name))
    except ApiError as error:
        message = f"Could not delete repository {name}: {error.explanation}"
        return web.redirect(web.repository_url(name), message, error=True)
    return web.redirect(web.project_url(project_of(name)), f"Repository {name} deleted.")


# Starlette's {name:path} is greedy: the routes with more after the name come first.
routes = [
    Route(
        "/repositories/{name:path}/-/artifacts/{digest}/delete", delete_artifact, methods=["POST"]
    ),
    Route("/repositories/{name:path}/-/tags/{tag}/delete", remove_tag, methods=["POST"]),
    Route("/repositories/{name:path}/-/tags", add_tag, methods=["POST"]),
    Route("/repositories/{name:path}/-/delete", delete_repository, methods=["POST"]),
    Route("/repositories/{name:path}", repository_page, methods=["GET"]),
]
