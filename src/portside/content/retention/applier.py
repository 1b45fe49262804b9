"""Applying a retention plan while the registry serves: one short write transaction per
manifest, keepers first, each through content.deletion (which locks the row, re-checks
the rule and takes along what only that manifest kept) after checking that it is still
as the plan saw it (skipped otherwise). Manifests and tags go; blobs are left for garbage
collection."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import structlog
from sqlalchemy import select

from portside.content.deletion import Deleted, Locked, Outcome, Policy, delete_manifest
from portside.content.retention.planner import Deletion, RetentionPlan
from portside.events.outbox import Actor
from portside.metadata import schema as s
from portside.metadata.db import Database

log = structlog.get_logger(__name__)

_CHUNK = 500

ACTOR = Actor("retention")

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
        planned = {d.manifest_id: d for d in plan.deletions}
        taken: set[int] = set()  # planned manifests an earlier deletion took along
        previous: str | None = None
        for number, item in enumerate(plan.deletions):
            boundary = number % _CHUNK == 0 or item.repository != previous
            if check is not None and number and boundary:
                check()
            previous = item.repository
            if item.manifest_id in taken:
                self._done(result, item)
            else:
                outcome = self._delete(item, plan)
                if outcome.skipped is not None:
                    result.skipped.append((item, outcome.skipped))
                    log.info(
                        "retention.skipped",
                        repo=item.repository,
                        digest=item.digest,
                        reason=outcome.skipped,
                    )
                for removed in outcome.deleted:
                    if removed.manifest.id == item.manifest_id:
                        self._done(result, item)
                    elif removed.manifest.id in planned:
                        taken.add(removed.manifest.id)  # reported in the plan's order
                    else:  # changed since the plan (a tag removed), then unneeded
                        self._done(result, _unplanned(removed, item.repository_id))
            if progress is not None:
                progress(number + 1, total)
        result.blob_bytes = self._blob_bytes_freed(plan, result)
        return result

    def _done(self, result: RetentionResult, item: Deletion) -> None:
        result.deleted.append(item)
        log.info("retention.deleted", repo=item.repository, digest=item.digest)
        if self.record is not None:
            self.record(item)

    def _delete(self, item: Deletion, plan: RetentionPlan) -> Outcome:
        """Delete one planned manifest if it is still as planned; else say why not."""

        def as_planned(found: Locked) -> str | None:
            if found.pushed_at != item.pushed_at:
                return "pushed again since the plan"
            if found.last_pulled_at != item.last_pulled_at:
                return "pulled since the plan"
            if set(found.tags) != set(item.tags):
                return "its tags changed since the plan"
            return None

        cutoff = plan.untagged_cutoff or plan.computed_at
        with self.db.write() as conn:
            return delete_manifest(
                conn,
                item.repository,
                item.repository_id,
                item.digest,
                actor=ACTOR,
                policy=Policy.retention(cutoff),
                expect=as_planned,
                reason=item.reason,
            )

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


def _unplanned(removed: Deleted, repository_id: int) -> Deletion:
    found = removed.manifest
    return Deletion(
        removed.repository,
        repository_id,
        found.id,
        found.digest,
        found.media_type,
        found.size,
        found.tags,
        found.pushed_at,
        found.last_pulled_at,
        f"went with {removed.along_with}, the only manifest that kept it",
    )
