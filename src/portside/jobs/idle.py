"""The job worker `portside serve` starts, while it has nothing to do.

A worker with SQLAlchemy, pydantic and the job code loaded holds ~57 MB, most of the
time for nothing: jobs are rare. So the worker waits in this small state (the standard
library and the database driver: ~15 MB on SQLite). Every `jobs.poll_seconds` it asks the
database, read-only, whether a worker has anything to do: a queued job, a running job
whose worker stopped checking in, a due schedule, webhook events or deliveries waiting
(portside.webhooks.dispatcher runs in the full worker), events for event-triggered
replication rules (portside.jobs.replication). Then it execs itself into the full
worker (`--busy`, portside.jobs.process), which runs jobs and, after IDLE_EXIT_POLLS
polls with nothing to do, execs back into this state, returning that memory. The pid
stays the same throughout, so the parent-death signal of `portside serve`
(portside.lifeline) still applies, and so does the parent pid the worker watches.

The audit log, the other outbox consumer the full worker keeps current, does not wake
this state: it catches up whenever it is read (portside.events.audit), and the hourly
housekeeping wake below brings it, and the pruning of old events, up to date.

Nothing here writes: claiming, scheduling and re-queueing stay in the full worker. A
database this module cannot read without SQLAlchemy (neither SQLite nor
`postgresql+psycopg`) keeps the full worker running all the time, as before.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from portside.lifeline import die_with_parent

# Same name as portside.config.SERIALIZED_ENV (importing config would load pydantic).
SERIALIZED_ENV = "PORTSIDE_INTERNAL_SETTINGS_JSON"
# A busy worker that has found nothing to do in this many polls (`jobs.poll_seconds`,
# 30 s by default) returns to the idle state.
IDLE_EXIT_POLLS = 15
# An idle worker goes busy at least this often, for the full worker's housekeeping
# that no row asks for (pruning old jobs and events, the audit log's catch-up).
HOUSEKEEPING_SECONDS = 3600.0

Query = Callable[[str], list[tuple[Any, ...]]]


def usage() -> None:
    sys.exit(
        "usage: python -m portside.jobs --parent-pid PID [--busy] [--kinds K1,K2]"
        " (started by portside serve)"
    )


def main(argv: Sequence[str]) -> None:
    args = list(argv)
    if len(args) < 2 or args[0] != "--parent-pid" or not args[1].isdigit():
        usage()
    parent_pid = int(args[1])
    rest = args[2:]
    die_with_parent(signal.SIGTERM)  # at once, not at the next look at the parent pid
    if rest[:1] == ["--busy"]:
        from portside.jobs.process import run_busy

        settings = _settings()
        reader = _reader()
        idle_exit = IDLE_EXIT_POLLS * _poll_seconds(settings) if reader else None
        lost_after = _lost_after(settings)
        queries: list[Query] = []

        def may_idle() -> bool:
            """Nothing for the full worker, webhooks included (read as the idle state
            reads, on a connection of its own)."""
            if reader is None:
                return False
            try:
                queries[:] = queries or [reader()]
                return not work_waiting(queries[0], None, lost_after)
            except Exception:
                for query in queries:
                    close(query)
                queries.clear()
                return False

        kinds = run_busy(parent_pid, idle_exit, may_idle)
        if kinds is not None:
            _exec(parent_pid, ["--kinds", ",".join(kinds)])
        return
    kinds = None
    if rest[:1] == ["--kinds"] and len(rest) == 2:
        kinds = [k for k in rest[1].split(",") if k.isidentifier()]
    elif rest:
        usage()
    try:
        if wait_for_work(parent_pid, kinds):
            _exec(parent_pid, ["--busy"])
    except KeyboardInterrupt:
        return


def _exec(parent_pid: int, extra: list[str]) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    command = [sys.executable, "-m", "portside.jobs", "--parent-pid", str(parent_pid), *extra]
    os.execv(command[0], command)  # noqa: S606 - fixed argv, our own interpreter


def _settings() -> dict[str, Any]:
    raw = os.environ.get(SERIALIZED_ENV)
    return dict(json.loads(raw)) if raw else {}


def _poll_seconds(settings: dict[str, Any]) -> float:
    return float((settings.get("jobs") or {}).get("poll_seconds", 2.0))


def _lost_after(settings: dict[str, Any]) -> timedelta:
    return timedelta(seconds=float((settings.get("jobs") or {}).get("lost_after_seconds", 60)))


def _database_url(settings: dict[str, Any]) -> str:
    """portside.config.Settings.database_url, from the serialized settings."""
    url = (settings.get("database") or {}).get("url")
    if url:
        return str(url)
    data_dir = settings.get("data_dir") or "portside-data"
    return f"sqlite:///{os.path.abspath(os.path.join(data_dir, 'portside.db'))}"


def _reader() -> Callable[[], Query] | None:
    return reader_for(_database_url(_settings()))


def reader_for(url: str) -> Callable[[], Query] | None:
    """A function opening a read-only query function on the metadata database at `url`,
    or None for a database this module does not know how to read."""
    scheme, _, rest = url.partition("://")
    if scheme == "sqlite" and rest.startswith("/") and rest != "/":
        path = rest[1:].split("?", 1)[0]
        if path and path != ":memory:":
            return lambda: _sqlite_query(path)
    if scheme == "postgresql+psycopg":
        return lambda: _postgres_query("postgresql://" + rest)
    return None


class _Connection:
    """A DB-API connection used for plain read-only queries: `query(sql)` -> rows."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection

    def __call__(self, sql: str) -> list[tuple[Any, ...]]:
        cursor = self.connection.cursor()
        try:
            cursor.execute(sql)
            return [tuple(row) for row in cursor.fetchall()]
        finally:
            cursor.close()

    def close(self) -> None:
        self.connection.close()


