"""/api/v1/jobs and /api/v1/schedules: who may see, start and stop which jobs (system jobs:
administrators; a project's jobs: whoever may change its settings; to anybody else they
do not exist), validation, conflicts, the log, stop, schedules, audit and paging."""

from __future__ import annotations

import importlib.util
from datetime import timedelta
from typing import Any

import httpx2 as httpx
import pytest
from starlette.testclient import TestClient

from portside.jobs.store import Jobs
from portside.metadata.db import utcnow
from tests.auth.conftest import Registry, basic
from tests.jobs.conftest import ago, set_job
from tests.mgmt.conftest import (
    DEVELOPER,
    GUEST,
    LIMITED_GUEST,
    MAINTAINER,
    PROJECT_ADMIN,
    client_for,
    session_client,
    sign_in,
)
from tests.mgmt.helpers import assert_error

pytestmark = pytest.mark.usefixtures("cheap_password_hashing")

API = "/api/v1"
NOT_SETTINGS = [MAINTAINER, DEVELOPER, GUEST, LIMITED_GUEST]  # see acme, may not change it

needs_retention = pytest.mark.skipif(
    importlib.util.find_spec("portside.content.retention") is None,
    reason="the retention job kind's module is not there yet",
)


def call(
    registry: Registry, user: str | None, method: str, path: str, **kwargs: Any
) -> httpx.Response:
    return client_for(registry, user).request(method, f"{API}{path}", **kwargs)


def store(registry: Registry) -> Jobs:
    return Jobs(registry.app.ctx.db)


def retention_job(registry: Registry, project: str = "acme") -> int:
    return store(registry).enqueue("retention", {"dry_run": True}, project=project, created_by="t")


# -- permissions -------------------------------------------------------------------------


def test_listing_every_job_is_for_administrators(registry: Registry) -> None:
    gc = store(registry).enqueue("gc", {}, created_by="t")
    acme = retention_job(registry)
    response = call(registry, "admin", "GET", "/jobs")
    assert response.status_code == 200, response.text
    assert [j["id"] for j in response.json()] == [acme, gc]
    for user in [PROJECT_ADMIN, *NOT_SETTINGS, "outsider"]:
        assert_error(call(registry, user, "GET", "/jobs"), 403, "FORBIDDEN")
    assert_error(call(registry, None, "GET", "/jobs"), 401, "UNAUTHORIZED")


def test_a_project_admin_lists_the_projects_jobs(registry: Registry) -> None:
    store(registry).enqueue("gc", {}, created_by="t")
    acme = retention_job(registry)
    retention_job(registry, "pub")
    response = call(registry, PROJECT_ADMIN, "GET", "/jobs", params={"project": "acme"})
    assert response.status_code == 200, response.text
    assert [j["id"] for j in response.json()] == [acme]
    assert response.headers["X-Total-Count"] == "1"
    admin = call(registry, "admin", "GET", "/jobs", params={"project": "acme"})
    assert [j["id"] for j in admin.json()] == [acme]

    for user in NOT_SETTINGS:
        assert_error(call(registry, user, "GET", "/jobs", params={"project": "acme"}), 403)
    # A private project is missing to whoever may not see it; a public one is forbidden.
    assert_error(call(registry, "outsider", "GET", "/jobs", params={"project": "acme"}), 404)
    assert_error(call(registry, PROJECT_ADMIN, "GET", "/jobs", params={"project": "pub"}), 403)
    assert_error(call(registry, "admin", "GET", "/jobs", params={"project": "nope"}), 404)
    assert_error(call(registry, None, "GET", "/jobs", params={"project": "acme"}), 401)


