"""Manifest deletion, and the rule that says when a manifest is still needed. The /v2 and
management API deletes, retention (planner and applier), garbage collection and the
proxy cache's eviction all ask this module, so they cannot disagree.

The rule: a manifest of a repository is *needed* while
- a tag of the repository points at it, or
- a manifest of the same repository lists it (an index's `manifests`: manifest_children), or
- it is a referrer (its `subject`) of a manifest of the repository that is itself needed.
An index keeps what it lists and a subject keeps its referrers (signatures, SBOMs,
attestations, to any depth); a referrer never keeps its subject. Edges count within one
repository only. A cycle cannot be built (each edge names a digest of the other's
bytes), but every walk here stops at one anyway.

Planning (`plan_unneeded`, for GC and retention): from all manifests of a scope and the
roots the caller's policy keeps (GC: tagged or pushed within its grace period; retention:
what its rules retain, protected tags, recent untagged ones), the fixed point of the rule;
what is left is unneeded, listed *keepers first*: an index before what it lists, a subject
before its referrers, oldest first otherwise.

Deleting (`delete_manifest`), inside the caller's write transaction:
1. Lock the manifest row FOR UPDATE. A manifest PUT locks the manifests it lists FOR SHARE
   and its own row before it adds a tag, so a concurrent push either commits first (and
   the checks below see it) or waits for this transaction.
2. The caller's own checks on the locked row (`expect`: retention's "still as the plan
   saw it", GC's "not pushed again since the plan").
3. The rule, in fresh statements: tags (unless the policy removes them), an index of the
   repository listing it, and (unless the caller named it explicitly) its subject chain,
   each subject locked FOR SHARE so a tag cannot land on it unseen.
4. Tags protected by an immutability rule refuse the deletion (content.immutability).
5. Delete its tags, manifest_blobs, manifest_children and row, its scans (with their
   findings and inventories) and the signature verdicts about it or made from it, and
   emit `artifact.deleted` (and `tag.deleted` for each tag) in the same transaction.
6. Take along what only it kept: its referrers and the manifests it listed that the rule
   no longer keeps (no tag, no other index lists them, no needed subject), recursively,
   except those pushed after the policy's cutoff (GC's grace period, retention's untagged
   grace: pushes in progress). Each is locked FOR UPDATE SKIP LOCKED: one a concurrent
   push holds is left alone (it is unneeded, so a later GC or retention run takes it).

Referrers, the choice: deleting an image deletes its signatures and SBOMs with it, as
Harbor deletes an artifact's accessories, so none becomes an invisible orphan that only
the referrers API of a vanished digest would list. So do GC and retention: keepers go
first and take their referrers along. A referrer with a tag of its own is something
someone named: it stays (and goes once untagged). Deleting an index takes along its
untagged children that no other index lists (Harbor deletes them too); deleting a
manifest an index lists is refused while the index exists.

Lock order: the target's row, then its subject chain upwards (FOR SHARE, waiting), then
dependants downwards (SKIP LOCKED, never waiting). Pushes lock what they reference, then
their own row, then the tag; no push waits on a referrer of what it locks, so no cycle
can form. SQLite serialises writers (BEGIN IMMEDIATE) and needs none of these locks.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import Connection, delete, select

from portside.content.immutability import check_delete, load_matcher
from portside.errors import Conflict, ManifestUnknown
from portside.events import outbox
from portside.metadata import schema as s
from portside.metadata.db import as_utc
from portside.reference import project_of

By = Literal["api", "retention", "gc", "eviction"]


# -- the rule, over a whole scope (planning) -------------------------------------------


@dataclass(frozen=True, slots=True)
class Node:
    """One manifest as a planner sees it."""

    id: int
    repository_id: int
    digest: str
    subject: str | None
    children: frozenset[str]
    pushed_at: datetime


@dataclass(frozen=True, slots=True)
class Needs:
    kept: dict[int, str]  # manifest id -> why it stays (its root reason, or what keeps it)
    unneeded: list[Node]  # keepers first: an index before its children, a subject before
    # its referrers; otherwise oldest first


def plan_unneeded(nodes: Iterable[Node], roots: Mapping[int, str]) -> Needs:
    """Which of `nodes` (every manifest of the scope) the rule keeps, starting from the
    `roots` the caller's policy keeps (id -> reason), and which are unneeded."""
    nodes = list(nodes)
    by_key = {(n.repository_id, n.digest): n for n in nodes}
    referrers: dict[tuple[int, str], list[Node]] = defaultdict(list)
    for node in nodes:
        if node.subject:
            referrers[(node.repository_id, node.subject)].append(node)
    kept = dict(roots)
    pending = [n for n in nodes if n.id in kept]
    while pending:
        current = pending.pop()
        repo = current.repository_id
        needed = [
            (by_key[(repo, d)], f"listed by index {current.digest}, which stays")
            for d in sorted(current.children)
            if (repo, d) in by_key
        ]
        needed += [
            (r, f"referrer of {current.digest}, which stays")
            for r in referrers[(repo, current.digest)]
        ]
        for other, reason in needed:
            if other.id not in kept:
                kept[other.id] = reason
                pending.append(other)
    unneeded = [n for n in nodes if n.id not in kept]
    return Needs(kept, keepers_first(unneeded))


