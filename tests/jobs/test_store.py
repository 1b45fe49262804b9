"""The job store: lifecycle, claiming once under races, one active job per kind and
project, stop requests, ownership after a takeover, re-queueing lost jobs, pruning, and
the job log."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, event, func, select

from portside.jobs.store import JobConflict, Jobs, Status
from portside.metadata import schema as s
from portside.metadata.db import Database, utcnow
from portside.metadata.engine import make_engine
from tests.jobs.conftest import ago, messages, set_job

LOST_AFTER = timedelta(seconds=60)


def running_job(jobs: Jobs, worker: str = "w1", kind: str = "probe", **params: Any) -> int:
    job_id = jobs.enqueue(kind, params, created_by="test", exclusive=False)
    assert jobs.claim(job_id, worker)
    return job_id


def log_rows(db: Database, job_ids: list[int]) -> int:
    with db.read() as conn:
        return int(
            conn.execute(
                select(func.count()).select_from(s.job_log).where(s.job_log.c.job_id.in_(job_ids))
            ).scalar_one()
        )


# -- lifecycle ---------------------------------------------------------------------------


def test_a_queued_job_is_claimed_reported_and_finished(jobs: Jobs) -> None:
    job_id = jobs.enqueue("probe", {"seconds": 1}, created_by="alice")
    queued = jobs.get(job_id)
    assert queued is not None
    assert (queued.kind, queued.params, queued.project, queued.created_by) == (
        "probe",
        {"seconds": 1},
        None,
        "alice",
    )
    assert (queued.status, queued.attempts, queued.worker, queued.stop_requested) == (
        "queued",
        0,
        None,
        False,
    )
    assert queued.started_at is queued.finished_at is queued.heartbeat_at is None
    assert (queued.result, queued.error, queued.progress_done, queued.progress_total) == (
        None,
        None,
        0,
        None,
    )

    assert jobs.claim(job_id, "w1")
    assert not jobs.claim(job_id, "w2"), "a running job was claimed a second time"
    running = jobs.get(job_id)
    assert running is not None
    assert (running.status, running.worker, running.attempts) == ("running", "w1", 1)
    assert running.started_at is not None
    assert running.heartbeat_at is not None
    assert running.created_at <= running.started_at
    assert running.finished_at is None

    assert jobs.report(job_id, "w1", lines=[(utcnow(), "info", "half way")], progress=(1, 2, "x"))
    reported = jobs.get(job_id)
    assert reported is not None
    assert (reported.progress_done, reported.progress_total, reported.progress_message) == (
        1,
        2,
        "x",
    )

    assert jobs.finish(
        job_id, "w1", "succeeded", result={"n": 1}, lines=[(utcnow(), "info", "all done")]
    )
    done = jobs.get(job_id)
    assert done is not None
    assert (done.status, done.result, done.error, done.worker) == (
        "succeeded",
        {"n": 1},
        None,
        "w1",
    )
    assert done.finished_at is not None
    assert done.finished_at >= running.started_at
    assert messages(jobs, job_id) == ["started on w1", "half way", "all done"]

    # Finished is final: no second finish, report, claim or heartbeat takes.
    assert not jobs.finish(job_id, "w1", "failed", error="late")
    assert not jobs.report(job_id, "w1", lines=[(utcnow(), "info", "late")])
    assert not jobs.claim(job_id, "w2")
    assert jobs.heartbeat(job_id, "w1") == (False, False)
    assert jobs.get(job_id) == done
    assert messages(jobs, job_id) == ["started on w1", "half way", "all done"]


@pytest.mark.parametrize(
    ("status", "error"), [("failed", "no such project"), ("stopped", None), ("succeeded", None)]
)
def test_finish_records_the_status_and_error(jobs: Jobs, status: Status, error: str | None) -> None:
    job_id = running_job(jobs)
    assert jobs.finish(job_id, "w1", status, error=error)
    record = jobs.get(job_id)
    assert record is not None
    assert (record.status, record.error, record.result) == (status, error, None)
    assert record.finished_at is not None


def test_long_errors_and_log_lines_are_cut_not_refused(jobs: Jobs) -> None:
    job_id = running_job(jobs)
    assert jobs.report(job_id, "w1", lines=[(utcnow(), "info", "l" * 10_000)])
    assert jobs.finish(job_id, "w1", "failed", error="e" * 10_000)
    record = jobs.get(job_id)
    assert record is not None
    assert record.error == "e" * 4000
    assert jobs.log(job_id)[-1].message == "l" * 4000


# -- claiming under a race ---------------------------------------------------------------


def test_each_of_50_jobs_is_claimed_by_exactly_one_of_8_racing_workers(
    database_url: str, jobs: Jobs
) -> None:
    ids = [jobs.enqueue("probe", {}, created_by="test", exclusive=False) for _ in range(50)]
    jobs.enqueue("gc", {}, created_by="test")  # a kind these workers do not take
    barrier = threading.Barrier(8)
    claimed: dict[str, list[int]] = {}
    failures: list[BaseException] = []

    def work(name: str) -> None:
        engine = make_engine(database_url)  # each worker its own engine, as processes
        try:
            mine = Jobs(Database(engine))
            got: list[int] = []
            barrier.wait()
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                record = mine.claim_next(name, ["probe"])
                if record is not None:
                    assert (record.status, record.worker, record.attempts) == ("running", name, 1)
                    got.append(record.id)
                elif mine.find(kind="probe", status="queued", limit=1)[1] == 0:
                    break
            claimed[name] = got
        except BaseException as error:
            failures.append(error)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=work, args=(f"worker-{n}",)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(90)
    assert not failures, failures
    every = [job_id for got in claimed.values() for job_id in got]
    assert sorted(every) == ids, "a job was claimed twice or never"
    for name, got in claimed.items():
        for job_id in got:
            record = jobs.get(job_id)
            assert record is not None
            assert (record.status, record.worker, record.attempts) == ("running", name, 1)
            assert messages(jobs, job_id) == [f"started on {name}"]
    gc_jobs, _ = jobs.find(kind="gc")
    assert [r.status for r in gc_jobs] == ["queued"]


# -- one active job per kind and project --------------------------------------------------


def test_one_active_job_per_kind_and_project(jobs: Jobs) -> None:
    gc = jobs.enqueue("gc", {}, created_by="test")
    with pytest.raises(JobConflict) as conflict:
        jobs.enqueue("gc", {"dry_run": True}, created_by="other")
    assert conflict.value.existing == gc
    assert str(gc) in str(conflict.value)

    assert jobs.claim(gc, "w1")
    with pytest.raises(JobConflict):  # running counts as active too
        jobs.enqueue("gc", {}, created_by="test")

    # Other kinds, and the same kind for another project, are independent.
    jobs.enqueue("probe", {}, created_by="test")
    acme = jobs.enqueue("retention", {}, project="acme", created_by="test")
    jobs.enqueue("retention", {}, project="beta", created_by="test")
    jobs.enqueue("retention", {}, project=None, created_by="test")
    with pytest.raises(JobConflict) as conflict:
        jobs.enqueue("retention", {}, project="acme", created_by="test")
    assert conflict.value.existing == acme
    with pytest.raises(JobConflict):
        jobs.enqueue("retention", {}, project=None, created_by="test")

    # Once the job has finished (or was stopped while queued) the kind is free again.
    assert jobs.finish(gc, "w1", "failed", error="x")
    jobs.enqueue("gc", {}, created_by="test")
    jobs.request_stop(acme)
    jobs.enqueue("retention", {}, project="acme", created_by="test")

    # Not exclusive: queued beside the others.
    jobs.enqueue("gc", {}, created_by="test", exclusive=False)
    assert jobs.find(kind="gc", status="queued")[1] == 2


def _slow_down_exclusivity_check(engine: Engine, seconds: float) -> None:
    """Widen the window between the 'is one active?' SELECT and the INSERT."""

    @event.listens_for(engine, "after_cursor_execute")
    def pause(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().startswith("SELECT jobs.id") and "jobs.status IN" in statement:
            time.sleep(seconds)


def test_concurrent_enqueues_of_one_kind_queue_one_job(database_url: str, jobs: Jobs) -> None:
    outcomes: list[int | str] = []
    barrier = threading.Barrier(2)

    def enqueue() -> None:
        engine = make_engine(database_url)
        _slow_down_exclusivity_check(engine, 0.5)
        try:
            barrier.wait()
            outcomes.append(Jobs(Database(engine)).enqueue("gc", {}, created_by="api"))
        except JobConflict:
            outcomes.append("conflict")
        finally:
            engine.dispose()

    threads = [threading.Thread(target=enqueue) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert jobs.find(kind="gc", status="queued")[1] == 1
    assert outcomes.count("conflict") == 1, outcomes


# -- stop requests -----------------------------------------------------------------------


def test_stop_of_a_queued_job_is_immediate(jobs: Jobs) -> None:
    job_id = jobs.enqueue("probe", {}, created_by="test")
    record = jobs.request_stop(job_id)
    assert record is not None
    assert (record.status, record.stop_requested) == ("stopped", True)
    assert record.finished_at is not None
    assert record.started_at is None
    assert not jobs.claim(job_id, "w1")
    assert jobs.claim_next("w1", ["probe"]) is None


def test_stop_of_a_running_job_only_asks(jobs: Jobs) -> None:
    job_id = running_job(jobs)
    assert jobs.heartbeat(job_id, "w1") == (True, False)
    record = jobs.request_stop(job_id)
    assert record is not None
    assert (record.status, record.stop_requested, record.worker) == ("running", True, "w1")
    assert record.finished_at is None
    assert jobs.heartbeat(job_id, "w1") == (True, True)  # how the worker learns of it
    assert jobs.finish(job_id, "w1", "stopped")
    stopped = jobs.get(job_id)
    assert stopped is not None
    assert stopped.status == "stopped"


def test_stop_of_a_finished_job_changes_nothing(jobs: Jobs) -> None:
    job_id = running_job(jobs)
    assert jobs.finish(job_id, "w1", "succeeded", result={})
    before = jobs.get(job_id)
    assert jobs.request_stop(job_id) == before


def test_request_stop_of_an_unknown_job(jobs: Jobs) -> None:
    assert jobs.request_stop(4242) is None
    assert jobs.get(4242) is None


# -- ownership ---------------------------------------------------------------------------


def _taken_over(db: Database, jobs: Jobs, old: str = "old", new: str = "new") -> int:
    """A job claimed by `old`, presumed dead, re-queued and claimed by `new`."""
    job_id = running_job(jobs, old)
    set_job(db, job_id, heartbeat_at=ago(3600))
    assert jobs.requeue_lost(LOST_AFTER, 3) == [job_id]
    assert jobs.claim(job_id, new)
    return job_id


def test_a_worker_that_lost_its_job_cannot_touch_the_new_run(db: Database, jobs: Jobs) -> None:
    job_id = _taken_over(db, jobs)
    assert jobs.report(job_id, "new", lines=[(utcnow(), "info", "new run")], progress=(1, 4, "n"))
    before = jobs.get(job_id)
    log_before = jobs.log(job_id)

    assert jobs.heartbeat(job_id, "old") == (False, False)
    assert not jobs.report(
        job_id, "old", lines=[(utcnow(), "info", "old run")], progress=(9, 9, "o")
    )
    assert not jobs.finish(
        job_id, "old", "succeeded", result={"old": True}, lines=[(utcnow(), "info", "old")]
    )
    assert not jobs.finish(job_id, "old", "queued")
    assert not jobs.finish(job_id, "old", "failed", error="old")

    assert jobs.get(job_id) == before
    assert jobs.log(job_id) == log_before
    assert before is not None
    assert (before.worker, before.attempts) == ("new", 2)


def test_a_worker_cannot_finish_its_job_once_it_was_queued_again(db: Database, jobs: Jobs) -> None:
    job_id = running_job(jobs, "old")
    set_job(db, job_id, heartbeat_at=ago(3600))
    assert jobs.requeue_lost(LOST_AFTER, 3) == [job_id]
    assert not jobs.finish(job_id, "old", "succeeded", result={})
    assert not jobs.report(job_id, "old", progress=(1, 1, None))
    record = jobs.get(job_id)
    assert record is not None
    assert (record.status, record.result) == ("queued", None)


def test_report_racing_a_takeover_never_writes_into_the_new_run(
    database_url: str, db: Database, jobs: Jobs
) -> None:
    job_id = running_job(jobs, "old")
    set_job(db, job_id, heartbeat_at=ago(3600))
    engine = make_engine(database_url)
    reporter = Jobs(Database(engine))
    checked, go_on = threading.Event(), threading.Event()
    reporter_thread: list[int] = []

    @event.listens_for(engine, "after_cursor_execute")
    def pause(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if (
            threading.get_ident() in reporter_thread
            and statement.lstrip().startswith("UPDATE jobs")
            and "jobs.worker" in statement
        ):
            checked.set()
            go_on.wait(10)

    reported: list[bool] = []

    def report() -> None:
        reporter_thread.append(threading.get_ident())
        line = (utcnow(), "info", "from the old run")
        reported.append(reporter.report(job_id, "old", lines=[line], progress=(7, 9, "old")))

    def take_over() -> None:
        jobs.requeue_lost(LOST_AFTER, 3)
        jobs.claim(job_id, "new")

    try:
        old = threading.Thread(target=report)
        old.start()
        assert checked.wait(10)
        new = threading.Thread(target=take_over)
        new.start()
        new.join(1.5)  # on SQLite it waits for the reporter's write lock
        go_on.set()
        old.join(15)
        new.join(15)
    finally:
        go_on.set()
        engine.dispose()
    record = jobs.get(job_id)
    assert record is not None
    assert reported
    lines = messages(jobs, job_id)
    if reported[0]:
        # The report won: it refreshed the heartbeat, so the old worker is alive and
        # the takeover (which re-checks staleness under the row lock) did not happen.
        assert (record.status, record.worker) == ("running", "old")
        assert "from the old run" in lines
        assert "started on new" not in lines
    else:
        assert (record.status, record.worker) == ("running", "new")
        new_run = lines[lines.index("started on new") :]
        assert "from the old run" not in new_run, lines


# -- lost workers ------------------------------------------------------------------------


def test_requeue_lost_queues_jobs_of_silent_workers_again(db: Database, jobs: Jobs) -> None:
    lost = running_job(jobs, "dead")
    set_job(db, lost, heartbeat_at=ago(120))
    alive = running_job(jobs, "alive")
    queued = jobs.enqueue("probe", {}, created_by="test", exclusive=False)

    assert jobs.requeue_lost(LOST_AFTER, 3) == [lost]
    record = jobs.get(lost)
    assert record is not None
    assert (record.status, record.worker, record.attempts) == ("queued", None, 1)
    assert record.finished_at is None
    assert record.error is None
    last = jobs.log(lost)[-1]
    assert (last.level, last.message) == (
        "warning",
        "worker dead stopped responding; job queued again",
    )
    for untouched, status in ((alive, "running"), (queued, "queued")):
        other = jobs.get(untouched)
        assert other is not None
        assert other.status == status
    assert jobs.requeue_lost(LOST_AFTER, 3) == []

    # Any worker may now run it to its end.
    assert jobs.claim(lost, "rescuer")
    assert jobs.finish(lost, "rescuer", "succeeded", result={})
    done = jobs.get(lost)
    assert done is not None
    assert (done.status, done.worker, done.attempts) == (
        "succeeded",
        "rescuer",
        2,
    )


def test_requeue_lost_leaves_a_job_alone_while_its_heartbeat_is_fresh(
    db: Database, jobs: Jobs
) -> None:
    job_id = running_job(jobs)
    set_job(db, job_id, heartbeat_at=ago(50))
    assert jobs.requeue_lost(LOST_AFTER, 3) == []
    assert jobs.heartbeat(job_id, "w1") == (True, False)
    set_job(db, job_id, heartbeat_at=ago(50))
    assert jobs.requeue_lost(timedelta(seconds=40), 3) == [job_id]


def test_requeue_lost_fails_the_job_after_max_attempts(db: Database, jobs: Jobs) -> None:
    job_id = jobs.enqueue("probe", {}, created_by="test")
    for attempt in (1, 2, 3):
        assert jobs.claim(job_id, f"w{attempt}")
        set_job(db, job_id, heartbeat_at=ago(120))
        assert jobs.requeue_lost(LOST_AFTER, 3) == [job_id]
        record = jobs.get(job_id)
        assert record is not None
        assert record.attempts == attempt
        if attempt < 3:
            assert record.status == "queued"
    record = jobs.get(job_id)
    assert record is not None
    assert record.status == "failed"
    assert record.error == "worker w3 stopped responding (attempt 3 of 3)"
    assert record.finished_at is not None
    assert messages(jobs, job_id)[-1] == "worker w3 stopped responding"
    assert not jobs.claim(job_id, "w4")
    assert jobs.requeue_lost(LOST_AFTER, 3) == []


def test_requeue_lost_stops_a_job_whose_stop_was_requested(db: Database, jobs: Jobs) -> None:
    job_id = running_job(jobs, "dead")
    jobs.request_stop(job_id)
    set_job(db, job_id, heartbeat_at=ago(120))
    assert jobs.requeue_lost(LOST_AFTER, 3) == [job_id]
    record = jobs.get(job_id)
    assert record is not None
    assert (record.status, record.error, record.attempts) == ("stopped", None, 1)
    assert record.finished_at is not None
    assert messages(jobs, job_id)[-1] == "worker dead stopped responding"


# -- pruning -----------------------------------------------------------------------------


def test_prune_forgets_old_finished_jobs_and_their_logs_never_active_ones(
    db: Database, jobs: Jobs
) -> None:
    long_ago = ago(100 * 86400)
    old: list[int] = []
    ended: tuple[Status, ...] = ("succeeded", "failed", "stopped")
    for status in ended:
        job_id = running_job(jobs)
        jobs.report(job_id, "w1", lines=[(utcnow(), "info", "work")])
        assert jobs.finish(job_id, "w1", status)
        set_job(db, job_id, finished_at=long_ago, created_at=long_ago, started_at=long_ago)
        old.append(job_id)
    stopped_queued = jobs.enqueue("probe", {}, created_by="test", exclusive=False)
    jobs.request_stop(stopped_queued)
    set_job(db, stopped_queued, finished_at=long_ago, created_at=long_ago)
    old.append(stopped_queued)

    recent = running_job(jobs)
    assert jobs.finish(recent, "w1", "succeeded")
    old_queued = jobs.enqueue("probe", {}, created_by="test", exclusive=False)
    set_job(db, old_queued, created_at=long_ago)
    old_running = running_job(jobs)
    set_job(db, old_running, created_at=long_ago, started_at=long_ago)
    requeued = running_job(jobs, "dead")  # queued again: finished_at stays empty
    set_job(db, requeued, created_at=long_ago, started_at=long_ago, heartbeat_at=long_ago)
    assert jobs.requeue_lost(LOST_AFTER, 3) == [requeued]

    assert jobs.prune(timedelta(days=90)) == len(old)
    for job_id in old:
        assert jobs.get(job_id) is None
    assert log_rows(db, old) == 0
    kept = [recent, old_queued, old_running, requeued]
    assert sorted(r.id for r in jobs.find(limit=100)[0]) == sorted(kept)
    assert log_rows(db, [recent, old_running, requeued]) > 0
    assert jobs.prune(timedelta(days=90)) == 0


# -- the log and listing -----------------------------------------------------------------


def test_log_is_in_order_and_pages_with_after(jobs: Jobs) -> None:
    job_id = running_job(jobs, "w1")
    other = running_job(jobs, "w2")
    for n in range(30):
        level = "warning" if n % 7 == 0 else "info"
        assert jobs.report(job_id, "w1", lines=[(utcnow(), level, f"line {n}")])
        if n % 3 == 0:  # interleaved lines of another job stay out
            assert jobs.report(other, "w2", lines=[(utcnow(), "info", f"other {n}")])
    batch = [(utcnow(), "info", f"batch {n}") for n in range(5)]
    assert jobs.report(job_id, "w1", lines=batch)

    lines = jobs.log(job_id)
    expected = ["started on w1"] + [f"line {n}" for n in range(30)] + [m for _, _, m in batch]
    assert [line.message for line in lines] == expected
    assert [line.id for line in lines] == sorted({line.id for line in lines})
    assert [line.at for line in lines] == sorted(line.at for line in lines)
    assert lines[1].level == "warning"
    assert lines[2].level == "info"

    first = jobs.log(job_id, limit=10)
    assert first == lines[:10]
    assert jobs.log(job_id, after=first[-1].id) == lines[10:]
    followed: list[Any] = []
    while chunk := jobs.log(job_id, after=followed[-1].id if followed else 0, limit=7):
        followed += chunk
    assert followed == lines
    assert jobs.log(job_id, after=lines[-1].id) == []
    assert jobs.log(4242) == []


def test_find_filters_and_counts_newest_first(jobs: Jobs) -> None:
    ids = [
        jobs.enqueue("probe", {}, created_by="t", exclusive=False),
        jobs.enqueue("gc", {}, created_by="t"),
        jobs.enqueue("retention", {}, project="acme", created_by="t"),
        jobs.enqueue("retention", {}, project="beta", created_by="t"),
        jobs.enqueue("probe", {}, created_by="t", exclusive=False),
    ]
    assert jobs.claim(ids[0], "w")
    records, total = jobs.find()
    assert [r.id for r in records] == ids[::-1]
    assert total == 5
    assert [r.id for r in jobs.find(kind="probe")[0]] == [ids[4], ids[0]]
    assert [r.id for r in jobs.find(status="running")[0]] == [ids[0]]
    assert [r.id for r in jobs.find(project="acme")[0]] == [ids[2]]
    assert [r.id for r in jobs.find(projects=["acme", "beta"])[0]] == [ids[3], ids[2]]
    assert jobs.find(projects=[]) == ([], 0)
    page, total = jobs.find(limit=2, offset=2)
    assert [r.id for r in page] == [ids[2], ids[1]]
    assert total == 5


def test_a_job_created_running_is_never_claimed_by_another_worker(jobs: Jobs) -> None:
    """`portside gc` creates its job already running on itself: a server's worker polling
    at that moment must not take it."""
    job_id = jobs.enqueue("probe", {"seconds": 0}, created_by="cli", run_by="cli-worker")
    record = jobs.get(job_id)
    assert record is not None
    assert (record.status, record.worker, record.attempts) == ("running", "cli-worker", 1)
    assert record.started_at is not None
    assert record.heartbeat_at is not None
    assert jobs.claim_next("server-worker", ["probe"]) is None
    assert not jobs.claim(job_id, "server-worker")
    assert [line.message for line in jobs.log(job_id)] == ["started on cli-worker"]
    assert jobs.finish(job_id, "cli-worker", "succeeded", result={})
