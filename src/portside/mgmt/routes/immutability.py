"""Tag immutability rules of a project: list, add, change (patterns, enable/disable) and
remove. Anyone who may see the project may read its rules; changing them takes the
project's `settings` permission (project admins, system admins)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field

from portside.content.immutability import ImmutabilityRules, RuleRecord
from portside.content.patterns import MAX_PATTERN, Syntax
from portside.mgmt.schemas import _In
from portside.mgmt.security import Caller, Ctx, project_access, require

router = APIRouter(tags=["immutability"])

RuleId = Annotated[int, Path(ge=1, le=2**31 - 1, description="The rule's id.")]


class RuleIn(_In):
    tag_pattern: str = Field(
        min_length=1,
        max_length=MAX_PATTERN,
        description="Tags the rule protects, e.g. `v*` or `{latest,stable}`.",
    )
    repository_pattern: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_PATTERN,
        description="Repositories, named without the project (`app/*`). Default: all "
        "(`**`, or `.*` for a regex rule).",
    )
    syntax: Syntax = Field(default="glob", description="`glob` or `regex` (anchored).")


class RulePatch(_In):
    tag_pattern: str | None = Field(default=None, min_length=1, max_length=MAX_PATTERN)
    repository_pattern: str | None = Field(default=None, min_length=1, max_length=MAX_PATTERN)
    syntax: Syntax | None = None
    disabled: bool | None = None


class RuleOut(BaseModel):
    id: int
    project: str
    repository_pattern: str
    tag_pattern: str
    syntax: Syntax
    disabled: bool
    created_by: str
    created_at: datetime


def _out(rule: RuleRecord) -> RuleOut:
    return RuleOut(
        id=rule.id,
        project=rule.project,
        repository_pattern=rule.repository_pattern,
        tag_pattern=rule.tag_pattern,
        syntax=rule.syntax,
        disabled=rule.disabled,
        created_by=rule.created_by,
        created_at=rule.created_at,
    )


@router.get("/projects/{project}/immutability-rules", response_model=list[RuleOut])
def list_rules(project: str, ctx: Ctx, caller: Caller) -> list[RuleOut]:
    """The project's rules in the order they are checked (oldest first)."""
    project_access(ctx, caller, project)
    return [_out(rule) for rule in ImmutabilityRules(ctx.db).find(project)]


@router.post("/projects/{project}/immutability-rules", response_model=RuleOut, status_code=201)
def add_rule(project: str, body: RuleIn, ctx: Ctx, caller: Caller) -> RuleOut:
    """Protect matching tags: a push that would move one to another digest, and any
    delete of one (or of its artifact or repository), is refused with `DENIED`."""
    require(ctx, caller, project, "settings")
    rule = ImmutabilityRules(ctx.db).add(
        project,
        tag_pattern=body.tag_pattern,
        repository_pattern=body.repository_pattern,
        syntax=body.syntax,
        creator=caller.identity.actor,
        actor=caller.actor,
    )
    return _out(rule)


@router.patch("/projects/{project}/immutability-rules/{rule_id}", response_model=RuleOut)
def update_rule(
    project: str, rule_id: RuleId, body: RulePatch, ctx: Ctx, caller: Caller
) -> RuleOut:
    """Change patterns or syntax, or disable (`"disabled": true`) and enable a rule."""
    require(ctx, caller, project, "settings")
    rule = ImmutabilityRules(ctx.db).update(
        project,
        rule_id,
        tag_pattern=body.tag_pattern,
        repository_pattern=body.repository_pattern,
        syntax=body.syntax,
        disabled=body.disabled,
        actor=caller.actor,
    )
    return _out(rule)


@router.delete("/projects/{project}/immutability-rules/{rule_id}", status_code=204)
def delete_rule(project: str, rule_id: RuleId, ctx: Ctx, caller: Caller) -> None:
    require(ctx, caller, project, "settings")
    ImmutabilityRules(ctx.db).delete(project, rule_id, actor=caller.actor)