def test_who_sees_a_job_and_its_log(registry: Registry) -> None:
    gc = store(registry).enqueue("gc", {}, created_by="t")
    acme = retention_job(registry)
    for path in (f"/jobs/{gc}", f"/jobs/{gc}/log", f"/jobs/{acme}", f"/jobs/{acme}/log"):
        assert call(registry, "admin", "GET", path).status_code == 200
        assert_error(call(registry, None, "GET", path), 401)
        assert_error(call(registry, "outsider", "GET", path), 404, "NOT_FOUND")
        for user in NOT_SETTINGS:
            assert_error(call(registry, user, "GET", path), 404, "NOT_FOUND")
    assert call(registry, PROJECT_ADMIN, "GET", f"/jobs/{acme}").json()["project"] == "acme"
    assert call(registry, PROJECT_ADMIN, "GET", f"/jobs/{acme}/log").status_code == 200
    assert_error(call(registry, PROJECT_ADMIN, "GET", f"/jobs/{gc}"), 404)
    assert_error(call(registry, PROJECT_ADMIN, "GET", f"/jobs/{gc}/log"), 404)
    assert_error(call(registry, "admin", "GET", "/jobs/4242"), 404)
    # The answer for a job one may not see is the answer for one that does not exist.
    hidden = call(registry, PROJECT_ADMIN, "GET", f"/jobs/{gc}").json()["errors"][0]["message"]
    missing = call(registry, PROJECT_ADMIN, "GET", "/jobs/4242").json()["errors"][0]["message"]
    assert hidden == missing.replace("4242", str(gc))


def test_only_administrators_start_system_jobs(registry: Registry) -> None:
    for user in [PROJECT_ADMIN, *NOT_SETTINGS, "outsider"]:
        assert_error(call(registry, user, "POST", "/jobs", json={"kind": "gc"}), 403)
    assert_error(call(registry, None, "POST", "/jobs", json={"kind": "gc"}), 401)
    assert store(registry).find() == ([], 0)

    response = call(registry, "admin", "POST", "/jobs", json={"kind": "gc"})
    assert response.status_code == 202, response.text
    body = response.json()
    assert response.headers["Location"].endswith(f"/api/v1/jobs/{body['id']}")
    assert (body["kind"], body["status"], body["project"], body["created_by"]) == (
        "gc",
        "queued",
        None,
        "admin",
    )
    # Parameters are stored as the kind understood them (defaults filled in).
    assert body["params"] == {
        "delete_untagged": False,
        "dry_run": False,
        "grace_period_seconds": 7200.0,
    }


@needs_retention
def test_a_project_admin_starts_and_stops_the_projects_retention(registry: Registry) -> None:
    request = {"kind": "retention", "project": "acme", "params": {"dry_run": True}}
    for user in NOT_SETTINGS:
        assert_error(call(registry, user, "POST", "/jobs", json=request), 403)
    assert_error(call(registry, "outsider", "POST", "/jobs", json=request), 404)
    assert_error(call(registry, None, "POST", "/jobs", json=request), 401)
    elsewhere = {"kind": "retention", "project": "pub"}
    assert_error(call(registry, PROJECT_ADMIN, "POST", "/jobs", json=elsewhere), 403)

    response = call(registry, PROJECT_ADMIN, "POST", "/jobs", json=request)
    assert response.status_code == 202, response.text
    job = response.json()
    assert (job["project"], job["params"], job["created_by"]) == (
        "acme",
        {"dry_run": True},
        PROJECT_ADMIN,
    )
    for user in NOT_SETTINGS:
        assert_error(call(registry, user, "POST", f"/jobs/{job['id']}/stop"), 404)
    stopped = call(registry, PROJECT_ADMIN, "POST", f"/jobs/{job['id']}/stop")
    assert stopped.status_code == 200, stopped.text
    assert stopped.json()["status"] == "stopped"


def test_project_admins_cannot_stop_system_jobs(registry: Registry) -> None:
    gc = store(registry).enqueue("gc", {}, created_by="t")
    assert_error(call(registry, PROJECT_ADMIN, "POST", f"/jobs/{gc}/stop"), 404)
    assert_error(call(registry, None, "POST", f"/jobs/{gc}/stop"), 401)
    record = store(registry).get(gc)
    assert record is not None
    assert (record.status, record.stop_requested) == ("queued", False)


# -- starting: validation and conflicts ----------------------------------------------------


