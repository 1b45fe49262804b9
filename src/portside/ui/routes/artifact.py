"""An artifact's page: layers, image config and history, the platforms of an index,
annotations, referrers and the manifest, read through the management API as the
visitor (who sees the delete form only if their role allows it; the API decides)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from portside.reference import project_of
from portside.ui import artifacts, web
from portside.ui.api import ApiError, repository_path
from portside.ui.routes.repository import offered_actions, registry_host, visible_project

MAX_CHILDREN = 32  # platforms of an index looked up one by one for their sizes


async def artifact_page(request: Request) -> Response:
    name = request.path_params["name"]
    who = await web.visitor(request)
    calls = web.api(request)
    detail = await calls.get(repository_path(name, "artifacts", request.path_params["digest"]))
    artifact: dict[str, Any] = detail.body
    manifest = artifacts.mapping(artifact.get("manifest"))
    actions = offered_actions(who, await visible_project(request, name))
    kind = artifact.get("kind")
    layers = artifacts.layers(manifest)
    config = artifacts.mapping(manifest.get("config"))
    signatures = (
        await calls.get(repository_path(name, "artifacts", artifact["digest"], "signatures"))
    ).body
    return await web.render(
        request,
        "artifact.html",
        name=name,
        project=project_of(name),
        artifact=artifact,
        manifest=manifest,
        type=artifacts.type_words(kind, artifact.get("artifact_type")),
        is_helm=artifact.get("artifact_type") == artifacts.HELM,
        layers=layers,
        layers_size=sum(layer["size"] or 0 for layer in layers),
        config_type=artifacts.text(config.get("mediaType")),
        config_size=artifacts.size(config.get("size")),
        image=artifacts.image(artifact.get("config"), layers) if kind == "image" else None,
        children=await _children(request, name, manifest) if kind == "index" else [],
        annotations=artifacts.pairs(manifest.get("annotations")),
        referrers=[
            {
                **r,
                "type_words": artifacts.type_words(
                    None, r.get("artifact_type"), r.get("media_type")
                ),
            }
            for r in artifact.get("referrers") or []
        ],
        signatures=signatures,
        signature=signature_status(signatures),
        host=registry_host(who),
        **await _vulnerabilities(request, name, artifact),
        may_push="push" in actions,
        may_delete="delete" in actions,
    )


def signature_status(signatures: list[dict[str, Any]]) -> dict[str, Any]:
    """The badge's input (as ?grouped=true reports it) from the artifact's signatures."""
    for s in signatures:
        if s.get("verified"):
            return {"status": "verified", "verified_by": s.get("verified_by")}
    return {"status": "unverified" if signatures else "none", "count": len(signatures)}


SEVERITIES = ("critical", "high", "medium", "low", "negligible", "unknown")


async def _vulnerabilities(request: Request, name: str, artifact: dict[str, Any]) -> dict[str, Any]:
    """The latest scan, its findings (filtered by the page's query: severity, package,
    fixable) and the SBOMs, for the Vulnerabilities section."""
    calls = web.api(request)
    digest = artifacts.text(artifact.get("digest"))
    query = request.query_params
    severity = query.get("severity") if query.get("severity") in SEVERITIES else None
    package = (query.get("package") or "")[:255]
    fixable = query.get("fixable") if query.get("fixable") in ("true", "false") else None
    found: dict[str, Any] = {
        "scan": None,
        "findings": [],
        "sboms": [],
        "severities": SEVERITIES,
        "filters": {"severity": severity, "package": package, "fixable": fixable},
        "scannable": artifact.get("kind") in ("image", "index"),
    }
    try:
        found["scan"] = (await calls.get(repository_path(name, "artifacts", digest, "scan"))).body
    except ApiError:
        found["scan"] = None
    if found["scan"] is not None:
        params: dict[str, Any] = {}
        if severity:
            params["severity"] = severity
        if package:
            params["package"] = package
        if fixable:
            params["fixable"] = fixable
        found["findings"] = (
            await calls.get(
                repository_path(name, "artifacts", digest, "scan", "findings"), **params
            )
        ).body
    found["sboms"] = (await calls.get(repository_path(name, "artifacts", digest, "sboms"))).body
    return found


async def start_scan(request: Request) -> Response:
    await web.checked_form(request)
    name = request.path_params["name"]
    digest = request.path_params["digest"]
    back = web.artifact_url(name, digest) + "#vulnerabilities-heading"
    try:
        await web.api(request).post(repository_path(name, "artifacts", digest, "scan"), {})
    except ApiError as error:
        return web.redirect(back, f"Could not start a scan: {error.explanation}", error=True)
    return web.redirect(back, "Scan queued; reload the page to see its results.")


async def _children(request: Request, name: str, manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """The manifests an index lists: platform, digest, type and size (the child's own
    total when it is in the repository, else the size of its manifest)."""
    calls = web.api(request)
    rows = []
    for number, entry in enumerate(artifacts.descriptors(manifest.get("manifests"))):
        digest = artifacts.text(entry.get("digest"))
        child: dict[str, Any] | None = None
        if number < MAX_CHILDREN and ":" in digest:
            try:
                child = (await calls.get(repository_path(name, "artifacts", digest))).body
            except ApiError:
                child = None
        annotations = artifacts.mapping(entry.get("annotations"))
        attestation = annotations.get("vnd.docker.reference.type") == "attestation-manifest"
        rows.append(
            {
                "digest": digest,
                "platform": artifacts.mapping(entry.get("platform")),
                "present": child is not None,
                "size": child.get("size") if child else artifacts.size(entry.get("size")),
                "type_words": "Build attestation"
                if attestation
                else artifacts.type_words(
                    child.get("kind") if child else None,
                    child.get("artifact_type") if child else entry.get("artifactType"),
                    entry.get("mediaType"),
                ),
                "attests": artifacts.text(annotations.get("vnd.docker.reference.digest")),
            }
        )
    return rows


routes = [
    Route("/repositories/{name:path}/-/artifacts/{digest}/scan", start_scan, methods=["POST"]),
    Route("/repositories/{name:path}/-/artifacts/{digest}", artifact_page, methods=["GET"]),
]
