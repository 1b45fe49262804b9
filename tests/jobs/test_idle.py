"""The idle state of the job worker `portside serve` starts (portside.jobs.idle): what
it reads from the database to decide there is work, without SQLAlchemy or pydantic."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from portside.config import SERIALIZED_ENV, load_settings
from portside.jobs import idle
from portside.jobs.schedules import Schedules
from portside.jobs.store import Jobs
from portside.metadata.db import Database
from tests.jobs.conftest import ago, set_job, set_schedule

LOST_AFTER = timedelta(seconds=60)


@pytest.fixture
def query(database_url: str) -> Iterator[idle.Query]:
    reader = idle.reader_for(database_url)
    assert reader is not None, database_url
    opened = reader()
    yield opened
    idle.close(opened)


def test_nothing_to_do(query: idle.Query) -> None:
    assert not idle.work_waiting(query, None, LOST_AFTER)


def test_a_queued_job_is_work(query: idle.Query, jobs: Jobs) -> None:
    jobs.enqueue("probe", {"seconds": 0}, created_by="test")
    assert idle.work_waiting(query, None, LOST_AFTER)
    assert idle.work_waiting(query, ["gc", "probe"], LOST_AFTER)
    # a kind this worker does not run (a newer version's) does not wake it
    assert not idle.work_waiting(query, ["gc", "retention"], LOST_AFTER)


def test_a_running_job_is_work_only_once_its_worker_is_lost(
    query: idle.Query, jobs: Jobs, db: Database
) -> None:
    job_id = jobs.enqueue("probe", {"seconds": 0}, created_by="test")
    assert jobs.claim_next("elsewhere:1:1", ["probe"]) is not None
    assert not idle.work_waiting(query, ["probe"], LOST_AFTER)
    set_job(db, job_id, heartbeat_at=ago(120))
    assert idle.work_waiting(query, ["probe"], LOST_AFTER)


def test_a_due_schedule_is_work(query: idle.Query, schedules: Schedules, db: Database) -> None:
    schedules.put("gc", kind="gc", cron="0 3 * * *", params={}, created_by="test")
    assert not idle.work_waiting(query, None, LOST_AFTER)  # next 03:00 is ahead
    set_schedule(db, "gc", next_run_at=ago(1))
    assert idle.work_waiting(query, None, LOST_AFTER)
    set_schedule(db, "gc", enabled=False)
    assert not idle.work_waiting(query, None, LOST_AFTER)


def test_the_idle_state_reads_settings_as_serve_serialized_them(tmp_path: Path) -> None:
    assert idle.SERIALIZED_ENV == SERIALIZED_ENV
    settings = load_settings(data_dir=tmp_path / "data")
    dumped = settings.model_dump(mode="json")
    assert idle._database_url(dumped) == settings.database_url
    assert idle._poll_seconds(dumped) == settings.jobs.poll_seconds
    other = load_settings(data_dir=tmp_path, database={"url": "postgresql+psycopg://u@h/d"})
    assert idle._database_url(other.model_dump(mode="json")) == "postgresql+psycopg://u@h/d"


@pytest.mark.parametrize(
    ("url", "known"),
    [
        ("sqlite:////srv/portside/portside.db", True),
        ("sqlite:///relative.db", True),
        ("sqlite://", False),
        ("sqlite:///:memory:", False),
        ("postgresql+psycopg://user:pw@host:5432/portside", True),
        ("postgresql://user@host/portside", False),
        ("mysql://user@host/portside", False),
    ],
)
def test_databases_it_can_read_without_sqlalchemy(url: str, known: bool) -> None:
    assert (idle.reader_for(url) is not None) is known


def test_the_idle_state_loads_neither_sqlalchemy_nor_pydantic() -> None:
    code = (
        "import sys, portside.jobs.idle; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'sqlalchemy', 'pydantic', 'pydantic_settings', 'structlog', 'yaml'}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_webhook_work_wakes_it(query: idle.Query, tmp_path: Path, database_url: str) -> None:
    """The full worker also runs the webhook dispatcher: events its cursor has not read
    and due deliveries are work; no policy, no cursor, nothing to do."""
    from sqlalchemy import update

    from portside.auth.projects import Projects
    from portside.events import outbox
    from portside.events.outbox import Actor
    from portside.metadata import schema as s
    from portside.metadata.db import utcnow
    from portside.metadata.engine import make_engine
    from portside.webhooks.dispatcher import Dispatcher

    db = Database(make_engine(database_url))
    try:
        Projects(db).create("acme", creator="test")
        settings = load_settings(
            data_dir=tmp_path / "data",
            database={"url": database_url},
            webhooks={"allow_private_targets": True},
        )
        dispatcher = Dispatcher(db, settings, "test-worker")

        def push() -> None:
            with db.write() as conn:
                outbox.emit(
                    conn,
                    outbox.ARTIFACT_PUSHED,
                    Actor("alice", "127.0.0.1"),
                    resource="acme/app@sha256:" + "0" * 64,
                    repository="acme/app",
                    data={"digest": "sha256:" + "0" * 64, "tag": "v1", "media_type": "x"},
                )

        def waiting() -> bool:
            return idle.work_waiting(query, None, LOST_AFTER)

        push()
        assert not waiting()  # no policy: events are never sent
        dispatcher.policies.create(
            "acme",
            name="ci",
            target_url="http://127.0.0.1:9/hook",
            event_types=["artifact.pushed"],
            actor=Actor("alice", "127.0.0.1"),
        )
        # the cursor starts after the events that came before; the policy's own creation
        # is an event the dispatcher reads (no delivery: not an event type it wants)
        assert waiting()
        dispatcher.queue_new_events()
        assert not waiting()
        push()
        assert waiting()  # an event the dispatcher has not read
        assert dispatcher.queue_new_events()
        assert waiting()  # a delivery due now
        d = s.webhook_deliveries
        with db.write() as conn:
            conn.execute(update(d).values(status="failed", next_attempt_at=utcnow() + LOST_AFTER))
        assert not waiting()  # its retry is not due yet
        with db.write() as conn:
            conn.execute(update(d).values(next_attempt_at=utcnow() - LOST_AFTER))
        assert waiting()
        with db.write() as conn:
            conn.execute(update(d).values(status="succeeded"))
        assert not waiting()
    finally:
        db.engine.dispose()


def test_event_replication_work_wakes_it(query: idle.Query, database_url: str) -> None:
    """The full worker queues event-triggered replication runs from the outbox: with an
    enabled event rule, events past its cursor wake the idle state; without one, or once
    the cursor has caught up, they do not."""
    from portside.endpoints.store import EndpointStore
    from portside.events import outbox
    from portside.events.outbox import Actor
    from portside.jobs.replication import queue_event_runs
    from portside.metadata.engine import make_engine
    from portside.replication.rules import RuleStore

    db = Database(make_engine(database_url))
    try:
        settings = load_settings(
            database={"url": database_url}, endpoints={"allowed_networks": ["127.0.0.0/8"]}
        )
        admin = Actor("admin")
        EndpointStore(db, settings).create(
            name="dist", kind="distribution", url="http://127.0.0.1:1", actor=admin
        )
        store = RuleStore(db)
        store.create(name="manual", direction="push", endpoint="dist", actor=admin)
        assert not idle.replication_work_waiting(query)  # no event rule
        store.create(name="live", direction="push", endpoint="dist", actor=admin,
                     trigger="event")  # fmt: skip
        assert idle.replication_work_waiting(query)  # the rule's own event is unread
        queue_event_runs(db)
        assert not idle.replication_work_waiting(query)
        with db.write() as conn:
            outbox.emit(conn, outbox.PROJECT_CREATED, admin, resource="x", project="x")
        assert idle.replication_work_waiting(query)
        store.update("live", actor=admin, enabled=False)
        assert not idle.replication_work_waiting(query)
    finally:
        db.engine.dispose()


def test_scan_work_wakes_it(query: idle.Query, db: Database) -> None:
    """The full worker queues scans from the outbox (portside.jobs.scan): a push or a
    vulnerability database update after its cursor is work; without the cursor (nobody
    ever scanned or turned auto-scan on), and for other events, there is none."""
    from portside.events import outbox
    from portside.events.outbox import Actor
    from portside.metadata import schema as s
    from portside.scans.settings import ensure_cursor

    def emit(kind: str) -> None:
        with db.write() as conn:
            outbox.emit(conn, kind, Actor("alice"), resource="acme/app@sha256:" + "0" * 64)

    def waiting() -> bool:
        return idle.work_waiting(query, None, LOST_AFTER)

    emit(outbox.ARTIFACT_PUSHED)
    assert not waiting()  # no cursor: scanning was never used
    with db.write() as conn:
        ensure_cursor(db, conn)
    assert not waiting()  # the cursor starts after the events already there
    emit(outbox.TAG_MOVED)
    assert not waiting()  # not an event the scans consumer acts on
    emit(outbox.ARTIFACT_PUSHED)
    assert waiting()
    (latest,) = query("SELECT MAX(id) FROM events")[0]
    with db.write() as conn:
        conn.execute(
            s.event_cursors.update()
            .where(s.event_cursors.c.consumer == "scans")
            .values(position=int(latest))
        )
    assert not waiting()  # handled
    emit("vulndb.updated")
    assert waiting()
