"""Applying a retention plan while the registry serves: one short write transaction per
manifest, dependants first, each locking the row and re-checking that it is still as
the plan saw it (skipped otherwise). Manifests and tags go; blobs are left for garbage
collection."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import structlog
from sqlalchemy import delete, exists, select

from portside.content.immutability import load_matcher
from portside.content.retention.planner import Deletion, RetentionPlan, opt_utc
from portside.metadata import schema as s
from portside.metadata.db import Database, as_utc

log = structlog.get_logger(__name__)

_CHUNK = 500

Recorder = Callable[[Deletion], None]
"""Called after each deletion (e.g. to write the audit log)."""


@dataclass
class RetentionResult:
    deleted: list[Deletion] = field(default_factory=list)
    skipped: list[tuple[Deletion, str]] = field(default_factory=list)  # with the reason
    blob_bytes: int = 0  # of the plan's blobs, those no manifest lists after the run

    @property
    def tags(self) -> int:
        return sum(len(d.tags) for d in self.deleted)

    @property
    def manifest_bytes(self) -> int:
        return sum(d.size for d in self.deleted)

    @property
    def bytes_freed(self) -> int:
        return self.blob_bytes + self.manifest_bytes


class Applier:
    def __init__(self, db: Database, record: Recorder | None = None) -> None:
        self.db = db
        self.record = record

    def apply(
        self,
        plan: RetentionPlan,
        *,
        check: Callable[[], None] | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> RetentionResult:
        """Delete what the plan says, re-checking each item under a lock. `check` is
        called between repositories (and every few hundred deletions) and may raise to
        stop: what was deleted stays deleted, and nothing is left half-done."""
        result = RetentionResult()
        total = len(plan.deletions)
        previous: str | None = None
        for number, item in enumerate(plan.deletions):
            boundary = number % _CHUNK == 0 or item.repository != previous
            if check is not None and number and boundary:
                check()
            previous = item.repository
            why = self._delete(item, plan.project)
            if why is None:
                result.deleted.append(item)
                log.info("retention.deleted", repo=item.repository, digest=item.digest)
                if self.record is not None:
                    self.record(item)
            else:
                result.skipped.append((item, why))
                log.info("retention.skipped", repo=item.repository, digest=item.digest, reason=why)
            if progress is not None:
                progress(number + 1, total)
        result.blob_bytes = self._blob_bytes_freed(plan, result)
        return result

    def _delete(self, item: Deletion, project: str) -> str | None:
        """Delete one planned manifest if it is still as planned; else say why not."""
        m, t, c, mb = s.manifests, s.tags, s.manifest_children, s.manifest_blobs
        with self.db.write() as conn:
            # FOR UPDATE (PostgreSQL): a tag being pointed at this manifest, or an index
            # listing it being pushed, waits for this transaction or is seen below.
            row = conn.execute(
                select(m.c.digest, m.c.pushed_at, m.c.last_pulled_at)
                .where(m.c.id == item.manifest_id)
                .with_for_update()
            ).first()
            if row is None or row.digest != item.digest:
                return "already deleted"
            if as_utc(row.pushed_at) != item.pushed_at:
                return "pushed again since the plan"
            if opt_utc(row.last_pulled_at) != item.last_pulled_at:
                return "pulled since the plan"
            tags = set(
                conn.execute(select(t.c.name).where(t.c.manifest_id == item.manifest_id)).scalars()
            )
            if tags != set(item.tags):
                return "its tags changed since the plan"
            # Rules are read in this transaction: one added during a long run counts.
            matcher = load_matcher(conn, project) if tags else None
            for tag in sorted(tags):
                protecting = matcher.rule_for(item.repository, tag) if matcher else None
                if protecting is not None:
                    return f"tag {tag!r} is protected by {protecting.describe()}"
            in_repository = select(m.c.id).where(m.c.repository_id == item.repository_id)
            needed = conn.execute(
                select(
                    exists().where(
                        c.c.child_digest == item.digest, c.c.manifest_id.in_(in_repository)
                    )
                    | exists().where(
                        m.c.repository_id == item.repository_id, m.c.subject_digest == item.digest
                    )
                )
            ).scalar_one()
            if needed:
                return "an index or a referrer in the repository still needs it"
            conn.execute(delete(t).where(t.c.manifest_id == item.manifest_id))
            conn.execute(delete(mb).where(mb.c.manifest_id == item.manifest_id))
            conn.execute(delete(c).where(c.c.manifest_id == item.manifest_id))
            conn.execute(delete(m).where(m.c.id == item.manifest_id))
        return None

    def _blob_bytes_freed(self, plan: RetentionPlan, result: RetentionResult) -> int:
        """Of the blobs the plan expected to free, those no manifest lists now."""
        if not result.deleted or not plan.blobs:
            return 0
        digests = sorted(plan.blobs)
        still_listed: set[str] = set()
        mb = s.manifest_blobs
        with self.db.read() as conn:
            for start in range(0, len(digests), _CHUNK):
                chunk = digests[start : start + _CHUNK]
                still_listed.update(
                    conn.execute(
                        select(mb.c.digest).where(mb.c.digest.in_(chunk)).distinct()
                    ).scalars()
                )
        return sum(size for digest, size in plan.blobs.items() if digest not in still_listed)