def _sqlite_query(path: str) -> Query:
    import sqlite3

    return _Connection(sqlite3.connect(path, timeout=5, isolation_level=None))


def _postgres_query(conninfo: str) -> Query:
    import psycopg

    return _Connection(psycopg.connect(conninfo, autocommit=True))


def close(query: Query | None) -> None:
    if isinstance(query, _Connection):
        with contextlib.suppress(Exception):
            query.close()


def _as_utc(value: object) -> datetime | None:
    """A timestamp column's value (a datetime, or SQLite's text) as an aware UTC time."""
    if value is None:
        return None
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def work_waiting(query: Query, kinds: Sequence[str] | None, lost_after: timedelta) -> bool:
    """Is there anything a full worker would do now?"""
    queued = "SELECT kind FROM jobs WHERE status = 'queued'"
    if any(kinds is None or kind in kinds for (kind,) in query(queued)):
        return True
    now = datetime.now(UTC)
    running = query("SELECT heartbeat_at FROM jobs WHERE status = 'running'")
    for (beat,) in running:
        seen = _as_utc(beat)
        if seen is None or now - seen > lost_after:
            return True
    schedules = query("SELECT next_run_at FROM schedules WHERE enabled")
    if any((due := _as_utc(at)) is not None and due <= now for (at,) in schedules):
        return True
    return (
        webhook_work_waiting(query, now)
        or replication_work_waiting(query)
        or scan_work_waiting(query)
    )


def replication_work_waiting(query: Query) -> bool:
    """Events for the replication consumer the full worker runs (portside.jobs.replication):
    an enabled event-triggered rule exists and the outbox has events past its cursor (or
    it has no cursor yet)."""
    rules = query("SELECT id FROM replication_rules WHERE trigger = 'event' AND enabled LIMIT 1")
    if not rules:
        return False
    cursor = query("SELECT position FROM event_cursors WHERE consumer = 'replication'")
    if not cursor:
        return True
    ((latest,),) = query("SELECT MAX(id) FROM events")
    return latest is not None and int(latest) > int(cursor[0][0])


def scan_work_waiting(query: Query) -> bool:
    """Events the `scans` consumer (portside.jobs.scan) would act on: pushes and
    vulnerability database updates after its cursor (it has none until scanning is used)."""
    cursor = query("SELECT position FROM event_cursors WHERE consumer = 'scans'")
    if not cursor:
        return False
    position = int(cursor[0][0])  # an integer from our own table: safe to inline
    waiting = query(
        f"SELECT id FROM events WHERE id > {position}"  # noqa: S608
        " AND type IN ('artifact.pushed', 'vulndb.updated') LIMIT 1"
    )
    return bool(waiting)


def webhook_work_waiting(query: Query, now: datetime) -> bool:
    """Work for the webhook dispatcher the full worker runs (portside.webhooks.dispatcher):
    events its outbox cursor has not read (no cursor yet: a policy exists, so it would
    start one), or a delivery due or whose sender's lease ran out."""
    cursor = query("SELECT position FROM event_cursors WHERE consumer = 'webhooks'")
    if not cursor:
        if query("SELECT id FROM webhook_policies LIMIT 1"):
            return True
    else:
        ((latest,),) = query("SELECT MAX(id) FROM events")
        if latest is not None and int(latest) > int(cursor[0][0]):
            return True
    deliveries = query(
        "SELECT status, next_attempt_at, claimed_until FROM webhook_deliveries"
        " WHERE status IN ('queued', 'failed', 'delivering')"
    )
    for status, next_attempt, claimed_until in deliveries:
        moment = _as_utc(claimed_until if status == "delivering" else next_attempt)
        if moment is None or moment <= now:
            return True
    return False


def wait_for_work(parent_pid: int, kinds: Sequence[str] | None) -> bool:
    """Poll until there is work (True) or the parent is gone (False)."""
    reader = _reader()
    if reader is None:
        return True  # the full worker then stays
    settings = _settings()
    poll = _poll_seconds(settings)
    lost_after = _lost_after(settings)
    started = time.monotonic()
    query: Query | None = None
    while os.getppid() == parent_pid:
        if time.monotonic() - started >= HOUSEKEEPING_SECONDS:
            return True
        try:
            query = query or reader()
            if work_waiting(query, kinds, lost_after):
                close(query)
                return True
        except Exception as error:  # the database may be briefly away: ask again later
            print(f"jobs.idle_poll_failed: {type(error).__name__}: {error}", file=sys.stderr)
            close(query)
            query = None
        time.sleep(poll)
    close(query)
    return False
