"""Webhooks from real processes: a job worker killed (SIGKILL) in the middle of a
delivery, whose delivery another worker completes after the lease expires; and skopeo
pushes to a real `portside serve`, each producing exactly one delivery."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from portside.auth.projects import Projects
from portside.egress import EgressPolicy
from portside.events import outbox
from portside.events.outbox import Actor
from portside.metadata.db import Database
from portside.metadata.engine import make_engine
from portside.webhooks.deliveries import Deliveries, Delivery, Retry
from portside.webhooks.policies import PolicyStore, WebhookPolicy
from tests.clients.conftest import containers_config
from tests.clients.images import build_image, write_layout
from tests.clients.tooling import Skopeo, require_binary
from tests.durability.server import ServerProcess, StartWorker, worker_processes
from tests.webhooks.receiver import Receiver, receiving

WEBHOOK_ENV = {
    "PORTSIDE_WEBHOOKS__ALLOW_PRIVATE_TARGETS": "true",
    "PORTSIDE_WEBHOOKS__POLL_SECONDS": "0.2",
    "PORTSIDE_WEBHOOKS__TIMEOUT_SECONDS": "2",  # a lease of 3 * 2 + 10 = 16 s
    "PORTSIDE_WEBHOOKS__MAX_REDIRECTS": "0",
    "PORTSIDE_WEBHOOKS__RETRY_BASE_SECONDS": "0.2",
    "PORTSIDE_JOBS__POLL_SECONDS": "0.2",
}
SECRET = "process-test-secret"


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(make_engine(database_url))
    Projects(database).create("acme", creator="test")
    yield database
    database.engine.dispose()


def _policy(db: Database, receiver: Receiver) -> WebhookPolicy:
    return PolicyStore(db, EgressPolicy(allow_private=True)).create(
        "acme",
        name="ci",
        target_url=receiver.url,
        event_types=["artifact.pushed"],
        secret=SECRET,
        actor=Actor("test"),
    )


def _deliveries(db: Database, policy: WebhookPolicy) -> list[Delivery]:
    return Deliveries(db, Retry(10, 1, 10)).find(policy.id)[0]


def _wait(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@pytest.fixture
def start_worker(tmp_path: Path, database_url: str) -> Iterator[StartWorker]:
    """`start_worker()`: a `portside worker` process on this test's data directory and
    database; every one still running is killed afterwards."""
    with worker_processes(tmp_path, database_url, WEBHOOK_ENV) as start:
        yield start


@pytest.mark.slow
def test_a_worker_killed_mid_delivery(db: Database, start_worker: StartWorker) -> None:
    release = threading.Event()
    with receiving(hold=release) as receiver:
        policy = _policy(db, receiver)
        with db.write() as conn:
            outbox.emit(
                conn,
                outbox.ARTIFACT_PUSHED,
                Actor("alice"),
                resource="acme/app:v1",
                repository="acme/app",
                data={"digest": "sha256:" + "1" * 64, "tag": "v1"},
            )
        first = start_worker()
        receiver.wait_for(1)  # the request is in; the receiver has not answered
        first.kill()
        first.wait(10)
        [delivery] = _deliveries(db, policy)
        assert (delivery.status, delivery.attempts) == ("delivering", 1)
        release.set()  # the receiver answers from now on (to nobody, the first time)

        start_worker()
        _wait(
            lambda: _deliveries(db, policy)[0].status == "succeeded",
            timeout=60,
            what="the second worker to complete the delivery",
        )
        [done] = _deliveries(db, policy)
        assert (done.attempts, done.response_code) == (2, 200)
        time.sleep(1)  # nothing else arrives
        requests = receiver.received
    # Delivered at least once; the receiver dedupes by the event id: one event.
    assert len(requests) == 2
    assert {r.event_id for r in requests} == {str(done.event_id)}
    assert all(r.signed_by(SECRET) for r in requests)


@pytest.mark.clients
def test_skopeo_pushes_produce_one_delivery_each(
    tmp_path: Path, database_url: str, db: Database
) -> None:
    """Needs manifest PUT to emit `artifact.pushed` (the events-audit branch)."""
    conf = tmp_path / "containers"
    conf.mkdir()
    skopeo = Skopeo(require_binary("skopeo"), containers_config(conf, insecure=None))
    with receiving() as receiver:
        policy = _policy(db, receiver)
        server = ServerProcess(
            tmp_path / "data", database_url, tmp_path, workers=1, env=dict(WEBHOOK_ENV)
        ).start()
        try:
            host = server.url.removeprefix("http://")
            images = {tag: build_image(f"webhooks-{tag}", big_layer_kib=64) for tag in ("v1", "v2")}
            for tag, image in images.items():
                layout = write_layout(tmp_path / f"layout-{tag}", {tag: image})
                skopeo.push_layout(layout, tag, f"{host}/acme/app:{tag}")
            receiver.wait_for(2, timeout=30)
            time.sleep(2)  # and no more
            requests = receiver.received
            deliveries = _deliveries(db, policy)
            assert server.internal_errors() == []
        finally:
            server.stop()
    assert len(requests) == 2
    assert len({r.event_id for r in requests}) == 2
    assert all(r.signed_by(SECRET) for r in requests)
    pushed = {
        (
            r.json["event_data"]["resources"][0]["tag"],
            r.json["event_data"]["resources"][0]["digest"],
        )
        for r in requests
    }
    assert pushed == {(tag, image.digest) for tag, image in images.items()}
    assert all(r.json["type"] == "PUSH_ARTIFACT" for r in requests)
    assert sorted(d.status for d in deliveries) == ["succeeded", "succeeded"]
