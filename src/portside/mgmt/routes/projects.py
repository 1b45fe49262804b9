"""Projects, their members and their audit log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from portside.auth.errors import Forbidden, Unauthenticated
from portside.auth.names import check_project_name
from portside.content.usage import UsageReports
from portside.mgmt.paging import Paging, describe_page
from portside.mgmt.routes import convert
from portside.mgmt.schemas import AuditOut, MemberIn, MemberOut, ProjectIn, ProjectOut, ProjectPatch
from portside.mgmt.security import Caller, Ctx, SignedIn, project_access, require

router = APIRouter(tags=["projects"])


@router.get("/projects", response_model=list[ProjectOut])
def list_projects(
    request: Request,
    response: Response,
    ctx: Ctx,
    caller: Caller,
    paging: Paging,
    q: Annotated[str | None, Query(max_length=64, description="Name contains.")] = None,
    public: Annotated[bool | None, Query(description="Only public or private.")] = None,
) -> list[ProjectOut]:
    """Projects the caller can see: public ones, and those they have a role in."""
    visible = None if caller.identity.is_admin else _visible(ctx, caller)
    projects = ctx.auth.projects.find(visible, q)
    if public is not None:
        projects = [p for p in projects if p.public == public]
    describe_page(request, response, paging, len(projects))
    page = projects[paging.offset : paging.offset + paging.size]
    used = UsageReports(ctx.db).used(p.name for p in page)
    return [convert.project(p, _role(ctx, caller, p.name), used_bytes=used[p.name]) for p in page]


def _visible(ctx: Ctx, caller: Caller) -> list[str]:
    # Limited guests cannot list a project's repositories but do see the project.
    return ctx.auth.policy.visible_projects(caller.identity, listing_only=False) or []


def _role(ctx: Ctx, caller: Caller, project: str) -> str | None:
    role = ctx.auth.policy.project_access(caller.identity, project).role
    return role.value if role else None


@router.post("/projects", response_model=ProjectOut, status_code=201)
def create_project(body: ProjectIn, ctx: Ctx, caller: SignedIn) -> ProjectOut:
    check_project_name(body.name)
    if not ctx.auth.may_create_project(caller.identity):
        raise Forbidden("only system administrators may create projects here")
    if body.proxy is not None:
        if not caller.identity.is_admin:
            raise Forbidden("only system administrators may create proxy-cache projects")
        ctx.proxy.check_endpoint(body.proxy.endpoint)
    created = ctx.auth.projects.create(
        body.name,
        public=body.public,
        quota_bytes=body.quota_bytes,
        creator=caller.identity.actor,
        creator_user_id=caller.identity.user_id if not caller.identity.is_admin else None,
        actor=caller.actor,
    )
    if body.proxy is not None:
        try:
            ctx.proxy.store.bind(
                body.name,
                body.proxy.endpoint,
                tag_ttl_seconds=body.proxy.tag_ttl_seconds,
                cache_limit_bytes=body.proxy.cache_limit_bytes,
                actor=caller.actor,
            )
        except BaseException:
            ctx.auth.projects.delete(body.name, actor=caller.actor)
            raise
    return convert.project(created, _role(ctx, caller, body.name), used_bytes=_used(ctx, body.name))


@router.get("/projects/{name}", response_model=ProjectOut)
def get_project(name: str, ctx: Ctx, caller: Caller) -> ProjectOut:
    access = project_access(ctx, caller, name)
    return convert.project(
        ctx.auth.projects.get(name),
        access.role.value if access.role else None,
        used_bytes=_used(ctx, name),
    )


@router.patch("/projects/{name}", response_model=ProjectOut)
def update_project(name: str, body: ProjectPatch, ctx: Ctx, caller: Caller) -> ProjectOut:
    require(ctx, caller, name, "settings")
    updated = ctx.auth.projects.update(
        name,
        public=body.public,
        quota_bytes=body.quota_bytes,
        clear_quota=body.clear_quota,
        actor=caller.actor,
    )
    return convert.project(updated, _role(ctx, caller, name), used_bytes=_used(ctx, name))


def _used(ctx: Ctx, project: str) -> int:
    return UsageReports(ctx.db).used([project])[project]


@router.delete("/projects/{name}", status_code=204)
def delete_project(name: str, ctx: Ctx, caller: Caller) -> None:
    require(ctx, caller, name, "settings")
    ctx.auth.projects.delete(name, actor=caller.actor)


@router.get("/projects/{name}/members", response_model=list[MemberOut])
def list_members(name: str, ctx: Ctx, caller: Caller) -> list[MemberOut]:
    """Members only (as in Harbor): a public project shows its images, not its people."""
    access = require(ctx, caller, name, "list")
    if access.role is None:
        if not caller.signed_in:
            raise Unauthenticated("sign in first")
        raise Forbidden(f"only members of project {name!r} see its members")
    return [
        MemberOut(name=m.name, kind=m.kind, role=m.role)  # type: ignore[arg-type]
        for m in ctx.auth.projects.members(name)
    ]


@router.put("/projects/{name}/members/{member:path}", response_model=MemberOut)
def set_member(name: str, member: str, body: MemberIn, ctx: Ctx, caller: Caller) -> MemberOut:
    require(ctx, caller, name, "members")
    if body.kind == "group":
        ctx.auth.projects.set_group(name, member, body.role, actor=caller.actor)
    else:
        ctx.auth.projects.set_member(name, member, body.role, actor=caller.actor)
    stored = member.strip().casefold() if body.kind == "group" else member
    return MemberOut(name=stored, kind=body.kind, role=body.role)


@router.delete("/projects/{name}/members/{member:path}", status_code=204)
def remove_member(
    name: str,
    member: str,
    ctx: Ctx,
    caller: Caller,
    kind: Annotated[str, Query(pattern="^(user|group)$")] = "user",
) -> None:
    require(ctx, caller, name, "members")
    ctx.auth.projects.remove_member(name, member, group=kind == "group", actor=caller.actor)


@router.get("/projects/{name}/audit-logs", response_model=list[AuditOut])
def project_audit(
    name: str,
    request: Request,
    response: Response,
    ctx: Ctx,
    caller: Caller,
    paging: Paging,
    action: Annotated[str | None, Query(max_length=32)] = None,
    actor: Annotated[str | None, Query(max_length=255)] = None,
) -> list[AuditOut]:
    if not caller.signed_in:
        project_access(ctx, caller, name)
        raise Unauthenticated("sign in first")
    require(ctx, caller, name, "log")
    entries, total = ctx.audit.find(
        projects=[name], action=action, actor=actor, limit=paging.size, offset=paging.offset
    )
    describe_page(request, response, paging, total)
    return [convert.audit(e) for e in entries]
