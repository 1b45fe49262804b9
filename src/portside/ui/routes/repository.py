"""A repository's page (facts, pull commands, its artifacts with tags, type, platforms,
sizes and times; add and remove tags, delete an artifact or the repository) and an
artifact's page (layers, image config and history, the platforms of an index,
annotations, referrers, the manifest). All read and changed through the management API
as the visitor; the change forms are hidden from roles that cannot use them, and the
API's refusal is shown in words when they are used anyway."""

from __future__ import annotations

import shlex
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
MAX_CHILDREN = 32  # platforms of an index looked up one by one for their sizes
ALL_ACTIONS = frozenset({"pull", "push", "delete"})
HELM = "application/vnd.cncf.helm.config.v1+json"
INDEX_TYPES = frozenset(
    {
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    }
)
# Well-known artifact (and config) media types in words; anything else is shown as is.
TYPE_WORDS = {
    HELM: "Helm chart",
    "application/vnd.dev.cosign.artifact.sig.v1+json": "Cosign signature",
    "application/vnd.dev.cosign.simplesigning.v1+json": "Cosign signature",
    "application/vnd.dev.sigstore.bundle.v0.3+json": "Sigstore bundle",
    "application/vnd.dev.sigstore.bundle+json;version=0.3": "Sigstore bundle",
    "application/vnd.cncf.notary.signature": "Notation signature",
    "application/spdx+json": "SBOM (SPDX)",
    "text/spdx": "SBOM (SPDX)",
    "application/vnd.cyclonedx+json": "SBOM (CycloneDX)",
    "application/vnd.cyclonedx+xml": "SBOM (CycloneDX)",
    "application/vnd.syft+json": "SBOM (Syft)",
    "application/vnd.in-toto+json": "Attestation (in-toto)",
    "application/vnd.dsse.envelope.v1+json": "Attestation (DSSE)",
    "application/vnd.wasm.config.v0+json": "WebAssembly module",
    "application/vnd.wasm.config.v1+json": "WebAssembly module",
    "application/vnd.cncf.flux.config.v1+json": "Flux artifact",
    "application/vnd.cnab.config.v1+json": "CNAB bundle",
    "application/vnd.sylabs.sif.config.v1+json": "Singularity image (SIF)",
    "application/vnd.buildkit.cacheconfig.v0": "BuildKit cache",
    "application/vnd.docker.plugin.v1+json": "Docker plugin",
    "application/vnd.cncf.openpolicyagent.config.v1+json": "OPA policy bundle",
    "application/vnd.oci.image.config.v1+json": "Image",
    "application/vnd.docker.container.image.v1+json": "Image",
    "application/vnd.oci.image.manifest.v1+json": "Image",
    "application/vnd.docker.distribution.manifest.v2+json": "Image",
    "application/vnd.oci.empty.v1+json": "Artifact",
    "application/vnd.unknown.artifact.v1": "Artifact",
}


def type_words(kind: Any, artifact_type: Any, media_type: Any = None) -> str:
    """'Image', 'Index', or an artifact's type in words ('Helm chart', 'SBOM (SPDX)')."""
    if kind == "index" or (kind is None and media_type in INDEX_TYPES and not artifact_type):
        return "Index"
    if kind == "image":
        return "Image"
    for value in (artifact_type, media_type):
        if isinstance(value, str) and value:
            return TYPE_WORDS.get(value, value)
    return "Artifact"


# -- who may change what ------------------------------------------------------------------


async def _project(request: Request, name: str) -> dict[str, Any] | None:
    """The repository's project as the API shows it to the visitor (None: not visible)."""
    try:
        body = (await web.api(request).get(path("/projects", project_of(name)))).body
    except ApiError:
        return None
    return body if isinstance(body, dict) else None


def _actions(who: web.Visitor, project: dict[str, Any] | None) -> frozenset[str]:
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


def _host(who: web.Visitor) -> str:
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
    project = await _project(request, name)
    tag = "".join(c for c in request.query_params.get("tag", "") if c.isprintable())
    tag = tag.strip()[:128]
    sort = request.query_params.get("sort", DEFAULT_SORT)
    sort = sort if sort in SORTS else DEFAULT_SORT
    pager = Pager.from_request(request, PAGE_SIZE)
    where = repository_path(name, "artifacts")
    listed = await calls.get(
        where, tag=tag or None, sort=sort, page=pager.number, page_size=pager.size
    )
    pager.total = listed.total or 0
    artifacts = [_summary(a) for a in listed.body]
    if not tag and sort == DEFAULT_SORT and pager.number == 1:
        newest = artifacts
    else:
        newest = (await calls.get(where, sort=DEFAULT_SORT, page_size=100)).body
    latest_tag, latest = _latest(newest)
    actions = _actions(who, project)
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
        host=_host(who),
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
    project = await _project(request, name)
    if project is None:
        raise error
    who = await web.visitor(request)
    return await web.render(
        request,
        "repository_empty.html",
        name=name,
        project=project_of(name),
        host=_host(who),
        may_push="push" in _actions(who, project),
    )


def _summary(artifact: dict[str, Any]) -> dict[str, Any]:
    """An artifact of the list with its type in words and its real platforms (not the
    unknown/unknown entries build attestations use)."""
    platforms = [
        p
        for p in artifact.get("platforms") or []
        if not (p.get("os") == "unknown" and p.get("architecture") == "unknown")
    ]
    words = type_words(artifact.get("kind"), artifact.get("artifact_type"))
    return {**artifact, "type_words": words, "shown_platforms": platforms}


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


