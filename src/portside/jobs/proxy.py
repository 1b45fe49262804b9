"""Proxy-cache eviction as a job: for every proxy project over its size limit (or the
one named), evict least-recently-pulled artifacts (portside.proxy.eviction), then let
garbage collection reclaim the links and blobs they leave behind."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from portside.content.gc import GarbageCollector
from portside.jobs.context import JobContext
from portside.jobs.gc import plan_lines
from portside.proxy.eviction import apply_eviction, plan_eviction
from portside.units import format_size


def run_eviction(job: JobContext) -> dict[str, Any]:
    services = job.services
    dry_run = bool(job.params["dry_run"])
    protect = float(job.params["protect_seconds"])
    only = job.params.get("project")
    bindings = [b for b in services.proxy.store.limited() if only is None or b.project == only]
    evicted: dict[str, int] = {}
    for binding in bindings:
        job.check_stop()
        assert binding.cache_limit_bytes is not None
        plan = plan_eviction(
            services.db, binding.project, binding.cache_limit_bytes, protect_seconds=protect
        )
        job.log(
            f"{binding.project}: needs {format_size(plan.size)} of its "
            f"{format_size(plan.limit)} limit; {len(plan.victims)} artifacts to evict"
        )
        verb = "would evict" if dry_run else "evict"
        for victim in plan.victims:
            job.log(
                f"{verb} {victim.repository}@{victim.digest} (last used "
                f"{victim.last_used:%Y-%m-%d %H:%M:%S}Z, frees {format_size(victim.frees)})"
            )
        if not dry_run and plan.victims:
            evicted[binding.project] = apply_eviction(services.db, plan, protect_seconds=protect)
    result: dict[str, Any] = {"dry_run": dry_run, "evicted": evicted}
    if dry_run or not evicted:
        return result
    collector = GarbageCollector(
        services.db, services.storage, check=job.check_stop, job_id=job.job_id
    )
    grace = timedelta(seconds=float(job.params["grace_period_seconds"]))
    sweep = collector.plan(grace)
    for line in plan_lines(sweep, dry_run=False):
        job.log(line)
    done = collector.run(sweep)
    job.log(f"garbage collection freed {done.bytes} bytes ({format_size(done.bytes)})")
    result["freed_bytes"] = done.bytes
    return result
