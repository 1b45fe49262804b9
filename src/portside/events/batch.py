"""Events written in batches, outside the transaction of what they describe.

A manifest pull changes nothing, so it has no write transaction to join, and writing one
event per pull would cost the hot path a write each time. Pulls are therefore buffered in
memory and written about once a second (at once when the buffer is full, and by `flush`
when the process stops). The price is written down: a worker killed between two flushes
loses up to a second of `artifact.pulled` events, never any other event.

GC's and retention's deletions go through the same buffer for now (thousands per run, each
in its own short transaction); they move into the deletion transaction itself when
content/deletion.py raises `artifact.deleted` there.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import structlog

from portside.events.outbox import emit_rows
from portside.metadata.db import Database

log = structlog.get_logger(__name__)

FLUSH_SECONDS = 1.0
_LIMIT = 500


class EventBuffer:
    """Rows from `outbox.event_row`, written in one transaction per flush."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._rows: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._timer: asyncio.TimerHandle | None = None

    def add(self, row: dict[str, Any]) -> None:
        with self._lock:
            self._rows.append(row)
            full = len(self._rows) >= _LIMIT
        if full:
            self.flush()
        elif self._timer is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return  # no event loop (a job, a command): written when full or by flush()
            self._timer = loop.call_later(FLUSH_SECONDS, self.flush)

    def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        with self._lock:
            rows, self._rows = self._rows, []
        if not rows:
            return
        try:
            with self.db.write() as conn:
                emit_rows(conn, rows)
        except Exception:
            # Recording a pull must not turn a served request into an error afterwards.
            log.exception("events.batch_write_failed", lost=len(rows))
