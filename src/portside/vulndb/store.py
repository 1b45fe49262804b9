"""Writing imports into the vulnerability database and reading its state.

An import of a source writes its rows under a new generation (`vulndb_imports.id`) in
batched transactions (BATCH advisories each), invisible to readers, who only read the
generations `vulndb_sources` points at. `Import.commit` then, in one transaction,
points the source at the new generation and raises `vulndb.updated` in the outbox: a
reader sees the old data or the new, never a mix. A failed import (bad input, a crash)
leaves the source on its old generation; its rows are deleted (at once, or by the next
import of that source).

The generation a source left stays until the next import of that source, so a match
that read the generations in use just before a switch can still finish its batches.
The database's overall generation is the highest generation in use: it grows with every
successful import, and a scan records it to say which data it used.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update

from portside.events import outbox
from portside.events.outbox import SYSTEM, Actor
from portside.metadata import schema as s
from portside.metadata.db import Database, as_utc, utcnow
from portside.vulndb import names
from portside.vulndb.model import Advisory

BATCH = 500  # advisories per write transaction
_DELETE_BATCH = 5000
# An import still marked running after this long died with its process.
STALE_AFTER = timedelta(hours=6)


@dataclass(frozen=True, slots=True)
class SourceStatus:
    name: str
    format: str
    import_id: int
    imported_at: datetime
    advisories: int
    packages: int
    fingerprint: str | None


@dataclass(frozen=True, slots=True)
class LastFailure:
    source: str
    at: datetime
    error: str


@dataclass(frozen=True, slots=True)
class Status:
    generation: int | None  # None: nothing imported yet
    sources: tuple[SourceStatus, ...]
    failures: tuple[LastFailure, ...]  # each source's latest import, when it failed

    @property
    def advisories(self) -> int:
        return sum(source.advisories for source in self.sources)

    def document(self) -> dict[str, Any]:
        """As JSON: what `portside vulndb status --json` and GET /api/v1/vulndb show."""
        return {
            "generation": self.generation,
            "advisories": self.advisories,
            "sources": [
                {
                    "name": s.name,
                    "format": s.format,
                    "import_id": s.import_id,
                    "imported_at": s.imported_at.isoformat(),
                    "advisories": s.advisories,
                    "packages": s.packages,
                }
                for s in self.sources
            ],
            "failures": [
                {"source": f.source, "at": f.at.isoformat(), "error": f.error}
                for f in self.failures
            ],
        }


def _ranges(affected: Any) -> str:
    return json.dumps(
        [{"type": r.type, "events": [{k: v} for k, v in r.events]} for r in affected.ranges]
    )


def _delete_import_rows(db: Database, import_ids: list[int]) -> None:
    """Delete the rows of these generations, a batch per transaction."""
    for table in (s.vulndb_affected, s.vulndb_advisories):
        for import_id in import_ids:
            while True:
                batch = (
                    select(table.c.id)
                    .where(table.c.import_id == import_id)
                    .limit(_DELETE_BATCH)
                    .scalar_subquery()
                )
                with db.write() as conn:
                    if not conn.execute(delete(table).where(table.c.id.in_(batch))).rowcount:
                        break


class Import:
    """One import of one source; use as a context manager: `add` advisories, then
    `commit`. Leaving the block without commit (an exception) abandons the import."""

    def __init__(
        self,
        db: Database,
        source: str,
        fmt: str,
        *,
        fingerprint: str | None = None,
        actor: Actor = SYSTEM,
    ) -> None:
        self.db = db
        self.source = source
        self.format = fmt
        self.fingerprint = fingerprint
        self.actor = actor
        self.id = 0
        self.advisories = 0
        self.packages = 0
        self._pending: list[Advisory] = []
        self._done = False

    def __enter__(self) -> Import:
        self._clean_leftovers()
        with self.db.write() as conn:
            self.id = int(
                conn.execute(
                    insert(s.vulndb_imports)
                    .values(
                        source=self.source,
                        format=self.format,
                        status="running",
                        started_at=utcnow(),
                        advisories=0,
                        packages=0,
                        fingerprint=self.fingerprint,
                    )
                    .returning(s.vulndb_imports.c.id)
                ).scalar_one()
            )
        return self

    def __exit__(self, kind: object, error: BaseException | None, _tb: object) -> None:
        if not self._done:
            self.abandon(str(error) if error is not None else "abandoned")

    def _clean_leftovers(self) -> None:
        """Rows of this source's generations that are neither in use nor still being
        written: failed, superseded, or running for longer than STALE_AFTER."""
        i = s.vulndb_imports
        current = select(s.vulndb_sources.c.import_id).where(s.vulndb_sources.c.name == self.source)
        with self.db.read() as conn:
            rows = conn.execute(
                select(i.c.id, i.c.status, i.c.started_at).where(
                    i.c.source == self.source, i.c.id.not_in(current)
                )
            ).all()
        cutoff = utcnow() - STALE_AFTER
        old = [
            int(r.id)
            for r in rows
            if r.status in ("failed", "superseded")
            or (r.status == "running" and as_utc(r.started_at) < cutoff)
        ]
        if old:
            _delete_import_rows(self.db, old)
            with self.db.write() as conn:
                conn.execute(
                    update(i)
                    .where(i.c.id.in_(old), i.c.status == "running")
                    .values(status="failed", error="abandoned (its process stopped)")
                )

    def add(self, advisory: Advisory) -> None:
        self._pending.append(advisory)
        if len(self._pending) >= BATCH:
            self.flush()

    @property
    def count(self) -> int:
        """Advisories added so far (written or not)."""
        return self.advisories + len(self._pending)

    def add_all(self, advisories: Iterable[Advisory]) -> None:
        for advisory in advisories:
            self.add(advisory)

    def flush(self) -> None:
        if not self._pending:
            return
        batch, self._pending = self._pending, []
        a = s.vulndb_advisories
        rows = [
            {
                "import_id": self.id,
                "vuln_id": adv.id[:255],
                "aliases": json.dumps(list(adv.aliases)),
                "summary": adv.summary,
                "severity": int(adv.severity),
                "cvss_score": adv.cvss_score,
                "cvss_vector": (adv.cvss_vector or "")[:255] or None,
                "links": json.dumps(list(adv.links)),
            }
            for adv in batch
        ]
        with self.db.write() as conn:
            ids = conn.execute(
                insert(a).returning(a.c.id, sort_by_parameter_order=True), rows
            ).scalars()
            affected = [
                {
                    "advisory_id": advisory_id,
                    "import_id": self.id,
                    "ecosystem": package.ecosystem[:100],
                    "name": names.normalize(package.ecosystem, package.name)[:255],
                    "ranges": _ranges(package),
                    "versions": json.dumps(list(package.versions)),
                    "severity": None if package.severity is None else int(package.severity),
                }
                for advisory_id, adv in zip(list(ids), batch, strict=True)
                for package in adv.affected
            ]
            if affected:
                conn.execute(insert(s.vulndb_affected), affected)
        self.advisories += len(batch)
        self.packages += len(affected)

    def commit(self) -> int:
        """Switch the source to this import; returns the new overall generation."""
        self.flush()
        now = utcnow()
        t, i = s.vulndb_sources, s.vulndb_imports
        values = {
            "import_id": self.id,
            "format": self.format,
            "imported_at": now,
            "advisories": self.advisories,
            "packages": self.packages,
            "fingerprint": self.fingerprint,
        }
        with self.db.write() as conn:
            previous = conn.execute(
                select(t.c.import_id).where(t.c.name == self.source).with_for_update()
            ).scalar_one_or_none()
            if previous is None:
                conn.execute(insert(t).values(name=self.source, **values))
            else:
                conn.execute(update(t).where(t.c.name == self.source).values(**values))
                conn.execute(update(i).where(i.c.id == previous).values(status="superseded"))
            conn.execute(
                update(i)
                .where(i.c.id == self.id)
                .values(
                    status="complete",
                    finished_at=now,
                    advisories=self.advisories,
                    packages=self.packages,
                )
            )
            generation = current_generation(conn)
            assert generation is not None  # this source now has one
            outbox.emit(
                conn,
                outbox.VULNDB_UPDATED,
                self.actor,
                resource=self.source,
                data={
                    "source": self.source,
                    "import_id": self.id,
                    "generation": generation,
                    "advisories": self.advisories,
                    "packages": self.packages,
                },
            )
        self._done = True
        return generation

    def abandon(self, error: str) -> None:
        """Mark the import failed and delete what it wrote; the source keeps its data."""
        self._done = True
        self._pending = []
        if not self.id:
            return
        with self.db.write() as conn:
            conn.execute(
                update(s.vulndb_imports)
                .where(s.vulndb_imports.c.id == self.id)
                .values(status="failed", finished_at=utcnow(), error=error[:4000])
            )
        _delete_import_rows(self.db, [self.id])


def current_generation(conn: Connection) -> int | None:
    value = conn.execute(select(func.max(s.vulndb_sources.c.import_id))).scalar()
    return None if value is None else int(value)


def generation(db: Database) -> int | None:
    """The database's generation now (None: nothing imported): a scan compares it with
    the one it recorded to know whether the data changed since."""
    with db.read() as conn:
        return current_generation(conn)


def current_imports(conn: Connection) -> list[int]:
    return [int(v) for v in conn.execute(select(s.vulndb_sources.c.import_id)).scalars()]


def fingerprint_of(db: Database, source: str) -> str | None:
    """What the source looked like when it was last imported (to skip unchanged ones)."""
    t = s.vulndb_sources
    with db.read() as conn:
        value = conn.execute(select(t.c.fingerprint).where(t.c.name == source)).scalar()
    return None if value is None else str(value)


def status(db: Database) -> Status:
    t, i = s.vulndb_sources, s.vulndb_imports
    with db.read() as conn:
        sources = conn.execute(select(t).order_by(t.c.name)).all()
        generation = current_generation(conn)
        latest = (
            select(i.c.source, func.max(i.c.id).label("id"))
            .where(i.c.status != "running")
            .group_by(i.c.source)
            .subquery()
        )
        failed = conn.execute(
            select(i.c.source, i.c.finished_at, i.c.error)
            .join(latest, latest.c.id == i.c.id)
            .where(i.c.status == "failed")
            .order_by(i.c.source)
        ).all()
    return Status(
        generation=generation,
        sources=tuple(
            SourceStatus(
                name=r.name,
                format=r.format,
                import_id=int(r.import_id),
                imported_at=as_utc(r.imported_at),
                advisories=int(r.advisories),
                packages=int(r.packages),
                fingerprint=r.fingerprint,
            )
            for r in sources
        ),
        failures=tuple(
            LastFailure(r.source, as_utc(r.finished_at or utcnow()), r.error or "") for r in failed
        ),
    )
