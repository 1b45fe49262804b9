"""`portside job …`, `portside schedule …` and `portside gc` (now a job run in its own
process): what they print, what they store, and how they fail."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner, Result
from starlette.testclient import TestClient

from portside.app import PortsideApp
from portside.cli import main
from portside.config import Settings
from portside.jobs.runner import Worker
from portside.jobs.store import Jobs
from portside.metadata.db import Database
from portside.metadata.engine import make_engine
from tests.api.helpers import push_blob, push_image
from tests.durability.server import portside_env


def run(settings: Settings, *args: str, code: int = 0) -> Result:
    """`portside ARGS --data-dir D` on the settings' database; checks the exit code."""
    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("PORTSIDE_")}
    env["PORTSIDE_DATABASE__URL"] = settings.database_url
    result = CliRunner().invoke(
        main, [*args, "--data-dir", str(settings.data_dir)], env=env, catch_exceptions=False
    )
    assert result.exit_code == code, result.output
    return result


def lines_of(result: Result) -> list[str]:
    return result.stdout.splitlines()


def store(app: PortsideApp) -> Jobs:
    return Jobs(app.ctx.db)


# -- job start / list / show / stop ------------------------------------------------------


def test_start_list_show_and_stop_a_job(app: PortsideApp, settings: Settings) -> None:
    assert run(settings, "job", "start", "probe", "--param", "seconds=0").stdout == "queued job 1\n"
    record = store(app).get(1)
    assert record is not None
    assert (record.kind, record.params, record.status, record.created_by) == (
        "probe",
        {"seconds": 0.0},
        "queued",
        "cli",
    )

    listed = lines_of(run(settings, "job", "list"))
    assert listed[0].split() == ["ID", "KIND", "PROJECT", "STATUS", "STARTED", "PROGRESS", "BY"]
    assert listed[1].split()[:4] == ["1", "probe", "-", "queued"]
    assert listed[1].split()[-1] == "cli"
    [as_json] = json.loads(run(settings, "job", "list", "--json").stdout)
    assert (as_json["id"], as_json["status"], as_json["params"]) == (1, "queued", {"seconds": 0.0})

    shown = lines_of(run(settings, "job", "show", "1"))
    assert "job:       1" in shown
    assert "kind:      probe" in shown
    assert 'params:    {"seconds": 0.0}' in shown
    assert "status:    queued" in shown
    assert "log:" not in shown  # nothing logged yet

    assert run(settings, "job", "stop", "1").stdout == "job 1 is stopped\n"
    assert "status:    stopped (stop requested)" in lines_of(run(settings, "job", "show", "1"))
    # Stopping again changes nothing and says so.
    assert run(settings, "job", "stop", "1").stdout == "job 1 is stopped\n"


def test_stop_asks_a_running_job(app: PortsideApp, settings: Settings) -> None:
    job_id = store(app).enqueue("probe", {"seconds": 10}, created_by="t")
    assert store(app).claim(job_id, "w1")
    assert run(settings, "job", "stop", str(job_id)).stdout == f"job {job_id} asked to stop\n"
    record = store(app).get(job_id)
    assert record is not None
    assert (record.status, record.stop_requested) == ("running", True)


def test_show_prints_the_result_and_log_of_a_finished_job(
    app: PortsideApp, settings: Settings
) -> None:
    run(settings, "job", "start", "probe", "--param", "seconds=0")
    assert Worker(app.ctx, name="w1").tick()
    shown = run(settings, "job", "show", "1").stdout
    assert "status:    succeeded\n" in shown
    assert "worker:    w1\n" in shown
    assert "attempts:  1\n" in shown
    assert 'result:    {"seconds": 0.0}\n' in shown
    log = shown.split("log:\n", 1)[1].splitlines()
    assert [line.split(None, 2)[1:] for line in log] == [
        ["info", "started on w1"],
        ["info", "waited 0 s"],
    ]
    data = json.loads(run(settings, "job", "show", "1", "--json").stdout)
    assert (data["status"], data["result"], data["worker"]) == ("succeeded", {"seconds": 0.0}, "w1")
    assert "log" not in data


