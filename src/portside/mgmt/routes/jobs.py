"""Background jobs and their schedules: list, start, inspect (with the log), stop.

System jobs (GC) belong to system administrators. A project's jobs (retention) are also
visible to, and may be started and stopped by, whoever may change the project's settings;
to anybody else they do not exist (404).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query, Request, Response
from pydantic import BaseModel, Field

from portside.auth.errors import Exists, Forbidden, Invalid, Missing
from portside.context import Context
from portside.jobs.kinds import KINDS, ParamsError, kind
from portside.jobs.schedules import Schedule, ScheduleError, Schedules
from portside.jobs.store import STATUSES, JobConflict, JobRecord, Jobs
from portside.mgmt.paging import Paging, describe_page
from portside.mgmt.security import Ctx, Principal, SignedIn, project_access, require

router = APIRouter(tags=["jobs"])

_MAX_ID = 2**31 - 1  # the id columns are 32-bit on PostgreSQL
JobId = Annotated[int, Path(ge=1, le=_MAX_ID)]


class JobOut(BaseModel):
    id: int
    kind: str
    project: str | None
    params: dict[str, Any]
    status: str
    stop_requested: bool
    created_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    heartbeat_at: datetime | None
    worker: str | None
    attempts: int
    progress_done: int
    progress_total: int | None
    progress_message: str | None
    result: dict[str, Any] | None
    error: str | None
    schedule: str | None


class JobIn(BaseModel):
    kind: str = Field(description=f"One of: {', '.join(sorted(KINDS))}.")
    project: str | None = Field(default=None, description="For per-project kinds (retention).")
    params: dict[str, Any] = Field(default_factory=dict)


class LogLineOut(BaseModel):
    id: int
    at: datetime
    level: str
    message: str


class ScheduleIn(BaseModel):
    cron: str = Field(max_length=128, description="5 fields, UTC, e.g. `0 3 * * *`.")
    params: dict[str, Any] = Field(default_factory=dict)
    enabled: bool = True


class ScheduleOut(BaseModel):
    name: str
    kind: str
    project: str | None
    cron: str
    params: dict[str, Any]
    enabled: bool
    next_run_at: datetime | None
    last_job_id: int | None
    created_by: str
    updated_at: datetime


def _out(record: JobRecord) -> JobOut:
    return JobOut.model_validate(record, from_attributes=True)


def _schedule_out(found: Schedule) -> ScheduleOut:
    return ScheduleOut.model_validate(found, from_attributes=True)


def _may_manage(ctx: Context, caller: Principal, project: str | None) -> None:
    """System jobs: administrators. Project jobs: the project's settings permission."""
    if caller.identity.is_admin:
        return
    if project is None:
        raise Forbidden("only system administrators may do this")
    require(ctx, caller, project, "settings")


def _visible_job(ctx: Context, caller: Principal, job_id: int) -> JobRecord:
    record = Jobs(ctx.db).get(job_id)
    if record is None:
        raise Missing(f"no job {job_id}")
    if caller.identity.is_admin:
        return record
    if record.project is None:
        raise Missing(f"no job {job_id}")
    access = ctx.auth.policy.project_access(caller.identity, record.project)
    if not (access.exists and access.visible and "settings" in access.permissions):
        raise Missing(f"no job {job_id}")
    return record


@router.get("/jobs", response_model=list[JobOut])
def list_jobs(
    request: Request,
    response: Response,
    ctx: Ctx,
    caller: SignedIn,
    paging: Paging,
    kind_name: Annotated[str | None, Query(alias="kind", max_length=32)] = None,
    status: Annotated[str | None, Query(max_length=16)] = None,
    project: Annotated[str | None, Query(max_length=255)] = None,
) -> list[JobOut]:
    """Newest first. Without `project`, only system administrators may list."""
    if status is not None and status not in STATUSES:
        raise Invalid(f"status must be one of: {', '.join(STATUSES)}")
    if project is not None:
        project_access(ctx, caller, project)
        _may_manage(ctx, caller, project)
    elif not caller.identity.is_admin:
        raise Forbidden("only system administrators may list every job; pass project=")
    records, total = Jobs(ctx.db).find(
        kind=kind_name, status=status, project=project, limit=paging.size, offset=paging.offset
    )
    describe_page(request, response, paging, total)
    return [_out(r) for r in records]


@router.post("/jobs", response_model=JobOut, status_code=202)
def start_job(ctx: Ctx, caller: SignedIn, body: JobIn, response: Response) -> JobOut:
    """Queue a job; a worker picks it up within `jobs.poll_seconds`."""
    try:
        job_kind = kind(body.kind)
        params = job_kind.params(body.params)
    except ParamsError as error:
        raise Invalid(str(error)) from None
    project = body.project if job_kind.per_project else None
    if job_kind.per_project:
        if not project:
            raise Invalid(f"{body.kind} jobs need a project")
        project_access(ctx, caller, project)
    elif body.project is not None:
        raise Invalid(f"{body.kind} jobs do not take a project")
    _may_manage(ctx, caller, project)
    job_id = _enqueue(ctx, caller, body.kind, params, project)
    record = Jobs(ctx.db).get(job_id)
    assert record is not None
    response.headers["Location"] = ctx.url(f"/api/v1/jobs/{job_id}")
    return _out(record)


