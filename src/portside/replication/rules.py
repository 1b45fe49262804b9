"""Replication rules (Harbor's model): what to copy between Portside and an endpoint.

A push rule copies local repositories to the endpoint; a pull rule copies the endpoint's
repositories here. Filters: a repository name pattern and a tag pattern (glob, as in
content/patterns.py), labels (`key=value` annotations the artifact's manifest must
carry), and the kind of resource (`images`, `artifacts` or `all`). Destination: an
optional namespace and a flattening level (`naming.destination`). Triggers: `manual`,
`scheduled` (a cron; the schedule itself lives in the job schedules, kept in step by the
callers that can reach them) and `event` (push rules only: each push or deletion in a
matching repository queues a run for it).

Rules are managed by system administrators; every change raises its
`replication.rule.*` event in its transaction.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from croniter import croniter
from sqlalchemy import Connection, func, select, update

from portside.auth.errors import Exists, Invalid, Missing
from portside.content.patterns import NamePattern, PatternError
from portside.events import outbox
from portside.metadata import schema as s
from portside.metadata.db import Database, as_utc, utcnow

Direction = Literal["push", "pull"]
Resources = Literal["images", "artifacts", "all"]
Trigger = Literal["manual", "scheduled", "event"]
DIRECTIONS: tuple[Direction, ...] = ("push", "pull")
RESOURCES: tuple[Resources, ...] = ("images", "artifacts", "all")
TRIGGERS: tuple[Trigger, ...] = ("manual", "scheduled", "event")
FLATTENING = (-1, 0, 1, 2, 3)  # Harbor's: all levels, none, 1 (its default), 2, 3
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
CONSUMER = "replication"  # the outbox cursor event-triggered runs are queued from
_NAMESPACE = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$")
_LABEL = re.compile(r"^[^=\s]{1,255}=.{0,1024}$")


@dataclass(frozen=True, slots=True)
class Rule:
    id: int
    name: str
    description: str | None
    enabled: bool
    direction: Direction
    endpoint: str  # the endpoint's name
    endpoint_id: int
    repositories: str
    tags: str
    labels: tuple[str, ...]
    resources: Resources
    destination_namespace: str | None
    flattening: int
    copy_deletions: bool
    override: bool
    bandwidth_kbps: int | None
    trigger: Trigger
    cron: str | None
    created_by: str
    created_at: datetime
    updated_at: datetime

    @property
    def schedule_name(self) -> str:
        """The job schedule of a scheduled rule."""
        return f"replication-{self.id}"

    def repository_pattern(self) -> NamePattern:
        return NamePattern(self.repositories)

    def tag_pattern(self) -> NamePattern:
        return NamePattern(self.tags)

    def describe(self) -> str:
        arrow = "->" if self.direction == "push" else "<-"
        return f"replication rule {self.name!r} ({self.direction} {arrow} {self.endpoint})"


def _rule(row: Any) -> Rule:
    return Rule(
        id=int(row.id),
        name=row.name,
        description=row.description,
        enabled=bool(row.enabled),
        direction=row.direction,
        endpoint=row.endpoint,
        endpoint_id=int(row.endpoint_id),
        repositories=row.repositories,
        tags=row.tags,
        labels=tuple(json.loads(row.labels)),
        resources=row.resources,
        destination_namespace=row.destination_namespace,
        flattening=int(row.flattening),
        copy_deletions=bool(row.copy_deletions),
        override=bool(row.override),
        bandwidth_kbps=row.bandwidth_kbps,
        trigger=row.trigger,
        cron=row.cron,
        created_by=row.created_by,
        created_at=as_utc(row.created_at),
        updated_at=as_utc(row.updated_at),
    )


def _select() -> Any:
    r, e = s.replication_rules, s.registry_endpoints
    return select(r, e.c.name.label("endpoint")).join(e, e.c.id == r.c.endpoint_id)


class RuleStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- reading ----------------------------------------------------------------------
    def find(self, *, direction: str | None = None) -> list[Rule]:
        query = _select().order_by(s.replication_rules.c.name)
        if direction is not None:
            query = query.where(s.replication_rules.c.direction == direction)
        with self.db.read() as conn:
            return [_rule(r) for r in conn.execute(query).all()]

    def get(self, name: str) -> Rule:
        with self.db.read() as conn:
            return self._get(conn, name)

    def by_id(self, rule_id: int) -> Rule | None:
        with self.db.read() as conn:
            row = conn.execute(_select().where(s.replication_rules.c.id == rule_id)).first()
        return None if row is None else _rule(row)

    @staticmethod
    def event_rules(conn: Connection) -> list[Rule]:
        """The enabled event-triggered rules, read in the caller's transaction."""
        r = s.replication_rules
        query = _select().where(r.c.trigger == "event", r.c.enabled.is_(True)).order_by(r.c.id)
        return [_rule(row) for row in conn.execute(query).all()]

    @staticmethod
    def _get(conn: Connection, name: str) -> Rule:
        row = conn.execute(_select().where(s.replication_rules.c.name == name)).first()
        if row is None:
            raise Missing(f"no replication rule {name!r}")
        return _rule(row)

    # -- changing ---------------------------------------------------------------------
    def create(
        self, *, name: str, direction: str, endpoint: str, actor: outbox.Actor, **options: Any
    ) -> Rule:
        if not NAME.match(name):
            raise Invalid(
                "a rule name is 1-64 letters, digits, '.', '_' or '-', starting with a "
                "letter or digit"
            )
        if direction not in DIRECTIONS:
            raise Invalid(f"direction must be one of {', '.join(DIRECTIONS)}")
        values = _defaults() | {k: v for k, v in options.items() if v is not None}
        values["direction"] = direction
        checked = _check(values)
        r = s.replication_rules
        now = utcnow()
        with self.db.write() as conn:
            endpoint_id = _endpoint_id(conn, endpoint)
            if conn.execute(select(r.c.id).where(r.c.name == name)).first():
                raise Exists(f"a replication rule named {name!r} exists")
            conn.execute(
                r.insert().values(
                    name=name,
                    endpoint_id=endpoint_id,
                    created_by=actor.name,
                    created_at=now,
                    updated_at=now,
                    **checked,
                )
            )
            rule = self._get(conn, name)
            self._start_cursor(conn, rule)
            _emit(
                conn,
                outbox.REPLICATION_RULE_CREATED,
                actor,
                rule,
                **_shown(checked),
                endpoint=endpoint,
            )
            return rule

    def update(
        self, name: str, *, actor: outbox.Actor, endpoint: str | None = None, **options: Any
    ) -> Rule:
        """Change what is given (None: unchanged; `description=""`, `cron=""`,
        `bandwidth_kbps=0` and `destination_namespace=""` clear)."""
        r = s.replication_rules
        with self.db.write() as conn:
            current = self._get(conn, name)
            merged = {
                "description": current.description,
                "enabled": current.enabled,
                "direction": current.direction,
                "repositories": current.repositories,
                "tags": current.tags,
                "labels": list(current.labels),
                "resources": current.resources,
                "destination_namespace": current.destination_namespace,
                "flattening": current.flattening,
                "copy_deletions": current.copy_deletions,
                "override": current.override,
                "bandwidth_kbps": current.bandwidth_kbps,
                "trigger": current.trigger,
                "cron": current.cron,
            }
            given = {k: v for k, v in options.items() if v is not None}
            merged.update(given)
            checked = _check(merged)
            values: dict[str, Any] = dict(checked, updated_at=utcnow())
            if endpoint is not None:
                values["endpoint_id"] = _endpoint_id(conn, endpoint)
            conn.execute(update(r).where(r.c.id == current.id).values(**values))
            rule = self._get(conn, name)
            self._start_cursor(conn, rule)
            changed = {k: checked[k] for k in given if k in checked}
            if endpoint is not None:
                changed["endpoint"] = endpoint
            _emit(conn, outbox.REPLICATION_RULE_UPDATED, actor, rule, **_shown(changed))
            return rule

    def _start_cursor(self, conn: Connection, rule: Rule) -> None:
        """Event runs cover the pushes after the first event rule exists: the consumer's
        cursor starts at the latest event then (not at the first worker's look)."""
        if rule.trigger != "event":
            return
        last = conn.execute(select(func.coalesce(func.max(s.events.c.id), 0))).scalar_one()
        self.db.insert_ignore(
            conn,
            s.event_cursors,
            {"consumer": CONSUMER, "position": int(last), "updated_at": utcnow()},
        )

    def delete(self, name: str, *, actor: outbox.Actor) -> Rule:
        """Remove a rule with its run records (the jobs stay in the job history)."""
        r = s.replication_rules
        with self.db.write() as conn:
            current = self._get(conn, name)
            _emit(conn, outbox.REPLICATION_RULE_DELETED, actor, current)
            conn.execute(
                s.replication_runs.delete().where(s.replication_runs.c.rule_id == current.id)
            )
            conn.execute(r.delete().where(r.c.id == current.id))
        return current