async def artifact_page(request: Request) -> Response:
    name = request.path_params["name"]
    who = await web.visitor(request)
    calls = web.api(request)
    detail = await calls.get(repository_path(name, "artifacts", request.path_params["digest"]))
    artifact: dict[str, Any] = detail.body
    manifest = _mapping(artifact.get("manifest"))
    actions = _actions(who, await _project(request, name))
    kind = artifact.get("kind")
    layers = _layers(manifest)
    config = _mapping(manifest.get("config"))
    return await web.render(
        request,
        "artifact.html",
        name=name,
        project=project_of(name),
        artifact=artifact,
        manifest=manifest,
        type=type_words(kind, artifact.get("artifact_type")),
        is_helm=artifact.get("artifact_type") == HELM,
        layers=layers,
        layers_size=sum(layer["size"] or 0 for layer in layers),
        config_type=_text(config.get("mediaType")),
        config_size=_size(config.get("size")),
        image=_image(artifact.get("config"), layers) if kind == "image" else None,
        children=await _children(request, name, manifest) if kind == "index" else [],
        annotations=_pairs(manifest.get("annotations")),
        referrers=[
            {**r, "type_words": type_words(None, r.get("artifact_type"), r.get("media_type"))}
            for r in artifact.get("referrers") or []
        ],
        host=_host(who),
        may_push="push" in actions,
        may_delete="delete" in actions,
    )


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _descriptors(value: Any) -> list[dict[str, Any]]:
    return [d for d in value if isinstance(d, dict)] if isinstance(value, list) else []


def _text(value: Any) -> str:
    return value if isinstance(value, str) else "" if value is None else str(value)


def _pairs(value: Any) -> list[tuple[str, str]]:
    """Labels or annotations as sorted (key, value) text pairs."""
    return sorted((str(k), _text(v)) for k, v in _mapping(value).items())


def _size(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _layers(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "digest": _text(d.get("digest")),
            "media_type": _text(d.get("mediaType")),
            "size": _size(d.get("size")),
            "title": _text(_mapping(d.get("annotations")).get("org.opencontainers.image.title")),
        }
        for d in _descriptors(manifest.get("layers"))
    ]


def _command(value: Any) -> str | None:
    """Entrypoint or Cmd as a shell would read it."""
    if isinstance(value, list) and value:
        return shlex.join(_text(part) for part in value)
    return value if isinstance(value, str) and value else None


def _image(config: Any, layers: list[dict[str, Any]]) -> dict[str, Any] | None:
    """What the image config says: how it runs, its labels and how it was built. Each
    history step that made a layer is matched with that layer (in order)."""
    if not isinstance(config, dict):
        return None
    run = _mapping(config.get("config"))
    history = []
    remaining = iter(layers)
    for step in _descriptors(config.get("history")):
        empty = step.get("empty_layer") is True
        history.append(
            {
                "created": _text(step.get("created")) or None,
                "created_by": _text(step.get("created_by")),
                "comment": _text(step.get("comment")),
                "empty": empty,
                "layer": None if empty else next(remaining, None),
            }
        )
    platform = {k: config.get(k) for k in ("os", "architecture", "variant")}
    return {
        "entrypoint": _command(run.get("Entrypoint")),
        "cmd": _command(run.get("Cmd")),
        "env": [_text(e) for e in run.get("Env") or [] if e is not None]
        if isinstance(run.get("Env"), list)
        else [],
        "working_dir": _text(run.get("WorkingDir")),
        "user": _text(run.get("User")),
        "ports": sorted(str(p) for p in _mapping(run.get("ExposedPorts"))),
        "volumes": sorted(str(v) for v in _mapping(run.get("Volumes"))),
        "stop_signal": _text(run.get("StopSignal")),
        "labels": _pairs(run.get("Labels")),
        "created": _text(config.get("created")) or None,
        "author": _text(config.get("author")),
        "platform": platform,
        "history": history,
    }


async def _children(request: Request, name: str, manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """The manifests an index lists: platform, digest, type and size (the child's own
    total when it is in the repository, else the size of its manifest)."""
    calls = web.api(request)
    rows = []
    for number, entry in enumerate(_descriptors(manifest.get("manifests"))):
        digest = _text(entry.get("digest"))
        child: dict[str, Any] | None = None
        if number < MAX_CHILDREN and ":" in digest:
            try:
                child = (await calls.get(repository_path(name, "artifacts", digest))).body
            except ApiError:
                child = None
        annotations = _mapping(entry.get("annotations"))
        attestation = annotations.get("vnd.docker.reference.type") == "attestation-manifest"
        rows.append(
            {
                "digest": digest,
                "platform": _mapping(entry.get("platform")),
                "present": child is not None,
                "size": child.get("size") if child else _size(entry.get("size")),
                "type_words": "Build attestation"
                if attestation
                else type_words(
                    child.get("kind") if child else None,
                    child.get("artifact_type") if child else entry.get("artifactType"),
                    entry.get("mediaType"),
                ),
                "attests": _text(annotations.get("vnd.docker.reference.digest")),
            }
        )
    return rows


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
    Route("/repositories/{name:path}/-/artifacts/{digest}", artifact_page, methods=["GET"]),
    Route("/repositories/{name:path}/-/tags/{tag}/delete", remove_tag, methods=["POST"]),
    Route("/repositories/{name:path}/-/tags", add_tag, methods=["POST"]),
    Route("/repositories/{name:path}/-/delete", delete_repository, methods=["POST"]),
    Route("/repositories/{name:path}", repository_page, methods=["GET"]),
]
