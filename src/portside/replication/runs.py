"""Replication runs and what each did per artifact.

A run is a job of kind `replication` (its status, progress, log and summary are the
job's); `replication_runs` ties it to its rule and trigger, and `replication_items`
holds one row per artifact (or deletion): source, destination, digest, status (`copied`,
`skipped`, `deleted`, `failed`), blobs and bytes copied, and a message.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import func, select

from portside.metadata import schema as s
from portside.metadata.db import Database, as_utc, utcnow

ItemStatus = Literal["copied", "skipped", "deleted", "failed"]


@dataclass(frozen=True, slots=True)
class Item:
    id: int
    job_id: int
    source: str
    destination: str
    digest: str | None
    status: ItemStatus
    blobs: int
    bytes: int
    message: str | None
    at: datetime


@dataclass(frozen=True, slots=True)
class Run:
    job_id: int
    rule_id: int
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


def _item(row: Any) -> Item:
    return Item(
        id=int(row.id),
        job_id=int(row.job_id),
        source=row.source,
        destination=row.destination,
        digest=row.digest,
        status=row.status,
        blobs=int(row.blobs),
        bytes=int(row.bytes),
        message=row.message,
        at=as_utc(row.at),
    )


def _run(row: Any) -> Run:
    return Run(
        job_id=int(row.job_id),
        rule_id=int(row.rule_id),
        rule=row.rule,
        trigger=row.trigger,
        status=row.status,
        created_at=as_utc(row.created_at),
        started_at=as_utc(row.started_at) if row.started_at else None,
        finished_at=as_utc(row.finished_at) if row.finished_at else None,
        progress_done=int(row.progress_done),
        progress_total=None if row.progress_total is None else int(row.progress_total),
        result=json.loads(row.result) if row.result else None,
        error=row.error,
    )


class Runs:
    def __init__(self, db: Database) -> None:
        self.db = db

    def begin(self, job_id: int, rule_id: int, trigger: str) -> None:
        """Record that job `job_id` runs `rule_id` (again, after a retry: once)."""
        with self.db.write() as conn:
            self.db.insert_ignore(
                conn,
                s.replication_runs,
                {"job_id": job_id, "rule_id": rule_id, "trigger": trigger, "created_at": utcnow()},
            )

    def other_active(self, job_id: int, rule_id: int) -> int | None:
        """Another queued or running run of the rule started before this one, if any."""
        r, j = s.replication_runs, s.jobs
        with self.db.read() as conn:
            found = conn.execute(
                select(r.c.job_id)
                .join(j, j.c.id == r.c.job_id)
                .where(
                    r.c.rule_id == rule_id,
                    r.c.job_id < job_id,
                    j.c.status == "running",
                )
                .limit(1)
            ).scalar_one_or_none()
        return None if found is None else int(found)

    def record(
        self,
        job_id: int,
        *,
        source: str,
        destination: str,
        digest: str | None,
        status: ItemStatus,
        blobs: int = 0,
        size: int = 0,
        message: str | None = None,
    ) -> None:
        with self.db.write() as conn:
            conn.execute(
                s.replication_items.insert().values(
                    job_id=job_id,
                    source=source,
                    destination=destination,
                    digest=digest,
                    status=status,
                    blobs=blobs,
                    bytes=size,
                    message=(message or None) and message[:2000],
                    at=utcnow(),
                )
            )

    def items(
        self, job_id: int, *, status: str | None = None, limit: int = 1000, offset: int = 0
    ) -> tuple[list[Item], int]:
        i = s.replication_items
        where = [i.c.job_id == job_id]
        if status is not None:
            where.append(i.c.status == status)
        with self.db.read() as conn:
            total = conn.execute(select(func.count()).select_from(i).where(*where)).scalar_one()
            rows = conn.execute(
                select(i).where(*where).order_by(i.c.id).limit(limit).offset(offset)
            ).all()
        return [_item(r) for r in rows], int(total)

    def written(self, rule_id: int) -> set[tuple[str, str]]:
        """(source repository, destination repository) pairs earlier runs of the rule
        copied to (or found there): where deletions may have to follow."""
        i, r = s.replication_items, s.replication_runs
        with self.db.read() as conn:
            rows = conn.execute(
                select(i.c.source, i.c.destination)
                .join(r, r.c.job_id == i.c.job_id)
                .where(r.c.rule_id == rule_id, i.c.status.in_(("copied", "skipped")))
                .distinct()
            ).all()
        return {(re.split(r"[:@]", row.source, maxsplit=1)[0], row.destination) for row in rows}

    def find(
        self, *, rule_id: int | None = None, limit: int = 50, offset: int = 0
    ) -> tuple[list[Run], int]:
        """Runs, newest first."""
        r = s.replication_runs
        query, count = _runs_query(), select(func.count()).select_from(r)
        if rule_id is not None:
            query = query.where(r.c.rule_id == rule_id)
            count = count.where(r.c.rule_id == rule_id)
        with self.db.read() as conn:
            total = conn.execute(count).scalar_one()
            rows = conn.execute(query.order_by(r.c.job_id.desc()).limit(limit).offset(offset)).all()
        return [_run(row) for row in rows], int(total)

    def get(self, job_id: int) -> Run | None:
        with self.db.read() as conn:
            row = conn.execute(_runs_query().where(s.replication_runs.c.job_id == job_id)).first()
        return None if row is None else _run(row)


def _runs_query() -> Any:
    r, j, rules = s.replication_runs, s.jobs, s.replication_rules
    return (
        select(
            r.c.job_id,
            r.c.rule_id,
            rules.c.name.label("rule"),
            r.c.trigger,
            j.c.status,
            j.c.created_at,
            j.c.started_at,
            j.c.finished_at,
            j.c.progress_done,
            j.c.progress_total,
            j.c.result,
            j.c.error,
        )
        .join(j, j.c.id == r.c.job_id)
        .outerjoin(rules, rules.c.id == r.c.rule_id)
    )
