"""Events written in batches, outside the transaction of what they describe.

A manifest pull changes nothing, so it has no write transaction to join, and writing one
event per pull would cost the hot path a write each time. Pulls are therefore buffered in
memory and written about once a second (at once when the buffer is full, and by `flush`
when the process stops). The price is written down: a worker killed between two flushes
loses up to a second of `artifact.pulled` events, never any other event.

In an HTTP worker the batches are written on the blocking-work pool (portside.offload),
never on the event loop.

GC's and retention's deletions go through the same buffer for now (thousands per run, each
in its own short transaction); they move into the deletion transaction itself when
content/deletion.py raises `artifact.deleted` there.
"""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC
from typing import Any

import structlog

from portside.metadata.db import Database
from portside.offload import Offloader

log = structlog.get_logger(__name__)

_COLUMNS = ("occurred_at", "type", "actor", "source", "project", "repository", "resource", "data")
_INSERT = (
    "INSERT INTO events (occurred_at, type, actor, source, project, repository, resource, data)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
FLUSH_SECONDS = 1.0
# Bounds memory; under a pull load above this per second a batch is written early. Each
# batch is a commit, which also empties the hot-path cache (content.hotpath): at 500, a
# worker serving 5,000 pulls/s committed 10 times a second.
_LIMIT = 5000


class EventBuffer:
    """Rows from `outbox.event_row`, written in one transaction per flush."""

    def __init__(self, db: Database, io: Offloader | None = None) -> None:
        self.db = db
        self._io = io
        self._rows: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        # Held while a batch is written: flush() returns only once earlier batches are in.
        self._write_lock = threading.Lock()
        self._timer: asyncio.TimerHandle | None = None  # touched on the loop thread only
        # One plain executemany per batch: SQLAlchemy's per-row parameter processing
        # (~30 us a row) was the largest cost of a manifest GET under load.
        qmark = db.engine.dialect.paramstyle == "qmark"
        self._insert = _INSERT if qmark else _INSERT.replace("?", "%s")

    def add(self, row: dict[str, Any]) -> None:
        with self._lock:
            self._rows.append(row)
            full = len(self._rows) >= _LIMIT
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
                rows, self._rows = self._rows, []
            if not rows:
                return
            try:
                values = [self._values(row) for row in rows]
                with self.db.write() as conn:
                    conn.exec_driver_sql(self._insert, values)
            except Exception:
                # Recording a pull must not turn a served request into an error afterwards.
                log.exception("events.batch_write_failed", lost=len(rows))
