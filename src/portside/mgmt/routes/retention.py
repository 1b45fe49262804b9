"""A project's retention policy: read it, replace it, preview what it would delete (the
dry-run plan, computed at once, for a stored policy or a draft), and run it as a job.

Anyone who may see the project may read its policy; changing it, previewing and running
it take the project's `settings` permission (project admins, system admins), as do the
project's retention jobs (to anybody else they do not exist, as in the jobs API).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Body, Query, Request, Response
from pydantic import BaseModel, Field, StrictBool, StrictInt

from portside.auth.errors import Exists, Invalid, Missing
from portside.content.patterns import MAX_PATTERN, Syntax
from portside.content.retention import (
    MAX_RULES,
    Planner,
    PolicyError,
    PolicyStore,
    ProjectUnknown,
    RetentionPlan,
    RetentionPolicy,
    RetentionRule,
    parse_policy,
)
from portside.jobs.kinds import ParamsError, kind
from portside.jobs.store import JobConflict, JobRecord, Jobs
from portside.mgmt.paging import Paging, describe_page
from portside.mgmt.routes.jobs import JobOut
from portside.mgmt.schemas import _In
from portside.mgmt.security import Caller, Ctx, project_access, require

router = APIRouter(tags=["retention"])

RuleKind = Literal[
    "latest_pushed", "latest_pulled", "pushed_within_days", "pulled_within_days", "always"
]


class RuleIn(_In):
    kind: RuleKind = Field(
        description="`latest_pushed`/`latest_pulled`: keep the N most recently pushed/pulled "
        "artifacts per repository; `pushed_within_days`/`pulled_within_days`: those "
        "pushed/pulled in the last D days; `always`: all of them."
    )
    value: StrictInt | None = Field(
        default=None, description="N or D (1 or more); none for `always`."
    )
    repository_pattern: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_PATTERN,
        description="Repositories, named without the project (`app/*`). Default: all "
        "(`**`, or `.*` for a regex rule).",
    )
    repository_excluding: StrictBool = Field(
        default=False, description="Apply to the repositories the pattern does not match."
    )
    tag_pattern: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_PATTERN,
        description="Tags that select an artifact. Default: all.",
    )
    tag_excluding: StrictBool = Field(
        default=False, description="Select artifacts by the tags the pattern does not match."
    )
    syntax: Syntax = Field(default="glob", description="`glob` or `regex` (anchored).")
    disabled: StrictBool = False


class PolicyIn(_In):
    remove_untagged: StrictBool = Field(
        default=False, description="Delete untagged artifacts in the repositories rules select."
    )
    rules: list[RuleIn] = Field(
        default_factory=list,
        max_length=MAX_RULES,
        description="Retain what any rule selects (OR); in scope, everything else goes.",
    )


class RuleOut(BaseModel):
    kind: RuleKind
    value: int | None
    repository_pattern: str
    repository_excluding: bool
    tag_pattern: str
    tag_excluding: bool
    syntax: Syntax
    disabled: bool


class PolicyOut(BaseModel):
    project: str
    remove_untagged: bool
    rules: list[RuleOut]
    updated_by: str | None
    updated_at: datetime | None


class DeletionOut(BaseModel):
    repository: str
    digest: str
    media_type: str
    size: int = Field(description="The manifest's own bytes.")
    tags: list[str]
    pushed_at: datetime
    last_pulled_at: datetime | None
    reason: str


class RetainedOut(BaseModel):
    repository: str
    digest: str
    tags: list[str]
    pushed_at: datetime
    last_pulled_at: datetime | None
    reason: str
    rule: int | None = Field(description="Position (from 1) of the rule that retained it.")


class PlanOut(BaseModel):
    project: str
    computed_at: datetime
    policy: PolicyOut
    repositories: list[str] = Field(description="The repositories the rules select.")
    artifacts: int = Field(description="Artifacts that would be deleted.")
    tags: int = Field(description="Tags they carry, deleted with them.")
    blobs: int = Field(description="Blobs garbage collection would then delete.")
    blob_bytes: int
    manifest_bytes: int
    bytes_freed: int = Field(description="blob_bytes + manifest_bytes.")
    deletions: list[DeletionOut]
    retained: list[RetainedOut]
    truncated: bool = Field(description="Lists were cut at `limit` (the counts are whole).")


class RunIn(_In):
    dry_run: StrictBool = False


def policy_out(policy: RetentionPolicy) -> PolicyOut:
    return PolicyOut(
        project=policy.project,
        remove_untagged=policy.remove_untagged,
        rules=[RuleOut.model_validate(r.to_dict()) for r in policy.rules],
        updated_by=policy.updated_by,
        updated_at=policy.updated_at,
    )


def plan_out(plan: RetentionPlan, limit: int) -> PlanOut:
    return PlanOut(
        project=plan.project,
        computed_at=plan.computed_at,
        policy=policy_out(plan.policy),
        repositories=plan.repositories,
        artifacts=len(plan.deletions),
        tags=plan.tags,
        blobs=len(plan.blobs),
        blob_bytes=plan.blob_bytes,
        manifest_bytes=plan.manifest_bytes,
        bytes_freed=plan.bytes_freed,
        deletions=[DeletionOut.model_validate(d.to_dict()) for d in plan.deletions[:limit]],
        retained=[RetainedOut.model_validate(k.to_dict()) for k in plan.retained[:limit]],
        truncated=len(plan.deletions) > limit or len(plan.retained) > limit,
    )


def _parse(body: PolicyIn) -> tuple[bool, tuple[RetentionRule, ...]]:
    try:
        return parse_policy(body.model_dump(exclude_none=True))
    except PolicyError as error:
        raise Invalid(str(error)) from None


def _store(ctx: Ctx) -> PolicyStore:
    return PolicyStore(ctx.db)


@router.get("/projects/{project}/retention", response_model=PolicyOut)
def get_policy(project: str, ctx: Ctx, caller: Caller) -> PolicyOut:
    project_access(ctx, caller, project)
    try:
        return policy_out(_store(ctx).get(project))
    except ProjectUnknown as error:
        raise Missing(str(error)) from None


@router.put("/projects/{project}/retention", response_model=PolicyOut)
def put_policy(project: str, body: PolicyIn, ctx: Ctx, caller: Caller) -> PolicyOut:
    """Replace the policy and all its rules (in the order given)."""
    require(ctx, caller, project, "settings")
    remove_untagged, rules = _parse(body)
    try:
        stored = _store(ctx).put(
            project,
            remove_untagged,
            rules,
            updated_by=caller.identity.actor,
            actor=caller.actor,
        )
    except ProjectUnknown as error:
        raise Missing(str(error)) from None
    return policy_out(stored)


@router.post("/projects/{project}/retention/preview", response_model=PlanOut)
def preview(
    project: str,
    ctx: Ctx,
    caller: Caller,
    body: Annotated[PolicyIn | None, Body()] = None,
    limit: Annotated[
        int, Query(ge=0, le=10_000, description="Longest deletions/retained lists.")
    ] = 1000,
) -> PlanOut:
    """What a run would delete now (a dry run, nothing changes): for the stored policy,
    or for the draft policy in the body."""
    require(ctx, caller, project, "settings")
    draft = None
    if body is not None:
        remove_untagged, rules = _parse(body)
        draft = RetentionPolicy(project, remove_untagged, rules)
    try:
        plan = Planner(ctx.db).plan(project, draft)
    except ProjectUnknown as error:
        raise Missing(str(error)) from None
    return plan_out(plan, limit)


@router.post("/projects/{project}/retention/runs", response_model=JobOut, status_code=202)
def start_run(
    project: str,
    ctx: Ctx,
    caller: Caller,
    response: Response,
    body: Annotated[RunIn | None, Body()] = None,
) -> JobOut:
    """Queue a retention job for the project (409 while one is queued or running)."""
    require(ctx, caller, project, "settings")
    try:
        params = kind("retention").params({"dry_run": body.dry_run if body else False})
    except ParamsError as error:
        raise Invalid(str(error)) from None
    jobs = Jobs(ctx.db)
    try:
        job_id = jobs.enqueue(
            "retention",
            params,
            project=project,
            created_by=caller.identity.actor,
            actor=caller.actor,
        )
    except JobConflict as conflict:
        raise Exists(f"retention job {conflict.existing} is already queued or running") from None
    record = jobs.get(job_id)
    assert record is not None
    response.headers["Location"] = ctx.url(f"/api/v1/jobs/{job_id}")
    return _job_out(record)


@router.get("/projects/{project}/retention/runs", response_model=list[JobOut])
def list_runs(
    project: str, request: Request, response: Response, ctx: Ctx, caller: Caller, paging: Paging
) -> list[JobOut]:
    """The project's retention jobs, newest first, with their results."""
    require(ctx, caller, project, "settings")
    records, total = Jobs(ctx.db).find(
        kind="retention", project=project, limit=paging.size, offset=paging.offset
    )
    describe_page(request, response, paging, total)
    return [_job_out(r) for r in records]


def _job_out(record: JobRecord) -> JobOut:
    return JobOut.model_validate(record, from_attributes=True)
