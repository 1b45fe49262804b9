"""Replication rules and runs through the management API: validation in words, the
schedule of a scheduled rule kept in step, an endpoint in use cannot be deleted, a run
started and read back with its per-artifact results (a real Distribution as target)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from portside.jobs.runner import Worker
from tests.api.helpers import push_image
from tests.auth.conftest import Registry
from tests.mgmt.conftest import API, MakeRegistry, client_for
from tests.mgmt.helpers import assert_error, json_list, json_object
from tests.remote.peers import distribution

RULES = f"{API}/replication/rules"


@pytest.fixture
def lenient(make_registry: MakeRegistry) -> Registry:
    return make_registry(endpoints={"allow_private_targets": True})


def rule(**extra: Any) -> dict[str, Any]:
    return {"name": "r1", "direction": "push", "endpoint": "peer", **extra}


def test_validation_in_words(lenient: Registry) -> None:
    admin = client_for(lenient, "admin")
    json_object(
        admin.post(
            f"{API}/endpoints",
            json={"name": "peer", "type": "distribution", "url": "http://127.0.0.1:1"},
        ),
        201,
    )
    cases = [
        (rule(endpoint="nope"), "no endpoint 'nope'"),
        (rule(direction="pull", trigger="event"), "event triggers are for push rules"),
        (rule(trigger="scheduled", cron="every day"), "valid cron"),
        (rule(repositories="[unclosed"), "repositories:"),
        (rule(destination_namespace="Bad Name"), "destination_namespace"),
        (rule(labels=["novalue"]), "key=value"),
        (rule(direction="pull", copy_deletions=True), "copy_deletions applies to push rules"),
    ]
    for body, message in cases:
        refused = admin.post(RULES, json=body)
        assert_error(refused, 400, "INVALID")
        assert message in refused.text, (body, refused.text)
    bad_flattening = admin.post(RULES, json=rule(flattening=7))
    assert bad_flattening.status_code == 400


def test_schedule_follows_the_rule_and_endpoints_in_use_stay(lenient: Registry) -> None:
    admin = client_for(lenient, "admin")
    json_object(
        admin.post(
            f"{API}/endpoints",
            json={"name": "peer", "type": "distribution", "url": "http://127.0.0.1:1"},
        ),
        201,
    )
    created = json_object(admin.post(RULES, json=rule(trigger="scheduled", cron="0 3 * * *")), 201)
    schedules = json_list(admin.get(f"{API}/schedules"))
    [mine] = [s for s in schedules if s["name"] == f"replication-{created['id']}"]
    assert mine["cron"] == "0 3 * * *"
    assert mine["kind"] == "replication"
    in_use = admin.delete(f"{API}/endpoints/peer")
    assert_error(in_use, 409, "CONFLICT")
    assert "r1" in in_use.text
    json_object(admin.patch(f"{RULES}/r1", json={"trigger": "manual"}))
    names = {s["name"] for s in json_list(admin.get(f"{API}/schedules"))}
    assert f"replication-{created['id']}" not in names
    assert admin.delete(f"{RULES}/r1").status_code == 204
    assert admin.delete(f"{API}/endpoints/peer").status_code == 204


def test_start_a_run_and_read_its_results(lenient: Registry, tmp_path: Path) -> None:
    admin = client_for(lenient, "admin")
    push_image(admin, "acme/app", "v1", seed="run")
    with distribution(tmp_path / "d") as peer:
        json_object(
            admin.post(
                f"{API}/endpoints", json={"name": "peer", "type": "distribution", "url": peer.url}
            ),
            201,
        )
        json_object(admin.post(RULES, json=rule(repositories="acme/**")), 201)
        started = json_object(admin.post(f"{RULES}/r1/runs"), 201)
        assert started["status"] == "queued"
        worker = Worker(lenient.app.ctx, name="test-worker")
        for _ in range(5):
            worker.tick()
        run = json_object(admin.get(f"{API}/replication/runs/{started['id']}"))
        assert run["status"] == "succeeded", run
        assert run["result"]["copied"] == 1
        assert [(i["source"], i["status"]) for i in run["items"]] == [("acme/app:v1", "copied")]
        listed = json_list(admin.get(f"{API}/replication/runs", params={"rule": "r1"}))
        assert [r["id"] for r in listed] == [started["id"]]
        job = json_object(admin.get(f"{API}/jobs/{started['id']}"))
        assert job["kind"] == "replication"
    assert_error(admin.get(f"{API}/replication/runs/999999"), 404, "NOT_FOUND")
