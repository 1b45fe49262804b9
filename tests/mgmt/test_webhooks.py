"""Webhooks through the management API: who may read and manage them (project admins
manage, maintainers read, as in Harbor), the secret never shown, SSRF refusals as a
clear 400, the test action against a real receiver, deliveries and redelivery, and the
audit log."""

from __future__ import annotations

from typing import Any

import pytest

from portside.events import outbox
from portside.events.outbox import Actor
from portside.webhooks.dispatcher import Dispatcher
from tests.auth.conftest import Registry
from tests.mgmt.conftest import (
    API,
    DEVELOPER,
    GUEST,
    MAINTAINER,
    PROJECT_ADMIN,
    MakeRegistry,
    client_for,
)
from tests.mgmt.helpers import assert_error, json_list, json_object
from tests.webhooks.receiver import Receiver, receiving

HOOKS = f"{API}/projects/acme/webhooks"
FIELDS = {
    "id",
    "project",
    "name",
    "description",
    "enabled",
    "target_url",
    "event_types",
    "payload_format",
    "has_secret",
    "created_by",
    "created_at",
    "updated_at",
}


@pytest.fixture
def lenient(make_registry: MakeRegistry) -> Registry:
    """A registry whose webhooks may target loopback (the test receiver)."""
    return make_registry(webhooks={"allow_private_targets": True})


def create(registry: Registry, receiver: Receiver, user: str = "admin", **body: Any) -> Any:
    values = {
        "name": "ci",
        "target_url": receiver.url,
        "event_types": ["artifact.pushed"],
        "secret": "top-secret",
        **body,
    }
    return client_for(registry, user).post(HOOKS, json=values)


def test_create_read_update_delete(lenient: Registry) -> None:
    with receiving() as receiver:
        created = json_object(create(lenient, receiver, PROJECT_ADMIN), 201)
        assert set(created) == FIELDS
        assert created["has_secret"] is True
        assert "top-secret" not in str(created)
        hook = f"{HOOKS}/{created['id']}"
        admin = client_for(lenient, "admin")
        assert json_object(admin.get(hook)) == created
        assert json_list(admin.get(HOOKS)) == [created]
        changed = json_object(
            admin.patch(
                hook, json={"enabled": False, "payload_format": "cloudevents", "secret": ""}
            )
        )
        assert (changed["enabled"], changed["payload_format"], changed["has_secret"]) == (
            False,
            "cloudevents",
            False,
        )
        assert admin.delete(hook).status_code == 204
        assert_error(admin.get(hook), 404, "NOT_FOUND")
        entries = [
            e
            for e in json_list(admin.get(f"{API}/projects/acme/audit-logs"))
            if e["resource_type"] == "webhook"
        ]
        actions = [(e["action"], e["resource"]) for e in entries]
        [created_entry] = [e for e in entries if e["action"] == "create"]
        assert set(created_entry["detail"]) == {"target_url", "event_types", "payload_format"}
        [updated_entry] = [e for e in entries if e["action"] == "update"]
        assert updated_entry["detail"] == {
            "enabled": False,
            "payload_format": "cloudevents",
            "secret": "removed",
        }
        assert sorted(actions) == [
            ("create", "acme/webhooks/ci"),
            ("delete", "acme/webhooks/ci"),
            ("update", "acme/webhooks/ci"),
        ]


@pytest.mark.parametrize(
    ("user", "read", "manage"),
    [
        ("admin", 200, 201),
        (PROJECT_ADMIN, 200, 201),
        (MAINTAINER, 200, 403),
        (DEVELOPER, 403, 403),
        (GUEST, 403, 403),
        ("outsider", 404, 404),
    ],
)
def test_permissions(lenient: Registry, user: str, read: int, manage: int) -> None:
    with receiving() as receiver:
        existing = json_object(create(lenient, receiver, name="existing"), 201)
        client = client_for(lenient, user)
        assert client.get(HOOKS).status_code == read
        assert client.get(f"{HOOKS}/{existing['id']}").status_code == read
        assert client.get(f"{HOOKS}/{existing['id']}/deliveries").status_code == read
        assert create(lenient, receiver, user, name="mine").status_code == manage
        assert client.post(f"{HOOKS}/{existing['id']}/test").status_code == (
            201 if manage == 201 else manage
        )
        expected_delete = 204 if manage == 201 else manage
        assert client.delete(f"{HOOKS}/{existing['id']}").status_code == expected_delete
    assert client_for(lenient).get(HOOKS).status_code == 404  # anonymous


