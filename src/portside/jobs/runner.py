"""The job worker: fires due schedules, re-queues jobs of dead workers, claims queued
jobs and runs them one at a time with a heartbeat.

Runs as `portside worker`, and `portside serve` starts `jobs.workers` of them beside
granian. Any number of workers on any number of machines may share one database.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import traceback
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import structlog

from portside.events import outbox
from portside.events.audit import AuditLog
from portside.jobs import scan as scan_jobs
from portside.jobs.context import JobContext, JobFailed, JobStopped
from portside.jobs.kinds import KINDS, ParamsError, kind
from portside.jobs.replication import queue_event_runs
from portside.jobs.schedules import Schedules
from portside.jobs.store import JobRecord, Jobs
from portside.metadata.db import utcnow
from portside.webhooks import dispatcher

if TYPE_CHECKING:
    from portside.config import Settings
    from portside.context import Context
    from portside.metadata.db import Database

log = structlog.get_logger(__name__)

# Log lines are written in batches: at most this often, or when this many are pending.
_LOG_FLUSH_SECONDS = 1.0
_LOG_FLUSH_LINES = 200
_PRUNE_SECONDS = 3600.0
# The audit log also catches up whenever it is read; this keeps it current regardless.
_AUDIT_SECONDS = 5.0
# A job keeps at most this many log lines in the database (a GC of millions of blobs
# would otherwise store millions); later lines are still printed by `portside gc`, and
# every deletion is in the audit log.
LOG_KEEP = 20_000


class _Lost(Exception):
    """The job is no longer ours (presumed dead and re-queued) or we are shutting down."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident() % 100000}"


class _RunningJob:
    """Bookkeeping of one job while it runs: buffered log, progress, heartbeat, stop."""

    def __init__(
        self,
        jobs: Jobs,
        record: JobRecord,
        *,
        worker: str,
        heartbeat_seconds: float,
        shutting_down: Callable[[], bool],
        echo: Callable[[str, str], None] | None,
    ) -> None:
        self.jobs = jobs
        self.record = record
        self.worker = worker
        self.heartbeat_seconds = heartbeat_seconds
        self.shutting_down = shutting_down
        self.echo = echo
        self.lock = threading.Lock()
        self.lines: list[tuple[datetime, str, str]] = []
        self.progress_value: tuple[int, int | None, str | None] | None = None
        self.last_flush = time.monotonic()
        self.stop_requested = record.stop_requested
        self.lost: str | None = None
        self.done = threading.Event()
        self.kept = 0
        self.dropped = 0
        self.flushing = threading.Lock()

    # callbacks given to JobContext
    def log(self, level: str, message: str, *, closing: bool = False) -> None:
        """`closing`: the worker's own last words (traceback, stop), kept past the cap."""
        if self.echo is not None:
            self.echo(level, message)
        with self.lock:
            if self.kept >= LOG_KEEP and not closing:
                self.dropped += 1
                return
            self.kept += 1
            self.lines.append((utcnow(), level, message))
            due = (
                len(self.lines) >= _LOG_FLUSH_LINES
                or time.monotonic() - self.last_flush >= _LOG_FLUSH_SECONDS
            )
        if due:
            self.flush()

    def progress(self, done: int, total: int | None, message: str | None) -> None:
        with self.lock:
            self.progress_value = (done, total, message)
            due = time.monotonic() - self.last_flush >= _LOG_FLUSH_SECONDS
        if due:
            self.flush()

    def check(self) -> bool:
        if self.lost is not None:
            raise _Lost(self.lost)
        if self.shutting_down():
            raise _Lost("worker shutting down")
        return self.stop_requested

    def flush(self) -> None:
        # One flush at a time (the job's thread and the heartbeat both flush), so lines
        # reach the database in the order they were logged.
        with self.flushing:
            with self.lock:
                lines, self.lines = self.lines, []
                progress, self.progress_value = self.progress_value, None
                self.last_flush = time.monotonic()
            if (lines or progress) and not self.jobs.report(
                self.record.id, self.worker, lines=lines, progress=progress
            ):
                self.lost = "job taken over by another worker"

    def take_lines(self) -> list[tuple[datetime, str, str]]:
        with self.lock:
            lines, self.lines = self.lines, []
        return lines

    def beat(self) -> None:
        while not self.done.wait(self.heartbeat_seconds):
            try:
                owned, stop = self.jobs.heartbeat(self.record.id, self.worker)
            except Exception:  # the database may be briefly away; try again next beat
                log.warning("jobs.heartbeat_failed", job=self.record.id, exc_info=True)
                continue
            if not owned:
                self.lost = "job taken over by another worker"
                return
            self.stop_requested = stop
            # What the job logged before a long quiet step shows up within a beat.
            try:
                self.flush()
            except Exception:
                log.warning("jobs.flush_failed", job=self.record.id, exc_info=True)