@pytest.mark.parametrize(
    ("request_body", "message"),
    [
        ({"kind": "nope"}, "unknown job kind 'nope'"),
        ({"kind": "gc", "params": {"force": True}}, "unknown parameter 'force'"),
        ({"kind": "gc", "params": {"dry_run": "yes"}}, "dry_run must be true or false"),
        ({"kind": "gc", "params": {"grace_period_seconds": -1}}, "grace_period_seconds must be"),
        ({"kind": "probe", "params": {"seconds": "1"}}, "seconds must be a number"),
        ({"kind": "gc", "project": "acme"}, "gc jobs do not take a project"),
        ({"kind": "retention"}, "retention jobs need a project"),
        ({"kind": "retention", "project": ""}, "retention jobs need a project"),
    ],
)
def test_bad_job_requests_are_invalid(
    registry: Registry, request_body: dict[str, Any], message: str
) -> None:
    error = assert_error(
        call(registry, "admin", "POST", "/jobs", json=request_body), 400, "INVALID"
    )
    assert message in error["message"]
    assert store(registry).find() == ([], 0)


@pytest.mark.parametrize("request_body", [{}, {"kind": "gc", "params": [1]}, {"kind": 3}])
def test_malformed_job_requests_are_invalid(registry: Registry, request_body: Any) -> None:
    assert_error(call(registry, "admin", "POST", "/jobs", json=request_body), 400, "INVALID")


def test_a_second_active_gc_is_a_conflict(registry: Registry) -> None:
    first = call(registry, "admin", "POST", "/jobs", json={"kind": "gc"})
    assert first.status_code == 202
    job_id = first.json()["id"]
    error = assert_error(call(registry, "admin", "POST", "/jobs", json={"kind": "gc"}), 409)
    assert error["code"] == "CONFLICT"
    assert f"job {job_id}" in error["message"]
    assert store(registry).claim(job_id, "w")
    assert_error(call(registry, "admin", "POST", "/jobs", json={"kind": "gc"}), 409)
    assert store(registry).finish(job_id, "w", "succeeded")
    assert call(registry, "admin", "POST", "/jobs", json={"kind": "gc"}).status_code == 202


def test_state_changes_over_a_session_need_the_csrf_token(registry: Registry) -> None:
    session = sign_in(registry, "admin")
    without = session_client(registry, session, csrf=False)
    assert_error(without.post(f"{API}/jobs", json={"kind": "gc"}), 403)
    assert store(registry).find() == ([], 0)
    assert without.get(f"{API}/jobs").status_code == 200
    response = session_client(registry, session).post(f"{API}/jobs", json={"kind": "gc"})
    assert response.status_code == 202, response.text


# -- inspecting and stopping -------------------------------------------------------------


def test_the_log_in_order_and_after_an_id(registry: Registry) -> None:
    jobs = store(registry)
    job_id = jobs.enqueue("probe", {}, created_by="t")
    assert jobs.claim(job_id, "w1")
    assert jobs.report(job_id, "w1", lines=[(utcnow(), "info", f"line {n}") for n in range(5)])
    lines = call(registry, "admin", "GET", f"/jobs/{job_id}/log").json()
    assert [line["message"] for line in lines] == ["started on w1"] + [
        f"line {n}" for n in range(5)
    ]
    assert {tuple(line) for line in lines} == {("id", "at", "level", "message")}
    rest = call(registry, "admin", "GET", f"/jobs/{job_id}/log", params={"after": lines[2]["id"]})
    assert rest.json() == lines[3:]
    first = call(registry, "admin", "GET", f"/jobs/{job_id}/log", params={"limit": 2})
    assert first.json() == lines[:2]
    last = call(registry, "admin", "GET", f"/jobs/{job_id}/log", params={"after": lines[-1]["id"]})
    assert last.json() == []
    for bad in ({"after": -1}, {"limit": 0}, {"limit": 5001}, {"after": "x"}):
        response = call(registry, "admin", "GET", f"/jobs/{job_id}/log", params=bad)
        assert_error(response, 400, "INVALID")