def test_a_target_name_is_not_resolved_when_saved(registry: Registry) -> None:
    """`.invalid` never resolves (RFC 6761); saving does not need DNS, deliveries check
    every answer when they connect."""
    response = client_for(registry, "admin").post(
        HOOKS,
        json={
            "name": "x",
            "target_url": "https://hooks.example.invalid/in",
            "event_types": ["artifact.pushed"],
        },
    )
    assert response.status_code == 201, response.text


@pytest.mark.parametrize(
    "target",
    [
        "http://127.0.0.1:8080/hook",
        "http://[::1]/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://localhost/hook",
        "http://10.0.0.1/hook",
        "file:///etc/passwd",
    ],
)
def test_private_targets_are_refused_by_default(registry: Registry, target: str) -> None:
    response = client_for(registry, "admin").post(
        HOOKS, json={"name": "x", "target_url": target, "event_types": ["artifact.pushed"]}
    )
    entry = assert_error(response, 400, "INVALID")
    assert "refused" in entry["message"], entry


def test_validation(lenient: Registry) -> None:
    with receiving() as receiver:
        assert_error(create(lenient, receiver, event_types=["nope"]), 400, "INVALID")
        assert_error(create(lenient, receiver, event_types=[]), 400, "INVALID")
        assert_error(create(lenient, receiver, payload_format="xml"), 400, "INVALID")
        assert_error(create(lenient, receiver, extra=1), 400, "INVALID")
        json_object(create(lenient, receiver), 201)
        assert_error(create(lenient, receiver), 409, "CONFLICT")


def test_test_action_and_deliveries(lenient: Registry) -> None:
    admin = client_for(lenient, "admin")
    with receiving() as receiver:
        hook = json_object(create(lenient, receiver), 201)
        result = json_object(admin.post(f"{HOOKS}/{hook['id']}/test"), 201)
        assert (result["status"], result["response_code"], result["event_type"]) == (
            "succeeded",
            200,
            "webhook.test",
        )
        [request] = receiver.received
        assert request.signed_by("top-secret")
    with receiving(fail_first=1) as failing:
        admin.patch(f"{HOOKS}/{hook['id']}", json={"target_url": failing.url})
        failed = json_object(admin.post(f"{HOOKS}/{hook['id']}/test"), 201)
        assert (failed["status"], failed["response_code"]) == ("dead", 500)
        listed = json_list(admin.get(f"{HOOKS}/{hook['id']}/deliveries"))
        assert [d["id"] for d in listed] == [failed["id"], result["id"]]
        dead = json_list(admin.get(f"{HOOKS}/{hook['id']}/deliveries?status=dead"))
        assert [d["id"] for d in dead] == [failed["id"]]
        again = admin.post(f"{HOOKS}/{hook['id']}/deliveries/{failed['id']}/redeliver")
        assert json_object(again)["status"] == "queued"
        conflict = admin.post(f"{HOOKS}/{hook['id']}/deliveries/{failed['id']}/redeliver")
        assert_error(conflict, 409, "CONFLICT")
        # A worker sends it (the receiver now answers 200).
        Dispatcher(lenient.app.ctx.db, lenient.app.ctx.settings, "w").deliver_due()
        done = json_list(admin.get(f"{HOOKS}/{hook['id']}/deliveries?status=succeeded"))
        assert failed["id"] in [d["id"] for d in done]


def test_events_become_deliveries(lenient: Registry) -> None:
    admin = client_for(lenient, "admin")
    ctx = lenient.app.ctx
    with receiving() as receiver:
        hook = json_object(create(lenient, receiver), 201)
        with ctx.db.write() as conn:
            outbox.emit(
                conn,
                outbox.ARTIFACT_PUSHED,
                Actor("admin"),
                resource="acme/app@sha256:" + "0" * 64,
                repository="acme/app",
                data={"digest": "sha256:" + "0" * 64, "tag": "v1"},
            )
        Dispatcher(ctx.db, ctx.settings, "w").tick()
        [delivery] = json_list(admin.get(f"{HOOKS}/{hook['id']}/deliveries"))
        assert (delivery["status"], delivery["event_type"]) == ("succeeded", "artifact.pushed")
        assert receiver.received[0].event_id == str(delivery["event_id"])