class Worker:
    def __init__(
        self,
        services: Context | Callable[[], Context],
        *,
        settings: Settings | None = None,
        db: Database | None = None,
        name: str | None = None,
        echo: Callable[[str, str], None] | None = None,
    ) -> None:
        """`services` may be a function building them: an idle worker then needs only
        the database (a job's first run builds the rest), which keeps `portside serve`'s
        worker process small. `settings` and `db` are required in that case."""
        if callable(services):
            assert settings is not None
            assert db is not None
            self._services: Context | None = None
            self._build = services
        else:
            settings, db = services.settings, services.db
            self._services = services
        self.settings = settings
        self.jobs = Jobs(db)
        self.schedules = Schedules(db)
        self.db = db
        self.audit = AuditLog(db)
        self.keep_events = timedelta(days=settings.events.keep_days)
        options = settings.jobs
        self.name = name or worker_name()
        self.poll_seconds = options.poll_seconds
        self.heartbeat_seconds = options.heartbeat_seconds
        self.lost_after = timedelta(seconds=options.lost_after_seconds)
        self.max_attempts = options.max_attempts
        self.keep = timedelta(days=options.history_days)
        self.echo = echo
        self.stopping = threading.Event()
        self._last_lost_check = 0.0
        self._last_prune = 0.0
        self._last_audit = 0.0

    @property
    def services(self) -> Context:
        if self._services is None:
            self._services = self._build()
        return self._services

    # -- the loop ---------------------------------------------------------------------
    def run_forever(
        self,
        alive: Callable[[], bool] = lambda: True,
        idle_exit: float | None = None,
        may_idle: Callable[[], bool] = lambda: True,
    ) -> bool:
        """Run ticks until stopped; with `idle_exit`, also stop once no job has run for
        that many seconds and `may_idle()` agrees (no webhook work either): then True."""
        log.info("jobs.worker_started", worker=self.name)
        last_work = time.monotonic()

        def watch() -> None:
            while not self.stopping.wait(0.5):
                if not alive():
                    self.stopping.set()

        threading.Thread(target=watch, name="worker-watch", daemon=True).start()
        # Webhook deliveries run beside the jobs, so a long job does not hold them up.
        # (Whatever runs here must also wake the idle state: portside.jobs.idle.work_waiting.)
        webhooks = dispatcher.start(self.jobs.db, self.settings, self.name, self.stopping)
        while not self.stopping.is_set():
            try:
                ran = self.tick()
            except Exception:
                log.exception("jobs.worker_error", worker=self.name)
                ran = False
            if ran:
                last_work = time.monotonic()
            elif idle_exit is not None and time.monotonic() - last_work >= idle_exit and may_idle():
                log.info("jobs.worker_idle", worker=self.name)
                self.stopping.set()
                webhooks.join(timeout=self.settings.webhooks.timeout_seconds * 3 + 5)
                return True
            else:
                self.stopping.wait(self.poll_seconds)
        webhooks.join(timeout=self.settings.webhooks.timeout_seconds * 3 + 5)
        log.info("jobs.worker_stopped", worker=self.name)
        return False

    def tick(self) -> bool:
        """One round: housekeeping, schedules, then at most one job. True if a job ran."""
        now = time.monotonic()
        # Idle workers only read; writes happen when there is something to change.
        if now - self._last_lost_check >= self.lost_after.total_seconds() / 4:
            self._last_lost_check = now
            for job_id in self.jobs.requeue_lost(self.lost_after, self.max_attempts):
                log.warning("jobs.requeued_lost", job=job_id)
        if now - self._last_audit >= _AUDIT_SECONDS:
            self._last_audit = now
            self.audit.flush()
        if now - self._last_prune >= _PRUNE_SECONDS:
            self._last_prune = now
            self.jobs.prune(self.keep)
            # After the catch-up above: the audit log has handled what is pruned.
            outbox.prune(self.db, self.keep_events)
        # Event-triggered replication: pushes and deletions queue runs (reads the outbox
        # only while an event rule exists; portside.jobs.idle wakes for the same).
        queue_event_runs(self.db)
        for job_id in self.schedules.fire_due(self.jobs):
            log.info("jobs.scheduled", job=job_id)
        # Scans asked for by events (auto-scan on push, rescans): portside.jobs.scan.
        if scan_jobs.catch_up(self.db, lambda: self.services):
            log.info("jobs.scans_queued_from_events")
        record = self.jobs.claim_next(self.name, list(KINDS))
        if record is None:
            return False
        self.run(record)
        return True

    # -- one job ----------------------------------------------------------------------
    def run(self, record: JobRecord) -> JobRecord:
        """Run a job this worker has claimed, to its end; returns its final record."""
        running = _RunningJob(
            self.jobs,
            record,
            worker=self.name,
            heartbeat_seconds=self.heartbeat_seconds,
            shutting_down=self.stopping.is_set,
            echo=self.echo,
        )

        def stop_requested() -> bool:
            return running.check()

        heart = threading.Thread(target=running.beat, name=f"job-{record.id}-heartbeat")
        heart.daemon = True
        heart.start()
        log.info("jobs.started", job=record.id, kind=record.kind, worker=self.name)
        status = "failed"
        result: dict[str, Any] | None = None
        error: str | None = None
        try:
            job_kind = kind(record.kind)
            params = job_kind.params(record.params)
            context = JobContext(
                job_id=record.id,
                kind=record.kind,
                params=params,
                project=record.project,
                created_by=record.created_by,
                services=self.services,
                _log=running.log,
                _progress=running.progress,
                _stop_requested=stop_requested,
            )
            result = job_kind.function()(context)
            status = "succeeded"
        except JobStopped:
            status = "stopped"
            running.log("info", "stopped on request", closing=True)
        except _Lost as lost:
            status = "queued" if lost.why == "worker shutting down" else "lost"
            running.log("warning", f"{lost.why}; the job will run again", closing=True)
        except (JobFailed, ParamsError) as failure:
            error = str(failure)
            if isinstance(failure, JobFailed):
                result = failure.result
            running.log("error", error, closing=True)
        except Exception as failure:
            error = f"internal error: {type(failure).__name__}: {failure}"
            running.log("error", traceback.format_exc(), closing=True)
            log.exception("jobs.failed", job=record.id, kind=record.kind)
        finally:
            running.done.set()
            heart.join()
        if status != "lost":
            lines = running.take_lines()
            if running.dropped:
                note = f"{running.dropped} more log lines not kept (limit {LOG_KEEP})"
                lines.append((utcnow(), "info", note))
            if running.progress_value is not None:
                running.flush()
            self.jobs.finish(
                record.id,
                self.name,
                status,  # type: ignore[arg-type]
                result=result,
                error=error,
                lines=lines,
            )
        log.info("jobs.finished", job=record.id, kind=record.kind, status=status)
        final = self.jobs.get(record.id)
        assert final is not None
        return final
