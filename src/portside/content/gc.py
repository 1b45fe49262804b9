"""Online garbage collection: reclaim what no manifest needs, while the registry serves.

What goes, in order:
1. With `delete_untagged`: manifests the rule of content.deletion does not keep (no tag,
   no index in their repository lists them, not a referrer of a manifest that stays:
   signatures and SBOMs of a kept image stay with it), keepers first, each taking along
   what only it kept, through content.deletion (which emits `artifact.deleted`).
2. Links (a repository's view of a blob) that no manifest of the repository lists.
3. Blobs no link and no manifest refers to: the row, then the file.
4. Incomplete uploads idle past `registry.upload_expiry_hours` (content.purge).
Anything pushed, linked or mounted within the grace period stays, whatever it is.

Safety under concurrent pushes: every deletion happens in its own short write
transaction that first locks the row (FOR UPDATE on PostgreSQL; SQLite serialises
writers) and re-checks, in a fresh statement, that nothing uses it. A manifest PUT locks
the links and child manifests it references (FOR SHARE) while it checks and commits, and
an upload or mount holds the blob row while it checks the file and links it. So a push
racing a sweep either commits with everything it references kept, or fails cleanly with
MANIFEST_BLOB_UNKNOWN; it never commits a manifest whose blob is deleted.

The plan is computed from one consistent read and is exactly what a dry run reports;
the run applies it item by item with the re-checks above, so it deletes at most what
the plan says (less if something got used meanwhile).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import Connection, delete, select, tuple_

from portside.content.deletion import Locked, Node, Outcome, Policy, delete_manifest, plan_unneeded
from portside.digest import Digest
from portside.events import outbox
from portside.events.outbox import Actor
from portside.metadata import schema as s
from portside.metadata.db import Database, as_utc, utcnow
from portside.storage import paths
from portside.storage.base import StorageDriver

log = structlog.get_logger(__name__)

_BATCH = 500
ACTOR = Actor("gc")


@dataclass(frozen=True, slots=True)
class ManifestItem:
    repository: str
    repository_id: int
    manifest_id: int
    digest: str
    reason: str


@dataclass(frozen=True, slots=True)
class LinkItem:
    repository: str
    repository_id: int
    digest: str
    reason: str


@dataclass(frozen=True, slots=True)
class BlobItem:
    digest: str
    size: int
    reason: str


@dataclass
class Plan:
    cutoff: datetime  # anything pushed, linked or created after this stays
    manifests: list[ManifestItem] = field(default_factory=list)
    links: list[LinkItem] = field(default_factory=list)
    blobs: list[BlobItem] = field(default_factory=list)

    @property
    def bytes(self) -> int:
        """Storage freed: each deleted blob once (blobs are stored once)."""
        return sum(b.size for b in self.blobs)


@dataclass
class Result:
    manifests: int = 0
    links: int = 0
    blobs: int = 0
    bytes: int = 0
    skipped: int = 0  # planned, but in use again by the time it was reached


Recorder = Callable[[str, str, str, dict[str, Any]], None]
"""Called for each deletion: (kind, resource, reason, detail) — e.g. to the audit log."""


class GarbageCollector:
    def __init__(
        self,
        db: Database,
        storage: StorageDriver,
        record: Recorder | None = None,
        check: Callable[[], None] | None = None,
        job_id: int | None = None,
    ) -> None:
        self.db = db
        self.storage = storage
        self.record = record
        # Named in the events of link and blob deletions (the job that made them).
        self.job_id = job_id
        # Called between batches; may raise to stop the run (each batch is complete).
        self.check = check or (lambda: None)

    # -- planning ---------------------------------------------------------------------
    def plan(self, grace: timedelta, *, delete_untagged: bool = False) -> Plan:
        cutoff = utcnow() - grace
        with self.db.read() as conn, conn.begin():
            # One transaction: on PostgreSQL a single snapshot is not guaranteed under
            # READ COMMITTED, so the run re-checks everything anyway.
            return self._plan(conn, cutoff, delete_untagged)

    def _plan(self, conn: Connection, cutoff: datetime, delete_untagged: bool) -> Plan:
        plan = Plan(cutoff)
        names = dict(conn.execute(select(s.repositories.c.id, s.repositories.c.name)).all())
        m = s.manifests
        manifests = conn.execute(
            select(m.c.id, m.c.repository_id, m.c.digest, m.c.subject_digest, m.c.pushed_at)
        ).all()
        doomed: set[int] = set()
        if delete_untagged:
            for node in self._untagged(conn, manifests, cutoff):
                doomed.add(node.id)
                plan.manifests.append(
                    ManifestItem(
                        names[node.repository_id],
                        node.repository_id,
                        node.id,
                        node.digest,
                        "untagged, not in an index, not a referrer of a kept manifest",
                    )
                )
        used: dict[int, set[str]] = defaultdict(set)  # repository -> digests kept manifests list
        for manifest_id, repo_id, digest in conn.execute(
            select(
                s.manifest_blobs.c.manifest_id, m.c.repository_id, s.manifest_blobs.c.digest
            ).join(m, m.c.id == s.manifest_blobs.c.manifest_id)
        ):
            if manifest_id not in doomed:
                used[int(repo_id)].add(digest)
        link = s.repository_blobs
        linked: dict[str, int] = defaultdict(int)  # digest -> links that stay
        for repo_id, digest, linked_at in conn.execute(
            select(link.c.repository_id, link.c.digest, link.c.linked_at)
        ):
            if digest in used[int(repo_id)] or as_utc(linked_at) > cutoff:
                linked[digest] += 1
            else:
                plan.links.append(
                    LinkItem(
                        names[int(repo_id)],
                        int(repo_id),
                        digest,
                        "no manifest in the repository lists it",
                    )
                )
        referenced = set().union(*used.values()) if used else set()
        for digest, size, created_at in conn.execute(
            select(s.blobs.c.digest, s.blobs.c.size, s.blobs.c.created_at)
        ):
            if linked[digest] or digest in referenced or as_utc(created_at) > cutoff:
                continue
            plan.blobs.append(BlobItem(digest, int(size), "no repository links it"))
        return plan

    def _untagged(self, conn: Connection, manifests: Sequence[Any], cutoff: datetime) -> list[Node]:
        """The manifests the rule (content.deletion) does not keep when tagged and recent
        ones are the roots, keepers first (the order the run deletes them in)."""
        tagged = set(conn.execute(select(s.tags.c.manifest_id)).scalars())
        children: dict[int, set[str]] = defaultdict(set)
        for parent, child in conn.execute(
            select(s.manifest_children.c.manifest_id, s.manifest_children.c.child_digest)
        ):
            children[int(parent)].add(child)
        nodes = [
            Node(
                int(r.id),
                int(r.repository_id),
                r.digest,
                r.subject_digest,
                frozenset(children[int(r.id)]),
                as_utc(r.pushed_at),
            )
            for r in manifests
        ]
        roots: dict[int, str] = {}
        for node in nodes:
            if node.id in tagged:
                roots[node.id] = "tagged"
            elif node.pushed_at > cutoff:
                roots[node.id] = "pushed within the grace period"
        return plan_unneeded(nodes, roots).unneeded

    # -- running ----------------------------------------------------------------------
    def run(self, plan: Plan, progress: Callable[[int], None] | None = None) -> Result:
        result = Result()
        done = 0

        def step(count: int) -> None:
            nonlocal done
            done += count
            if progress is not None:
                progress(done)
            self.check()

        taken: set[int] = set()  # manifest ids an earlier deletion took along
        for index, item in enumerate(plan.manifests):
            if index and index % _BATCH == 0:
                step(_BATCH)
            if item.manifest_id in taken:
                continue  # counted when it went
            outcome = self._delete_manifest(item, plan.cutoff)
            if outcome.skipped is not None:
                result.skipped += 1
            for removed in outcome.deleted:
                taken.add(removed.manifest.id)
                result.manifests += 1
                reason = item.reason
                if removed.along_with is not None:
                    reason = f"went with {removed.along_with}, the only manifest that kept it"
                self._deleted("manifest", removed.resource, reason, {})
        step(len(plan.manifests) - (max(0, len(plan.manifests) - 1) // _BATCH) * _BATCH)
        # Links and blobs go in batches: one short transaction per batch, not per item.
        for start in range(0, len(plan.links), _BATCH):
            batch = plan.links[start : start + _BATCH]
            deleted = self._delete_links(batch)
            result.links += len(deleted)
            result.skipped += len(batch) - len(deleted)
            for link_item in deleted:
                resource = f"{link_item.repository}@{link_item.digest}"
                self._deleted("link", resource, link_item.reason, {})
            step(len(batch))
        for start in range(0, len(plan.blobs), _BATCH):
            blob_batch = plan.blobs[start : start + _BATCH]
            gone = self._delete_blobs(blob_batch)
            result.blobs += len(gone)
            result.skipped += len(blob_batch) - len(gone)
            for blob in gone:
                result.bytes += blob.size
                self._deleted("blob", blob.digest, blob.reason, {"size": blob.size})
            step(len(blob_batch))
        return result

    def _deleted(self, kind: str, resource: str, reason: str, detail: dict[str, Any]) -> None:
        log.debug("gc.deleted", kind=kind, resource=resource, reason=reason, **detail)
        if self.record is not None:
            self.record(kind, resource, reason, detail)

    def _delete_manifest(self, item: ManifestItem, cutoff: datetime) -> Outcome:
        """Delete a planned manifest (and what only it kept) if the rule still allows it
        and nothing of it was pushed since `cutoff`."""

        def unchanged(found: Locked) -> str | None:
            return "pushed again since the plan" if found.pushed_at > cutoff else None

        with self.db.write() as conn:
            return delete_manifest(
                conn,
                item.repository,
                item.repository_id,
                item.digest,
                actor=ACTOR,
                policy=Policy.gc(cutoff),
                expect=unchanged,
                reason=item.reason,
            )

    def _delete_links(self, items: list[LinkItem]) -> list[LinkItem]:
        """Delete the links of `items` that no manifest of their repository lists, after
        locking them; returns those deleted."""
        link, m, mb = s.repository_blobs, s.manifests, s.manifest_blobs
        pairs = [(i.repository_id, i.digest) for i in items]
        key = tuple_(link.c.repository_id, link.c.digest)
        with self.db.write() as conn:
            locked = {
                (int(r), d)
                for r, d in conn.execute(
                    select(link.c.repository_id, link.c.digest)
                    .where(key.in_(pairs))
                    .with_for_update()
                )
            }
            if not locked:
                return []
            # A fresh statement after the locks: it sees manifests committed meanwhile.
            used = {
                (int(r), d)
                for r, d in conn.execute(
                    select(m.c.repository_id, mb.c.digest)
                    .join(m, m.c.id == mb.c.manifest_id)
                    .where(tuple_(m.c.repository_id, mb.c.digest).in_(sorted(locked)))
                )
            }
            doomed = sorted(locked - used)
            if doomed:
                conn.execute(delete(link).where(key.in_(doomed)))
            chosen = set(doomed)
            deleted = [i for i in items if (i.repository_id, i.digest) in chosen]
            outbox.emit_rows(
                conn,
                [
                    self._event(f"{i.repository}@{i.digest}", i.digest, i.reason, i.repository)
                    for i in deleted
                ],
            )
        return deleted

    def _delete_blobs(self, items: list[BlobItem]) -> list[BlobItem]:
        """Delete the blobs of `items` that nothing links or lists: rows, then files,
        while the rows are locked. Returns those deleted."""
        b = s.blobs
        digests = [i.digest for i in items]
        with self.db.write() as conn:
            locked = set(
                conn.execute(
                    select(b.c.digest).where(b.c.digest.in_(digests)).with_for_update()
                ).scalars()
            )
            if not locked:
                return []
            used = set(
                conn.execute(
                    select(s.repository_blobs.c.digest).where(
                        s.repository_blobs.c.digest.in_(locked)
                    )
                ).scalars()
            ) | set(
                conn.execute(
                    select(s.manifest_blobs.c.digest).where(s.manifest_blobs.c.digest.in_(locked))
                ).scalars()
            )
            doomed = locked - used
            if doomed:
                conn.execute(delete(b).where(b.c.digest.in_(sorted(doomed))))
            outbox.emit_rows(
                conn,
                [
                    self._event(i.digest, i.digest, i.reason, None, size=i.size)
                    for i in items
                    if i.digest in doomed
                ],
            )
            # Files go while the rows are still locked, so an upload of the same content
            # waits and then finds neither (and stores its own copy). One batched call
            # per batch: an object store deletes up to 1,000 keys a request.
            self.storage.delete_many(
                paths.blob_path(Digest.parse(digest)) for digest in sorted(doomed)
            )
        return [i for i in items if i.digest in doomed]

    def _event(
        self, resource: str, digest: str, reason: str, repository: str | None, **extra: Any
    ) -> dict[str, Any]:
        """A `blob.deleted` row for the deleting transaction (`link`: only a repository's
        link went, the bytes stay for other repositories)."""
        data = {"digest": digest, "by": "gc", "link": repository is not None, "reason": reason}
        if self.job_id is not None:
            data["job"] = self.job_id
        return outbox.event_row(
            outbox.BLOB_DELETED,
            ACTOR,
            resource=resource,
            repository=repository,
            data={**data, **extra},
        )
