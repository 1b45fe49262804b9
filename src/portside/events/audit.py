"""The audit log: who did what to which resource, when, from where, and with what result.

The log is a consumer of the events outbox named "audit": each event becomes at most one
`audit_log` row, by the one mapping below (`audit_row`), so a change reads the same in
the log whichever caller made it (CLI, management API, UI, /v2). Rows are written in the
consumer's transaction with its cursor's advance: none is lost or written twice.
`find` catches up first, so a change shows as soon as it has committed; the job worker
also catches up periodically. Pulls reach the outbox in batches (events.batch), about a
second after they happen. Entries never contain secrets: events carry names, not
credentials.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy import ColumnElement, Connection, func, select

from portside.events import outbox as o
from portside.events.batch import EventBuffer
from portside.events.outbox import Consumer, Event
from portside.metadata import schema as s
from portside.metadata.db import Database

log = structlog.get_logger(__name__)

CONSUMER = "audit"


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


Detail = Callable[[Event], dict[str, Any] | None]


def _data(*leave_out: str) -> Detail:
    """The event's data as the detail, without `leave_out` (already in the row)."""
    return lambda e: {k: v for k, v in e.data.items() if k not in leave_out} or None


def _reference(e: Event) -> dict[str, Any] | None:
    """Pushes and pulls name the artifact by digest; a tag used is the detail, and so is
    how many pulls one row stands for when a batch counted several (events.batch)."""
    detail: dict[str, Any] = {}
    reference = e.data.get("tag") or e.data.get("reference")
    if reference and reference != e.data["digest"]:
        detail["reference"] = reference
    if e.data.get("count", 1) > 1:
        detail["count"] = e.data["count"]
    return detail or None


def _nothing(e: Event) -> None:
    return None


_ALL_DATA = _data()


@dataclass(frozen=True, slots=True)
class _Shape:
    action: str
    resource_type: str
    detail: Detail = _ALL_DATA


# The one mapping from events to audit rows. An action "delete" made by a system part
# ("gc", "retention": data `by`) is recorded as "gc.delete", "retention.delete".
_SHAPES: dict[str, _Shape] = {
    o.ARTIFACT_PUSHED: _Shape("push", "artifact", _reference),
    o.ARTIFACT_PULLED: _Shape("pull", "artifact", _reference),
    o.ARTIFACT_DELETED: _Shape("delete", "artifact", _data("digest", "by")),
    o.TAG_MOVED: _Shape("tag", "tag", _data("tag", "push")),
    o.TAG_DELETED: _Shape("delete", "tag", _data("tag")),
    o.BLOB_MOUNTED: _Shape("mount", "repository", _nothing),
    o.BLOB_DELETED: _Shape("delete", "blob", _data("digest", "by", "link")),
    o.REPOSITORY_DELETED: _Shape("delete", "repository", _nothing),
    o.QUOTA_EXCEEDED: _Shape("push", "artifact", _data("result")),
    o.PROJECT_CREATED: _Shape("create", "project"),
    o.PROJECT_UPDATED: _Shape("update", "project"),
    o.PROJECT_DELETED: _Shape("delete", "project"),
    o.PROJECT_KEY_ADDED: _Shape("key.add", "project"),
    o.PROJECT_KEY_REMOVED: _Shape("key.remove", "project"),
    o.PROJECT_POLICY_UPDATED: _Shape("pull-policy.update", "project"),
    o.PROJECT_SCAN_SETTINGS_UPDATED: _Shape("scan-settings.update", "project"),
    o.CVE_ALLOWLIST_UPDATED: _Shape("allowlist.update", "cve-allowlist"),
    o.MEMBER_SET: _Shape("member.set", "project"),
    o.MEMBER_REMOVED: _Shape("member.remove", "project"),
    o.ROBOT_CREATED: _Shape("create", "robot"),
    o.ROBOT_UPDATED: _Shape("update", "robot"),
    o.ROBOT_ROTATED: _Shape("rotate", "robot"),
    o.ROBOT_DELETED: _Shape("delete", "robot"),
    o.USER_CREATED: _Shape("create", "user"),
    o.USER_UPDATED: _Shape("update", "user"),
    o.USER_PASSWORD: _Shape("password", "user"),
    o.USER_DELETED: _Shape("delete", "user"),
    o.TOKEN_CREATED: _Shape("create", "access_token"),
    o.TOKEN_REVOKED: _Shape("revoke", "access_token"),
    o.IMMUTABILITY_CREATED: _Shape("create", "immutability-rule"),
    o.IMMUTABILITY_UPDATED: _Shape("update", "immutability-rule"),
    o.IMMUTABILITY_DELETED: _Shape("delete", "immutability-rule"),
    o.RETENTION_UPDATED: _Shape("retention.update", "project"),
    o.JOB_STARTED: _Shape("job.start", "job"),
    o.JOB_STOPPED: _Shape("job.stop", "job"),
    o.SCHEDULE_SET: _Shape("schedule.set", "schedule"),
    o.SCHEDULE_DELETED: _Shape("schedule.delete", "schedule"),
    o.WEBHOOK_CREATED: _Shape("create", "webhook"),
    o.WEBHOOK_UPDATED: _Shape("update", "webhook"),
    o.WEBHOOK_DELETED: _Shape("delete", "webhook"),
    o.WEBHOOK_REDELIVERED: _Shape("redeliver", "webhook"),
    o.ACCOUNT_LOGIN: _Shape("login", "account", _data("result")),
    o.ENDPOINT_CREATED: _Shape("create", "endpoint"),
    o.ENDPOINT_UPDATED: _Shape("update", "endpoint"),
    o.ENDPOINT_DELETED: _Shape("delete", "endpoint"),
    o.REPLICATION_RULE_CREATED: _Shape("create", "replication-rule"),
    o.REPLICATION_RULE_UPDATED: _Shape("update", "replication-rule"),
    o.REPLICATION_RULE_DELETED: _Shape("delete", "replication-rule"),
}


