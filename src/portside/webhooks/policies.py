"""A project's webhook policies: create, read, change, delete.

A policy's target is checked by the egress policy when it is created or changed (a
refused target is a clear 400, `Invalid`), and again at every connection. The secret is
stored as given, since it signs each request; callers never show it after creation.
Every change raises its `webhook.*` event in its own transaction, in one shape whoever
calls (the API, the CLI, the UI through the API).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, func, select, update

from portside.auth.errors import Exists, Invalid, Missing
from portside.egress import EgressPolicy, Refused
from portside.events import outbox
from portside.metadata import schema as s
from portside.metadata.db import Database, as_utc, utcnow
from portside.webhooks.payloads import EVENT_TYPES, FORMATS, PayloadFormat

CONSUMER = "webhooks"  # the outbox cursor the dispatcher reads with
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
MAX_POLICIES = 50  # per project: every event of the project is matched against them
MAX_SECRET = 255
MAX_URL = 2048


@dataclass(frozen=True, slots=True)
class WebhookPolicy:
    id: int
    project: str
    name: str
    description: str | None
    enabled: bool
    target_url: str
    event_types: tuple[str, ...]
    payload_format: PayloadFormat
    secret: str | None
    created_by: str
    created_at: datetime
    updated_at: datetime

    def describe(self) -> str:
        return f"webhook {self.name!r} of project {self.project!r} ({self.target_url})"


_COLUMNS = (s.webhook_policies, s.projects.c.name.label("project"))


def _policy(row: Any) -> WebhookPolicy:
    return WebhookPolicy(
        id=int(row.id),
        project=row.project,
        name=row.name,
        description=row.description,
        enabled=bool(row.enabled),
        target_url=row.target_url,
        event_types=tuple(json.loads(row.event_types)),
        payload_format=row.payload_format,
        secret=row.secret,
        created_by=row.created_by,
        created_at=as_utc(row.created_at),
        updated_at=as_utc(row.updated_at),
    )


def _select() -> Any:
    w, p = s.webhook_policies, s.projects
    return select(*_COLUMNS).join(p, p.c.id == w.c.project_id)


def check_event_types(event_types: Sequence[str]) -> tuple[str, ...]:
    unknown = [t for t in event_types if t not in EVENT_TYPES]
    if unknown:
        raise Invalid(
            f"unknown event type {unknown[0]!r}; event types are: {', '.join(EVENT_TYPES)}"
        )
    if not event_types:
        raise Invalid("choose at least one event type")
    return tuple(dict.fromkeys(event_types))


class PolicyStore:
    def __init__(self, db: Database, egress: EgressPolicy) -> None:
        self.db = db
        self.egress = egress

    def check_target(self, url: str) -> str:
        """The URL if a webhook may be sent there; Invalid (400) saying why not."""
        if len(url) > MAX_URL:
            raise Invalid(f"the target URL is longer than {MAX_URL} characters")
        try:
            self.egress.check_saved(url)  # DNS is checked when a delivery connects
        except Refused as refused:
            raise Invalid(f"target {url!r} refused: {refused}") from None
        return url

    # -- reading ----------------------------------------------------------------------
    def find(self, project: str) -> list[WebhookPolicy]:
        with self.db.read() as conn:
            rows = conn.execute(
                _select().where(s.projects.c.name == project).order_by(s.webhook_policies.c.id)
            ).all()
        return [_policy(r) for r in rows]

    def get(self, project: str, policy_id: int) -> WebhookPolicy:
        with self.db.read() as conn:
            return self._get(conn, project, policy_id)

    def by_id(self, policy_id: int) -> WebhookPolicy | None:
        """Any project's policy (for the dispatcher); None if it was deleted."""
        with self.db.read() as conn:
            row = conn.execute(_select().where(s.webhook_policies.c.id == policy_id)).first()
        return None if row is None else _policy(row)

    def _get(self, conn: Connection, project: str, policy_id: int) -> WebhookPolicy:
        row = conn.execute(
            _select().where(s.projects.c.name == project, s.webhook_policies.c.id == policy_id)
        ).first()
        if row is None:
            raise Missing(f"no webhook {policy_id} in project {project!r}")
        return _policy(row)

    # -- changing ---------------------------------------------------------------------
    def create(
        self,
        project: str,
        *,
        name: str,
        target_url: str,
        event_types: Sequence[str],
        payload_format: PayloadFormat = "default",
        secret: str | None = None,
        description: str | None = None,
        enabled: bool = True,
        actor: outbox.Actor,
    ) -> WebhookPolicy:
        if not NAME.match(name):
            raise Invalid(
                "a webhook name is 1-64 letters, digits, '.', '_' or '-', starting with a "
                "letter or digit"
            )
        types = check_event_types(event_types)
        _check_format(payload_format)
        _check_secret(secret)
        self.check_target(target_url)
        w = s.webhook_policies
        now = utcnow()
        with self.db.write() as conn:
            project_id = _project_id(conn, project)
            count = conn.execute(
                select(func.count()).select_from(w).where(w.c.project_id == project_id)
            ).scalar_one()
            if count >= MAX_POLICIES:
                raise Invalid(f"project {project!r} already has {MAX_POLICIES} webhooks")
            if conn.execute(
                select(w.c.id).where(w.c.project_id == project_id, w.c.name == name)
            ).first():
                raise Exists(f"project {project!r} already has a webhook named {name!r}")
            policy_id = conn.execute(
                w.insert()
                .values(
                    project_id=project_id,
                    name=name,
                    description=description,
                    enabled=enabled,
                    target_url=target_url,
                    event_types=json.dumps(list(types)),
                    payload_format=payload_format,
                    secret=secret or None,
                    created_by=actor.name,
                    created_at=now,
                    updated_at=now,
                )
                .returning(w.c.id)
            ).scalar_one()
            self._start_cursor(conn)
            policy = self._get(conn, project, int(policy_id))
            emit_change(
                conn,
                outbox.WEBHOOK_CREATED,
                actor,
                policy,
                target_url=policy.target_url,
                event_types=list(policy.event_types),
                payload_format=policy.payload_format,
            )
            return policy

    def update(
        self,
        project: str,
        policy_id: int,
        *,
        target_url: str | None = None,
        event_types: Sequence[str] | None = None,
        payload_format: PayloadFormat | None = None,
        secret: str | None = None,
        clear_secret: bool = False,
        description: str | None = None,
        enabled: bool | None = None,
        actor: outbox.Actor,
    ) -> WebhookPolicy:
        """Change what is given (a new secret replaces the old; `clear_secret` removes
        it). Deliveries already queued keep the body they were queued with."""
        values: dict[str, Any] = {"updated_at": utcnow()}
        if target_url is not None:
            values["target_url"] = self.check_target(target_url)
        if event_types is not None:
            values["event_types"] = json.dumps(list(check_event_types(event_types)))
        if payload_format is not None:
            values["payload_format"] = _check_format(payload_format)
        if secret is not None:
            values["secret"] = _check_secret(secret) or None
        elif clear_secret:
            values["secret"] = None
        if description is not None:
            values["description"] = description or None
        if enabled is not None:
            values["enabled"] = enabled
        changed = {k: v for k, v in values.items() if k not in ("updated_at", "secret")}
        if "event_types" in changed:
            changed["event_types"] = json.loads(changed["event_types"])
        if "secret" in values:
            changed["secret"] = "changed" if values["secret"] else "removed"
        w = s.webhook_policies
        with self.db.write() as conn:
            current = self._get(conn, project, policy_id)
            conn.execute(update(w).where(w.c.id == current.id).values(**values))
            policy = self._get(conn, project, policy_id)
            emit_change(conn, outbox.WEBHOOK_UPDATED, actor, policy, **changed)
            return policy

    def delete(self, project: str, policy_id: int, *, actor: outbox.Actor) -> WebhookPolicy:
        """Remove a policy with its delivery history."""
        w = s.webhook_policies
        with self.db.write() as conn:
            current = self._get(conn, project, policy_id)
            emit_change(conn, outbox.WEBHOOK_DELETED, actor, current, target_url=current.target_url)
            conn.execute(
                delete(s.webhook_deliveries).where(s.webhook_deliveries.c.policy_id == current.id)
            )
            conn.execute(delete(w).where(w.c.id == current.id))
        return current

    def _start_cursor(self, conn: Connection) -> None:
        """The webhooks consumer starts at the events that follow the first policy
        (events from before any policy existed are never sent)."""
        last = conn.execute(select(func.coalesce(func.max(s.events.c.id), 0))).scalar_one()
        self.db.insert_ignore(
            conn,
            s.event_cursors,
            {"consumer": CONSUMER, "position": int(last), "updated_at": utcnow()},
        )


def emit_change(
    conn: Connection, type_: str, actor: outbox.Actor, policy: WebhookPolicy, **data: Any
) -> None:
    """A `webhook.*` event about `policy`, in the caller's transaction."""
    outbox.emit(
        conn,
        type_,
        actor,
        resource=f"{policy.project}/webhooks/{policy.name}",
        project=policy.project,
        data=data,
    )


def _project_id(conn: Connection, project: str) -> int:
    value = conn.execute(
        select(s.projects.c.id).where(s.projects.c.name == project)
    ).scalar_one_or_none()
    if value is None:
        raise Missing(f"no project {project!r}")
    return int(value)


def _check_format(payload_format: str) -> PayloadFormat:
    if payload_format not in FORMATS:
        raise Invalid(
            f"unknown payload format {payload_format!r}; formats are: {', '.join(FORMATS)}"
        )
    return payload_format


def _check_secret(secret: str | None) -> str | None:
    if secret is not None and len(secret) > MAX_SECRET:
        raise Invalid(f"the secret is longer than {MAX_SECRET} characters")
    return secret
