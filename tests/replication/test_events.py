"""Event-triggered push replication: pushes and deletions in matching repositories
queue runs through the outbox consumer (with a cursor), which copy the artifact (or
delete it on the destination when the rule copies deletions); other repositories queue
nothing. A real Distribution 2.8 is the destination. The skopeo case (marker `clients`)
drives a real `portside serve` with its job worker."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from portside.jobs.replication import queue_event_runs
from portside.jobs.runner import Worker
from portside.metadata import schema as s
from portside.remote import RegistryClient
from portside.replication.runs import Runs
from tests.api.helpers import push_image
from tests.remote.peers import LOOPBACK_ALLOWED, Peer, distribution
from tests.replication.conftest import Local


@pytest.fixture
def peer(tmp_path: Path) -> Iterator[Peer]:
    with distribution(tmp_path / "distribution") as running:
        yield running


def _runs_of(local: Local) -> list[tuple[str, str]]:
    runs, _ = Runs(local.app.ctx.db).find()
    return [(r.trigger, r.status) for r in runs]


def test_pushes_and_deletions_are_replicated(local: Local, peer: Peer) -> None:
    local.endpoint("dist", peer.url)
    local.rule("live", "push", "dist", repositories="team/**", trigger="event", copy_deletions=True)
    worker = Worker(local.app.ctx, name="test-worker")
    image = push_image(local.client, "team/app", "v1", seed="live")
    push_image(local.client, "elsewhere/app", "v1", seed="not replicated")
    for _ in range(5):
        worker.tick()
    assert _runs_of(local) == [("event", "succeeded")]
    with RegistryClient(peer.url, egress=LOOPBACK_ALLOWED) as there:
        found = there.head_manifest("team/app", "v1")
        assert found is not None
        assert found.digest == image.digest
        assert there.head_manifest("elsewhere/app", "v1") is None
        deleted = local.client.delete(f"/v2/team/app/manifests/{image.digest}")
        assert deleted.status_code == 202
        for _ in range(5):
            worker.tick()
        assert there.head_manifest("team/app", image.digest) is None
    runs, _ = Runs(local.app.ctx.db).find()
    items, _ = Runs(local.app.ctx.db).items(runs[0].job_id)
    assert [(i.status, i.digest) for i in items] == [("deleted", image.digest)]
    # Nothing new: reading the outbox again queues nothing.
    assert queue_event_runs(local.app.ctx.db) == 0
    assert len(Runs(local.app.ctx.db).find()[0]) == 2


def test_events_before_the_first_event_rule_are_not_replayed(local: Local, peer: Peer) -> None:
    push_image(local.client, "team/old", "v1", seed="old")
    local.endpoint("dist", peer.url)
    local.rule("late", "push", "dist", trigger="event")
    with local.app.ctx.db.read() as conn:
        cursor = conn.execute(
            select(s.event_cursors.c.position).where(s.event_cursors.c.consumer == "replication")
        ).scalar_one()
    assert cursor > 0
    worker = Worker(local.app.ctx, name="test-worker")
    worker.tick()
    assert _runs_of(local) == []
