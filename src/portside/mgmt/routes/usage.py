"""Storage usage: a project's used, unique and shared bytes against its quota (optionally
per repository), and the whole registry's for system administrators. The definitions are
in content.usage."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from portside.auth.errors import Forbidden, Unauthenticated
from portside.content.usage import ProjectUsage, RepositoryUsage, UsageReports
from portside.mgmt.schemas import ProjectUsageOut, RegistryUsageOut, RepositoryUsageOut
from portside.mgmt.security import Admin, Caller, Ctx, project_access

router = APIRouter(tags=["usage"])


@router.get("/projects/{name}/usage", response_model=ProjectUsageOut)
def project_usage(
    name: str,
    ctx: Ctx,
    caller: Caller,
    repositories: Annotated[
        bool, Query(description="Also each repository's usage (needs listing rights).")
    ] = False,
) -> ProjectUsageOut:
    """Whoever may see the project sees its usage; the per-repository breakdown needs
    the right to list its repositories (a limited guest has it not)."""
    project_access(ctx, caller, name)
    if repositories:
        visible = ctx.auth.visible_projects(caller.identity)
        if visible is not None and name not in visible:
            if not caller.signed_in:
                raise Unauthenticated("sign in first")
            raise Forbidden(f"you may not list the repositories of project {name!r}")
    return _project(UsageReports(ctx.db).project(name, repositories=repositories))


@router.get("/usage", response_model=RegistryUsageOut)
def registry_usage(ctx: Ctx, caller: Admin) -> RegistryUsageOut:
    """Every project's usage and what the registry stores (system administrators)."""
    usage = UsageReports(ctx.db).registry()
    return RegistryUsageOut(
        stored_bytes=usage.stored,
        blob_bytes=usage.blob_bytes,
        manifest_bytes=usage.manifest_bytes,
        unreferenced_bytes=usage.unreferenced_bytes,
        projects_used_bytes=usage.projects_used,
        projects=[_project(p) for p in usage.projects],
    )


def _project(usage: ProjectUsage) -> ProjectUsageOut:
    return ProjectUsageOut(
        name=usage.name,
        quota_bytes=usage.quota,
        used_bytes=usage.used,
        unique_bytes=usage.unique,
        shared_bytes=usage.shared,
        manifest_bytes=usage.manifest_bytes,
        repository_count=usage.repository_count,
        repositories=None
        if usage.repositories is None
        else [_repository(r) for r in usage.repositories],
    )


def _repository(usage: RepositoryUsage) -> RepositoryUsageOut:
    return RepositoryUsageOut(
        name=usage.name,
        used_bytes=usage.used,
        unique_bytes=usage.unique,
        shared_bytes=usage.shared,
        manifest_bytes=usage.manifest_bytes,
    )
