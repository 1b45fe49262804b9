"""Webhook deliveries: one row per (policy, event), and the states it goes through.

    queued ──claim──► delivering ──2xx──► succeeded
       ▲                  │
       │               failure ──► failed (next_attempt_at = now + backoff) ──claim──► …
       │                  └──────► dead (after max_attempts)
       └──── redeliver ◄──────────────┘

`queue` runs inside the outbox consumer's transaction, so each event becomes exactly
one delivery per matching enabled policy whatever crashes (the unique (policy, event)
key is the second guard). `claim` is a conditional UPDATE: of two workers racing for a
row one wins; it sets a lease (`claimed_until`), and a worker killed mid-delivery
leaves a lease that expires, after which another worker claims the row again. A
delivery is therefore sent at least once and recorded as succeeded once; receivers
dedupe by the event id header.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import Connection, and_, func, or_, select, update

from portside.auth.errors import Exists, Missing
from portside.events import outbox
from portside.events.outbox import Event
from portside.metadata import schema as s
from portside.metadata.db import Database, as_utc, utcnow
from portside.webhooks.payloads import render
from portside.webhooks.policies import WebhookPolicy, emit_change

Status = Literal["queued", "delivering", "succeeded", "failed", "dead"]
STATUSES: tuple[Status, ...] = ("queued", "delivering", "succeeded", "failed", "dead")
_ERROR_MAX = 2000


@dataclass(frozen=True, slots=True)
class Delivery:
    id: int
    policy_id: int
    event_id: int | None
    event_type: str
    status: Status
    attempts: int
    next_attempt_at: datetime
    response_code: int | None
    latency_ms: int | None
    error: str | None
    created_at: datetime
    updated_at: datetime
    payload: str


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one attempt went: `ok` for a 2xx answer."""

    ok: bool
    response_code: int | None
    latency_ms: int
    error: str | None


@dataclass(frozen=True, slots=True)
class Retry:
    max_attempts: int
    base_seconds: float
    max_seconds: float

    def delay(self, attempts: int) -> timedelta:
        """Exponential backoff with jitter: after attempt n, between half and all of
        base * 2^(n-1), capped at max_seconds."""
        ceiling = min(self.max_seconds, self.base_seconds * 2 ** min(attempts - 1, 40))
        return timedelta(seconds=ceiling * random.uniform(0.5, 1.0))  # noqa: S311 - jitter


def _delivery(row: Any) -> Delivery:
    return Delivery(
        id=int(row.id),
        policy_id=int(row.policy_id),
        event_id=None if row.event_id is None else int(row.event_id),
        event_type=row.event_type,
        status=row.status,
        attempts=int(row.attempts),
        next_attempt_at=as_utc(row.next_attempt_at),
        response_code=row.response_code,
        latency_ms=row.latency_ms,
        error=row.error,
        created_at=as_utc(row.created_at),
        updated_at=as_utc(row.updated_at),
        payload=row.payload,
    )


def queue(conn: Connection, events: Sequence[Event], *, public_url: str) -> int:
    """The consumer's effect: a queued delivery for each event and each enabled policy
    of its project subscribed to its type. Returns how many were queued."""
    projects = {e.project for e in events if e.project}
    if not projects:
        return 0
    w, p = s.webhook_policies, s.projects
    rows = conn.execute(
        select(w.c.id, w.c.event_types, w.c.payload_format, p.c.name, p.c.public)
        .join(p, p.c.id == w.c.project_id)
        .where(p.c.name.in_(sorted(projects)), w.c.enabled.is_(True))
        .order_by(w.c.id)
    ).all()
    if not rows:
        return 0
    by_project: dict[str, list[Any]] = {}
    for row in rows:
        by_project.setdefault(row.name, []).append(row)
    now = utcnow()
    values = []
    for event in events:
        for row in by_project.get(event.project or "", []):
            if event.type not in json.loads(row.event_types):
                continue
            values.append(
                {
                    "policy_id": row.id,
                    "event_id": event.id,
                    "event_type": event.type,
                    "payload": render(
                        event, row.payload_format, public_url=public_url, public=row.public
                    ),
                    "status": "queued",
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                    "updated_at": now,
                }
            )
    if values:
        conn.execute(s.webhook_deliveries.insert(), values)
    return len(values)


