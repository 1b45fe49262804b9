"""Jobs in the metadata database: queue, claim, heartbeat, finish, stop, retry.

Every state change is one short transaction, and every change a worker makes is
conditional on it still owning the job (`status = 'running' AND worker = me`), so a worker
that was presumed dead (its heartbeat went stale, the job was re-queued and picked up by
another) cannot overwrite the new run's state when it wakes up.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import Connection, and_, delete, func, insert, select, text, update

from portside.events import outbox
from portside.events.outbox import SYSTEM, Actor
from portside.metadata import schema as s
from portside.metadata.db import Database, as_utc, utcnow

Status = Literal["queued", "running", "succeeded", "failed", "stopped"]
STATUSES: tuple[Status, ...] = ("queued", "running", "succeeded", "failed", "stopped")
ACTIVE: tuple[Status, ...] = ("queued", "running")
_MESSAGE_MAX = 4000


@dataclass(frozen=True, slots=True)
class JobRecord:
    id: int
    kind: str
    params: dict[str, Any]
    project: str | None
    status: Status
    created_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    heartbeat_at: datetime | None
    worker: str | None
    attempts: int
    stop_requested: bool
    progress_done: int
    progress_total: int | None
    progress_message: str | None
    result: dict[str, Any] | None
    error: str | None
    schedule: str | None


@dataclass(frozen=True, slots=True)
class LogLine:
    id: int
    at: datetime
    level: str
    message: str


class JobConflict(Exception):
    """A job of the same kind is already queued or running for the same project."""

    def __init__(self, existing: int) -> None:
        super().__init__(f"job {existing} of this kind is already queued or running")
        self.existing = existing


def _opt_time(value: datetime | None) -> datetime | None:
    return None if value is None else as_utc(value)


def _record(row: Any) -> JobRecord:
    return JobRecord(
        id=int(row.id),
        kind=row.kind,
        params=json.loads(row.params),
        project=row.project,
        status=row.status,
        created_by=row.created_by,
        created_at=as_utc(row.created_at),
        started_at=_opt_time(row.started_at),
        finished_at=_opt_time(row.finished_at),
        heartbeat_at=_opt_time(row.heartbeat_at),
        worker=row.worker,
        attempts=int(row.attempts),
        stop_requested=bool(row.stop_requested),
        progress_done=int(row.progress_done),
        progress_total=None if row.progress_total is None else int(row.progress_total),
        progress_message=row.progress_message,
        result=None if row.result is None else json.loads(row.result),
        error=row.error,
        schedule=row.schedule,
    )


class Jobs:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- queueing ---------------------------------------------------------------------
    def enqueue(
        self,
        kind: str,
        params: dict[str, Any],
        *,
        project: str | None = None,
        created_by: str,
        schedule: str | None = None,
        exclusive: bool | None = None,
        run_by: str | None = None,
        actor: Actor | None = None,
    ) -> int:
        """Queue a job and return its id. With `exclusive` (default: the kind's), refuse
        (JobConflict) while a job of the same kind and project is queued or running.
        With `run_by`, the job is created already running on that worker (the CLI
        running a job itself), so no other worker can pick it up in between. Raises
        `job.started` (by `actor`, else `created_by`); a schedule's runs do not (the
        schedule was the change)."""
        with self.db.write() as conn:
            job_id = self.enqueue_in(
                conn,
                kind,
                params,
                project=project,
                created_by=created_by,
                schedule=schedule,
                exclusive=exclusive,
                run_by=run_by,
            )
            if run_by is not None:
                self._append(conn, job_id, [(utcnow(), "info", f"started on {run_by}")])
            outbox.emit(
                conn,
                outbox.JOB_STARTED,
                actor or Actor(created_by),
                resource=str(job_id),
                project=project,
                data={"kind": kind, "params": params},
            )
            return job_id

    def enqueue_in(
        self,
        conn: Connection,
        kind: str,
        params: dict[str, Any],
        *,
        project: str | None,
        created_by: str,
        schedule: str | None = None,
        exclusive: bool | None = None,
        run_by: str | None = None,
    ) -> int:
        j = s.jobs
        now = utcnow()
        if exclusive is None:
            exclusive = kind_is_exclusive(kind)
        if exclusive:
            if conn.dialect.name == "postgresql":
                # Check-then-insert must not interleave (READ COMMITTED would let two
                # requests both see no active job); SQLite's writers are serial already.
                conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('portside.jobs'))"))
            same_project = j.c.project.is_(None) if project is None else j.c.project == project
            existing = conn.execute(
                select(j.c.id)
                .where(j.c.kind == kind, same_project, j.c.status.in_(ACTIVE))
                .limit(1)
            ).scalar_one_or_none()
            if existing is not None:
                raise JobConflict(int(existing))
        job_id = conn.execute(
            insert(j)
            .values(
                kind=kind,
                params=json.dumps(params, sort_keys=True),
                project=project,
                status="queued" if run_by is None else "running",
                created_by=created_by,
                created_at=now,
                started_at=None if run_by is None else now,
                heartbeat_at=None if run_by is None else now,
                worker=run_by,
                attempts=0 if run_by is None else 1,
                stop_requested=False,
                progress_done=0,
                schedule=schedule,
            )
            .returning(j.c.id)
        ).scalar_one()
        return int(job_id)

    # -- reading ----------------------------------------------------------------------
    def get(self, job_id: int) -> JobRecord | None:
        with self.db.read() as conn:
            row = conn.execute(select(s.jobs).where(s.jobs.c.id == job_id)).first()
        return None if row is None else _record(row)

    def find(
        self,
        *,
        kind: str | None = None,
        status: str | None = None,
        project: str | None = None,
        projects: Sequence[str] | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[list[JobRecord], int]:
        """Newest first; `projects` restricts to jobs of those projects (for callers who
        may not see system jobs)."""
        j = s.jobs
        where = []
        if kind is not None:
            where.append(j.c.kind == kind)
        if status is not None:
            where.append(j.c.status == status)
        if project is not None:
            where.append(j.c.project == project)
        if projects is not None:
            where.append(j.c.project.in_(list(projects)))
        condition = and_(True, *where)
        with self.db.read() as conn:
            total = conn.execute(select(func.count()).select_from(j).where(condition)).scalar_one()
            rows = conn.execute(
                select(j).where(condition).order_by(j.c.id.desc()).limit(limit).offset(offset)
            ).all()
        return [_record(r) for r in rows], int(total)

    def log(self, job_id: int, *, after: int = 0, limit: int = 1000) -> list[LogLine]:
        lg = s.job_log
        with self.db.read() as conn:
            rows = conn.execute(
                select(lg.c.id, lg.c.at, lg.c.level, lg.c.message)
                .where(lg.c.job_id == job_id, lg.c.id > after)
                .order_by(lg.c.id)
                .limit(limit)
            ).all()
        return [LogLine(int(r.id), as_utc(r.at), r.level, r.message) for r in rows]

    # -- control ----------------------------------------------------------------------
    def request_stop(self, job_id: int, *, actor: Actor = SYSTEM) -> JobRecord | None:
        """A queued job stops at once; a running one is asked to stop at its next check
        point (its worker notices within a heartbeat). Finished jobs are left alone, and
        only a job that was asked raises `job.stopped`."""
        j = s.jobs
        now = utcnow()
        with self.db.write() as conn:
            asked = conn.execute(
                update(j)
                .where(j.c.id == job_id, j.c.status == "queued")
                .values(status="stopped", finished_at=now, stop_requested=True)
            ).rowcount
            asked += conn.execute(
                update(j)
                .where(j.c.id == job_id, j.c.status == "running")
                .values(stop_requested=True)
            ).rowcount
            if asked:
                job = conn.execute(select(j.c.kind, j.c.project).where(j.c.id == job_id)).one()
                outbox.emit(
                    conn,
                    outbox.JOB_STOPPED,
                    actor,
                    resource=str(job_id),
                    project=job.project,
                    data={"kind": job.kind},
                )
        return self.get(job_id)

    # -- worker side ------------------------------------------------------------------
    def claim_next(self, worker: str, kinds: Sequence[str]) -> JobRecord | None:
        """Take the oldest queued job of a known kind. Two workers racing for the same
        row: the conditional UPDATE lets exactly one of them have it."""
        j = s.jobs
        for _ in range(5):
            with self.db.read() as conn:
                job_id = conn.execute(
                    select(j.c.id)
                    .where(j.c.status == "queued", j.c.kind.in_(list(kinds)))
                    .order_by(j.c.id)
                    .limit(1)
                ).scalar_one_or_none()
            if job_id is None:
                return None
            if self.claim(int(job_id), worker):
                return self.get(int(job_id))
        return None

    def claim(self, job_id: int, worker: str) -> bool:
        j = s.jobs
        now = utcnow()
        with self.db.write() as conn:
            claimed = conn.execute(
                update(j)
                .where(j.c.id == job_id, j.c.status == "queued")
                .values(
                    status="running",
                    worker=worker,
                    started_at=now,
                    heartbeat_at=now,
                    finished_at=None,
                    attempts=j.c.attempts + 1,
                    progress_done=0,
                    progress_total=None,
                    progress_message=None,
                )
            ).rowcount
            if claimed:
                self._append(conn, job_id, [(now, "info", f"started on {worker}")])
        return bool(claimed)

    def heartbeat(self, job_id: int, worker: str) -> tuple[bool, bool]:
        """(still ours, stop requested)."""
        j = s.jobs
        mine = (j.c.id == job_id, j.c.status == "running", j.c.worker == worker)
        with self.db.write() as conn:
            owned = conn.execute(update(j).where(*mine).values(heartbeat_at=utcnow())).rowcount
            stop = conn.execute(select(j.c.stop_requested).where(j.c.id == job_id)).scalar()
        return bool(owned), bool(stop)

    def report(
        self,
        job_id: int,
        worker: str,
        *,
        lines: Sequence[tuple[datetime, str, str]] = (),
        progress: tuple[int, int | None, str | None] | None = None,
    ) -> bool:
        """Append log lines and/or set progress, if the job is still ours."""
        j = s.jobs
        values: dict[str, Any] = {"heartbeat_at": utcnow()}
        if progress is not None:
            done, total, message = progress
            values |= {
                "progress_done": done,
                "progress_total": total,
                "progress_message": None if message is None else message[:_MESSAGE_MAX],
            }
        with self.db.write() as conn:
            # The conditional UPDATE is the ownership check: it locks the row, so a
            # takeover cannot commit between the check and the log lines.
            owned = conn.execute(
                update(j)
                .where(j.c.id == job_id, j.c.status == "running", j.c.worker == worker)
                .values(**values)
            ).rowcount
            if not owned:
                return False
            if lines:
                self._append(conn, job_id, lines)
        return True

    def finish(
        self,
        job_id: int,
        worker: str,
        status: Status,
        *,
        result: dict[str, Any] | None = None,
        error: str | None = None,
        lines: Sequence[tuple[datetime, str, str]] = (),
    ) -> bool:
        j = s.jobs
        now = utcnow()
        with self.db.write() as conn:
            done = conn.execute(
                update(j)
                .where(j.c.id == job_id, j.c.status == "running", j.c.worker == worker)
                .values(
                    status=status,
                    finished_at=None if status == "queued" else now,
                    heartbeat_at=now,
                    worker=worker if status != "queued" else None,
                    result=None if result is None else json.dumps(result, sort_keys=True),
                    error=None if error is None else error[:_MESSAGE_MAX],
                )
            ).rowcount
            if done:
                self._append(conn, job_id, lines)
        return bool(done)

    def requeue_lost(self, lost_after: timedelta, max_attempts: int) -> list[int]:
        """Running jobs whose worker stopped heart-beating: queue them again (they are
        idempotent and re-read their state), or fail them after `max_attempts`."""
        j = s.jobs
        now = utcnow()
        cutoff = now - lost_after
        touched: list[int] = []
        stale_running = (j.c.status == "running", j.c.heartbeat_at < cutoff)
        with self.db.read() as conn:
            if conn.execute(select(j.c.id).where(*stale_running).limit(1)).first() is None:
                return touched
        with self.db.write() as conn:
            rows = conn.execute(
                select(j.c.id, j.c.worker, j.c.attempts, j.c.stop_requested).where(*stale_running)
            ).all()
            for row in rows:
                stale = (j.c.id == row.id, j.c.status == "running", j.c.heartbeat_at < cutoff)
                if row.stop_requested or row.attempts >= max_attempts:
                    status: Status = "stopped" if row.stop_requested else "failed"
                    message = f"worker {row.worker} stopped responding"
                    values: dict[str, Any] = {
                        "status": status,
                        "finished_at": now,
                        "error": None
                        if row.stop_requested
                        else f"{message} (attempt {row.attempts} of {max_attempts})",
                    }
                else:
                    message = f"worker {row.worker} stopped responding; job queued again"
                    values = {"status": "queued", "worker": None}
                if conn.execute(update(j).where(*stale).values(**values)).rowcount:
                    self._append(conn, int(row.id), [(now, "warning", message)])
                    touched.append(int(row.id))
        return touched

    def prune(self, older_than: timedelta) -> int:
        """Forget finished jobs (and their logs) older than `older_than`."""
        j = s.jobs
        cutoff = utcnow() - older_than
        with self.db.read() as conn:
            finished_long_ago = (j.c.status.not_in(ACTIVE), j.c.finished_at < cutoff)
            if conn.execute(select(j.c.id).where(*finished_long_ago).limit(1)).first() is None:
                return 0
        with self.db.write() as conn:
            old = select(j.c.id).where(j.c.status.not_in(ACTIVE), j.c.finished_at < cutoff)
            conn.execute(delete(s.job_log).where(s.job_log.c.job_id.in_(old)))
            return int(
                conn.execute(
                    delete(j).where(j.c.status.not_in(ACTIVE), j.c.finished_at < cutoff)
                ).rowcount
            )

    @staticmethod
    def _append(conn: Connection, job_id: int, lines: Sequence[tuple[datetime, str, str]]) -> None:
        if lines:
            conn.execute(
                insert(s.job_log),
                [
                    {"job_id": job_id, "at": at, "level": level, "message": message[:_MESSAGE_MAX]}
                    for at, level, message in lines
                ],
            )


def kind_is_exclusive(kind_name: str) -> bool:
    """Whether jobs of this kind run one at a time (per project): jobs.kinds says."""
    from portside.jobs.kinds import KINDS

    found = KINDS.get(kind_name)
    return found.exclusive if found is not None else True