def keepers_first(nodes: Sequence[Node]) -> list[Node]:
    """`nodes` ordered so that every index comes before the manifests it lists and every
    subject before its referrers (among `nodes`), oldest first otherwise."""
    by_key = {(n.repository_id, n.digest): n for n in nodes}
    dependants: dict[int, list[Node]] = defaultdict(list)
    owners: dict[int, int] = defaultdict(int)  # id -> keepers among `nodes` not yet placed
    for node in nodes:
        repo = node.repository_id
        for d in node.children:
            child = by_key.get((repo, d))
            if child is not None and child.id != node.id:
                dependants[node.id].append(child)
                owners[child.id] += 1
        subject = by_key.get((repo, node.subject)) if node.subject else None
        if subject is not None and subject.id != node.id:
            dependants[subject.id].append(node)
            owners[node.id] += 1

    def key(n: Node) -> tuple[datetime, str, int]:
        return (n.pushed_at, n.digest, n.id)

    ready = [(key(n), n) for n in nodes if owners[n.id] == 0]
    heapq.heapify(ready)
    order: list[Node] = []
    placed: set[int] = set()
    while ready:
        _, node = heapq.heappop(ready)
        order.append(node)
        placed.add(node.id)
        for dependant in dependants[node.id]:
            owners[dependant.id] -= 1
            if owners[dependant.id] == 0:
                heapq.heappush(ready, (key(dependant), dependant))
    # Only a cycle leaves anything unplaced; it cannot be built, but nothing is lost.
    order += sorted((n for n in nodes if n.id not in placed), key=key)
    return order


# -- deleting one manifest (in the caller's transaction) -------------------------------


@dataclass(frozen=True, slots=True)
class Policy:
    """What a caller's deletion may override.

    `explicit`: the caller named this manifest (the API): a missing manifest is
    MANIFEST_UNKNOWN and an index listing it a Conflict (409) rather than a skip, and
    being a referrer of a needed manifest does not keep it (deleting a signature is fine).
    `remove_tags`: its tags go with it (after the immutability check); else a tag keeps it.
    `cutoff`: dependants pushed after this stay (pushes in progress)."""

    by: By
    explicit: bool
    remove_tags: bool
    cutoff: datetime | None = None

    @classmethod
    def api(cls) -> Policy:
        return cls("api", explicit=True, remove_tags=True)

    @classmethod
    def gc(cls, cutoff: datetime) -> Policy:
        return cls("gc", explicit=False, remove_tags=False, cutoff=cutoff)

    @classmethod
    def retention(cls, cutoff: datetime) -> Policy:
        return cls("retention", explicit=False, remove_tags=True, cutoff=cutoff)

    @classmethod
    def eviction(cls, cutoff: datetime) -> Policy:
        """A proxy cache's least-recently-pulled eviction (portside.proxy.eviction)."""
        return cls("eviction", explicit=False, remove_tags=True, cutoff=cutoff)


@dataclass(frozen=True, slots=True)
class Locked:
    """A manifest row as found under its lock, with its tags."""

    id: int
    digest: str
    media_type: str
    size: int
    subject: str | None
    pushed_at: datetime
    last_pulled_at: datetime | None
    tags: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Deleted:
    repository: str
    manifest: Locked
    along_with: str | None = None  # the digest whose deletion took this one along

    @property
    def resource(self) -> str:
        return f"{self.repository}@{self.manifest.digest}"


@dataclass(frozen=True, slots=True)
class Outcome:
    deleted: tuple[Deleted, ...] = ()  # the manifest first, then what it took along
    skipped: str | None = None  # why nothing was deleted (policies that are not explicit)