def test_list_filters(app: PortsideApp, settings: Settings) -> None:
    jobs = store(app)
    first = jobs.enqueue("probe", {}, created_by="t", exclusive=False)
    jobs.enqueue("probe", {}, created_by="t", exclusive=False)
    gc = jobs.enqueue("gc", {}, created_by="t")
    assert jobs.claim(first, "w")
    ids = [int(line.split()[0]) for line in lines_of(run(settings, "job", "list"))[1:]]
    assert ids == [gc, 2, first]
    running = lines_of(run(settings, "job", "list", "--status", "running"))[1:]
    assert [int(line.split()[0]) for line in running] == [first]
    gc_only = json.loads(run(settings, "job", "list", "--kind", "gc", "--json").stdout)
    assert [j["id"] for j in gc_only] == [gc]
    limited = json.loads(run(settings, "job", "list", "--limit", "1", "--json").stdout)
    assert [j["id"] for j in limited] == [gc]
    run(settings, "job", "list", "--status", "finished", code=2)


def test_start_refuses_bad_parameters_and_a_second_active_job(
    app: PortsideApp, settings: Settings
) -> None:
    bad = run(settings, "job", "start", "probe", "--param", "seconds=soon", code=2)
    assert "seconds must be a number from 0 to 3600" in bad.output
    unknown = run(settings, "job", "start", "probe", "--param", "minutes=1", code=2)
    assert "unknown parameter 'minutes'" in unknown.output
    malformed = run(settings, "job", "start", "probe", "--param", "seconds", code=2)
    assert "'seconds' is not NAME=VALUE" in malformed.output
    no_project = run(settings, "job", "start", "retention", code=2)
    assert "retention jobs need --project" in no_project.output
    run(settings, "job", "start", "nope", code=2)
    assert store(app).find() == ([], 0)

    run(settings, "job", "start", "gc", "--param", "dry_run=true")
    again = run(settings, "job", "start", "gc", code=1)
    assert "error: job 1 is already queued or running" in again.output
    assert store(app).find()[1] == 1


def test_unknown_jobs(settings: Settings) -> None:
    assert "error: no job 42" in run(settings, "job", "show", "42", code=1).output
    assert "error: no job 42" in run(settings, "job", "stop", "42", code=1).output


# -- schedules ---------------------------------------------------------------------------


def test_gc_schedule_set_list_disable_delete(settings: Settings) -> None:
    saved = run(settings, "schedule", "set-gc", "0 3 * * *", "--grace-period", "1h").stdout
    assert saved.startswith("schedule gc: 0 3 * * *; next run 20")
    assert saved.rstrip().endswith("T03:00:00+00:00")
    listed = lines_of(run(settings, "schedule", "list"))
    assert listed[0].split()[:4] == ["NAME", "KIND", "CRON", "ENABLED"]
    assert listed[1].startswith("gc ")
    assert " yes " in listed[1]
    [data] = json.loads(run(settings, "schedule", "list", "--json").stdout)
    assert (data["name"], data["kind"], data["cron"], data["enabled"]) == (
        "gc",
        "gc",
        "0 3 * * *",
        True,
    )
    assert data["params"] == {
        "delete_untagged": False,
        "dry_run": False,
        "grace_period_seconds": 3600.0,
    }

    disabled = run(settings, "schedule", "set-gc", "*/5 * * * *", "--disabled").stdout
    assert disabled == "schedule gc: */5 * * * *; next run never (disabled)\n"
    [data] = json.loads(run(settings, "schedule", "list", "--json").stdout)
    assert (data["enabled"], data["next_run_at"], data["cron"]) == (False, None, "*/5 * * * *")

    assert run(settings, "schedule", "delete", "gc").stdout == "deleted schedule gc\n"
    assert "error: no schedule 'gc'" in run(settings, "schedule", "delete", "gc", code=1).output
    assert json.loads(run(settings, "schedule", "list", "--json").stdout) == []


@pytest.mark.parametrize("cron", ["0 3 * *", "61 * * * *", "tonight"])
def test_a_bad_cron_is_a_usage_error(settings: Settings, cron: str) -> None:
    result = run(settings, "schedule", "set-gc", cron, code=2)
    assert repr(cron) in result.output
    assert json.loads(run(settings, "schedule", "list", "--json").stdout) == []