def test_a_job_shows_its_progress_and_result(registry: Registry) -> None:
    jobs = store(registry)
    job_id = jobs.enqueue("probe", {"seconds": 2}, created_by="t")
    assert jobs.claim(job_id, "w1")
    assert jobs.report(job_id, "w1", progress=(1, 2, "half"))
    body = call(registry, "admin", "GET", f"/jobs/{job_id}").json()
    assert (body["status"], body["worker"], body["attempts"]) == ("running", "w1", 1)
    assert (body["progress_done"], body["progress_total"], body["progress_message"]) == (
        1,
        2,
        "half",
    )
    assert jobs.finish(job_id, "w1", "succeeded", result={"seconds": 2})
    body = call(registry, "admin", "GET", f"/jobs/{job_id}").json()
    assert (body["status"], body["result"], body["error"]) == ("succeeded", {"seconds": 2}, None)
    assert body["finished_at"] is not None


def test_stop_a_queued_a_running_and_a_finished_job(registry: Registry) -> None:
    jobs = store(registry)
    queued = jobs.enqueue("probe", {}, created_by="t", exclusive=False)
    running = jobs.enqueue("probe", {}, created_by="t", exclusive=False)
    finished = jobs.enqueue("probe", {}, created_by="t", exclusive=False)
    assert jobs.claim(running, "w1")
    assert jobs.claim(finished, "w2")
    assert jobs.finish(finished, "w2", "succeeded")

    body = call(registry, "admin", "POST", f"/jobs/{queued}/stop").json()
    assert (body["status"], body["stop_requested"]) == ("stopped", True)
    body = call(registry, "admin", "POST", f"/jobs/{running}/stop").json()
    assert (body["status"], body["stop_requested"]) == ("running", True)
    response = call(registry, "admin", "POST", f"/jobs/{finished}/stop")
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["stop_requested"]) == ("succeeded", False)
    assert_error(call(registry, "admin", "POST", "/jobs/4242/stop"), 404)

    entries, total = registry.app.ctx.audit.find(action="job.stop")
    assert total == 2  # a finished job was not stopped: nothing to record
    assert {(e.actor, e.resource, e.resource_type) for e in entries} == {
        ("admin", str(queued), "job"),
        ("admin", str(running), "job"),
    }


def test_starting_a_job_is_audited(registry: Registry) -> None:
    request = {"kind": "gc", "params": {"dry_run": True}}
    job_id = call(registry, "admin", "POST", "/jobs", json=request).json()["id"]
    [entry], _ = registry.app.ctx.audit.find(action="job.start")
    assert (entry.actor, entry.resource_type, entry.resource, entry.project) == (
        "admin",
        "job",
        str(job_id),
        None,
    )
    assert entry.detail["kind"] == "gc"
    assert entry.detail["params"]["dry_run"] is True
    # A refused start is not.
    call(registry, "admin", "POST", "/jobs", json=request)
    call(registry, PROJECT_ADMIN, "POST", "/jobs", json=request)
    assert registry.app.ctx.audit.find(action="job.start")[1] == 1


def test_listing_pages_and_filters(registry: Registry) -> None:
    jobs = store(registry)
    ids = [jobs.enqueue("probe", {}, created_by="t", exclusive=False) for _ in range(23)]
    assert jobs.claim(ids[0], "w")
    first = call(registry, "admin", "GET", "/jobs", params={"page_size": 10})
    assert first.status_code == 200
    assert first.headers["X-Total-Count"] == "23"
    assert [j["id"] for j in first.json()] == ids[::-1][:10]
    assert 'rel="next"' in first.headers["Link"]
    assert 'rel="prev"' not in first.headers["Link"]
    last = call(registry, "admin", "GET", "/jobs", params={"page_size": 10, "page": 3})
    assert [j["id"] for j in last.json()] == ids[::-1][20:]
    assert 'rel="prev"' in last.headers["Link"]
    assert 'rel="next"' not in last.headers["Link"]
    beyond = call(registry, "admin", "GET", "/jobs", params={"page_size": 10, "page": 9})
    assert beyond.json() == []
    assert beyond.headers["X-Total-Count"] == "23"

    running = call(registry, "admin", "GET", "/jobs", params={"status": "running"})
    assert [j["id"] for j in running.json()] == [ids[0]]
    assert running.headers["X-Total-Count"] == "1"
    assert call(registry, "admin", "GET", "/jobs", params={"kind": "gc"}).json() == []
    assert_error(call(registry, "admin", "GET", "/jobs", params={"status": "done"}), 400)
    assert_error(call(registry, "admin", "GET", "/jobs", params={"page_size": 101}), 400)