def _enqueue(
    ctx: Context, caller: Principal, kind_name: str, params: dict[str, Any], project: str | None
) -> int:
    try:
        job_id = Jobs(ctx.db).enqueue(
            kind_name,
            params,
            project=project,
            created_by=caller.identity.actor,
            actor=caller.actor,
        )
    except JobConflict as conflict:
        raise Exists(
            f"job {conflict.existing} ({kind_name}) is already queued or running"
        ) from None
    return job_id


@router.get("/jobs/{job_id}", response_model=JobOut)
def get_job(ctx: Ctx, caller: SignedIn, job_id: JobId) -> JobOut:
    return _out(_visible_job(ctx, caller, job_id))


@router.get("/jobs/{job_id}/log", response_model=list[LogLineOut])
def job_log(
    ctx: Ctx,
    caller: SignedIn,
    job_id: JobId,
    after: Annotated[int, Query(ge=0, le=_MAX_ID, description="Lines after this line id.")] = 0,
    limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
) -> list[LogLineOut]:
    """The job's log in order; poll with `after` = the last id seen to follow it."""
    _visible_job(ctx, caller, job_id)
    return [
        LogLineOut(id=line.id, at=line.at, level=line.level, message=line.message)
        for line in Jobs(ctx.db).log(job_id, after=after, limit=limit)
    ]


@router.post("/jobs/{job_id}/stop", response_model=JobOut)
def stop_job(ctx: Ctx, caller: SignedIn, job_id: JobId) -> JobOut:
    """A queued job stops at once; a running one at its next check point."""
    _visible_job(ctx, caller, job_id)
    stopped = Jobs(ctx.db).request_stop(job_id, actor=caller.actor)
    assert stopped is not None
    return _out(stopped)


# -- schedules -------------------------------------------------------------------------


def _schedule_target(name: str) -> tuple[str, str | None]:
    """`gc` -> ("gc", None); `retention:<project>` -> ("retention", project)."""
    if name == "gc":
        return "gc", None
    prefix, _, project = name.partition(":")
    if prefix == "retention" and project:
        return "retention", project
    raise Missing(f"no schedule {name!r} (schedules are 'gc' and 'retention:<project>')")


@router.get("/schedules", response_model=list[ScheduleOut])
def list_schedules(
    ctx: Ctx, caller: SignedIn, project: Annotated[str | None, Query(max_length=255)] = None
) -> list[ScheduleOut]:
    if project is not None:
        project_access(ctx, caller, project)
        _may_manage(ctx, caller, project)
    elif not caller.identity.is_admin:
        raise Forbidden("only system administrators may list every schedule; pass project=")
    return [_schedule_out(x) for x in Schedules(ctx.db).all(project=project)]


def _managed_schedule(ctx: Context, caller: Principal, name: str) -> tuple[str, str | None]:
    kind_name, project = _schedule_target(name)
    if project is not None:
        project_access(ctx, caller, project)
    _may_manage(ctx, caller, project)
    return kind_name, project


@router.get("/schedules/{name}", response_model=ScheduleOut)
def get_schedule(ctx: Ctx, caller: SignedIn, name: str) -> ScheduleOut:
    _managed_schedule(ctx, caller, name)
    found = Schedules(ctx.db).get(name)
    if found is None:
        raise Missing(f"no schedule {name!r}")
    return _schedule_out(found)


@router.put("/schedules/{name}", response_model=ScheduleOut)
def put_schedule(
    ctx: Ctx, caller: SignedIn, name: str, body: Annotated[ScheduleIn, Body()]
) -> ScheduleOut:
    """Create or replace: `gc` (administrators) or `retention:<project>`."""
    kind_name, project = _managed_schedule(ctx, caller, name)
    try:
        params = KINDS[kind_name].params(body.params)
        saved = Schedules(ctx.db).put(
            name,
            kind=kind_name,
            cron=body.cron,
            params=params,
            project=project,
            enabled=body.enabled,
            created_by=caller.identity.actor,
            actor=caller.actor,
        )
    except (ParamsError, ScheduleError) as error:
        raise Invalid(str(error)) from None
    return _schedule_out(saved)


@router.delete("/schedules/{name}", status_code=204)
def delete_schedule(ctx: Ctx, caller: SignedIn, name: str) -> Response:
    _, _project = _managed_schedule(ctx, caller, name)
    if not Schedules(ctx.db).delete(name, actor=caller.actor):
        raise Missing(f"no schedule {name!r}")
    return Response(status_code=204)
