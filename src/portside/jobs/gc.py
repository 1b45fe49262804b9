"""Garbage collection as a job: plan, log every deletion with its reason, apply, purge
expired uploads. Safe to re-run after a crash: the plan is recomputed from the database."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from portside.content.gc import GarbageCollector, Plan
from portside.content.purge import purge_uploads
from portside.jobs.context import JobContext
from portside.units import format_size


def plan_lines(plan: Plan, *, dry_run: bool) -> list[str]:
    verb = "would delete" if dry_run else "delete"
    lines = [f"{verb} manifest {m.repository}@{m.digest}: {m.reason}" for m in plan.manifests]
    lines += [f"{verb} link {k.repository} -> {k.digest}: {k.reason}" for k in plan.links]
    lines += [f"{verb} blob {b.digest} ({b.size} bytes): {b.reason}" for b in plan.blobs]
    return lines


def run_gc(job: JobContext) -> dict[str, Any]:
    services = job.services
    dry_run = bool(job.params["dry_run"])
    grace = timedelta(seconds=float(job.params["grace_period_seconds"]))
    # Deletions raise their events in their own transactions (content.gc, content.deletion).
    collector = GarbageCollector(
        services.db, services.storage, check=job.check_stop, job_id=job.job_id
    )
    job.progress(0, None, "planning")
    plan = collector.plan(grace, delete_untagged=bool(job.params["delete_untagged"]))
    for line in plan_lines(plan, dry_run=dry_run):
        job.log(line)
    planned = {
        "manifests": len(plan.manifests),
        "links": len(plan.links),
        "blobs": len(plan.blobs),
        "bytes": plan.bytes,
    }
    if dry_run:
        job.log(
            f"dry run: would delete {len(plan.manifests)} manifests, {len(plan.links)} links "
            f"and {len(plan.blobs)} blobs, freeing {plan.bytes} bytes ({format_size(plan.bytes)})"
        )
        return {"dry_run": True, "planned": planned}
    total = len(plan.manifests) + len(plan.links) + len(plan.blobs)
    job.progress(0, total, "deleting")
    result = collector.run(plan, progress=lambda done: job.progress(done, total, "deleting"))
    purged = purge_uploads(
        services.db,
        services.storage,
        timedelta(hours=services.settings.registry.upload_expiry_hours),
    )
    summary = (
        f"deleted {result.manifests} manifests, {result.links} links and {result.blobs} "
        f"blobs, freed {result.bytes} bytes ({format_size(result.bytes)}); "
        f"{result.skipped} planned deletions skipped (in use again); "
        f"purged {purged.expired_uploads} expired uploads"
    )
    job.log(summary)
    return {
        "dry_run": False,
        "planned": planned,
        "deleted": {
            "manifests": result.manifests,
            "links": result.links,
            "blobs": result.blobs,
            "bytes": result.bytes,
        },
        "skipped": result.skipped,
        "expired_uploads": purged.expired_uploads,
        "summary": summary,
    }