# -- schedules ---------------------------------------------------------------------------


def test_the_gc_schedule_is_for_administrators(registry: Registry) -> None:
    body = {"cron": "0 3 * * *", "params": {"grace_period_seconds": 3600}}
    for user in [PROJECT_ADMIN, *NOT_SETTINGS, "outsider"]:
        assert_error(call(registry, user, "PUT", "/schedules/gc", json=body), 403)
        assert_error(call(registry, user, "GET", "/schedules"), 403)
    assert_error(call(registry, None, "PUT", "/schedules/gc", json=body), 401)

    response = call(registry, "admin", "PUT", "/schedules/gc", json=body)
    assert response.status_code == 200, response.text
    saved = response.json()
    assert (saved["name"], saved["kind"], saved["cron"], saved["enabled"]) == (
        "gc",
        "gc",
        "0 3 * * *",
        True,
    )
    assert saved["params"] == {
        "delete_untagged": False,
        "dry_run": False,
        "grace_period_seconds": 3600.0,
    }
    assert saved["next_run_at"] is not None
    assert saved["created_by"] == "admin"
    assert call(registry, "admin", "GET", "/schedules/gc").json() == saved
    assert [x["name"] for x in call(registry, "admin", "GET", "/schedules").json()] == ["gc"]
    for user in [PROJECT_ADMIN, "outsider"]:
        assert_error(call(registry, user, "GET", "/schedules/gc"), 403)
        assert_error(call(registry, user, "DELETE", "/schedules/gc"), 403)

    disabled = call(registry, "admin", "PUT", "/schedules/gc", json=body | {"enabled": False})
    assert (disabled.json()["enabled"], disabled.json()["next_run_at"]) == (False, None)

    assert call(registry, "admin", "DELETE", "/schedules/gc").status_code == 204
    assert_error(call(registry, "admin", "GET", "/schedules/gc"), 404)
    assert_error(call(registry, "admin", "DELETE", "/schedules/gc"), 404)

    actions = [e.action for e in registry.app.ctx.audit.find(resource="gc")[0]]
    assert actions == ["schedule.delete", "schedule.set", "schedule.set"]
    [first_set] = registry.app.ctx.audit.find(action="schedule.set")[0][-1:]
    assert first_set.actor == "admin"
    assert first_set.resource_type == "schedule"
    assert first_set.detail == {"cron": "0 3 * * *", "enabled": True, "params": saved["params"]}


