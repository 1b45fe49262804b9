"""Reporting a retention plan (log lines, the summary a job or the CLI shows) and the
`retention` job: plan the project's policy, log every deletion, apply unless dry run."""

from __future__ import annotations

from collections import Counter
from typing import Any

from portside.content.retention.applier import Applier, RetentionResult
from portside.content.retention.planner import Deletion, Planner, RetentionPlan
from portside.content.retention.policy import ProjectUnknown
from portside.jobs.context import JobContext, JobFailed
from portside.units import format_size


def deletion_line(item: Deletion, verb: str) -> str:
    """`would delete team/app@sha256:... [v1, tmp]: not retained by any rule`."""
    tags = f" [{', '.join(item.tags)}]" if item.tags else ""
    return f"{verb} {item.resource}{tags}: {item.reason}"


def rule_lines(plan: RetentionPlan) -> list[str]:
    """One line per rule: what it retained (first rule to retain an artifact counts)."""
    retained = Counter(k.rule for k in plan.retained if k.rule is not None)
    return [
        f"rule {n}: {rule.describe()}"
        + (": disabled" if rule.disabled else f": retains {retained[n]} artifacts")
        for n, rule in enumerate(plan.policy.rules, 1)
    ]


def plan_lines(plan: RetentionPlan, *, dry_run: bool) -> list[str]:
    """The rules' lines, then one line per planned deletion."""
    verb = "would delete" if dry_run else "delete"
    return rule_lines(plan) + [deletion_line(d, verb) for d in plan.deletions]


def summary(plan: RetentionPlan, result: RetentionResult | None) -> dict[str, Any]:
    """The job result / CLI summary: planned figures, and with `result` what was done."""
    done: dict[str, Any] = {
        "project": plan.project,
        "dry_run": result is None,
        "repositories": len(plan.repositories),
        "retained": len(plan.retained),
        "planned": {
            "artifacts": len(plan.deletions),
            "tags": plan.tags,
            "blobs": len(plan.blobs),
            "blob_bytes": plan.blob_bytes,
            "manifest_bytes": plan.manifest_bytes,
            "bytes_freed": plan.bytes_freed,
        },
    }
    source: RetentionPlan | RetentionResult = plan if result is None else result
    deleted = plan.deletions if result is None else result.deleted
    done.update(
        artifacts_deleted=len(deleted),
        tags_deleted=source.tags,
        blob_bytes=source.blob_bytes,
        manifest_bytes=source.manifest_bytes,
        bytes_freed=source.bytes_freed,
        skipped=0 if result is None else len(result.skipped),
    )
    verb = "would delete" if result is None else "deleted"
    done["summary"] = (
        f"{verb} {done['artifacts_deleted']} artifacts ({done['tags_deleted']} tags) in "
        f"{len(plan.repositories)} repositories, retained {len(plan.retained)}, skipped "
        f"{done['skipped']}; {done['bytes_freed']} bytes freed ({done['blob_bytes']} in blobs, "
        "reclaimed by the next garbage collection, and "
        f"{done['manifest_bytes']} in manifests); {format_size(done['bytes_freed'])} in all"
    )
    return done


def run_retention(job: JobContext) -> dict[str, Any]:
    """The `retention` job: plan the project's policy, log every deletion, and (unless
    `dry_run`) apply the plan. Safe to re-run: the plan is recomputed from the database."""

    if job.project is None:
        raise JobFailed("a retention job needs a project")
    dry_run = bool(job.params.get("dry_run", False))

    def record(item: Deletion) -> None:
        # content.deletion raised `artifact.deleted` in the deleting transaction.
        job.log(deletion_line(item, "deleted"))

    job.progress(0, None, "planning")
    try:
        plan = Planner(job.services.db).plan(job.project)
    except ProjectUnknown as error:
        raise JobFailed(str(error)) from None
    if not plan.policy.enabled_rules:
        job.log("the project has no enabled retention rules: nothing to do")
    # A dry run lists what would go; a run logs each deletion as it happens.
    for line in plan_lines(plan, dry_run=True) if dry_run else rule_lines(plan):
        job.log(line)
    if dry_run:
        done = summary(plan, None)
        job.log(done["summary"])
        return done
    job.check_stop()
    result = Applier(job.services.db, record).apply(
        plan,
        check=job.check_stop,
        progress=lambda n, total: job.progress(n, total, "deleting"),
    )
    for item, why in result.skipped:
        job.log(f"skipped {item.resource}: {why}", "warning")
    done = summary(plan, result)
    job.log(done["summary"])
    return done
