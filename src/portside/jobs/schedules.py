"""Cron schedules that queue jobs. Times are UTC.

Every worker looks at due schedules; the one whose conditional UPDATE moves
`next_run_at` forward queues the job, in the same transaction, so a schedule fires once
however many processes share the database. A run missed while no worker was up fires
once when one comes back (not once per missed slot).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from croniter import croniter
from sqlalchemy import delete, select, update

from portside.events import outbox
from portside.events.outbox import SYSTEM, Actor
from portside.jobs.store import JobConflict, Jobs
from portside.metadata import schema as s
from portside.metadata.db import Database, as_utc, utcnow


class ScheduleError(ValueError):
    """A cron expression that cannot be parsed; the message says why."""


@dataclass(frozen=True, slots=True)
class Schedule:
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


def next_run(cron: str, after: datetime) -> datetime:
    """The first time after `after` that `cron` (5 fields, UTC) names."""
    if len(cron.split()) != 5:
        raise ScheduleError(
            f"{cron!r} is not a cron expression of 5 fields "
            "(minute hour day-of-month month day-of-week), e.g. '0 3 * * *'"
        )
    try:
        # max_years_between_matches bounds the search for dates that never come (Feb 31).
        value = croniter(cron, after, max_years_between_matches=5).get_next(datetime)
    except (ValueError, KeyError, TypeError) as error:
        reason = str(error) or type(error).__name__
        raise ScheduleError(f"{cron!r} is not a valid cron expression: {reason}") from None
    assert isinstance(value, datetime)
    return as_utc(value)


def _schedule(row: Any) -> Schedule:
    return Schedule(
        name=row.name,
        kind=row.kind,
        project=row.project,
        cron=row.cron,
        params=json.loads(row.params),
        enabled=bool(row.enabled),
        next_run_at=None if row.next_run_at is None else as_utc(row.next_run_at),
        last_job_id=row.last_job_id,
        created_by=row.created_by,
        updated_at=as_utc(row.updated_at),
    )


class Schedules:
    def __init__(self, db: Database) -> None:
        self.db = db

    def put(
        self,
        name: str,
        *,
        kind: str,
        cron: str,
        params: dict[str, Any],
        project: str | None = None,
        enabled: bool = True,
        created_by: str,
        actor: Actor | None = None,
    ) -> Schedule:
        """Create or replace a schedule, raising `schedule.set` (by `actor`, else
        `created_by`)."""
        now = utcnow()
        following = next_run(cron, now)  # validates, enabled or not
        values = {
            "kind": kind,
            "project": project,
            "cron": cron,
            "params": json.dumps(params, sort_keys=True),
            "enabled": enabled,
            "next_run_at": following if enabled else None,
            "created_by": created_by,
            "updated_at": now,
        }
        t = s.schedules
        with self.db.write() as conn:
            changed = conn.execute(update(t).where(t.c.name == name).values(**values)).rowcount
            if not changed:
                conn.execute(t.insert().values(name=name, **values))
            outbox.emit(
                conn,
                outbox.SCHEDULE_SET,
                actor or Actor(created_by),
                resource=name,
                project=project,
                data={"cron": cron, "enabled": enabled, "params": params},
            )
        found = self.get(name)
        assert found is not None
        return found

    def get(self, name: str) -> Schedule | None:
        with self.db.read() as conn:
            row = conn.execute(select(s.schedules).where(s.schedules.c.name == name)).first()
        return None if row is None else _schedule(row)

    def all(self, *, project: str | None = None) -> list[Schedule]:
        t = s.schedules
        query = select(t).order_by(t.c.name)
        if project is not None:
            query = query.where(t.c.project == project)
        with self.db.read() as conn:
            return [_schedule(r) for r in conn.execute(query)]

    def delete(self, name: str, *, actor: Actor = SYSTEM) -> bool:
        t = s.schedules
        with self.db.write() as conn:
            project = conn.execute(select(t.c.project).where(t.c.name == name)).first()
            if not conn.execute(delete(t).where(t.c.name == name)).rowcount:
                return False
            outbox.emit(
                conn,
                outbox.SCHEDULE_DELETED,
                actor,
                resource=name,
                project=project.project if project else None,
            )
            return True

    def fire_due(self, jobs: Jobs, now: datetime | None = None) -> list[int]:
        """Queue a job for every due schedule; returns the ids queued."""
        t = s.schedules
        now = now or utcnow()
        with self.db.read() as conn:
            due = conn.execute(select(t).where(t.c.enabled.is_(True), t.c.next_run_at <= now)).all()
        queued: list[int] = []
        for row in due:
            following = next_run(row.cron, now)
            with self.db.write() as conn:
                moved = conn.execute(
                    update(t)
                    .where(t.c.name == row.name, t.c.next_run_at == row.next_run_at)
                    .values(next_run_at=following)
                ).rowcount
                if not moved:
                    continue  # another worker fired it
                try:
                    job_id = jobs.enqueue_in(
                        conn,
                        row.kind,
                        json.loads(row.params),
                        project=row.project,
                        created_by=f"schedule:{row.name}",
                        schedule=row.name,
                    )
                except JobConflict:
                    continue  # the previous run is still going: skip this slot
                conn.execute(update(t).where(t.c.name == row.name).values(last_job_id=job_id))
            queued.append(job_id)
        return queued
