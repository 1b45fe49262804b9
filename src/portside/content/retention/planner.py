"""Retention planning: from a project's policy and its repositories' manifests, tags,
index children and referrers (one read transaction), the artifacts that go, in the order
a run deletes them, the artifacts that stay with their reason, and the blobs garbage
collection then frees. The rules' meaning is in the package docstring."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, func, select

from portside.content.deletion import Node, plan_unneeded
from portside.content.immutability import TagMatcher, load_matcher, name_in_project
from portside.content.patterns import NamePattern
from portside.content.retention.policy import RetentionPolicy, RetentionRule, load_policy
from portside.metadata import schema as s
from portside.metadata.db import Database, as_utc, utcnow

UNTAGGED_GRACE = timedelta(hours=1)
_CHUNK = 500


def opt_utc(value: datetime | None) -> datetime | None:
    return None if value is None else as_utc(value)


@dataclass(frozen=True, slots=True)
class Deletion:
    """An artifact the plan deletes, with its tags."""

    repository: str
    repository_id: int
    manifest_id: int
    digest: str
    media_type: str
    size: int
    tags: tuple[str, ...]
    pushed_at: datetime
    last_pulled_at: datetime | None
    reason: str

    @property
    def resource(self) -> str:
        return f"{self.repository}@{self.digest}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "repository": self.repository,
            "digest": self.digest,
            "media_type": self.media_type,
            "size": self.size,
            "tags": list(self.tags),
            "pushed_at": self.pushed_at.isoformat(),
            "last_pulled_at": self.last_pulled_at.isoformat() if self.last_pulled_at else None,
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class Kept:
    """An artifact of an in-scope repository that stays, and why."""

    repository: str
    digest: str
    tags: tuple[str, ...]
    pushed_at: datetime
    last_pulled_at: datetime | None
    reason: str
    rule: int | None = None  # 1-based position of the rule that retained it

    def to_dict(self) -> dict[str, Any]:
        return {
            "repository": self.repository,
            "digest": self.digest,
            "tags": list(self.tags),
            "pushed_at": self.pushed_at.isoformat(),
            "last_pulled_at": self.last_pulled_at.isoformat() if self.last_pulled_at else None,
            "reason": self.reason,
            "rule": self.rule,
        }


@dataclass
class RetentionPlan:
    policy: RetentionPolicy
    computed_at: datetime
    repositories: list[str] = field(default_factory=list)  # in scope, by name
    deletions: list[Deletion] = field(default_factory=list)  # in the order a run applies
    retained: list[Kept] = field(default_factory=list)
    blobs: dict[str, int] = field(default_factory=dict)  # digest -> size, freed by GC
    # Untagged manifests pushed after this stay (the planner's grace); a run never takes
    # one along with a deleted manifest either.
    untagged_cutoff: datetime | None = None

    @property
    def project(self) -> str:
        return self.policy.project

    @property
    def tags(self) -> int:
        return sum(len(d.tags) for d in self.deletions)

    @property
    def blob_bytes(self) -> int:
        return sum(self.blobs.values())

    @property
    def manifest_bytes(self) -> int:
        return sum(d.size for d in self.deletions)

    @property
    def bytes_freed(self) -> int:
        return self.blob_bytes + self.manifest_bytes


@dataclass(slots=True)
class _Artifact:
    id: int
    digest: str
    media_type: str
    size: int
    pushed_at: datetime
    last_pulled_at: datetime | None
    subject: str | None
    tags: list[str] = field(default_factory=list)
    children: set[str] = field(default_factory=set)


@dataclass(frozen=True, slots=True)
class _Rule:
    position: int
    rule: RetentionRule
    repositories: NamePattern
    tags: NamePattern

    def applies_to(self, repository: str) -> bool:
        return self.repositories.matches(repository) != self.rule.repository_excluding

    def selects(self, artifact: _Artifact) -> bool:
        return any(self.tags.matches(t) != self.rule.tag_excluding for t in artifact.tags)

    def retain(self, candidates: list[_Artifact], now: datetime) -> Iterable[_Artifact]:
        kind, value = self.rule.kind, self.rule.value or 0
        if kind == "always":
            return candidates
        if kind == "latest_pushed":
            return sorted(candidates, key=lambda a: (a.pushed_at, a.id), reverse=True)[:value]
        if kind == "latest_pulled":
            floor = datetime.min.replace(tzinfo=now.tzinfo)
            return sorted(
                candidates,
                key=lambda a: (a.last_pulled_at or floor, a.pushed_at, a.id),
                reverse=True,
            )[:value]
        since = now - timedelta(days=value)
        if kind == "pushed_within_days":
            return [a for a in candidates if a.pushed_at >= since]
        return [a for a in candidates if a.last_pulled_at and a.last_pulled_at >= since]


class Planner:
    def __init__(self, db: Database, *, untagged_grace: timedelta = UNTAGGED_GRACE) -> None:
        self.db = db
        self.untagged_grace = untagged_grace

    # -- planning ---------------------------------------------------------------------
    def plan(
        self, project: str, policy: RetentionPolicy | None = None, *, now: datetime | None = None
    ) -> RetentionPlan:
        """What the project's policy (or `policy`, e.g. a draft to preview) deletes now.
        ProjectUnknown if there is no such project."""
        now = now or utcnow()
        with self.db.read() as conn:
            if not self.db.is_sqlite:
                # One snapshot for every query (READ COMMITTED would give each its own,
                # and a tag could name a manifest the first query did not see). SQLite's
                # read transaction is a snapshot already.
                conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                return self._plan(conn, project, policy, now)

    def _plan(
        self, conn: Connection, project: str, policy: RetentionPolicy | None, now: datetime
    ) -> RetentionPlan:
        stored = load_policy(conn, project)
        policy = policy or stored
        plan = RetentionPlan(policy, now, untagged_cutoff=now - self.untagged_grace)
        rules = [
            _Rule(n, r, NamePattern(r.repository_pattern, r.syntax), r.tags)
            for n, r in policy.enabled_rules
        ]
        if not rules:
            return plan
        matcher = load_matcher(conn, project)
        repositories = self._load(conn, project)
        for (repo_id, name), artifacts in sorted(repositories.items(), key=lambda i: i[0][1]):
            inner = name_in_project(name, project)
            applicable = [r for r in rules if r.applies_to(inner)]
            if not applicable:
                continue
            plan.repositories.append(name)
            self._plan_repository(
                plan,
                repo_id=repo_id,
                name=name,
                artifacts=artifacts,
                rules=applicable,
                matcher=matcher,
            )
        plan.blobs = _freed_blobs(conn, project, {d.manifest_id for d in plan.deletions})
        return plan

    @staticmethod
    def _load(conn: Connection, project: str) -> dict[tuple[int, str], list[_Artifact]]:
        r, m, t, c = s.repositories, s.manifests, s.tags, s.manifest_children
        in_project = r.c.project == project
        by_id: dict[int, _Artifact] = {}
        repos: dict[tuple[int, str], list[_Artifact]] = defaultdict(list)
        for row in conn.execute(
            select(
                r.c.id.label("repo_id"),
                r.c.name,
                m.c.id,
                m.c.digest,
                m.c.media_type,
                m.c.size,
                m.c.pushed_at,
                m.c.last_pulled_at,
                m.c.subject_digest,
            )
            .join(m, m.c.repository_id == r.c.id)
            .where(in_project)
        ):
            artifact = _Artifact(
                int(row.id),
                row.digest,
                row.media_type,
                int(row.size),
                as_utc(row.pushed_at),
                opt_utc(row.last_pulled_at),
                row.subject_digest,
            )
            by_id[artifact.id] = artifact
            repos[(int(row.repo_id), row.name)].append(artifact)
        for manifest_id, tag in conn.execute(
            select(t.c.manifest_id, t.c.name).join(r, r.c.id == t.c.repository_id).where(in_project)
        ):
            if int(manifest_id) in by_id:
                by_id[int(manifest_id)].tags.append(tag)
        for manifest_id, child in conn.execute(
            select(c.c.manifest_id, c.c.child_digest)
            .join(m, m.c.id == c.c.manifest_id)
            .join(r, r.c.id == m.c.repository_id)
            .where(in_project)
        ):
            if int(manifest_id) in by_id:
                by_id[int(manifest_id)].children.add(child)
        for artifact in by_id.values():
            artifact.tags.sort()
        return repos

    def _plan_repository(
        self,
        plan: RetentionPlan,
        *,
        repo_id: int,
        name: str,
        artifacts: list[_Artifact],
        rules: list[_Rule],
        matcher: TagMatcher,
    ) -> None:
        now = plan.computed_at
        by_digest = {a.digest: a for a in artifacts}
        listed_by: dict[str, list[_Artifact]] = defaultdict(list)  # child -> indexes
        for a in artifacts:
            for child in a.children:
                if child in by_digest:
                    listed_by[child].append(a)
        keep: dict[int, tuple[str, int | None]] = {}  # id -> (reason, rule position)
        tagged = [a for a in artifacts if a.tags]
        for rule in rules:
            for a in rule.retain([a for a in tagged if rule.selects(a)], now):
                keep.setdefault(
                    a.id, (f"retained by rule {rule.position}: {_describe(rule)}", rule.position)
                )
        for a in tagged:
            if a.id in keep:
                continue
            for tag in a.tags:
                protecting = matcher.rule_for(name, tag)
                if protecting is not None:
                    keep[a.id] = (f"tag {tag!r} is protected by {protecting.describe()}", None)
                    break
        for a in artifacts:
            if a.tags or a.id in keep:
                continue
            attached = a.digest in listed_by or (a.subject is not None and a.subject in by_digest)
            if a.pushed_at > now - self.untagged_grace:
                keep[a.id] = (f"untagged, pushed within the last {_age(self.untagged_grace)}", None)
            elif not plan.policy.remove_untagged and not attached:
                keep[a.id] = ("untagged (remove_untagged is off)", None)
        # Everything a manifest that stays needs stays too (content.deletion's rule).
        needs = plan_unneeded(
            [
                Node(a.id, repo_id, a.digest, a.subject, frozenset(a.children), a.pushed_at)
                for a in artifacts
            ],
            {id_: reason for id_, (reason, _) in keep.items()},
        )
        for id_, reason in needs.kept.items():
            keep.setdefault(id_, (reason, None))
        for a in sorted(artifacts, key=lambda a: (a.pushed_at, a.digest), reverse=True):
            if a.id in keep:
                reason, position = keep[a.id]
                plan.retained.append(
                    Kept(
                        name,
                        a.digest,
                        tuple(a.tags),
                        a.pushed_at,
                        a.last_pulled_at,
                        reason,
                        position,
                    )
                )
        by_id = {a.id: a for a in artifacts}
        for node in needs.unneeded:  # keepers first: each takes along what only it kept
            a = by_id[node.id]
            plan.deletions.append(
                Deletion(
                    name,
                    repo_id,
                    a.id,
                    a.digest,
                    a.media_type,
                    a.size,
                    tuple(a.tags),
                    a.pushed_at,
                    a.last_pulled_at,
                    _why(a, listed_by, by_digest),
                )
            )


def _age(grace: timedelta) -> str:
    minutes = int(grace.total_seconds() // 60)
    if minutes % 60 == 0 and minutes:
        return "hour" if minutes == 60 else f"{minutes // 60} hours"
    return f"{minutes} minutes"


def _describe(rule: _Rule) -> str:
    return rule.rule.describe()


def _why(
    a: _Artifact, listed_by: dict[str, list[_Artifact]], by_digest: dict[str, _Artifact]
) -> str:
    if a.tags:
        return "not retained by any rule"
    if a.digest in listed_by:
        return "untagged, listed only by indexes that go"
    if a.subject is not None and a.subject in by_digest:
        return f"untagged referrer of {a.subject}, which goes"
    return "untagged"


def _freed_blobs(conn: Connection, project: str, doomed: set[int]) -> dict[str, int]:
    """digest -> size of the blobs only `doomed` manifests list, anywhere in the registry."""
    if not doomed:
        return {}
    mb, m, r = s.manifest_blobs, s.manifests, s.repositories
    listers: dict[str, int] = defaultdict(int)  # digest -> doomed manifests listing it
    for manifest_id, digest in conn.execute(
        select(mb.c.manifest_id, mb.c.digest)
        .join(m, m.c.id == mb.c.manifest_id)
        .join(r, r.c.id == m.c.repository_id)
        .where(r.c.project == project)
    ):
        if int(manifest_id) in doomed:
            listers[digest] += 1
    digests = sorted(listers)
    freed: dict[str, int] = {}
    for start in range(0, len(digests), _CHUNK):
        chunk = digests[start : start + _CHUNK]
        totals: dict[str, int] = dict(
            conn.execute(
                select(mb.c.digest, func.count())
                .where(mb.c.digest.in_(chunk))
                .group_by(mb.c.digest)
            ).all()
        )
        only_doomed = [d for d in chunk if int(totals.get(d, 0)) == listers[d]]
        if only_doomed:
            freed.update(
                (digest, int(size))
                for digest, size in conn.execute(
                    select(s.blobs.c.digest, s.blobs.c.size).where(
                        s.blobs.c.digest.in_(only_doomed)
                    )
                )
            )
    return dict(sorted(freed.items()))