def _defaults() -> dict[str, Any]:
    return {
        "description": None,
        "enabled": True,
        "repositories": "**",
        "tags": "**",
        "labels": [],
        "resources": "all",
        "destination_namespace": None,
        "flattening": 1,
        "copy_deletions": False,
        "override": True,
        "bandwidth_kbps": None,
        "trigger": "manual",
        "cron": None,
    }


def _check(values: dict[str, Any]) -> dict[str, Any]:
    """The column values of a rule, validated (Invalid naming the field otherwise)."""
    for field in ("repositories", "tags"):
        try:
            NamePattern(str(values[field]))
        except PatternError as error:
            raise Invalid(f"{field}: {error}") from None
    labels: Sequence[str] = values["labels"] or []
    for label in labels:
        if not isinstance(label, str) or not _LABEL.match(label):
            raise Invalid(f"labels: {str(label)[:100]!r} is not key=value")
    if values["resources"] not in RESOURCES:
        raise Invalid(f"resources must be one of {', '.join(RESOURCES)}")
    namespace = values["destination_namespace"] or None
    if namespace is not None and not _NAMESPACE.match(namespace):
        raise Invalid(
            "destination_namespace must be a repository path such as `backup` or `dr/team`"
        )
    if values["flattening"] not in FLATTENING:
        raise Invalid("flattening must be -1 (all levels), 0 (none), 1, 2 or 3")
    bandwidth = values["bandwidth_kbps"] or None
    if bandwidth is not None and not 1 <= int(bandwidth) <= 10**8:
        raise Invalid("bandwidth_kbps must be from 1 to 100000000 (0: unlimited)")
    trigger = values["trigger"]
    if trigger not in TRIGGERS:
        raise Invalid(f"trigger must be one of {', '.join(TRIGGERS)}")
    cron = values["cron"] or None
    if trigger == "scheduled":
        if cron is None or not croniter.is_valid(cron):
            raise Invalid("a scheduled rule needs a valid cron expression, e.g. `0 3 * * *`")
    else:
        cron = None
    if trigger == "event" and values["direction"] != "push":
        raise Invalid("event triggers are for push rules (pushes and deletions here)")
    if values["copy_deletions"] and values["direction"] != "push":
        raise Invalid("copy_deletions applies to push rules")
    return {
        "description": values["description"] or None,
        "enabled": bool(values["enabled"]),
        "direction": values["direction"],
        "repositories": values["repositories"],
        "tags": values["tags"],
        "labels": json.dumps(list(labels)),
        "resources": values["resources"],
        "destination_namespace": namespace,
        "flattening": int(values["flattening"]),
        "copy_deletions": bool(values["copy_deletions"]),
        "override": bool(values["override"]),
        "bandwidth_kbps": bandwidth,
        "trigger": trigger,
        "cron": cron,
    }


def _shown(values: dict[str, Any]) -> dict[str, Any]:
    shown = dict(values)
    if isinstance(shown.get("labels"), str):
        shown["labels"] = json.loads(shown["labels"])
    return shown


def _endpoint_id(conn: Connection, name: str) -> int:
    found = conn.execute(
        select(s.registry_endpoints.c.id).where(s.registry_endpoints.c.name == name)
    ).scalar_one_or_none()
    if found is None:
        raise Invalid(f"no endpoint {name!r}")
    return int(found)


def _emit(conn: Connection, type_: str, actor: outbox.Actor, rule: Rule, **data: Any) -> None:
    outbox.emit(conn, type_, actor, resource=f"replication/rules/{rule.name}", data=data)
