"""The `vulndb_import` job: import the configured vulnerability database sources that
changed (portside.vulndb.sources), and the schedule that queues it.

The schedule is named `vulndb-import`; `sync_schedule` (run by `portside serve` at
start) makes it match `vulndb.sources` and `vulndb.schedule`: present with that cron
while there are sources, absent otherwise. The idle job worker wakes for it as for any
due schedule or queued job (portside.jobs.idle reads both tables).
"""

from __future__ import annotations

from typing import Any

from portside.config import Settings
from portside.jobs.context import JobContext, JobFailed
from portside.jobs.schedules import Schedules
from portside.metadata.db import Database

KIND = "vulndb_import"
SCHEDULE = "vulndb-import"


def run_vulndb_import(job: JobContext) -> dict[str, Any]:
    from portside.vulndb.sources import import_source

    settings = job.services.settings
    sources = settings.vulndb.sources
    if not sources:
        raise JobFailed("no vulnerability database sources are configured (vulndb.sources)")
    outcomes = []
    for index, source in enumerate(sources):
        job.check_stop()
        job.progress(index, len(sources), source.name)

        def read(count: int, done: int = index, name: str = source.name) -> None:
            job.check_stop()  # a stop abandons the import: the source keeps its data
            job.progress(done, len(sources), f"{name}: {count} advisories read")

        outcome = import_source(
            job.services.db, settings, source, force=bool(job.params["force"]), progress=read
        )
        if outcome.result is not None:
            r = outcome.result
            job.log(
                f"{outcome.source}: imported {r.advisories} advisories "
                f"({r.packages} packages) as generation {r.generation}"
            )
        else:
            level = "error" if outcome.state == "failed" else "info"
            job.log(f"{outcome.source}: {outcome.state} {outcome.detail}".rstrip(), level)
        outcomes.append(outcome)
    job.progress(len(sources), len(sources))
    failed = [o for o in outcomes if o.state == "failed"]
    summary = {
        "imported": [o.source for o in outcomes if o.state == "imported"],
        "unchanged": [o.source for o in outcomes if o.state == "unchanged"],
        "failed": [{"source": o.source, "error": o.detail} for o in failed],
    }
    if failed and len(failed) == len(outcomes):
        raise JobFailed("; ".join(f"{o.source}: {o.detail}" for o in failed))
    return summary


def sync_schedule(db: Database, settings: Settings) -> None:
    """Make the `vulndb-import` schedule match the configuration."""
    schedules = Schedules(db)
    current = schedules.get(SCHEDULE)
    if not settings.vulndb.sources:
        if current is not None and current.created_by == "config":
            schedules.delete(SCHEDULE)
        return
    cron = settings.vulndb.schedule
    if current is not None and current.kind == KIND and current.cron == cron:
        return
    schedules.put(SCHEDULE, kind=KIND, cron=cron, params={"force": False}, created_by="config")