def test_a_bad_cron_is_refused_even_disabled(settings: Settings) -> None:
    run(settings, "schedule", "set-gc", "tonight", "--disabled", code=2)


# -- portside gc as a job ----------------------------------------------------------------


def _orphan(client: TestClient) -> tuple[str, bytes]:
    push_image(client, "team/app", "v1")
    orphan = b"never referenced" * 100
    return push_blob(client, "team/app", orphan), orphan


def test_gc_runs_as_a_job_by_cli(app: PortsideApp, settings: Settings, client: TestClient) -> None:
    digest, orphan = _orphan(client)
    dry = lines_of(run(settings, "gc", "--dry-run", "--grace-period", "0"))
    assert f"would delete blob {digest} ({len(orphan)} bytes): no repository links it" in dry
    done = lines_of(run(settings, "gc", "--grace-period", "0"))
    assert f"delete blob {digest} ({len(orphan)} bytes): no repository links it" in done
    assert any(
        line.startswith(f"deleted 0 manifests, 1 links and 1 blobs, freed {len(orphan)} bytes")
        for line in done
    )
    assert client.head(f"/v2/team/app/blobs/{digest}").status_code == 404

    runs = json.loads(run(settings, "job", "list", "--kind", "gc", "--json").stdout)
    assert [(j["kind"], j["status"], j["created_by"]) for j in runs] == [
        ("gc", "succeeded", "cli"),
        ("gc", "succeeded", "cli"),
    ]
    assert runs[1]["result"]["dry_run"] is True
    assert runs[0]["result"]["dry_run"] is False
    assert runs[0]["result"]["deleted"]["blobs"] == 1
    assert runs[0]["params"]["grace_period_seconds"] == 0
    table = lines_of(run(settings, "job", "list"))
    assert [line.split()[1] for line in table[1:]] == ["gc", "gc"]
    assert all(line.split()[-1] == "cli" for line in table[1:])


def test_gc_refuses_to_run_beside_a_queued_gc(app: PortsideApp, settings: Settings) -> None:
    queued = store(app).enqueue("gc", {}, created_by="admin")
    result = run(settings, "gc", code=1)
    assert f"error: job {queued} (gc) is already queued or running" in result.output
    assert store(app).find()[1] == 1


def _portside(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = portside_env(settings.database_url)
    env.pop("PORTSIDE_LOG__LEVEL")  # as a user runs it: default logging
    return subprocess.run(
        [sys.executable, "-m", "portside", *args, "--data-dir", str(settings.data_dir)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_gc_prints_exactly_what_it_printed_before_it_was_a_job(
    settings: Settings, client: TestClient
) -> None:
    """Only the report on stdout (scripts parse it): no worker log events around it."""
    digest, orphan = _orphan(client)
    dry = _portside(settings, "gc", "--dry-run", "--grace-period", "0")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.splitlines() == [
        f"would delete link team/app -> {digest}: no manifest in the repository lists it",
        f"would delete blob {digest} ({len(orphan)} bytes): no repository links it",
        "dry run: would delete 0 manifests, 1 links and 1 blobs, "
        f"freeing {len(orphan)} bytes (1.6 KiB)",
    ]
    done = _portside(settings, "gc", "--grace-period", "0")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"delete link team/app -> {digest}: no manifest in the repository lists it",
        f"delete blob {digest} ({len(orphan)} bytes): no repository links it",
        f"deleted 0 manifests, 1 links and 1 blobs, freed {len(orphan)} bytes (1.6 KiB); "
        "0 planned deletions skipped (in use again); purged 0 expired uploads",
    ]
    assert "Traceback" not in dry.stderr + done.stderr


def test_gc_in_a_process_is_recorded_like_any_job(settings: Settings, client: TestClient) -> None:
    _orphan(client)
    result = _portside(settings, "gc", "--grace-period", "0")
    assert result.returncode == 0, result.stderr
    assert "deleted 0 manifests, 1 links and 1 blobs" in result.stdout
    engine = make_engine(settings.database_url)
    try:
        [record], _ = Jobs(Database(engine)).find(kind="gc")
    finally:
        engine.dispose()
    assert (record.status, record.created_by, record.attempts) == ("succeeded", "cli", 1)
