"""Cron schedules: validation with messages that say what is wrong, next run times, and
firing: once per due slot however many workers look, never while the previous run is
still active, never when disabled, and once (not once per slot) after missed runs."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, event

from portside.jobs.schedules import ScheduleError, Schedules, next_run
from portside.jobs.store import Jobs
from portside.metadata.db import Database, utcnow
from portside.metadata.engine import make_engine
from tests.jobs.conftest import ago, set_schedule


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# -- cron expressions --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cron", "after", "expected"),
    [
        ("0 3 * * *", "2024-01-31 23:59:30", "2024-02-01 03:00:00"),
        ("0 3 * * *", "2024-02-01 03:00:00", "2024-02-02 03:00:00"),  # strictly after
        ("0 3 * * *", "2024-02-01 02:59:59.999", "2024-02-01 03:00:00"),
        ("*/15 * * * *", "2024-05-05 10:07:00", "2024-05-05 10:15:00"),
        ("*/15 * * * *", "2024-05-05 23:50:00", "2024-05-06 00:00:00"),
        ("30 2 1 * *", "2024-12-15 00:00:00", "2025-01-01 02:30:00"),
        ("0 0 29 2 *", "2023-03-01 00:00:00", "2024-02-29 00:00:00"),  # next leap year
        ("0 12 * * 0", "2024-06-05 00:00:00", "2024-06-09 12:00:00"),  # Sunday
        ("0 12 * * 7", "2024-06-05 00:00:00", "2024-06-09 12:00:00"),  # Sunday, too
        ("0 12 * * MON", "2024-06-05 00:00:00", "2024-06-10 12:00:00"),
        ("0 0 1 JAN *", "2024-06-05 00:00:00", "2025-01-01 00:00:00"),
        ("5,35 8-9 * * 1-5", "2024-06-07 09:36:00", "2024-06-10 08:05:00"),  # Fri -> Mon
    ],
)
def test_next_run(cron: str, after: str, expected: str) -> None:
    found = next_run(cron, at(after))
    assert found == at(expected)
    assert found.utcoffset() == timedelta(0)


@pytest.mark.parametrize("cron", ["", "* * * *", "0 3 * * * *", "0 3 * * * 2024", "@daily"])
def test_wrong_number_of_fields(cron: str) -> None:
    with pytest.raises(ScheduleError) as error:
        next_run(cron, utcnow())
    message = str(error.value)
    assert repr(cron) in message
    assert "5 fields" in message
    assert "minute hour day-of-month month day-of-week" in message


BAD_VALUES = [
    "61 * * * *",
    "0 24 * * *",
    "0 0 32 * *",
    "0 0 0 * *",
    "0 0 * 13 *",
    "0 0 * * 8",
    "*/0 * * * *",
    "a b c d e",
    "0 3 * * FUNDAY",
]


@pytest.mark.parametrize("cron", BAD_VALUES)
def test_bad_values_are_refused(cron: str) -> None:
    with pytest.raises(ScheduleError) as error:
        next_run(cron, utcnow())
    assert repr(cron) in str(error.value)


def test_a_date_that_never_comes_is_refused_not_searched_forever() -> None:
    with pytest.raises(ScheduleError) as error:
        next_run("0 0 31 2 *", utcnow())
    assert "'0 0 31 2 *'" in str(error.value)


@pytest.mark.parametrize("cron", ["61 * * * *", "0 24 * * *"])
def test_a_bad_value_is_not_reported_as_a_wrong_field_count(cron: str) -> None:
    with pytest.raises(ScheduleError) as error:
        next_run(cron, utcnow())
    assert "of 5 fields" not in str(error.value)


# -- storing -----------------------------------------------------------------------------


def test_put_get_replace_list_delete(schedules: Schedules) -> None:
    before = utcnow()
    saved = schedules.put(
        "gc", kind="gc", cron="0 3 * * *", params={"dry_run": True}, created_by="alice"
    )
    after = utcnow()
    assert (saved.name, saved.kind, saved.project, saved.cron, saved.params) == (
        "gc",
        "gc",
        None,
        "0 3 * * *",
        {"dry_run": True},
    )
    assert (saved.enabled, saved.last_job_id, saved.created_by) == (True, None, "alice")
    assert saved.next_run_at in {next_run("0 3 * * *", before), next_run("0 3 * * *", after)}
    assert schedules.get("gc") == saved

    replaced = schedules.put("gc", kind="gc", cron="*/5 * * * *", params={}, created_by="bob")
    assert (replaced.cron, replaced.params, replaced.created_by) == ("*/5 * * * *", {}, "bob")
    assert replaced.next_run_at is not None
    assert utcnow() < replaced.next_run_at <= utcnow() + timedelta(minutes=5)

    disabled = schedules.put(
        "retention:acme",
        kind="retention",
        project="acme",
        cron="0 4 * * *",
        params={},
        enabled=False,
        created_by="carol",
    )
    assert (disabled.enabled, disabled.next_run_at, disabled.project) == (False, None, "acme")
    assert [x.name for x in schedules.all()] == ["gc", "retention:acme"]
    assert [x.name for x in schedules.all(project="acme")] == ["retention:acme"]
    assert schedules.all(project="beta") == []

    assert schedules.delete("gc")
    assert not schedules.delete("gc")
    assert schedules.get("gc") is None
    assert [x.name for x in schedules.all()] == ["retention:acme"]


def test_put_refuses_a_bad_cron_and_keeps_the_old_schedule(schedules: Schedules) -> None:
    kept = schedules.put("gc", kind="gc", cron="0 3 * * *", params={}, created_by="alice")
    with pytest.raises(ScheduleError):
        schedules.put("gc", kind="gc", cron="0 3 * *", params={}, created_by="mallory")
    with pytest.raises(ScheduleError):
        schedules.put("other", kind="gc", cron="99 * * * *", params={}, created_by="mallory")
    assert schedules.get("gc") == kept
    assert schedules.get("other") is None


def test_a_disabled_schedule_with_a_bad_cron_is_refused(schedules: Schedules) -> None:
    with pytest.raises(ScheduleError):
        schedules.put(
            "gc", kind="gc", cron="not a cron", params={}, enabled=False, created_by="alice"
        )
    assert schedules.get("gc") is None


# -- firing ------------------------------------------------------------------------------


def test_a_due_schedule_queues_one_job_and_moves_on(
    db: Database, schedules: Schedules, jobs: Jobs
) -> None:
    schedules.put(
        "retention:acme",
        kind="retention",
        project="acme",
        cron="0 3 * * *",
        params={"dry_run": True},
        created_by="alice",
    )
    assert schedules.fire_due(jobs) == []  # not due yet
    set_schedule(db, "retention:acme", next_run_at=ago(10))

    now = utcnow()
    [job_id] = schedules.fire_due(jobs, now)
    record = jobs.get(job_id)
    assert record is not None
    assert (record.kind, record.project, record.params, record.status) == (
        "retention",
        "acme",
        {"dry_run": True},
        "queued",
    )
    assert (record.created_by, record.schedule) == ("schedule:retention:acme", "retention:acme")
    fired = schedules.get("retention:acme")
    assert fired is not None
    assert fired.last_job_id == job_id
    assert fired.next_run_at == next_run("0 3 * * *", now)
    assert schedules.fire_due(jobs, now) == []
    assert jobs.find()[1] == 1


def _fire_together(engines: list[Engine], now: datetime) -> list[int]:
    """Every engine (a worker process) fires due schedules at the same moment."""
    barrier = threading.Barrier(len(engines))
    fired: list[int] = []
    failures: list[BaseException] = []

    def fire(engine: Engine) -> None:
        try:
            database = Database(engine)
            barrier.wait()
            fired.extend(Schedules(database).fire_due(Jobs(database), now))
        except BaseException as error:
            failures.append(error)

    threads = [threading.Thread(target=fire, args=(e,)) for e in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not failures, failures
    return fired


def test_concurrent_workers_fire_a_due_slot_once(
    database_url: str, db: Database, schedules: Schedules, jobs: Jobs
) -> None:
    schedules.put("gc", kind="probe", cron="* * * * *", params={}, created_by="alice")
    engines = [make_engine(database_url) for _ in range(8)]
    try:
        for round_number in range(3):
            set_schedule(db, "gc", next_run_at=ago(5))
            fired = _fire_together(engines, utcnow())
            assert len(fired) == 1, f"round {round_number}: {fired}"
            assert jobs.find(kind="probe")[1] == round_number + 1
            # Let the run finish so the next slot may fire.
            assert jobs.claim(fired[0], "w")
            assert jobs.finish(fired[0], "w", "succeeded")
    finally:
        for engine in engines:
            engine.dispose()


def test_a_worker_that_saw_a_slot_late_does_not_fire_it_again(
    database_url: str, db: Database, schedules: Schedules, jobs: Jobs
) -> None:
    """Worker A reads the due schedules; before it acts, worker B fires the slot and the
    job runs to its end. A must not queue the same slot again (the job being finished,
    only the conditional move of next_run_at can stop it)."""
    schedules.put("gc", kind="probe", cron="0 3 * * *", params={}, created_by="alice")
    set_schedule(db, "gc", next_run_at=ago(5))
    slow = make_engine(database_url)
    read, go_on = threading.Event(), threading.Event()

    @event.listens_for(slow, "after_cursor_execute")
    def pause(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().startswith("SELECT schedules.") and "next_run_at <=" in statement:
            read.set()
            go_on.wait(10)

    fired_late: list[int] = []
    late = Database(slow)
    thread = threading.Thread(
        target=lambda: fired_late.extend(Schedules(late).fire_due(Jobs(late)))
    )
    try:
        thread.start()
        assert read.wait(10)
        [job_id] = schedules.fire_due(jobs)
        assert jobs.claim(job_id, "w")
        assert jobs.finish(job_id, "w", "succeeded")
        go_on.set()
        thread.join(15)
    finally:
        go_on.set()
        slow.dispose()
    assert fired_late == []
    assert jobs.find()[1] == 1


def test_a_slot_is_skipped_while_the_previous_run_is_active(
    db: Database, schedules: Schedules, jobs: Jobs
) -> None:
    schedules.put("gc", kind="gc", cron="*/10 * * * *", params={}, created_by="alice")
    set_schedule(db, "gc", next_run_at=ago(5))
    [first] = schedules.fire_due(jobs)
    assert jobs.claim(first, "w")

    set_schedule(db, "gc", next_run_at=ago(5))
    now = utcnow()
    assert schedules.fire_due(jobs, now) == []
    skipped = schedules.get("gc")
    assert skipped is not None
    assert skipped.last_job_id == first
    # The slot is gone (not retried on every tick until the run ends).
    assert skipped.next_run_at == next_run("*/10 * * * *", now)
    assert jobs.find(kind="gc")[1] == 1

    assert jobs.finish(first, "w", "succeeded")
    set_schedule(db, "gc", next_run_at=ago(5))
    [second] = schedules.fire_due(jobs)
    assert second != first
    fired = schedules.get("gc")
    assert fired is not None
    assert fired.last_job_id == second


def test_a_manually_started_job_also_makes_the_schedule_skip(
    db: Database, schedules: Schedules, jobs: Jobs
) -> None:
    manual = jobs.enqueue("gc", {}, created_by="admin")
    schedules.put("gc", kind="gc", cron="0 3 * * *", params={}, created_by="alice")
    set_schedule(db, "gc", next_run_at=ago(5))
    assert schedules.fire_due(jobs) == []
    assert [r.id for r in jobs.find(kind="gc")[0]] == [manual]


def test_a_disabled_schedule_never_fires(db: Database, schedules: Schedules, jobs: Jobs) -> None:
    schedules.put("gc", kind="gc", cron="* * * * *", params={}, enabled=False, created_by="a")
    assert schedules.fire_due(jobs, utcnow() + timedelta(days=400)) == []
    # Even with a next run time left over in the past.
    set_schedule(db, "gc", next_run_at=ago(3600))
    assert schedules.fire_due(jobs) == []
    assert schedules.fire_due(jobs, utcnow() + timedelta(days=400)) == []
    # Disabling a due schedule stops it too.
    schedules.put("probe", kind="probe", cron="* * * * *", params={}, created_by="a")
    set_schedule(db, "probe", next_run_at=ago(60))
    schedules.put("probe", kind="probe", cron="* * * * *", params={}, enabled=False, created_by="a")
    assert schedules.fire_due(jobs, utcnow() + timedelta(days=1)) == []
    assert jobs.find()[1] == 0


def test_missed_runs_fire_once_not_once_per_slot(
    db: Database, schedules: Schedules, jobs: Jobs
) -> None:
    schedules.put("probe", kind="probe", cron="* * * * *", params={}, created_by="alice")
    set_schedule(db, "probe", next_run_at=ago(3 * 3600))  # 180 missed minutes
    now = utcnow()
    assert len(schedules.fire_due(jobs, now)) == 1
    later = schedules.get("probe")
    assert later is not None
    assert later.next_run_at is not None
    assert now < later.next_run_at <= now + timedelta(minutes=1)
    for job in jobs.find()[0]:
        assert jobs.claim(job.id, "w")
        assert jobs.finish(job.id, "w", "succeeded")
    assert schedules.fire_due(jobs, now) == []
    assert jobs.find()[1] == 1

    # A worker that looks again hours later (no worker was up) fires once more.
    assert len(schedules.fire_due(jobs, now + timedelta(hours=5))) == 1
    assert jobs.find()[1] == 2


def test_deleting_a_schedule_leaves_its_jobs(
    db: Database, schedules: Schedules, jobs: Jobs
) -> None:
    schedules.put("gc", kind="gc", cron="0 3 * * *", params={}, created_by="alice")
    set_schedule(db, "gc", next_run_at=ago(5))
    [job_id] = schedules.fire_due(jobs)
    assert schedules.delete("gc")
    record = jobs.get(job_id)
    assert record is not None
    assert (record.status, record.schedule) == ("queued", "gc")
    assert schedules.fire_due(jobs, utcnow() + timedelta(days=2)) == []
