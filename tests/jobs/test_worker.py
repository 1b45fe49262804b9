"""The worker in this process: running jobs to their end (success, failure, bad
parameters, stop, shutdown, takeover), the heartbeat, the buffered log, schedules and
lost jobs in its loop, and garbage collection as a job."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from portside.app import PortsideApp, create_app
from portside.context import Context
from portside.jobs import runner
from portside.jobs.context import JobContext, JobFailed
from portside.jobs.kinds import KINDS, Kind
from portside.jobs.runner import Worker
from portside.jobs.schedules import Schedules
from portside.jobs.store import JobRecord, Jobs
from tests.api.helpers import push_blob, push_image
from tests.jobs.conftest import ago, fast_settings, messages, set_job, set_schedule

RELEASE = threading.Event()


def explode(job: JobContext) -> dict[str, Any]:
    job.log("about to fail")
    raise RuntimeError("kaput")


def refuse(job: JobContext) -> dict[str, Any]:
    raise JobFailed("project 'acme' does not exist")


def chatty(job: JobContext) -> dict[str, Any]:
    for n in range(450):
        job.log(f"line {n}", "warning" if n % 100 == 0 else "info")
    return {"lines": 450}


def chatty_then_explode(job: JobContext) -> dict[str, Any]:
    for n in range(30):
        job.log(f"line {n}")
    raise RuntimeError("kaput after 30 lines")


def wait_for_release(job: JobContext) -> dict[str, Any]:
    """Logs one line, then waits (checking for a stop) until the test lets it go."""
    job.log("phase one")
    deadline = time.monotonic() + 20
    while not RELEASE.is_set() and time.monotonic() < deadline:
        job.check_stop()
        time.sleep(0.05)
    return {}


def _identity(params: dict[str, Any]) -> dict[str, Any]:
    return params


@pytest.fixture
def test_kinds(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("explode", "refuse", "chatty", "chatty_then_explode", "wait_for_release"):
        monkeypatch.setitem(
            KINDS,
            name,
            Kind(name, f"{__name__}:{name}", _identity, per_project=False, description=name),
        )
    RELEASE.clear()
    yield
    RELEASE.set()


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> float:
    """Poll until `condition()`; returns the seconds it took."""
    start = time.monotonic()
    while not condition():
        assert time.monotonic() - start < timeout, "timed out"
        time.sleep(0.02)
    return time.monotonic() - start


def status_of(jobs: Jobs, job_id: int) -> str:
    record = jobs.get(job_id)
    assert record is not None
    return record.status


def final(jobs: Jobs, job_id: int) -> JobRecord:
    record = jobs.get(job_id)
    assert record is not None
    return record


def in_background(worker: Worker) -> threading.Thread:
    thread = threading.Thread(target=worker.tick, name=f"tick-{worker.name}")
    thread.start()
    return thread


# -- running jobs ------------------------------------------------------------------------


def test_an_idle_tick_runs_nothing(services: Context) -> None:
    assert not Worker(services, name="w1").tick()


def test_tick_runs_a_probe_to_success(services: Context) -> None:
    jobs = Jobs(services.db)
    job_id = jobs.enqueue("probe", {"seconds": 1}, created_by="test")
    worker = Worker(services, name="w1")
    assert worker.tick()
    record = final(jobs, job_id)
    assert (record.status, record.result, record.error) == ("succeeded", {"seconds": 1.0}, None)
    assert (record.worker, record.attempts) == ("w1", 1)
    assert (record.progress_done, record.progress_total) == (1, 1)
    assert record.finished_at is not None
    assert record.started_at is not None
    assert messages(jobs, job_id) == ["started on w1", "waited 1 s"]
    assert not worker.tick()


def test_progress_is_visible_while_the_job_runs(services: Context) -> None:
    jobs = Jobs(services.db)
    job_id = jobs.enqueue("probe", {"seconds": 3}, created_by="test")
    thread = in_background(Worker(services, name="w1"))
    try:
        wait_until(lambda: final(jobs, job_id).progress_done >= 1, timeout=2.5)
        record = final(jobs, job_id)
        assert (record.status, record.progress_total) == ("running", 3)
    finally:
        jobs.request_stop(job_id)
        thread.join(10)


def test_a_job_that_raises_fails_with_internal_error_and_traceback(
    services: Context, test_kinds: None
) -> None:
    jobs = Jobs(services.db)
    job_id = jobs.enqueue("explode", {}, created_by="test")
    assert Worker(services, name="w1").tick()
    record = final(jobs, job_id)
    assert (record.status, record.result) == ("failed", None)
    assert record.error == "internal error: RuntimeError: kaput"
    lines = jobs.log(job_id)
    assert [line.message for line in lines[:2]] == ["started on w1", "about to fail"]
    last = lines[-1]
    assert last.level == "error"
    assert last.message.startswith("Traceback (most recent call last):")
    assert "in explode" in last.message
    assert "RuntimeError: kaput" in last.message


def test_a_job_that_gives_up_fails_with_its_message(services: Context, test_kinds: None) -> None:
    jobs = Jobs(services.db)
    job_id = jobs.enqueue("refuse", {}, created_by="test")
    assert Worker(services, name="w1").tick()
    record = final(jobs, job_id)
    assert (record.status, record.error) == ("failed", "project 'acme' does not exist")
    last = jobs.log(job_id)[-1]
    assert (last.level, last.message) == ("error", "project 'acme' does not exist")
    assert "Traceback" not in " ".join(messages(jobs, job_id))


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"seconds": "soon"}, "seconds must be a number from 0 to 3600"),
        ({"seconds": True}, "seconds must be a number from 0 to 3600"),
        ({"seconds": 7200}, "seconds must be a number from 0 to 3600"),
        ({"minutes": 1}, "unknown parameter 'minutes' (allowed: seconds)"),
    ],
)
def test_bad_parameters_fail_the_job_with_the_message(
    services: Context, params: dict[str, Any], error: str
) -> None:
    jobs = Jobs(services.db)
    job_id = jobs.enqueue("probe", params, created_by="test")  # queued without checks
    assert Worker(services, name="w1").tick()
    record = final(jobs, job_id)
    assert (record.status, record.error, record.result) == ("failed", error, None)
    last = jobs.log(job_id)[-1]
    assert (last.level, last.message) == ("error", error)


def test_many_log_lines_arrive_in_order(services: Context, test_kinds: None) -> None:
    jobs = Jobs(services.db)
    job_id = jobs.enqueue("chatty", {}, created_by="test")
    assert Worker(services, name="w1").tick()
    record = final(jobs, job_id)
    assert (record.status, record.result) == ("succeeded", {"lines": 450})
    lines = jobs.log(job_id)
    assert [line.message for line in lines] == ["started on w1"] + [f"line {n}" for n in range(450)]
    assert [line.level for line in lines[1:] if line.level != "info"] == ["warning"] * 5


def test_echo_sees_every_line(services: Context, test_kinds: None) -> None:
    seen: list[tuple[str, str]] = []
    jobs = Jobs(services.db)
    job_id = jobs.enqueue("refuse", {}, created_by="test")
    Worker(services, name="w1", echo=lambda level, message: seen.append((level, message))).tick()
    assert seen == [("error", "project 'acme' does not exist")]
    assert final(jobs, job_id).status == "failed"


def test_a_job_keeps_at_most_log_keep_lines_and_says_how_many_more(
    services: Context, test_kinds: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner, "LOG_KEEP", 100)
    seen: list[str] = []
    jobs = Jobs(services.db)
    job_id = jobs.enqueue("chatty", {}, created_by="test")
    worker = Worker(services, name="w1", echo=lambda level, message: seen.append(message))
    assert worker.tick()
    assert final(jobs, job_id).status == "succeeded"
    assert messages(jobs, job_id) == ["started on w1"] + [f"line {n}" for n in range(100)] + [
        "350 more log lines not kept (limit 100)"
    ]
    assert seen == [f"line {n}" for n in range(450)]  # `portside gc` still prints them all


def test_the_traceback_is_kept_even_past_the_log_limit(
    services: Context, test_kinds: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner, "LOG_KEEP", 10)
    jobs = Jobs(services.db)
    job_id = jobs.enqueue("chatty_then_explode", {}, created_by="test")
    assert Worker(services, name="w1").tick()
    record = final(jobs, job_id)
    assert record.error == "internal error: RuntimeError: kaput after 30 lines"
    assert any("Traceback" in message for message in messages(jobs, job_id))


def test_a_lazy_worker_builds_its_services_at_the_first_job_only(services: Context) -> None:
    builds: list[int] = []

    def build() -> Context:
        builds.append(1)
        return services

    worker = Worker(build, settings=services.settings, db=services.db, name="lazy")
    assert not worker.tick()
    assert builds == []  # an idle worker needs only the database
    jobs = Jobs(services.db)
    first = jobs.enqueue("probe", {"seconds": 0}, created_by="test", exclusive=False)
    second = jobs.enqueue("probe", {"seconds": 0}, created_by="test", exclusive=False)
    assert worker.tick()
    assert worker.tick()
    assert builds == [1]
    assert final(jobs, first).status == final(jobs, second).status == "succeeded"


def test_a_logged_line_shows_while_the_job_works_on(services: Context, test_kinds: None) -> None:
    jobs = Jobs(services.db)
    job_id = jobs.enqueue("wait_for_release", {}, created_by="test")
    thread = in_background(Worker(services, name="w1"))
    try:
        wait_until(lambda: status_of(jobs, job_id) == "running")
        # Heartbeats every 0.1 s: three seconds is many times what following a log needs.
        wait_until(lambda: "phase one" in messages(jobs, job_id), timeout=3)
    finally:
        RELEASE.set()
        thread.join(10)
    assert final(jobs, job_id).status == "succeeded"


# -- stop, shutdown, takeover ------------------------------------------------------------


def test_a_stop_request_stops_a_running_probe_within_a_second(services: Context) -> None:
    jobs = Jobs(services.db)
    job_id = jobs.enqueue("probe", {"seconds": 30}, created_by="test")
    thread = in_background(Worker(services, name="w1"))
    wait_until(lambda: status_of(jobs, job_id) == "running")
    asked = jobs.request_stop(job_id)
    assert asked is not None
    assert asked.status == "running"
    took = wait_until(lambda: status_of(jobs, job_id) == "stopped", timeout=5)
    thread.join(5)
    assert not thread.is_alive()
    assert took < 1.5  # heartbeat 0.1 s + the probe checks every 0.2 s
    record = final(jobs, job_id)
    assert (record.error, record.result, record.stop_requested) == (None, None, True)
    assert record.finished_at is not None
    assert messages(jobs, job_id)[-1] == "stopped on request"


def test_shutdown_puts_the_running_job_back_for_another_worker(services: Context) -> None:
    jobs = Jobs(services.db)
    job_id = jobs.enqueue("probe", {"seconds": 2}, created_by="test")
    first = Worker(services, name="first")
    thread = in_background(first)
    wait_until(lambda: status_of(jobs, job_id) == "running")
    time.sleep(0.3)
    first.stopping.set()
    thread.join(2)
    assert not thread.is_alive(), "the worker did not give the job up promptly"
    record = final(jobs, job_id)
    assert (record.status, record.worker, record.attempts) == ("queued", None, 1)
    assert record.finished_at is None
    assert record.error is None
    assert record.result is None
    last = jobs.log(job_id)[-1]
    assert (last.level, last.message) == ("warning", "worker shutting down; the job will run again")

    assert Worker(services, name="second").tick()
    record = final(jobs, job_id)
    assert (record.status, record.worker, record.attempts) == ("succeeded", "second", 2)
    assert "started on second" in messages(jobs, job_id)


def test_a_worker_whose_job_was_taken_over_leaves_it_alone(services: Context) -> None:
    jobs = Jobs(services.db)
    job_id = jobs.enqueue("probe", {"seconds": 30}, created_by="test")
    thread = in_background(Worker(services, name="w1"))
    wait_until(lambda: status_of(jobs, job_id) == "running")
    set_job(services.db, job_id, worker="usurper")  # as if re-queued and claimed elsewhere
    thread.join(3)
    assert not thread.is_alive(), "the worker kept running a job that is no longer its own"
    record = final(jobs, job_id)
    assert (record.status, record.worker, record.result) == ("running", "usurper", None)
    assert messages(jobs, job_id) == ["started on w1"]


def test_the_heartbeat_keeps_a_long_job_from_being_taken_for_lost(services: Context) -> None:
    jobs = Jobs(services.db)
    job_id = jobs.enqueue("probe", {"seconds": 2.5}, created_by="test")  # lost after 1 s
    runner = Worker(services, name="runner")
    thread = in_background(runner)
    wait_until(lambda: status_of(jobs, job_id) == "running")
    other = Worker(services, name="other")
    while thread.is_alive():
        assert not other.tick()
        time.sleep(0.05)
    record = final(jobs, job_id)
    assert (record.status, record.worker, record.attempts) == ("succeeded", "runner", 1)


def test_run_forever_ends_on_stop_and_when_its_parent_is_gone(services: Context) -> None:
    worker = Worker(services, name="w1")
    thread = threading.Thread(target=worker.run_forever)
    thread.start()
    time.sleep(0.2)
    worker.stopping.set()
    thread.join(2)
    assert not thread.is_alive()

    parent_alive = threading.Event()
    parent_alive.set()
    orphan = Worker(services, name="w2")
    thread = threading.Thread(target=orphan.run_forever, args=(parent_alive.is_set,))
    thread.start()
    time.sleep(0.2)
    assert thread.is_alive()
    parent_alive.clear()
    thread.join(3)
    assert not thread.is_alive()


# -- the loop: schedules and lost jobs ---------------------------------------------------


def test_tick_fires_a_due_schedule_and_runs_its_job(services: Context) -> None:
    jobs, schedules = Jobs(services.db), Schedules(services.db)
    schedules.put("probe", kind="probe", cron="0 3 * * *", params={"seconds": 0}, created_by="a")
    set_schedule(services.db, "probe", next_run_at=ago(1))
    assert Worker(services, name="w1").tick()
    [record], _ = jobs.find()
    assert (record.status, record.schedule, record.created_by) == (
        "succeeded",
        "probe",
        "schedule:probe",
    )


def test_tick_requeues_a_dead_workers_job_and_runs_it(services: Context) -> None:
    jobs = Jobs(services.db)
    job_id = jobs.enqueue("probe", {"seconds": 0}, created_by="test")
    assert jobs.claim(job_id, "dead")
    set_job(services.db, job_id, heartbeat_at=ago(5))
    assert Worker(services, name="w1").tick()
    record = final(jobs, job_id)
    assert (record.status, record.worker, record.attempts) == ("succeeded", "w1", 2)
    assert messages(jobs, job_id)[:3] == [
        "started on dead",
        "worker dead stopped responding; job queued again",
        "started on w1",
    ]


# -- garbage collection as a job ---------------------------------------------------------


@pytest.fixture
def registry_app(tmp_path: Path, database_url: str) -> Iterator[PortsideApp]:
    app = create_app(fast_settings(tmp_path, database_url))
    yield app
    app.ctx.close()


def _orphan(client: TestClient) -> tuple[str, bytes]:
    push_image(client, "team/app", "v1")
    orphan = b"pushed but never referenced by a manifest" * 40
    return push_blob(client, "team/app", orphan), orphan


def test_gc_job_deletes_an_orphan_blob_and_logs_each_deletion(registry_app: PortsideApp) -> None:
    with TestClient(registry_app, base_url="http://registry.test") as client:
        digest, orphan = _orphan(client)
        jobs = Jobs(registry_app.ctx.db)
        job_id = jobs.enqueue("gc", {"grace_period_seconds": 0}, created_by="admin")
        assert Worker(registry_app.ctx, name="w1").tick()

        record = final(jobs, job_id)
        assert record.status == "succeeded", (record.error, messages(jobs, job_id))
        assert record.result is not None
        assert record.result["deleted"] == {
            "manifests": 0,
            "links": 1,
            "blobs": 1,
            "bytes": len(orphan),
        }
        assert record.result["planned"] == record.result["deleted"]
        assert (record.result["dry_run"], record.result["skipped"]) == (False, 0)
        lines = messages(jobs, job_id)
        assert f"delete blob {digest} ({len(orphan)} bytes): no repository links it" in lines
        assert f"delete link team/app -> {digest}: no manifest in the repository lists it" in lines
        assert lines[-1] == record.result["summary"]
        assert lines[-1].startswith(
            f"deleted 0 manifests, 1 links and 1 blobs, freed {len(orphan)} bytes"
        )
        assert record.progress_total == 2
        assert record.progress_done == 2

        assert client.head(f"/v2/team/app/blobs/{digest}").status_code == 404
        assert client.get("/v2/team/app/manifests/v1").status_code == 200
        entries, _ = registry_app.ctx.audit.find(action="gc.delete")
        assert {(e.resource_type, e.detail["job"]) for e in entries} == {
            ("blob", job_id),
            ("link", job_id),
        }


def test_gc_dry_run_job_deletes_nothing(registry_app: PortsideApp) -> None:
    with TestClient(registry_app, base_url="http://registry.test") as client:
        digest, orphan = _orphan(client)
        jobs = Jobs(registry_app.ctx.db)
        job_id = jobs.enqueue(
            "gc", {"dry_run": True, "grace_period_seconds": 0}, created_by="admin"
        )
        assert Worker(registry_app.ctx, name="w1").tick()

        record = final(jobs, job_id)
        assert record.status == "succeeded", record.error
        assert record.result == {
            "dry_run": True,
            "planned": {"manifests": 0, "links": 1, "blobs": 1, "bytes": len(orphan)},
        }
        lines = messages(jobs, job_id)
        assert f"would delete blob {digest} ({len(orphan)} bytes): no repository links it" in lines
        assert not [line for line in lines if line.startswith("delete ")]
        assert lines[-1].startswith("dry run: would delete 0 manifests, 1 links and 1 blobs")
        assert client.head(f"/v2/team/app/blobs/{digest}").status_code == 200
        assert registry_app.ctx.audit.find(action="gc.delete")[1] == 0


def test_gc_job_respects_the_grace_period(registry_app: PortsideApp) -> None:
    with TestClient(registry_app, base_url="http://registry.test") as client:
        digest, _ = _orphan(client)
        jobs = Jobs(registry_app.ctx.db)
        job_id = jobs.enqueue("gc", {}, created_by="admin")  # default: two hours
        assert Worker(registry_app.ctx, name="w1").tick()
        record = final(jobs, job_id)
        assert record.status == "succeeded"
        assert record.result is not None
        assert record.result["deleted"]["blobs"] == 0
        assert client.head(f"/v2/team/app/blobs/{digest}").status_code == 200
