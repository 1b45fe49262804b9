"""Replication rules and runs: list, create, read, change, delete rules, start a run,
list runs (all, or a rule's) and read one run with its per-artifact results. System
administrators only, as in Harbor.

A scheduled rule's cron becomes a job schedule (`replication-<rule id>`) kept in step
with the rule here; runs are jobs of kind `replication`, so `/jobs/{id}` (and its log)
shows them too.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel, Field, StrictBool

from portside.auth.errors import Missing
from portside.jobs.replication import queue_run, sync_schedule
from portside.mgmt.paging import Paging, describe_page
from portside.mgmt.schemas import _In
from portside.mgmt.security import Admin, Ctx
from portside.replication.rules import Direction, Resources, Rule, RuleStore, Trigger
from portside.replication.runs import Item, ItemStatus, Run, Runs

router = APIRouter(tags=["replication"])

RuleName = Annotated[str, Path(min_length=1, max_length=64, description="The rule.")]
RunId = Annotated[int, Path(ge=1, le=2**31 - 1, description="The run's (job's) id.")]


class RuleFields(_In):
    description: str | None = Field(default=None, max_length=1000)
    enabled: StrictBool | None = None
    repositories: str | None = Field(
        default=None, max_length=512, description="Repository name pattern (glob; `**`)."
    )
    tags: str | None = Field(default=None, max_length=512, description="Tag pattern (glob).")
    labels: list[str] | None = Field(
        default=None, max_length=20, description="`key=value` annotations required."
    )
    resources: Resources | None = Field(default=None, description="`images`, `artifacts`, `all`.")
    destination_namespace: str | None = Field(default=None, max_length=255)
    flattening: int | None = Field(
        default=None, ge=-1, le=3, description="-1 all levels, 0 none, 1 (default), 2, 3."
    )
    copy_deletions: StrictBool | None = None
    override: StrictBool | None = None
    bandwidth_kbps: int | None = Field(default=None, ge=0, le=10**8, description="0: unlimited.")
    trigger: Trigger | None = None
    cron: str | None = Field(default=None, max_length=128)


class RuleIn(RuleFields):
    name: str = Field(min_length=1, max_length=64)
    direction: Direction
    endpoint: str = Field(min_length=1, max_length=64)


class RulePatch(RuleFields):
    endpoint: str | None = Field(default=None, min_length=1, max_length=64)


class RuleOut(BaseModel):
    id: int
    name: str
    description: str | None
    enabled: bool
    direction: str
    endpoint: str
    repositories: str
    tags: str
    labels: list[str]
    resources: str
    destination_namespace: str | None
    flattening: int
    copy_deletions: bool
    override: bool
    bandwidth_kbps: int | None
    trigger: str
    cron: str | None
    created_by: str
    created_at: datetime
    updated_at: datetime


class RunOut(BaseModel):
    id: int = Field(description="The run's job id (also under /jobs/{id}).")
    rule: str | None
    trigger: str
    status: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    progress_done: int
    progress_total: int | None
    result: dict[str, Any] | None
    error: str | None


class ItemOut(BaseModel):
    source: str
    destination: str
    digest: str | None
    status: ItemStatus
    blobs: int
    bytes: int
    message: str | None
    at: datetime


class RunDetail(RunOut):
    items: list[ItemOut]
    items_total: int


def rule_out(rule: Rule) -> RuleOut:
    return RuleOut(
        id=rule.id,
        name=rule.name,
        description=rule.description,
        enabled=rule.enabled,
        direction=rule.direction,
        endpoint=rule.endpoint,
        repositories=rule.repositories,
        tags=rule.tags,
        labels=list(rule.labels),
        resources=rule.resources,
        destination_namespace=rule.destination_namespace,
        flattening=rule.flattening,
        copy_deletions=rule.copy_deletions,
        override=rule.override,
        bandwidth_kbps=rule.bandwidth_kbps,
        trigger=rule.trigger,
        cron=rule.cron,
        created_by=rule.created_by,
        created_at=rule.created_at,
        updated_at=rule.updated_at,
    )


def run_out(run: Run) -> RunOut:
    return RunOut(
        id=run.job_id,
        rule=run.rule,
        trigger=run.trigger,
        status=run.status,
        created_at=run.created_at,
        started_at=run.started_at,
        finished_at=run.finished_at,
        progress_done=run.progress_done,
        progress_total=run.progress_total,
        result=run.result,
        error=run.error,
    )


def item_out(item: Item) -> ItemOut:
    return ItemOut(
        source=item.source,
        destination=item.destination,
        digest=item.digest,
        status=item.status,
        blobs=item.blobs,
        bytes=item.bytes,
        message=item.message,
        at=item.at,
    )


def _options(body: RuleFields) -> dict[str, Any]:
    return body.model_dump(exclude_unset=True, exclude={"name", "direction", "endpoint"})


@router.get("/replication/rules", response_model=list[RuleOut])
def list_rules(ctx: Ctx, caller: Admin) -> list[RuleOut]:
    return [rule_out(r) for r in RuleStore(ctx.db).find()]


@router.post("/replication/rules", response_model=RuleOut, status_code=201)
def create_rule(body: RuleIn, ctx: Ctx, caller: Admin) -> RuleOut:
    rule = RuleStore(ctx.db).create(
        name=body.name,
        direction=body.direction,
        endpoint=body.endpoint,
        actor=caller.actor,
        **_options(body),
    )
    sync_schedule(ctx.db, rule, actor=caller.actor, name=rule.schedule_name)
    return rule_out(rule)


@router.get("/replication/rules/{name}", response_model=RuleOut)
def get_rule(name: RuleName, ctx: Ctx, caller: Admin) -> RuleOut:
    return rule_out(RuleStore(ctx.db).get(name))


@router.patch("/replication/rules/{name}", response_model=RuleOut)
def update_rule(name: RuleName, body: RulePatch, ctx: Ctx, caller: Admin) -> RuleOut:
    """Change what is given (`""` clears description, cron and namespace; a bandwidth of
    0 is unlimited)."""
    rule = RuleStore(ctx.db).update(
        name, actor=caller.actor, endpoint=body.endpoint, **_options(body)
    )
    sync_schedule(ctx.db, rule, actor=caller.actor, name=rule.schedule_name)
    return rule_out(rule)


@router.delete("/replication/rules/{name}", status_code=204)
def delete_rule(name: RuleName, ctx: Ctx, caller: Admin) -> None:
    """Remove the rule, its schedule and its run records (the jobs stay in the history)."""
    rule = RuleStore(ctx.db).delete(name, actor=caller.actor)
    sync_schedule(ctx.db, None, actor=caller.actor, name=rule.schedule_name)


@router.post("/replication/rules/{name}/runs", response_model=RunOut, status_code=201)
def start_run(name: RuleName, ctx: Ctx, caller: Admin) -> RunOut:
    """Queue a run now (whatever the rule's trigger; a disabled rule too)."""
    rule = RuleStore(ctx.db).get(name)
    job_id = queue_run(ctx.db, rule, actor=caller.actor)
    found = Runs(ctx.db).get(job_id)
    assert found is not None
    return run_out(found)


@router.get("/replication/runs", response_model=list[RunOut])
def list_runs(
    request: Request,
    response: Response,
    ctx: Ctx,
    caller: Admin,
    paging: Paging,
    rule: Annotated[str | None, Query(max_length=64, description="Only this rule's.")] = None,
) -> list[RunOut]:
    """Runs, newest first."""
    rule_id = RuleStore(ctx.db).get(rule).id if rule else None
    runs, total = Runs(ctx.db).find(rule_id=rule_id, limit=paging.size, offset=paging.offset)
    describe_page(request, response, paging, total)
    return [run_out(r) for r in runs]


@router.get("/replication/runs/{run_id}", response_model=RunDetail)
def get_run(
    run_id: RunId,
    ctx: Ctx,
    caller: Admin,
    status: Annotated[ItemStatus | None, Query(description="Only items in this state.")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> RunDetail:
    """A run with its per-artifact results (the first `limit`)."""
    runs = Runs(ctx.db)
    found = runs.get(run_id)
    if found is None:
        raise Missing(f"no replication run {run_id}")
    items, total = runs.items(run_id, status=status, limit=limit)
    return RunDetail(
        **run_out(found).model_dump(), items=[item_out(i) for i in items], items_total=total
    )
