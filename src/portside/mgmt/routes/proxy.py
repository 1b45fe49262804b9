"""A project's proxy-cache settings and the state of its cache (size, artifacts, pulls).
Proxy projects are made with POST /projects and a `proxy` part (routes/projects.py)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from portside.auth.errors import Exists
from portside.mgmt.schemas import CachedArtifactOut, ProxyOut, ProxyPatch
from portside.mgmt.security import Caller, Ctx, project_access, require

router = APIRouter(tags=["proxy cache"])


@router.get("/projects/{name}/proxy", response_model=ProxyOut)
def get_proxy(
    name: str,
    ctx: Ctx,
    caller: Caller,
    status: Annotated[bool, Query(description="Include the cache's size and artifacts.")] = True,
) -> ProxyOut:
    """Whether the project is a proxy cache and, if so, of what, and what its cache holds."""
    project_access(ctx, caller, name)
    return proxy_out(ctx, name, status=status)


@router.patch("/projects/{name}/proxy", response_model=ProxyOut)
def update_proxy(name: str, body: ProxyPatch, ctx: Ctx, caller: Caller) -> ProxyOut:
    require(ctx, caller, name, "settings")
    binding = ctx.proxy.store.binding(name)
    if binding is None or binding.mirror:
        what = "the mirror's project (set in the config)" if binding else "not a proxy cache"
        raise Exists(f"project {name!r} is {what}")
    ctx.proxy.store.update(
        name,
        tag_ttl_seconds=body.tag_ttl_seconds,
        cache_limit_bytes=body.cache_limit_bytes,
        clear_limit=body.clear_limit,
        actor=caller.actor,
    )
    return proxy_out(ctx, name)


def proxy_out(ctx: Ctx, name: str, *, status: bool = True) -> ProxyOut:
    binding = ctx.proxy.store.binding(name)
    if binding is None:
        return ProxyOut(project=name, proxy=False)
    if not status:
        return ProxyOut(
            project=name,
            proxy=True,
            mirror=binding.mirror,
            endpoints=list(binding.endpoints),
            tag_ttl_seconds=binding.tag_ttl_seconds,
            cache_limit_bytes=binding.cache_limit_bytes,
        )
    return _with_status(ctx, name)


def _with_status(ctx: Ctx, name: str) -> ProxyOut:
    status = ctx.proxy.store.status(name)
    binding = status.binding
    return ProxyOut(
        project=name,
        proxy=True,
        mirror=binding.mirror,
        endpoints=list(binding.endpoints),
        tag_ttl_seconds=binding.tag_ttl_seconds,
        cache_limit_bytes=binding.cache_limit_bytes,
        used_bytes=status.used_bytes,
        artifact_count=status.artifact_count,
        last_pulled_at=status.last_pulled_at,
        pulls=status.pulls,
        artifacts=[
            CachedArtifactOut(
                repository=a.repository,
                digest=a.digest,
                tags=list(a.tags),
                size=a.size,
                cached_at=a.pushed_at,
                last_pulled_at=a.last_pulled_at,
                pulls=a.pulls,
            )
            for a in status.artifacts
        ],
    )
