"""The audit log: who did what to which resource, when, from where, and with what result.

Pushes, deletes, logins and changes to members, robots, users and projects are written at
once. Pulls are the hot path, so they are buffered and written in batches about once a
second (a killed worker can lose up to a second of pull records, never other events).
Entries never contain secrets: callers pass names, not credentials.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy import ColumnElement, func, select

from portside.metadata import schema as s
from portside.metadata.db import Database, utcnow
from portside.reference import project_of

log = structlog.get_logger(__name__)

_FLUSH_SECONDS = 1.0
_BUFFER_LIMIT = 500


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    occurred_at: datetime
    actor: str
    action: str
    resource_type: str
    resource: str
    project: str | None
    result: str
    source: str | None
    detail: Any


class AuditLog:
    def __init__(self, db: Database, *, record_pulls: bool = True) -> None:
        self.db = db
        self.record_pulls = record_pulls
        self._buffer: list[dict[str, Any]] = []
        self._timer: asyncio.TimerHandle | None = None

    def record(
        self,
        *,
        actor: str,
        action: str,
        resource_type: str,
        resource: str,
        result: str = "success",
        source: str | None = None,
        project: str | None = None,
        detail: dict[str, Any] | None = None,
        batched: bool = False,
    ) -> None:
        """Add an entry. Pulls (and callers passing batched=True, such as GC's thousands
        of deletions) are written in batches; everything else at once."""
        if action == "pull" and not self.record_pulls:
            return
        if project is None and resource_type in ("repository", "artifact", "tag"):
            project = project_of(resource.split("@", maxsplit=1)[0].split(":", maxsplit=1)[0])
        row = {
            "occurred_at": utcnow(),
            "actor": (actor or "anonymous")[:255],
            "action": action,
            "resource_type": resource_type,
            "resource": resource,
            "project": project[:255] if project else None,
            "result": result,
            "source": (source or "")[:64] or None,
            "detail": json.dumps(detail) if detail else None,
        }
        self._buffer.append(row)
        if not (batched or action == "pull") or len(self._buffer) >= _BUFFER_LIMIT:
            self.flush()
        elif self._timer is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return  # no event loop (a command): written at the limit or by flush()
            self._timer = loop.call_later(_FLUSH_SECONDS, self.flush)

    def login(self, actor: str, result: str, source: str | None, via: str) -> None:
        """A sign-in attempt (never with the password)."""
        self.record(
            actor=actor,
            action="login",
            resource_type="account",
            resource=actor,
            result=result,
            source=source,
            detail={"via": via},
        )

    def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        rows, self._buffer = self._buffer, []
        if not rows:
            return
        try:
            with self.db.write() as conn:
                conn.execute(s.audit_log.insert(), rows)
        except Exception:
            # The audit log must not turn a served request into an error afterwards.
            log.exception("audit.write_failed", lost=len(rows))

    def find(
        self,
        *,
        projects: list[str] | None = None,
        actor: str | None = None,
        action: str | None = None,
        resource: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[list[AuditEntry], int]:
        """Newest first, with the total count; `projects` limits to those projects."""
        t = s.audit_log
        conditions: list[ColumnElement[bool]] = []
        if projects is not None:
            conditions.append(t.c.project.in_(projects))
        if actor:
            conditions.append(t.c.actor == actor)
        if action:
            conditions.append(t.c.action == action)
        if resource:
            conditions.append(t.c.resource.contains(resource, autoescape=True))
        # Compare in UTC: SQLite stores UTC without an offset and compares text.
        if since:
            conditions.append(t.c.occurred_at >= _utc(since))
        if until:
            conditions.append(t.c.occurred_at < _utc(until))
        self.flush()
        with self.db.read() as conn:
            total = conn.execute(
                select(func.count()).select_from(t).where(*conditions)
            ).scalar_one()
            rows = conn.execute(
                select(t).where(*conditions).order_by(t.c.id.desc()).limit(limit).offset(offset)
            ).all()
        entries = [
            AuditEntry(
                int(r.id),
                r.occurred_at,
                r.actor,
                r.action,
                r.resource_type,
                r.resource,
                r.project,
                r.result,
                r.source,
                json.loads(r.detail) if r.detail else None,
            )
            for r in rows
        ]
        return entries, int(total)


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
