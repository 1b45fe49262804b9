"""The outbox's promises: an event exists iff its transaction committed; a consumer
handles each event once, in id order, with its effect in the cursor's transaction; it
waits at a gap in the ids until the gap has settled."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import timedelta

import pytest
from sqlalchemy import Connection, select, update

from portside.events import outbox
from portside.events.outbox import Actor, Consumer, Event
from portside.metadata import schema as s
from portside.metadata.db import Database, utcnow
from portside.metadata.engine import make_engine

ALICE = Actor("alice", "10.0.0.1")


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(make_engine(database_url))
    yield database
    database.engine.dispose()


def _emit(db: Database, n: int) -> None:
    with db.write() as conn:
        for i in range(n):
            outbox.emit(
                conn, outbox.TAG_MOVED, ALICE, resource=f"acme/app:v{i}", repository="acme/app"
            )


def test_event_rolls_back_with_its_transaction(db: Database) -> None:
    def failing_change() -> None:
        with db.write() as conn:
            outbox.emit(conn, outbox.TAG_MOVED, ALICE, resource="acme/app:v1")
            raise RuntimeError("the change failed")

    with pytest.raises(RuntimeError):
        failing_change()
    assert outbox.recent(db) == []
    _emit(db, 1)
    [event] = outbox.recent(db)
    assert (event.type, event.actor, event.source, event.project, event.resource) == (
        "tag.moved",
        "alice",
        "10.0.0.1",
        "acme",
        "acme/app:v0",
    )


def test_consumer_handles_each_event_once_in_order(db: Database) -> None:
    _emit(db, 7)
    seen: list[int] = []

    def handle(conn: Connection, events: Sequence[Event]) -> None:
        seen.extend(e.id for e in events)

    consumer = Consumer(db, "test")
    assert consumer.catch_up(handle) == 7
    assert consumer.catch_up(handle) == 0
    _emit(db, 2)
    assert consumer.catch_up(handle) == 2
    assert seen == sorted(seen)
    assert len(seen) == len(set(seen)) == 9
    assert consumer.position() == seen[-1]


def test_failed_effect_leaves_the_cursor_where_it_was(db: Database) -> None:
    _emit(db, 3)
    consumer = Consumer(db, "test")

    def fail(conn: Connection, events: Sequence[Event]) -> None:
        conn.execute(s.event_cursors.delete())  # an effect in the same transaction...
        raise RuntimeError("consumer crashed")  # ...undone with the cursor

    with pytest.raises(RuntimeError):
        consumer.catch_up(fail)
    assert consumer.position() == 0
    seen: list[int] = []
    consumer.catch_up(lambda conn, events: seen.extend(e.id for e in events))
    assert len(seen) == 3


def test_consumer_waits_at_a_fresh_gap_and_passes_a_settled_one(db: Database) -> None:
    _emit(db, 3)
    # Make a gap: the middle event's transaction "has not committed yet".
    with db.write() as conn:
        ids = list(conn.execute(select(s.events.c.id).order_by(s.events.c.id)).scalars())
        conn.execute(s.events.delete().where(s.events.c.id == ids[1]))
    seen: list[int] = []
    consumer = Consumer(db, "test")
    consumer.catch_up(lambda conn, events: seen.extend(e.id for e in events))
    assert seen == [ids[0]]
    with db.write() as conn:
        conn.execute(
            update(s.events)
            .where(s.events.c.id == ids[2])
            .values(occurred_at=utcnow() - outbox.GAP_SETTLE - timedelta(seconds=1))
        )
    consumer.catch_up(lambda conn, events: seen.extend(e.id for e in events))
    assert seen == [ids[0], ids[2]]


def test_new_consumer_can_start_after_existing_history(db: Database) -> None:
    _emit(db, 4)
    seen: list[int] = []
    consumer = Consumer(db, "late", start_at_end=True)
    assert consumer.catch_up(lambda conn, events: seen.extend(e.id for e in events)) == 0
    _emit(db, 1)
    consumer.catch_up(lambda conn, events: seen.extend(e.id for e in events))
    assert len(seen) == 1


def test_prune_keeps_what_a_consumer_has_not_handled(db: Database) -> None:
    _emit(db, 3)
    with db.write() as conn:
        conn.execute(update(s.events).values(occurred_at=utcnow() - timedelta(days=30)))
    fast, slow = Consumer(db, "fast"), Consumer(db, "slow")
    fast.catch_up(lambda conn, events: None)
    slow.catch_up(lambda conn, events: None, limit=1)
    assert outbox.prune(db, timedelta(days=7)) == 1
    assert len(outbox.recent(db)) == 2


def test_hostile_names_never_fail_the_change(db: Database) -> None:
    """A NUL (PostgreSQL text refuses it) in a name typed by a client is replaced, not
    allowed to turn the change that records it into an error."""
    with db.write() as conn:
        outbox.emit(
            conn,
            outbox.TAG_MOVED,
            Actor("a\x00b", "src\x00"),
            resource="acme/app:\x00",
            repository="acme/\x00",
            data={"tag": "\x00"},
        )
    [event] = outbox.recent(db)
    assert (event.actor, event.source, event.resource, event.repository) == (
        "a\ufffdb",
        "src\ufffd",
        "acme/app:\ufffd",
        "acme/\ufffd",
    )
    assert event.data == {"tag": "\x00"}
