"""The events outbox: what happened, recorded in the transaction that made it happen.

A service that changes something (a push, a tag move, a deletion, a project update)
calls `emit(conn, ...)` on the connection of its own write transaction, so the event
exists if and only if the change committed. Nothing else records effects: the audit log,
webhooks and (later) replication and scanning are consumers that read the table.

Consumers read with a cursor (`Consumer.catch_up`): in one transaction they lock their
cursor row, read the events after it, apply their effect through the same connection
(write audit rows, queue deliveries) and advance the cursor. A crash before the commit
leaves both undone, after it both done: no effect is lost or applied twice, and two
processes running the same consumer take turns on the cursor lock.

Ids and commit order. On PostgreSQL a transaction that took id 41 can commit after one
that took id 42, so a reader that saw 42 and moved its cursor past would never see 41.
`catch_up` therefore stops at a gap in the ids, and passes it only once the event after
the gap is older than `GAP_SETTLE` (a transaction holding an id that long rolled back:
write transactions here last milliseconds, never minutes). SQLite serialises writers,
so its ids commit in order and gaps only come from rollbacks.

Invariants: events are only inserted, never updated; a consumer's position only grows;
every event with id <= position has had its effect, exactly once.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, delete, func, select

from portside.metadata import schema as s
from portside.metadata.db import Database, as_utc, utcnow

GAP_SETTLE = timedelta(seconds=30)
_BATCH = 500

# Event types. Artifact and tag events carry `repository` and `digest` in their data.
ARTIFACT_PUSHED = "artifact.pushed"  # a manifest stored (data: digest, media_type, tag?, size)
ARTIFACT_PULLED = "artifact.pulled"  # written in batches (data: digest, reference)
ARTIFACT_DELETED = "artifact.deleted"  # by API, retention or GC (data: digest, tags, by)
TAG_MOVED = "tag.moved"  # a tag created or pointed elsewhere (data: tag, digest, previous?)
TAG_DELETED = "tag.deleted"  # (data: tag, digest)
QUOTA_EXCEEDED = "quota.exceeded"  # a push refused by the project's quota
BLOB_MOUNTED = "blob.mounted"  # linked from another repository (data: digest, source)
BLOB_DELETED = "blob.deleted"  # a repository's link to a blob (API), or a blob (GC)
REPOSITORY_DELETED = "repository.deleted"  # with its manifests and tags (data: tags)
PROJECT_CREATED = "project.created"  # management events: data holds what changed
PROJECT_UPDATED = "project.updated"
PROJECT_DELETED = "project.deleted"
# A project's signing and scanning settings, each its own type (no secrets: keys are public).
PROJECT_KEY_ADDED = "project.key.added"  # a trusted key (data: name, kind, fingerprint)
PROJECT_KEY_REMOVED = "project.key.removed"  # (data: name)
PROJECT_POLICY_UPDATED = "project.policy.updated"  # the signature pull policy (data: changes)
PROJECT_SCAN_SETTINGS_UPDATED = "project.scan_settings.updated"  # data: the settings
# A CVE allowlist saved (data: items, expires_at): a project's (resource and project: its
# name) or the system's (resource "system", no project).
CVE_ALLOWLIST_UPDATED = "cve_allowlist.updated"
MEMBER_SET = "member.set"  # a user or group given a role (data: member, kind, role)
MEMBER_REMOVED = "member.removed"
ROBOT_CREATED = "robot.created"
ROBOT_UPDATED = "robot.updated"  # enabled or disabled (data: disabled)
ROBOT_ROTATED = "robot.rotated"  # a new secret (never in the event)
ROBOT_DELETED = "robot.deleted"
USER_CREATED = "user.created"
USER_UPDATED = "user.updated"  # by an administrator (data: fields; password_changed)
USER_PASSWORD = "user.password"  # noqa: S105 (an event type: a user set their password)
USER_DELETED = "user.deleted"
# Personal access tokens (data: id, expires_at); the names are event types, not secrets.
TOKEN_CREATED = "token.created"  # noqa: S105
TOKEN_REVOKED = "token.revoked"  # noqa: S105
IMMUTABILITY_CREATED = "immutability.created"
IMMUTABILITY_UPDATED = "immutability.updated"
IMMUTABILITY_DELETED = "immutability.deleted"
RETENTION_UPDATED = "retention.updated"  # a project's policy saved (data: the policy)
JOB_STARTED = "job.started"  # data: kind, params
JOB_STOPPED = "job.stopped"  # a stop requested (data: kind)
SCHEDULE_SET = "schedule.set"
SCHEDULE_DELETED = "schedule.deleted"
# A project's webhooks changed (data: what changed; never the secret). Written just after
# the change for now, not yet in the policy store's transaction.
WEBHOOK_CREATED = "webhook.created"
WEBHOOK_UPDATED = "webhook.updated"
WEBHOOK_DELETED = "webhook.deleted"
WEBHOOK_REDELIVERED = "webhook.redelivered"
ACCOUNT_LOGIN = "account.login"  # a sign-in attempt (data: result, via; never a secret)
SCAN_COMPLETED = "scan.completed"  # reserved for scanning
SCAN_FAILED = "scan.failed"
REPLICATION_COMPLETED = "replication.completed"  # a run ended (data: rule, job, counts)
ENDPOINT_CREATED = "endpoint.created"  # a peer registry registered (never its secret)
ENDPOINT_UPDATED = "endpoint.updated"  # data: fields changed ("credentials": changed)
ENDPOINT_DELETED = "endpoint.deleted"
REPLICATION_RULE_CREATED = "replication.rule.created"
REPLICATION_RULE_UPDATED = "replication.rule.updated"
REPLICATION_RULE_DELETED = "replication.rule.deleted"
# An import switched a vulnerability database source to new data (data: source, import_id,
# generation, advisories, packages): scanners rescan what the change may affect.
VULNDB_UPDATED = "vulndb.updated"


@dataclass(frozen=True, slots=True)
class Actor:
    """Who made a change and from where: a user or robot name, or a system part
    ("gc", "retention") with no address."""

    name: str
    source: str | None = None


SYSTEM = Actor("system")


@dataclass(frozen=True, slots=True)
class Event:
    id: int
    occurred_at: datetime
    type: str
    actor: str
    source: str | None
    project: str | None
    repository: str | None
    resource: str
    data: dict[str, Any] = field(default_factory=dict)


def event_row(
    type_: str,
    actor: Actor,
    *,
    resource: str,
    project: str | None = None,
    repository: str | None = None,
    data: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> dict[str, Any]:
    """The row `emit` inserts; built separately for callers that batch (pulls). Names
    may come from hostile input (a failed sign-in records the username as typed), so NUL,
    which PostgreSQL text refuses, becomes U+FFFD rather than failing the change."""
    if project is None and repository is not None:
        project = repository.split("/", 1)[0]
    return {
        "occurred_at": at or utcnow(),
        "type": type_,
        "actor": _text(actor.name or "anonymous")[:255],
        "source": _text(actor.source or "")[:64] or None,
        "project": _text(project)[:255] if project else None,
        "repository": _text(repository) if repository is not None else None,
        "resource": _text(resource),
        "data": json.dumps(data or {}, sort_keys=True),  # JSON escapes NUL as \u0000
    }


def _text(value: str) -> str:
    return value.replace("\x00", "\ufffd")


def emit(
    conn: Connection,
    type_: str,
    actor: Actor,
    *,
    resource: str,
    project: str | None = None,
    repository: str | None = None,
    data: dict[str, Any] | None = None,
) -> None:
    """Record an event in the caller's transaction (commits or rolls back with it)."""
    conn.execute(
        s.events.insert().values(
            event_row(
                type_,
                actor,
                resource=resource,
                project=project,
                repository=repository,
                data=data,
            )
        )
    )


