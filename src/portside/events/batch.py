"""Events written in batches, outside the transaction of what they describe.

A manifest pull changes nothing, so it has no write transaction to join, and writing one
event per pull would cost the hot path a write each time. Pulls are therefore counted in
memory and written about once a second (at once when the buffer is full, and by `flush`
when the process stops). Identical events in one window (the same caller pulling the same
reference, as a fleet scaling out does thousands of times a second) become one row with a
`count`: per pull the hot path only finds a key and adds one, and the buffer holds one
entry per distinct pull instead of one per request (measured: a worker under a manifest
GET load grew by ~25 MB holding a row per pull, and served ~25% fewer requests). The price
is written down: a worker killed between two flushes loses up to a second of
`artifact.pulled` events, never any other event.

In an HTTP worker the batches are written on the blocking-work pool (portside.offload),
never on the event loop.

Every other event is raised in the transaction of its change (events.outbox.emit).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Hashable
from datetime import UTC, datetime
from typing import Any

import structlog

from portside.metadata.db import Database, utcnow
from portside.offload import Offloader

log = structlog.get_logger(__name__)

_COLUMNS = ("occurred_at", "type", "actor", "source", "project", "repository", "resource", "data")
_INSERT = (
    "INSERT INTO events (occurred_at, type, actor, source, project, repository, resource, data)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
FLUSH_SECONDS = 1.0
# Bounds memory: with more distinct events than this pending, a batch is written early.
# Each batch is a commit, which also empties the hot-path cache (content.hotpath).
_LIMIT = 5000

Build = Callable[[int, datetime], dict[str, Any]]
"""Makes an event's row (`outbox.event_row`) from its count and its first occurrence."""


class EventBuffer:
    """Counted events, written as rows in one transaction per flush."""

    def __init__(self, db: Database, io: Offloader | None = None) -> None:
        self.db = db
        self._io = io
        self._pending: dict[Hashable, list[Any]] = {}  # key -> [build, count, first at]
        self._lock = threading.Lock()
        # Held while a batch is written: flush() returns only once earlier batches are in.
        self._write_lock = threading.Lock()
        self._timer: asyncio.TimerHandle | None = None  # touched on the loop thread only
        # One plain executemany per batch: SQLAlchemy's per-row parameter processing
        # (~30 us a row) was the largest cost of a manifest GET under load.
        qmark = db.engine.dialect.paramstyle == "qmark"
        self._insert = _INSERT if qmark else _INSERT.replace("?", "%s")

    def count(self, key: Hashable, build: Build) -> None:
        """One more occurrence of the event `key` names (equal keys: the same event);
        its row is built at the flush, by `build(count, first occurrence)`."""
        with self._lock:
            pending = self._pending.get(key)
            if pending is None:
                self._pending[key] = [build, 1, utcnow()]
            else:
                pending[1] += 1
            full = len(self._pending) >= _LIMIT
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None  # a thread, a job, a command: written when full or by flush()
        if full:
            self._flush_from(loop)
        elif loop is not None and self._timer is None:
            self._timer = loop.call_later(FLUSH_SECONDS, self._timer_fired, loop)

    def _timer_fired(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = None
        self._flush_from(loop)

    def _flush_from(self, loop: asyncio.AbstractEventLoop | None) -> None:
        """Flush now: on the pool when called on the event loop, else in this thread."""
        if loop is not None and self._io is not None:
            self._io.submit(self.flush)
        else:
            self.flush()

    def _values(self, row: dict[str, Any]) -> tuple[Any, ...]:
        occurred_at = row["occurred_at"]
        if self.db.is_sqlite:
            # The text SQLAlchemy's SQLite DateTime writes (UTC, no offset).
            occurred_at = occurred_at.astimezone(UTC).replace(tzinfo=None)
            occurred_at = occurred_at.isoformat(" ", "microseconds")
        return (occurred_at, *(row.get(column) for column in _COLUMNS[1:]))

    def flush(self) -> None:
        """Write what is buffered (blocking: from a thread, a command, or at shutdown).
        A pending timer is left to fire: it finds the buffer empty, or newer rows."""
        with self._write_lock:
            with self._lock:
                pending, self._pending = self._pending, {}
            if not pending:
                return
            rows = [build(count, first) for build, count, first in pending.values()]
            try:
                values = [self._values(row) for row in rows]
                with self.db.write() as conn:
                    conn.exec_driver_sql(self._insert, values)
            except Exception:
                # Recording a pull must not turn a served request into an error afterwards.
                log.exception("events.batch_write_failed", lost=len(rows))
