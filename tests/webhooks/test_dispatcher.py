"""Policies to deliveries to requests, on a real database and a real receiver: one
delivery per (policy, event), the payload formats, signatures, retries until the
receiver recovers (every event once), the dead state and redelivery, the test event.
Events are emitted directly with `outbox.emit`, as the content services do."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from portside.auth.errors import Exists, Invalid
from portside.auth.projects import Projects
from portside.config import Settings, load_settings
from portside.events import outbox
from portside.events.outbox import Actor
from portside.metadata import schema as s
from portside.metadata.db import Database, utcnow
from portside.metadata.engine import make_engine
from portside.webhooks.dispatcher import Dispatcher
from portside.webhooks.policies import WebhookPolicy
from tests.webhooks.receiver import Receiver, receiving

ALICE = Actor("alice", "10.0.0.1")
DIGEST = "sha256:" + "ab" * 32
SECRET = "s3cret-for-signing"


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(make_engine(database_url))
    Projects(database).create("acme", creator="test")
    Projects(database).create("other", creator="test", public=True)
    yield database
    database.engine.dispose()


def _settings(tmp_path: Path, database_url: str, **webhooks: Any) -> Settings:
    options = {"allow_private_targets": True, "retry_base_seconds": 0.01, **webhooks}
    return load_settings(
        data_dir=tmp_path / "data",
        database={"url": database_url},
        external_url="https://registry.example.com",
        webhooks=options,
    )


@pytest.fixture
def dispatcher(tmp_path: Path, database_url: str, db: Database) -> Dispatcher:
    return Dispatcher(db, _settings(tmp_path, database_url), "test-worker")


def _policy(
    dispatcher: Dispatcher, receiver: Receiver, project: str = "acme", **options: Any
) -> WebhookPolicy:
    values: dict[str, Any] = {
        "name": "ci",
        "target_url": receiver.url,
        "event_types": ["artifact.pushed"],
        "secret": SECRET,
        "actor": ALICE,
        **options,
    }
    return dispatcher.policies.create(project, **values)


def _push(db: Database, repository: str = "acme/app", tag: str = "v1") -> None:
    with db.write() as conn:
        outbox.emit(
            conn,
            outbox.ARTIFACT_PUSHED,
            ALICE,
            resource=f"{repository}@{DIGEST}",
            repository=repository,
            data={"digest": DIGEST, "tag": tag, "media_type": "x", "size": 10},
        )


def _drain(dispatcher: Dispatcher, rounds: int = 50) -> None:
    """Tick until nothing is left to do (waiting out short backoffs)."""
    for _ in range(rounds):
        if not dispatcher.tick():
            d = s.webhook_deliveries
            with dispatcher.db.read() as conn:
                pending = conn.execute(
                    select(d.c.id).where(d.c.status.in_(("queued", "failed", "delivering")))
                ).first()
            if pending is None:
                return
            time.sleep(0.05)
    raise AssertionError("deliveries still pending")


def test_each_event_is_delivered_once_to_each_matching_policy(
    dispatcher: Dispatcher, db: Database
) -> None:
    with receiving() as receiver, receiving() as other_receiver:
        first = _policy(dispatcher, receiver)
        second = _policy(dispatcher, other_receiver, name="cd", payload_format="cloudevents")
        _policy(dispatcher, receiver, name="pulls", event_types=["artifact.pulled"])
        _policy(dispatcher, receiver, name="off", enabled=False)
        _policy(dispatcher, receiver, project="other", name="elsewhere")
        for tag in ("v1", "v2", "v3"):
            _push(db, tag=tag)
        _drain(dispatcher)
        _drain(dispatcher)  # nothing more on a second pass
        assert len(receiver.received) == 3
        assert len(other_receiver.received) == 3
        assert len(set(receiver.event_ids())) == 3
        assert receiver.event_ids() == other_receiver.event_ids()
    for policy in (first, second):
        deliveries, total = dispatcher.deliveries.find(policy.id)
        assert total == 3
        assert {d.status for d in deliveries} == {"succeeded"}
        assert all(d.attempts == 1 and d.response_code == 200 for d in deliveries)
        assert all(d.latency_ms is not None for d in deliveries)


def test_harbor_default_payload_and_signature(dispatcher: Dispatcher, db: Database) -> None:
    with receiving() as receiver:
        _policy(dispatcher, receiver)
        _push(db, tag="v1")
        _drain(dispatcher)
        [request] = receiver.received
    assert request.signed_by(SECRET)
    assert not request.signed_by("another secret")
    assert request.headers["content-type"] == "application/json"
    assert request.headers["x-portside-event"] == "artifact.pushed"
    assert abs(int(request.headers["x-portside-timestamp"]) - time.time()) < 60
    body = request.json
    assert body["type"] == "PUSH_ARTIFACT"
    assert body["operator"] == "alice"
    assert abs(body["occur_at"] - time.time()) < 60
    assert body["event_data"] == {
        "resources": [
            {
                "digest": DIGEST,
                "tag": "v1",
                "resource_url": "registry.example.com/acme/app:v1",
            }
        ],
        "repository": {
            "name": "app",
            "namespace": "acme",
            "repo_full_name": "acme/app",
            "repo_type": "private",
        },
    }


def test_cloudevents_payload(dispatcher: Dispatcher, db: Database) -> None:
    with receiving() as receiver:
        _policy(dispatcher, receiver, payload_format="cloudevents", secret=None)
        _push(db, tag="v2")
        _drain(dispatcher)
        [request] = receiver.received
    assert "x-portside-signature" not in request.headers
    assert request.headers["content-type"] == "application/cloudevents+json"
    body = request.json
    assert body["specversion"] == "1.0"
    assert body["id"] == request.event_id
    assert body["source"] == "/projects/acme"
    assert body["type"] == "portside.artifact.pushed"
    assert body["datacontenttype"] == "application/json"
    assert body["time"].endswith("Z")
    assert body["subject"] == f"acme/app@{DIGEST}"
    assert body["data"]["resources"][0]["tag"] == "v2"
    assert body["data"]["repository"]["repo_full_name"] == "acme/app"


def test_a_receiver_that_fails_then_recovers_gets_every_event_once(
    dispatcher: Dispatcher, db: Database
) -> None:
    with receiving(fail_first=4) as receiver:
        policy = _policy(dispatcher, receiver)
        for tag in ("a", "b", "c"):
            _push(db, tag=tag)
        _drain(dispatcher)
        accepted = receiver.received[4:]
    # Every event reached the receiver in an accepted request exactly once.
    accepted_ids = [r.event_id for r in accepted]
    assert len(accepted_ids) == len(set(accepted_ids)) == 3
    assert set(accepted_ids) == set(receiver.event_ids())
    deliveries, _ = dispatcher.deliveries.find(policy.id)
    assert {d.status for d in deliveries} == {"succeeded"}
    assert sum(d.attempts for d in deliveries) == 3 + 4


def test_failures_back_off_then_go_dead_and_can_be_redelivered(
    tmp_path: Path, database_url: str, db: Database
) -> None:
    dispatcher = Dispatcher(db, _settings(tmp_path, database_url, max_attempts=3), "test-worker")
    with receiving(fail_first=3) as receiver:
        policy = _policy(dispatcher, receiver)
        _push(db)
        dispatcher.tick()
        [delivery] = dispatcher.deliveries.find(policy.id)[0]
        assert (delivery.status, delivery.attempts, delivery.response_code) == ("failed", 1, 500)
        assert delivery.error == "HTTP 500"
        assert delivery.next_attempt_at > utcnow() - timedelta(seconds=1)
        _drain(dispatcher)
        [dead] = dispatcher.deliveries.find(policy.id)[0]
        assert (dead.status, dead.attempts) == ("dead", 3)
        assert len(receiver.received) == 3
        again = dispatcher.deliveries.redeliver(policy, dead.id, actor=ALICE)
        assert (again.status, again.attempts) == ("queued", 0)
        _drain(dispatcher)
        [done] = dispatcher.deliveries.find(policy.id)[0]
        assert (done.status, done.attempts) == ("succeeded", 1)
        assert len(set(receiver.event_ids())) == 1
        with pytest.raises(Exists):
            dispatcher.deliveries.redeliver(policy, done.id, actor=ALICE)


def test_backoff_grows_exponentially_with_jitter(dispatcher: Dispatcher) -> None:
    retry = dispatcher.deliveries.retry
    for attempts in range(1, 8):
        ceiling = min(retry.max_seconds, retry.base_seconds * 2 ** (attempts - 1))
        delay = retry.delay(attempts).total_seconds()
        assert ceiling / 2 <= delay <= ceiling


def test_a_lost_lease_is_claimed_again(dispatcher: Dispatcher, db: Database) -> None:
    """A worker that claimed a delivery and died: once its lease expires another
    worker sends it; while the lease runs, nobody else does."""
    with receiving() as receiver:
        policy = _policy(dispatcher, receiver)
        _push(db)
        dispatcher.queue_new_events()
        [claimed] = dispatcher.deliveries.claim("dead-worker", timedelta(minutes=5))
        assert dispatcher.deliver_due() == 0
        d = s.webhook_deliveries
        with db.write() as conn:
            conn.execute(
                update(d)
                .where(d.c.id == claimed.id)
                .values(claimed_until=utcnow() - timedelta(seconds=1))
            )
        assert dispatcher.deliver_due() == 1
        [done] = dispatcher.deliveries.find(policy.id)[0]
        assert (done.status, done.attempts) == ("succeeded", 2)
        assert len(receiver.received) == 1


def test_refused_targets_fail_the_attempt_without_a_request(
    tmp_path: Path, database_url: str, db: Database
) -> None:
    strict = Dispatcher(db, _settings(tmp_path, database_url, allow_private_targets=False), "w")
    with receiving() as receiver:
        with pytest.raises(Invalid, match="loopback"):
            _policy(strict, receiver)
        # Created while allowed, then the administrator turned private targets off.
        lenient = Dispatcher(db, _settings(tmp_path, database_url), "w")
        policy = _policy(lenient, receiver)
        _push(db)
        strict.tick()
        [delivery] = strict.deliveries.find(policy.id)[0]
        assert delivery.status == "failed"
        assert delivery.error is not None
        assert delivery.error.startswith("refused:")
        assert receiver.received == []


def test_events_before_the_first_policy_are_not_sent(dispatcher: Dispatcher, db: Database) -> None:
    _push(db, tag="old")
    assert dispatcher.tick() == 0
    with receiving() as receiver:
        _policy(dispatcher, receiver)
        _push(db, tag="new")
        _drain(dispatcher)
        [request] = receiver.received
    assert request.json["event_data"]["resources"][0]["tag"] == "new"


def test_send_test_event(dispatcher: Dispatcher) -> None:
    with receiving() as receiver:
        policy = _policy(dispatcher, receiver, payload_format="cloudevents")
        delivery = dispatcher.send_test("acme", policy.id, "alice")
        [request] = receiver.received
    assert (delivery.status, delivery.response_code, delivery.event_type) == (
        "succeeded",
        200,
        "webhook.test",
    )
    assert request.event_id == f"test-{delivery.id}" == request.json["id"]
    assert request.json["type"] == "portside.webhook.test"
    assert request.signed_by(SECRET)
    with receiving(fail_first=1) as failing:
        broken = dispatcher.policies.update("acme", policy.id, target_url=failing.url, actor=ALICE)
        failed = dispatcher.send_test("acme", broken.id, "alice")
    assert (failed.status, failed.response_code, failed.attempts) == ("dead", 500, 1)


def test_policy_validation(dispatcher: Dispatcher) -> None:
    with receiving() as receiver:
        with pytest.raises(Invalid, match="unknown event type"):
            _policy(dispatcher, receiver, event_types=["artifact.exploded"])
        with pytest.raises(Invalid, match="at least one"):
            _policy(dispatcher, receiver, event_types=[])
        with pytest.raises(Invalid, match="payload format"):
            _policy(dispatcher, receiver, payload_format="xml")
        with pytest.raises(Invalid, match="name"):
            _policy(dispatcher, receiver, name="no spaces")
        _policy(dispatcher, receiver)
        with pytest.raises(Exists):
            _policy(dispatcher, receiver)