@needs_retention
def test_a_project_admin_schedules_the_projects_retention(registry: Registry) -> None:
    body = {"cron": "30 4 * * 0", "params": {"dry_run": True}}
    path = "/schedules/retention:acme"
    for user in NOT_SETTINGS:
        assert_error(call(registry, user, "PUT", path, json=body), 403)
    assert_error(call(registry, "outsider", "PUT", path, json=body), 404)
    assert_error(call(registry, None, "PUT", path, json=body), 401)

    response = call(registry, PROJECT_ADMIN, "PUT", path, json=body)
    assert response.status_code == 200, response.text
    saved = response.json()
    assert (saved["kind"], saved["project"], saved["params"]) == (
        "retention",
        "acme",
        {"dry_run": True},
    )
    assert call(registry, PROJECT_ADMIN, "GET", path).json() == saved
    listed = call(registry, PROJECT_ADMIN, "GET", "/schedules", params={"project": "acme"})
    assert [x["name"] for x in listed.json()] == ["retention:acme"]
    assert_error(call(registry, "outsider", "GET", "/schedules", params={"project": "acme"}), 404)
    assert_error(call(registry, DEVELOPER, "GET", "/schedules", params={"project": "acme"}), 403)
    assert_error(call(registry, PROJECT_ADMIN, "PUT", "/schedules/retention:pub", json=body), 403)

    [entry], _ = registry.app.ctx.audit.find(action="schedule.set")
    assert (entry.actor, entry.resource, entry.project) == (PROJECT_ADMIN, "retention:acme", "acme")
    assert call(registry, PROJECT_ADMIN, "DELETE", path).status_code == 204


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"cron": "0 3 * *"}, "5 fields"),
        ({"cron": "61 * * * *"}, "'61 * * * *'"),
        ({"cron": "0 0 31 2 *"}, "'0 0 31 2 *'"),
        ({"cron": "0 3 * * *", "params": {"force": True}}, "unknown parameter 'force'"),
        ({"cron": "0 3 * * *", "params": {"dry_run": 1}}, "dry_run must be true or false"),
    ],
)
def test_bad_schedules_are_invalid(registry: Registry, body: dict[str, Any], message: str) -> None:
    error = assert_error(call(registry, "admin", "PUT", "/schedules/gc", json=body), 400, "INVALID")
    assert message in error["message"]
    assert_error(call(registry, "admin", "GET", "/schedules/gc"), 404)
    assert registry.app.ctx.audit.find(action="schedule.set")[1] == 0


def test_a_bad_cron_is_invalid_even_when_disabled(registry: Registry) -> None:
    body = {"cron": "every night", "enabled": False}
    assert_error(call(registry, "admin", "PUT", "/schedules/gc", json=body), 400, "INVALID")


@pytest.mark.parametrize("name", ["nightly", "retention", "retention:", "gc:acme", "probe"])
def test_unknown_schedule_names_are_missing(registry: Registry, name: str) -> None:
    body = {"cron": "0 3 * * *"}
    assert_error(call(registry, "admin", "PUT", f"/schedules/{name}", json=body), 404, "NOT_FOUND")
    assert_error(call(registry, "admin", "GET", f"/schedules/{name}"), 404)
    assert_error(call(registry, "admin", "DELETE", f"/schedules/{name}"), 404)


def test_a_schedule_for_a_missing_project_is_missing(registry: Registry) -> None:
    body = {"cron": "0 3 * * *"}
    response = call(registry, "admin", "PUT", "/schedules/retention:nope", json=body)
    assert_error(response, 404, "NOT_FOUND")


def test_a_lost_job_shows_as_queued_again(registry: Registry) -> None:
    jobs = store(registry)
    job_id = jobs.enqueue("probe", {}, created_by="t")
    assert jobs.claim(job_id, "dead")
    set_job(registry.app.ctx.db, job_id, heartbeat_at=ago(3600))
    jobs.requeue_lost(timedelta(seconds=60), 3)
    body = call(registry, "admin", "GET", f"/jobs/{job_id}").json()
    assert (body["status"], body["worker"], body["attempts"]) == ("queued", None, 1)


def test_ids_beyond_the_id_column_are_missing_not_server_errors(registry: Registry) -> None:
    client = TestClient(
        registry.app,
        base_url="http://registry.test",
        headers=basic("admin"),
        raise_server_exceptions=False,
    )
    big = 2**31
    for method, path in (
        ("GET", f"/jobs/{big}"),
        ("GET", f"/jobs/{big}/log"),
        ("POST", f"/jobs/{big}/stop"),
    ):
        # Out of the id column's range: a validation error (400), never a 500.
        assert_error(client.request(method, f"{API}{path}"), 400, "INVALID")
    job_id = store(registry).enqueue("probe", {}, created_by="t")
    response = client.get(f"{API}/jobs/{job_id}/log", params={"after": big})
    assert response.status_code in (200, 400), response.text