class Deliveries:
    def __init__(self, db: Database, retry: Retry) -> None:
        self.db = db
        self.retry = retry

    # -- reading ----------------------------------------------------------------------
    def find(
        self, policy_id: int, *, status: str | None = None, limit: int = 50, offset: int = 0
    ) -> tuple[list[Delivery], int]:
        """A policy's deliveries, newest first, and how many there are."""
        d = s.webhook_deliveries
        where = [d.c.policy_id == policy_id]
        if status is not None:
            where.append(d.c.status == status)
        with self.db.read() as conn:
            total = conn.execute(select(func.count()).select_from(d).where(*where)).scalar_one()
            rows = conn.execute(
                select(d).where(*where).order_by(d.c.id.desc()).limit(limit).offset(offset)
            ).all()
        return [_delivery(r) for r in rows], int(total)

    def get(self, policy_id: int, delivery_id: int) -> Delivery:
        d = s.webhook_deliveries
        with self.db.read() as conn:
            row = conn.execute(
                select(d).where(d.c.id == delivery_id, d.c.policy_id == policy_id)
            ).first()
        if row is None:
            raise Missing(f"no delivery {delivery_id} of webhook {policy_id}")
        return _delivery(row)

    # -- the worker's side ------------------------------------------------------------
    def _due(self, now: datetime) -> Any:
        d = s.webhook_deliveries
        return or_(
            and_(d.c.status.in_(("queued", "failed")), d.c.next_attempt_at <= now),
            and_(d.c.status == "delivering", d.c.claimed_until < now),
        )

    def claim(self, worker: str, lease: timedelta, *, limit: int = 20) -> list[Delivery]:
        """Take up to `limit` due deliveries (the oldest first) for `worker`, each with a
        lease; a delivery whose last attempt's worker vanished after its last allowed
        attempt is marked dead instead. Only reads when nothing is due."""
        d = s.webhook_deliveries
        now = utcnow()
        with self.db.read() as conn:
            candidates = conn.execute(
                select(d.c.id, d.c.status, d.c.attempts)
                .where(self._due(now))
                .order_by(d.c.next_attempt_at, d.c.id)
                .limit(limit)
            ).all()
        claimed: list[Delivery] = []
        for candidate in candidates:
            with self.db.write() as conn:
                mine = and_(d.c.id == candidate.id, self._due(now))
                if (
                    candidate.status == "delivering"
                    and candidate.attempts >= self.retry.max_attempts
                ):
                    conn.execute(
                        update(d)
                        .where(mine, d.c.attempts >= self.retry.max_attempts)
                        .values(
                            status="dead",
                            claimed_by=None,
                            claimed_until=None,
                            error="the worker sending the last attempt stopped",
                            updated_at=now,
                        )
                    )
                    continue
                taken = conn.execute(
                    update(d)
                    .where(mine)
                    .values(
                        status="delivering",
                        claimed_by=worker,
                        claimed_until=now + lease,
                        attempts=d.c.attempts + 1,
                        updated_at=now,
                    )
                ).rowcount
                if taken:
                    row = conn.execute(select(d).where(d.c.id == candidate.id)).one()
                    claimed.append(_delivery(row))
        return claimed

    def finish(
        self, delivery: Delivery, worker: str, outcome: Outcome, *, final: bool = False
    ) -> Status | None:
        """Record an attempt's outcome if the delivery is still ours; its new status
        (None: the lease had expired and another worker took it over). A `final` attempt
        that fails is not retried."""
        d = s.webhook_deliveries
        now = utcnow()
        values: dict[str, Any] = {
            "response_code": outcome.response_code,
            "latency_ms": outcome.latency_ms,
            "error": None if outcome.error is None else outcome.error[:_ERROR_MAX],
            "claimed_by": None,
            "claimed_until": None,
            "updated_at": now,
        }
        status: Status
        if outcome.ok:
            status = "succeeded"
        elif final or delivery.attempts >= self.retry.max_attempts:
            status = "dead"
        else:
            status = "failed"
            values["next_attempt_at"] = now + self.retry.delay(delivery.attempts)
        with self.db.write() as conn:
            done = conn.execute(
                update(d)
                .where(d.c.id == delivery.id, d.c.status == "delivering", d.c.claimed_by == worker)
                .values(status=status, **values)
            ).rowcount
        return status if done else None

    # -- by hand ----------------------------------------------------------------------
    def redeliver(
        self, policy: WebhookPolicy, delivery_id: int, *, actor: outbox.Actor
    ) -> Delivery:
        """Queue a dead delivery again, with a fresh count of attempts."""
        d = s.webhook_deliveries
        now = utcnow()
        policy_id = policy.id
        with self.db.write() as conn:
            row = conn.execute(
                select(d.c.status).where(d.c.id == delivery_id, d.c.policy_id == policy_id)
            ).first()
            if row is None:
                raise Missing(f"no delivery {delivery_id} of webhook {policy_id}")
            if row.status != "dead":
                raise Exists(
                    f"delivery {delivery_id} is {row.status}; only dead ones are redelivered"
                )
            conn.execute(
                update(d)
                .where(d.c.id == delivery_id, d.c.status == "dead")
                .values(status="queued", attempts=0, next_attempt_at=now, updated_at=now)
            )
            emit_change(conn, outbox.WEBHOOK_REDELIVERED, actor, policy, delivery=delivery_id)
        return self.get(policy_id, delivery_id)

    def record_test(
        self, policy_id: int, payload: Callable[[int], str], worker: str, lease: timedelta
    ) -> Delivery:
        """A test delivery, created already claimed by the caller (it sends at once, and
        is not retried: a failed test ends dead, and can be redelivered)."""
        d = s.webhook_deliveries
        now = utcnow()
        with self.db.write() as conn:
            delivery_id = conn.execute(
                d.insert()
                .values(
                    policy_id=policy_id,
                    event_id=None,
                    event_type="webhook.test",
                    payload="",
                    status="delivering",
                    attempts=1,
                    next_attempt_at=now,
                    claimed_by=worker,
                    claimed_until=now + lease,
                    created_at=now,
                    updated_at=now,
                )
                .returning(d.c.id)
            ).scalar_one()
            conn.execute(
                update(d).where(d.c.id == delivery_id).values(payload=payload(int(delivery_id)))
            )
            row = conn.execute(select(d).where(d.c.id == delivery_id)).one()
        return _delivery(row)