def emit_rows(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        conn.execute(s.events.insert(), list(rows))


def _event(row: Any) -> Event:
    return Event(
        id=int(row.id),
        occurred_at=as_utc(row.occurred_at),
        type=row.type,
        actor=row.actor,
        source=row.source,
        project=row.project,
        repository=row.repository,
        resource=row.resource,
        data=json.loads(row.data) if row.data else {},
    )


Handler = Callable[[Connection, Sequence[Event]], None]
"""Applies a consumer's effect for some events, through the consumer's transaction."""


class Consumer:
    """One named reader of the outbox (see the module docstring)."""

    def __init__(self, db: Database, name: str, *, start_at_end: bool = False) -> None:
        self.db = db
        self.name = name
        # A consumer added to a registry with history (webhooks) starts after the events
        # already there instead of replaying them; the audit log starts at the beginning.
        self.start_at_end = start_at_end

    def catch_up(self, handle: Handler, *, limit: int = 10_000) -> int:
        """Apply `handle` to every settled event after the cursor, in batches, each in
        one transaction with the cursor's advance. Returns how many were handled."""
        handled = 0
        while handled < limit:
            count = self._batch(handle, min(_BATCH, limit - handled))
            if count == 0:
                break
            handled += count
        return handled

    def position(self) -> int:
        with self.db.read() as conn:
            value = conn.execute(
                select(s.event_cursors.c.position).where(s.event_cursors.c.consumer == self.name)
            ).scalar_one_or_none()
        return int(value) if value is not None else 0

    def _batch(self, handle: Handler, size: int) -> int:
        e = s.events
        with self.db.write() as conn:
            position = self._lock_cursor(conn)
            rows = conn.execute(
                select(e).where(e.c.id > position).order_by(e.c.id).limit(size)
            ).all()
            settled = _settled(position, rows, utcnow())
            if not settled:
                return 0
            events = [_event(row) for row in settled]
            handle(conn, events)
            conn.execute(
                s.event_cursors.update()
                .where(s.event_cursors.c.consumer == self.name)
                .values(position=events[-1].id, updated_at=utcnow())
            )
            return len(events)

    def _lock_cursor(self, conn: Connection) -> int:
        c = s.event_cursors
        position = conn.execute(
            select(c.c.position).where(c.c.consumer == self.name).with_for_update()
        ).scalar_one_or_none()
        if position is not None:
            return int(position)
        start = 0
        if self.start_at_end:
            start = int(
                conn.execute(select(func.coalesce(func.max(s.events.c.id), 0))).scalar_one()
            )
        self.db.insert_ignore(
            conn, c, {"consumer": self.name, "position": start, "updated_at": utcnow()}
        )
        locked = conn.execute(
            select(c.c.position).where(c.c.consumer == self.name).with_for_update()
        ).scalar_one()
        return int(locked)


def _settled(position: int, rows: Sequence[Any], now: datetime) -> list[Any]:
    """The leading rows that are safe to pass: consecutive ids after `position`, and past
    a gap only when the event after it is older than GAP_SETTLE."""
    settled = []
    expected = position + 1
    for row in rows:
        if row.id != expected and now - as_utc(row.occurred_at) < GAP_SETTLE:
            break
        settled.append(row)
        expected = int(row.id) + 1
    return settled


def prune(db: Database, older_than: timedelta) -> int:
    """Delete events older than `older_than` that every consumer has handled."""
    cutoff = datetime.now(UTC) - older_than
    with db.write() as conn:
        lowest = conn.execute(select(func.min(s.event_cursors.c.position))).scalar()
        if lowest is None:
            return 0
        result = conn.execute(
            delete(s.events).where(s.events.c.id <= lowest, s.events.c.occurred_at < cutoff)
        )
        return int(result.rowcount)


def recent(db: Database, *, after: int = 0, limit: int = 100) -> list[Event]:
    """Events after an id, oldest first (for tests and diagnostics)."""
    with db.read() as conn:
        rows = conn.execute(
            select(s.events).where(s.events.c.id > after).order_by(s.events.c.id).limit(limit)
        ).all()
    return [_event(row) for row in rows]