Expect = Callable[[Locked], str | None]
"""A caller's own check on the locked manifest: a reason to skip it, or None."""


def delete_manifest(
    conn: Connection,
    repository: str,
    repository_id: int | None,
    digest: str,
    *,
    actor: outbox.Actor,
    policy: Policy,
    expect: Expect | None = None,
    reason: str | None = None,
) -> Outcome:
    """Delete a manifest of a repository if the rule and `policy` allow it, with what only
    it kept (see the module docstring). Explicit policies raise ManifestUnknown, Conflict
    or ImmutableTag; the others return the reason in `Outcome.skipped`. `reason` (why a
    job chose it) goes into the artifact.deleted event, and so into the audit log."""
    target = _lock(conn, repository_id, digest) if repository_id is not None else None
    if target is None or repository_id is None:
        if policy.explicit:
            raise ManifestUnknown(detail={"digest": digest})
        return Outcome(skipped="already deleted")
    if expect is not None and (why := expect(target)) is not None:
        return Outcome(skipped=why)
    why = _needed(
        conn,
        repository_id,
        target,
        count_tags=not policy.remove_tags,
        count_subject=not policy.explicit,
    )
    if why is not None:
        if policy.explicit:
            raise Conflict(f"manifest is {why} in this repository; delete the index first")
        return Outcome(skipped=why)
    if target.tags:
        if policy.explicit:
            check_delete(conn, repository, target.tags, f"manifest {digest}")
        elif (protected := _protected(conn, repository, target.tags)) is not None:
            return Outcome(skipped=protected)
    children = _remove(
        conn,
        repository,
        repository_id,
        target,
        actor=actor,
        by=policy.by,
        along_with=None,
        reason=reason,
    )
    along = _take_along(
        conn, repository, repository_id, target.digest, children, actor=actor, policy=policy
    )
    return Outcome((Deleted(repository, target), *along))


def _lock(
    conn: Connection, repository_id: int, digest: str, *, skip_locked: bool = False
) -> Locked | None:
    m, t = s.manifests, s.tags
    row = conn.execute(
        select(
            m.c.id,
            m.c.media_type,
            m.c.size,
            m.c.subject_digest,
            m.c.pushed_at,
            m.c.last_pulled_at,
        )
        .where(m.c.repository_id == repository_id, m.c.digest == digest)
        .with_for_update(skip_locked=skip_locked)
    ).first()
    if row is None:
        return None
    tags = conn.execute(select(t.c.name).where(t.c.manifest_id == row.id).order_by(t.c.name))
    return Locked(
        int(row.id),
        digest,
        row.media_type,
        int(row.size),
        row.subject_digest,
        as_utc(row.pushed_at),
        as_utc(row.last_pulled_at) if row.last_pulled_at is not None else None,
        tuple(tags.scalars()),
    )


def _needed(
    conn: Connection,
    repository_id: int,
    manifest: Locked,
    *,
    count_tags: bool,
    count_subject: bool,
    lock: bool = True,
) -> str | None:
    if count_tags and manifest.tags:
        return f"tagged {', '.join(manifest.tags)}"
    index = _listing_index(conn, repository_id, manifest.digest)
    if index is not None:
        return f"listed by index {index}"
    if not count_subject:
        return None
    seen = {manifest.digest}
    subject = manifest.subject
    m, t = s.manifests, s.tags
    while subject is not None and subject not in seen:
        seen.add(subject)
        query = select(m.c.id, m.c.subject_digest).where(
            m.c.repository_id == repository_id, m.c.digest == subject
        )
        row = conn.execute(query.with_for_update(read=True) if lock else query).first()
        if row is None:
            return None
        tag = conn.execute(
            select(t.c.name).where(t.c.manifest_id == row.id).order_by(t.c.name).limit(1)
        ).scalar_one_or_none()
        why = f"tagged {tag}" if tag is not None else None
        if why is None and (index := _listing_index(conn, repository_id, subject)) is not None:
            why = f"listed by index {index}"
        if why is not None:
            return f"a referrer of {manifest.subject}, which stays ({subject} is {why})"
        subject = row.subject_digest
    return None


