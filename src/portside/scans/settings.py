"""Saving a project's scan settings and the CVE allowlists (reading them, and the policy
they feed, is portside.content.vulnerability)."""

from __future__ import annotations

import json
import re
from datetime import datetime

from sqlalchemy import select, update

from portside.auth.errors import Invalid, Missing
from portside.content.vulnerability import (
    SYSTEM_SCOPE,
    Allowlist,
    ScanSettings,
    project_scope,
    read_allowlist,
    read_settings,
)
from portside.events import outbox
from portside.events.outbox import Actor
from portside.metadata import schema as s
from portside.metadata.db import Database, utcnow

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
MAX_ITEMS = 10_000
CURSOR = "scans"


def check_ids(items: list[str]) -> tuple[str, ...]:
    cleaned: list[str] = []
    for item in items:
        value = item.strip().upper()
        if not _ID.fullmatch(value):
            raise Invalid(f"{item[:60]!r} is not a vulnerability id such as CVE-2024-1234")
        if value not in cleaned:
            cleaned.append(value)
    if len(cleaned) > MAX_ITEMS:
        raise Invalid(f"an allowlist holds at most {MAX_ITEMS} ids")
    return tuple(cleaned)


class ScanSettingsStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def _project_id(self, project: str) -> int:
        with self.db.read() as conn:
            value = conn.execute(
                select(s.projects.c.id).where(s.projects.c.name == project)
            ).scalar_one_or_none()
        if value is None:
            raise Missing(f"no project {project!r}")
        return int(value)

    def get(self, project: str) -> ScanSettings:
        project_id = self._project_id(project)
        with self.db.read() as conn:
            return read_settings(conn, project_id)

    def save(self, project: str, settings: ScanSettings, actor: Actor) -> ScanSettings:
        project_id = self._project_id(project)
        t = s.project_scan_settings
        values = {
            "auto_scan": settings.auto_scan,
            "generate_sbom": settings.generate_sbom,
            "prevent_vulnerable": settings.prevent_vulnerable,
            "severity": int(settings.severity),
            "reuse_system_allowlist": settings.reuse_system_allowlist,
            "updated_by": actor.name,
            "updated_at": utcnow(),
        }
        with self.db.write() as conn:
            changed = conn.execute(update(t).where(t.c.project_id == project_id).values(**values))
            if changed.rowcount == 0:
                conn.execute(t.insert().values(project_id=project_id, **values))
            if settings.auto_scan:
                ensure_cursor(self.db, conn)
            outbox.emit(
                conn,
                outbox.PROJECT_SCAN_SETTINGS_UPDATED,
                actor,
                resource=project,
                project=project,
                data={
                    **{k: v for k, v in values.items() if k not in ("updated_by", "updated_at")},
                    "severity": settings.severity.name.lower(),
                },
            )
        return self.get(project)

    # -- allowlists ---------------------------------------------------------------------
    def allowlist(self, project: str | None) -> Allowlist:
        scope = SYSTEM_SCOPE if project is None else project_scope(self._project_id(project))
        with self.db.read() as conn:
            return read_allowlist(conn, scope)

    def save_allowlist(
        self,
        project: str | None,
        items: list[str],
        expires_at: datetime | None,
        actor: Actor,
    ) -> Allowlist:
        project_id = None if project is None else self._project_id(project)
        scope = SYSTEM_SCOPE if project_id is None else project_scope(project_id)
        ids = check_ids(items)
        t = s.cve_allowlists
        values = {
            "items": json.dumps(list(ids)),
            "expires_at": expires_at,
            "updated_by": actor.name,
            "updated_at": utcnow(),
        }
        with self.db.write() as conn:
            changed = conn.execute(update(t).where(t.c.scope == scope).values(**values))
            if changed.rowcount == 0:
                conn.execute(t.insert().values(scope=scope, project_id=project_id, **values))
            outbox.emit(
                conn,
                outbox.CVE_ALLOWLIST_UPDATED,
                actor,
                resource=project or "system",
                project=project,
                data={
                    "items": list(ids),
                    "expires_at": expires_at.isoformat() if expires_at else None,
                },
            )
        return self.allowlist(project)


def ensure_cursor(db: Database, conn: object) -> None:
    """Start the `scans` outbox consumer's cursor at the newest event (if it has none),
    so pushes from now on are scanned and the idle worker knows to wake for them."""
    from sqlalchemy import Connection, func

    assert isinstance(conn, Connection)
    latest = conn.execute(select(func.coalesce(func.max(s.events.c.id), 0))).scalar_one()
    db.insert_ignore(
        conn,
        s.event_cursors,
        {"consumer": CURSOR, "position": int(latest), "updated_at": utcnow()},
    )