def audit_row(event: Event) -> dict[str, Any] | None:
    """The audit row for an event, or None for events the log leaves out: a tag set by
    the push that carries it (the push's row names the tag), tags deleted with their
    manifest (its row lists them) and types it does not know (scan and replication
    results)."""
    shape = _SHAPES.get(event.type)
    if shape is None or (event.type == o.TAG_MOVED and event.data.get("push")):
        return None
    if event.type == o.TAG_DELETED and "by" in event.data:
        return None  # removed with its manifest: the artifact.deleted row lists the tags
    action, resource_type = shape.action, shape.resource_type
    by = event.data.get("by")
    if action == "delete" and by not in (None, "api"):
        action = f"{by}.delete"
    if event.type == o.BLOB_DELETED and event.data.get("link"):
        resource_type = "link"  # GC: a repository's link, apart from the stored bytes
    if event.type == o.ROBOT_UPDATED and "disabled" in event.data:
        action = "disable" if event.data["disabled"] else "enable"
    detail = shape.detail(event)
    failed = event.type == o.QUOTA_EXCEEDED
    return {
        "occurred_at": event.occurred_at,
        "actor": event.actor,
        "action": action,
        "resource_type": resource_type,
        "resource": event.resource,
        "project": event.project,
        "result": "failure" if failed else str(event.data.get("result", "success")),
        "source": event.source,
        "detail": json.dumps(detail) if detail else None,
    }


def write_rows(conn: Connection, events: Sequence[Event]) -> None:
    """The audit consumer's effect: one row per event it records."""
    rows = [row for row in map(audit_row, events) if row is not None]
    if rows:
        conn.execute(s.audit_log.insert(), rows)


class AuditLog:
    def __init__(self, db: Database, pending: EventBuffer | None = None) -> None:
        self.db = db
        self.consumer = Consumer(db, CONSUMER)
        # Events this process has not written yet (pulls): flushed before catching up.
        self.pending = pending

    def flush(self) -> int:
        """Write this process's pending events, then bring the log up to date. Returns
        how many events were handled; a failure is logged, never raised (reading the
        log, or a job's housekeeping, must not fail because of it)."""
        if self.pending is not None:
            self.pending.flush()
        try:
            return self.consumer.catch_up(write_rows)
        except Exception:
            log.exception("audit.catch_up_failed")
            return 0

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