def _listing_index(conn: Connection, repository_id: int, digest: str) -> str | None:
    m, c = s.manifests, s.manifest_children
    found = conn.execute(
        select(m.c.digest)
        .join(c, c.c.manifest_id == m.c.id)
        .where(m.c.repository_id == repository_id, c.c.child_digest == digest)
        .order_by(m.c.digest)
        .limit(1)
    ).scalar_one_or_none()
    return None if found is None else str(found)


def _protected(conn: Connection, repository: str, tags: Sequence[str]) -> str | None:
    """Why an immutability rule keeps one of `tags` (rules read in this transaction)."""
    matcher = load_matcher(conn, project_of(repository))
    for tag in sorted(tags):
        rule = matcher.rule_for(repository, tag)
        if rule is not None:
            return f"tag {tag!r} is protected by {rule.describe()}"
    return None


def _remove(
    conn: Connection,
    repository: str,
    repository_id: int,
    manifest: Locked,
    *,
    actor: outbox.Actor,
    by: By,
    along_with: str | None,
    reason: str | None = None,
) -> list[str]:
    """Delete the locked manifest's rows and emit its events; returns what it listed."""
    c = s.manifest_children
    children = list(conn.execute(select(c.c.child_digest).where(c.c.manifest_id == manifest.id)))
    conn.execute(delete(s.tags).where(s.tags.c.manifest_id == manifest.id))
    conn.execute(delete(s.manifest_blobs).where(s.manifest_blobs.c.manifest_id == manifest.id))
    conn.execute(delete(c).where(c.c.manifest_id == manifest.id))
    conn.execute(delete(s.manifests).where(s.manifests.c.id == manifest.id))
    _forget_results(conn, repository_id, manifest.digest)
    for tag in manifest.tags:
        outbox.emit(
            conn,
            outbox.TAG_DELETED,
            actor,
            resource=f"{repository}:{tag}",
            repository=repository,
            data={"tag": tag, "digest": manifest.digest, "by": by},
        )
    data: dict[str, object] = {
        "digest": manifest.digest,
        "media_type": manifest.media_type,
        "tags": list(manifest.tags),
        "by": by,
    }
    if along_with is not None:
        data["along_with"] = along_with
    if reason is not None:
        data["reason"] = reason
    outbox.emit(
        conn,
        outbox.ARTIFACT_DELETED,
        actor,
        resource=f"{repository}@{manifest.digest}",
        repository=repository,
        data=data,
    )
    return [str(row.child_digest) for row in children]


def _forget_results(conn: Connection, repository_id: int, digest: str) -> None:
    """What was learnt about the manifest goes with it, in the same transaction: its scans
    (their findings, inventories and an index's per-platform rows cascade from the scan
    row) and the signature verdicts about it or made from it (as a signature). Both are
    keyed by (repository, digest), not by the manifest row, so no foreign key can take
    them along; a manifest pushed again later starts with no stale scan or verdict."""
    conn.execute(
        delete(s.scans).where(
            s.scans.c.repository_id == repository_id,
            s.scans.c.digest == digest,
            s.scans.c.parent_id.is_(None),
        )
    )
    v = s.signature_verdicts
    conn.execute(
        delete(v).where(
            v.c.repository_id == repository_id,
            (v.c.artifact_digest == digest) | (v.c.signature_digest == digest),
        )
    )


def _take_along(
    conn: Connection,
    repository: str,
    repository_id: int,
    digest: str,
    children: list[str],
    *,
    actor: outbox.Actor,
    policy: Policy,
) -> list[Deleted]:
    """Delete what only the deleted `digest` kept: its referrers and the manifests it
    listed that are unneeded now, recursively (breadth first)."""
    m = s.manifests
    taken: list[Deleted] = []
    queue: list[tuple[str, list[str]]] = [(digest, children)]
    while queue:
        owner, listed = queue.pop(0)
        referrers = conn.execute(
            select(m.c.digest).where(
                m.c.repository_id == repository_id, m.c.subject_digest == owner
            )
        ).scalars()
        for candidate in sorted({*listed, *referrers}):
            found = _lock(conn, repository_id, candidate, skip_locked=True)
            if found is None:
                continue  # gone, not in this repository, or a concurrent push holds it
            if policy.cutoff is not None and found.pushed_at > policy.cutoff:
                continue
            if _needed(conn, repository_id, found, count_tags=True, count_subject=True):
                continue
            grandchildren = _remove(
                conn, repository, repository_id, found, actor=actor, by=policy.by, along_with=owner
            )
            taken.append(Deleted(repository, found, owner))
            queue.append((candidate, grandchildren))
    return taken
