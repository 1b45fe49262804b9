"""Least-recently-pulled eviction of a proxy-cache project over its size limit.

The unit evicted is an artifact as a client pulls it: a tagged manifest, or an untagged
one no index of its repository lists (pulled by digest), together with the manifests it
lists (an index's platform images). The cache's size is what its manifests need: the
distinct blobs they list plus their own bytes, which is what the project uses once
garbage collection has reclaimed what evicted manifests leave behind.

Planning orders the artifacts by their last pull (or, never pulled, when they were
cached) and takes the oldest until what the rest need fits the limit. An artifact pulled
or cached after the cutoff (`protect_seconds` ago) is never taken: it is being served or
was just filled.

Applying deletes each planned manifest through content.deletion (the single owner of
deletion: tags go with it, then what only it kept, and `artifact.deleted` says
`by: eviction`), each in its own transaction, skipping one pulled again since the plan.
The job then runs garbage collection's link and blob sweep, which frees the bytes.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from portside.content.deletion import Locked, Policy, delete_manifest
from portside.events.outbox import Actor
from portside.metadata import schema as s
from portside.metadata.db import Database, as_utc, utcnow

ACTOR = Actor("eviction")


@dataclass(frozen=True, slots=True)
class Victim:
    repository: str
    repository_id: int
    digest: str
    last_used: datetime  # last pull, or when it was cached
    frees: int  # bytes only it (and what it lists) needed


@dataclass(frozen=True, slots=True)
class EvictionPlan:
    project: str
    limit: int
    size: int  # what the cache needs now
    after: int  # what it will need once the victims are gone
    victims: list[Victim]


@dataclass(frozen=True, slots=True)
class _Manifest:
    id: int
    repository: str
    repository_id: int
    digest: str
    size: int
    used: datetime
    tagged: bool
    children: frozenset[str]
    blobs: frozenset[str]


def plan_eviction(
    db: Database, project: str, limit: int, *, protect_seconds: float
) -> EvictionPlan:
    cutoff = utcnow() - timedelta(seconds=protect_seconds)
    manifests, blob_sizes = _load(db, project)
    by_key = {(m.repository_id, m.digest): m for m in manifests}
    listed = {(m.repository_id, child) for m in manifests for child in m.children}
    roots = [m for m in manifests if m.tagged or (m.repository_id, m.digest) not in listed]

    def closure(root: _Manifest) -> list[_Manifest]:
        found, pending, seen = [], [root], set()
        while pending:
            current = pending.pop()
            if current.id in seen:
                continue
            seen.add(current.id)
            found.append(current)
            pending += [
                by_key[(current.repository_id, d)]
                for d in current.children
                if (current.repository_id, d) in by_key
            ]
        return found

    members = {root.id: closure(root) for root in roots}
    users: dict[str, int] = defaultdict(int)  # blob -> roots needing it
    owners: dict[int, int] = defaultdict(int)  # manifest id -> roots needing it
    for group in members.values():
        for blob in {b for m in group for b in m.blobs}:
            users[blob] += 1
        for manifest in group:
            owners[manifest.id] += 1
    size = sum(blob_sizes.get(b, 0) for b in users) + sum(m.size for m in manifests)
    current = size
    victims: list[Victim] = []
    for root in sorted(roots, key=lambda m: (m.used, m.id)):
        if current <= limit:
            break
        if root.used > cutoff:
            continue  # in use: being served, or just filled
        group = members[root.id]
        frees = 0
        for blob in {b for m in group for b in m.blobs}:
            users[blob] -= 1
            if users[blob] == 0:
                frees += blob_sizes.get(blob, 0)
        for manifest in group:
            owners[manifest.id] -= 1
            if owners[manifest.id] == 0:
                frees += manifest.size
        current -= frees
        victims.append(Victim(root.repository, root.repository_id, root.digest, root.used, frees))
    return EvictionPlan(project, limit, size, current, victims)


def apply_eviction(db: Database, plan: EvictionPlan, *, protect_seconds: float) -> int:
    """Delete the planned artifacts; how many were deleted (one pulled again since the
    plan, or needed elsewhere now, is skipped)."""
    deleted = 0
    for victim in plan.victims:

        def unchanged(found: Locked, victim: Victim = victim) -> str | None:
            used = as_utc(found.last_pulled_at or found.pushed_at)
            if used > victim.last_used:
                return "pulled again since the plan"
            return None

        cutoff = utcnow() - timedelta(seconds=protect_seconds)
        with db.write() as conn:
            outcome = delete_manifest(
                conn,
                victim.repository,
                victim.repository_id,
                victim.digest,
                actor=ACTOR,
                policy=Policy.eviction(cutoff),
                expect=unchanged,
                reason=f"least recently pulled in proxy cache {plan.project} over its "
                f"limit of {plan.limit} bytes",
            )
        deleted += bool(outcome.deleted)
    return deleted


def _load(db: Database, project: str) -> tuple[list[_Manifest], dict[str, int]]:
    r, m, t, mb, mc, b = (
        s.repositories,
        s.manifests,
        s.tags,
        s.manifest_blobs,
        s.manifest_children,
        s.blobs,
    )
    in_project = r.c.project == project
    with db.read() as conn:
        rows = conn.execute(
            select(
                m.c.id,
                r.c.name,
                m.c.repository_id,
                m.c.digest,
                m.c.size,
                m.c.pushed_at,
                m.c.last_pulled_at,
            )
            .join(r, r.c.id == m.c.repository_id)
            .where(in_project)
        ).all()
        tagged = set(
            conn.execute(
                select(t.c.manifest_id).join(r, r.c.id == t.c.repository_id).where(in_project)
            ).scalars()
        )
        blobs: dict[int, set[str]] = defaultdict(set)
        sizes: dict[str, int] = {}
        for manifest_id, digest, size in conn.execute(
            select(mb.c.manifest_id, mb.c.digest, b.c.size)
            .join(m, m.c.id == mb.c.manifest_id)
            .join(r, r.c.id == m.c.repository_id)
            .outerjoin(b, b.c.digest == mb.c.digest)
            .where(in_project)
        ):
            blobs[int(manifest_id)].add(digest)
            if size is not None:
                sizes[digest] = int(size)
        children: dict[int, set[str]] = defaultdict(set)
        for manifest_id, child in conn.execute(
            select(mc.c.manifest_id, mc.c.child_digest)
            .join(m, m.c.id == mc.c.manifest_id)
            .join(r, r.c.id == m.c.repository_id)
            .where(in_project)
        ):
            children[int(manifest_id)].add(child)
    manifests = [_manifest(row, row.id in tagged, children, blobs) for row in rows]
    return manifests, sizes


def _manifest(
    row: Any, tagged: bool, children: dict[int, set[str]], blobs: dict[int, set[str]]
) -> _Manifest:
    used = as_utc(row.last_pulled_at or row.pushed_at)
    return _Manifest(
        int(row.id),
        row.name,
        int(row.repository_id),
        row.digest,
        int(row.size),
        used,
        tagged,
        frozenset(children.get(int(row.id), ())),
        frozenset(blobs.get(int(row.id), ())),
    )
