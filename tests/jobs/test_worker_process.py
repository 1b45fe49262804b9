"""Real worker processes: a SIGKILLed worker's job is re-queued and finished by another
worker; SIGTERM puts a running job back; `portside serve` starts a worker that runs
jobs and goes away with the server."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from portside.jobs.store import JobRecord, Jobs
from portside.metadata.db import Database
from portside.metadata.engine import make_engine
from tests.durability.server import ServerProcess, StartWorker, portside_env, worker_processes
from tests.jobs.conftest import messages

pytestmark = pytest.mark.slow

JOB_ENV = {
    "PORTSIDE_JOBS__HEARTBEAT_SECONDS": "0.5",
    "PORTSIDE_JOBS__LOST_AFTER_SECONDS": "3",
    "PORTSIDE_JOBS__POLL_SECONDS": "0.2",
}


@pytest.fixture
def process_jobs(database_url: str) -> Iterator[Jobs]:
    engine = make_engine(database_url)
    yield Jobs(Database(engine))
    engine.dispose()


@pytest.fixture
def start_worker(tmp_path: Path, database_url: str) -> Iterator[StartWorker]:
    """`start_worker()`: a `portside worker` process on this test's data directory and
    database; every one still running is killed afterwards."""
    with worker_processes(tmp_path, database_url, JOB_ENV) as start:
        yield start


def wait_for(
    jobs: Jobs, job_id: int, done: Callable[[JobRecord], bool], timeout: float
) -> JobRecord:
    deadline = time.monotonic() + timeout
    while True:
        record = jobs.get(job_id)
        assert record is not None
        if done(record):
            return record
        assert time.monotonic() < deadline, f"job {job_id} stuck: {record}"
        time.sleep(0.05)


def pid_of(worker: str | None) -> int:
    """Worker names are host:pid:thread."""
    assert worker is not None
    return int(worker.split(":")[1])


def process_gone(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat[stat.rindex(")") + 2] in "ZX"  # exited, not yet reaped by its new parent


def parent_of(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat[stat.rindex(")") + 2 :].split()[1])


def test_a_killed_workers_job_is_finished_by_another_worker(
    process_jobs: Jobs, start_worker: StartWorker
) -> None:
    jobs = process_jobs
    job_id = jobs.enqueue("probe", {"seconds": 6}, created_by="test")
    first = start_worker()
    running = wait_for(jobs, job_id, lambda r: r.status == "running", timeout=30)
    assert pid_of(running.worker) == first.pid
    first.kill()  # SIGKILL: no chance to put the job back
    first.wait(10)
    assert jobs.get(job_id) == running  # nobody has noticed yet

    second = start_worker()
    done = wait_for(jobs, job_id, lambda r: r.status not in ("queued", "running"), timeout=40)
    assert done.status == "succeeded", (done.error, messages(jobs, job_id))
    assert done.attempts == 2
    assert pid_of(done.worker) == second.pid
    lines = messages(jobs, job_id)
    assert f"worker {running.worker} stopped responding; job queued again" in lines
    assert lines.index(f"started on {done.worker}") > lines.index(f"started on {running.worker}")
    assert lines[-1] == "waited 6 s"


def test_sigterm_to_a_worker_puts_its_running_job_back(
    process_jobs: Jobs, start_worker: StartWorker
) -> None:
    jobs = process_jobs
    job_id = jobs.enqueue("probe", {"seconds": 60}, created_by="test")
    worker = start_worker()
    wait_for(jobs, job_id, lambda r: r.status == "running", timeout=30)
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(5) == 0
    record = jobs.get(job_id)
    assert record is not None
    assert (record.status, record.worker, record.attempts, record.finished_at) == (
        "queued",
        None,
        1,
        None,
    )
    assert messages(jobs, job_id)[-1] == "worker shutting down; the job will run again"


def test_serve_runs_jobs_and_its_worker_leaves_with_it(
    tmp_path: Path, database_url: str, process_jobs: Jobs
) -> None:
    jobs = process_jobs
    logs = tmp_path / "logs"
    logs.mkdir()
    server = ServerProcess(
        data_dir=tmp_path / "data", database_url=database_url, log_dir=logs, env=JOB_ENV
    )
    try:
        server.start()
        assert server.process is not None
        master = server.process.pid

        quick = jobs.enqueue("probe", {"seconds": 0}, created_by="test")
        done = wait_for(jobs, quick, lambda r: r.status not in ("queued", "running"), 20)
        assert done.status == "succeeded", done.error
        worker = pid_of(done.worker)
        assert parent_of(worker) == master

        slow = jobs.enqueue("probe", {"seconds": 60}, created_by="test")
        wait_for(jobs, slow, lambda r: r.status == "running", timeout=10)
        server.process.send_signal(signal.SIGTERM)
        server.process.wait(15)
        deadline = time.monotonic() + 5
        while not process_gone(worker):
            assert time.monotonic() < deadline, server.log_tail()
            time.sleep(0.05)
        record = jobs.get(slow)
        assert record is not None
        assert (record.status, record.worker) == ("queued", None), server.log_tail()
    finally:
        server.kill()  # the whole process group, the job worker included


def test_worker_settings_are_checked_before_it_starts(tmp_path: Path, database_url: str) -> None:
    env = portside_env(database_url, **(JOB_ENV | {"PORTSIDE_JOBS__LOST_AFTER_SECONDS": "1"}))
    command = [sys.executable, "-m", "portside", "worker", "--data-dir", str(tmp_path / "d")]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "jobs" in result.stderr
    assert "lost_after_seconds must be more than twice" in result.stderr


def test_the_serve_worker_entry_point_wants_a_parent() -> None:
    command = [sys.executable, "-m", "portside.jobs"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "usage: python -m portside.jobs --parent-pid PID" in result.stderr


def _command_line(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_text().split("\0")[:-1]


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


def test_serves_worker_waits_small_and_loads_the_job_code_only_for_work(
    tmp_path: Path, database_url: str, process_jobs: Jobs
) -> None:
    """Idle, the worker is the small poller of portside.jobs.idle; a queued job turns it
    (same pid, by exec) into the full worker, which returns to the poller once idle for
    15 polls (3 s here)."""
    jobs = process_jobs
    logs = tmp_path / "logs"
    logs.mkdir()
    server = ServerProcess(
        data_dir=tmp_path / "data", database_url=database_url, log_dir=logs, env=JOB_ENV
    )
    try:
        server.start()
        assert server.process is not None
        master = server.process.pid
        worker = next(
            pid
            for pid in (int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit())
            if not process_gone(pid)
            and parent_of(pid) == master
            and "portside.jobs" in _command_line(pid)
        )
        assert "--busy" not in _command_line(worker)
        assert _rss_mb(worker) < 40, _rss_mb(worker)

        job_id = jobs.enqueue("probe", {"seconds": 0}, created_by="test")
        done = wait_for(jobs, job_id, lambda r: r.status not in ("queued", "running"), 20)
        assert done.status == "succeeded", done.error
        assert pid_of(done.worker) == worker  # the same process, exec'd into the full worker

        deadline = time.monotonic() + 20
        while "--busy" in _command_line(worker):
            assert time.monotonic() < deadline, server.log_tail()
            time.sleep(0.1)
        assert parent_of(worker) == master
        assert "jobs.worker_idle" in server.log_text()
        again = jobs.enqueue("probe", {"seconds": 0}, created_by="test")
        done = wait_for(jobs, again, lambda r: r.status not in ("queued", "running"), 20)
        assert done.status == "succeeded", done.error
    finally:
        server.kill()
