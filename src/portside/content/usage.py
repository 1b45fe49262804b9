"""Storage usage: the bytes each project and repository holds, unique and shared.

Blobs are stored once for the whole registry, and a repository sees a blob through a
link (repository_blobs); manifests are rows of their repository, bytes included. So:

* A project **uses** the sizes of the distinct blobs its repositories link (each blob
  once per project, however many of its repositories link it, as Harbor counts) plus the
  sizes of its repositories' manifests. Its quota is checked against this number.
* A project's **unique** bytes are the blobs no repository of another project links,
  plus its manifests: what deleting the project frees (at the next garbage collection).
  Its **shared** bytes are the rest (used - unique): blobs other projects link too.
* A repository **uses** the blobs it links plus its manifests; **unique** are the blobs
  no other repository (of any project) links, plus its manifests: what deleting the
  repository frees. **Shared** is the rest.
* The registry **stores** every blob once plus every manifest. Blobs no repository links
  any more (**unreferenced**) count for no project; garbage collection deletes them.

Projects sharing blobs use more, together, than the registry stores; their unique bytes
never add up to more. Uploads in progress count nowhere.

Everything is summed in SQL (GROUP BY, EXISTS on indexed columns): one project's numbers
read only that project's links and manifests, and the whole registry is one pass over
each table, never a loop over blobs in Python.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, case, func, or_, select

from portside.metadata import schema as s
from portside.metadata.db import Database

_r, _l, _b, _m = s.repositories, s.repository_blobs, s.blobs, s.manifests


@dataclass(frozen=True, slots=True)
class RepositoryUsage:
    name: str
    used: int
    unique: int
    manifest_bytes: int  # part of used and unique

    @property
    def shared(self) -> int:
        return self.used - self.unique


@dataclass(frozen=True, slots=True)
class ProjectUsage:
    name: str
    quota: int | None  # bytes; None: no quota
    used: int
    unique: int
    manifest_bytes: int  # part of used and unique
    repository_count: int  # repositories holding a manifest or a blob link
    repositories: tuple[RepositoryUsage, ...] | None = None  # when asked for

    @property
    def shared(self) -> int:
        return self.used - self.unique


@dataclass(frozen=True, slots=True)
class RegistryUsage:
    projects: tuple[ProjectUsage, ...]
    blob_bytes: int  # every blob once
    manifest_bytes: int
    unreferenced_bytes: int  # blobs no repository links (part of blob_bytes)

    @property
    def stored(self) -> int:
        return self.blob_bytes + self.manifest_bytes

    @property
    def projects_used(self) -> int:
        """What the projects use together: more than is stored when they share blobs."""
        return sum(p.used for p in self.projects)


# -- building blocks ------------------------------------------------------------------------


def _sum(column: Any) -> Any:
    return func.coalesce(func.sum(column), 0)


def _project_links(project: str) -> Any:
    """The digests the project's repositories link (with repeats)."""
    return (
        select(_l.c.digest).join(_r, _r.c.id == _l.c.repository_id).where(_r.c.project == project)
    )


def _project_manifest_bytes(project: str) -> Any:
    return (
        select(_sum(_m.c.size))
        .select_from(_m.join(_r, _r.c.id == _m.c.repository_id))
        .where(_r.c.project == project)
    )


def _holds_something() -> Any:
    """A repository (the outer `repositories` row) has a manifest or a blob link."""
    return or_(
        select(_m.c.id).where(_m.c.repository_id == _r.c.id).exists(),
        select(_l.c.digest).where(_l.c.repository_id == _r.c.id).exists(),
    )


# -- what the quota check needs -------------------------------------------------------------


def project_used(conn: Connection, project: str) -> int:
    """A project's used bytes, in one statement."""
    blobs = select(_sum(_b.c.size)).where(_b.c.digest.in_(_project_links(project)))
    total = conn.execute(
        select(blobs.scalar_subquery() + _project_manifest_bytes(project).scalar_subquery())
    ).scalar_one()
    return int(total)


def project_holds_blob(conn: Connection, project: str, digest: str) -> bool:
    """Does a repository of the project link the blob (so it is counted already)?"""
    found = conn.execute(_project_links(project).where(_l.c.digest == digest).limit(1)).first()
    return found is not None


# -- reports ----------------------------------------------------------------------------------


def project_usage(
    conn: Connection, project: str, quota: int | None, *, repositories: bool = False
) -> ProjectUsage:
    other_r, other_l = _r.alias("other_repositories"), _l.alias("other_links")
    elsewhere = (
        select(other_l.c.digest)
        .join(other_r, other_r.c.id == other_l.c.repository_id)
        .where(other_l.c.digest == _b.c.digest, other_r.c.project != project)
        .exists()
    )
    blobs = conn.execute(
        select(_sum(_b.c.size), _sum(case((elsewhere, 0), else_=_b.c.size))).where(
            _b.c.digest.in_(_project_links(project))
        )
    ).one()
    manifest_bytes = int(conn.execute(_project_manifest_bytes(project)).scalar_one())
    count = conn.execute(
        select(func.count()).select_from(_r).where(_r.c.project == project, _holds_something())
    ).scalar_one()
    return ProjectUsage(
        name=project,
        quota=quota,
        used=int(blobs[0]) + manifest_bytes,
        unique=int(blobs[1]) + manifest_bytes,
        manifest_bytes=manifest_bytes,
        repository_count=int(count),
        repositories=tuple(repository_usage(conn, project)) if repositories else None,
    )


def repository_usage(conn: Connection, project: str) -> list[RepositoryUsage]:
    """Each repository of the project holding anything, by name."""
    other = _l.alias("other_links")
    elsewhere = (
        select(other.c.digest)
        .where(other.c.digest == _l.c.digest, other.c.repository_id != _l.c.repository_id)
        .exists()
    )
    blobs = conn.execute(
        select(_r.c.name, _sum(_b.c.size), _sum(case((elsewhere, 0), else_=_b.c.size)))
        .select_from(
            _l.join(_r, _r.c.id == _l.c.repository_id).join(_b, _b.c.digest == _l.c.digest)
        )
        .where(_r.c.project == project)
        .group_by(_r.c.name)
    ).all()
    manifests = conn.execute(
        select(_r.c.name, _sum(_m.c.size))
        .select_from(_m.join(_r, _r.c.id == _m.c.repository_id))
        .where(_r.c.project == project)
        .group_by(_r.c.name)
    ).all()
    linked = {row[0]: (int(row[1]), int(row[2])) for row in blobs}
    manifest_bytes = {row[0]: int(row[1]) for row in manifests}
    return [
        RepositoryUsage(
            name=name,
            used=linked.get(name, (0, 0))[0] + manifest_bytes.get(name, 0),
            unique=linked.get(name, (0, 0))[1] + manifest_bytes.get(name, 0),
            manifest_bytes=manifest_bytes.get(name, 0),
        )
        for name in sorted(linked.keys() | manifest_bytes.keys())
    ]


def used_by_projects(conn: Connection, projects: Iterable[str]) -> dict[str, int]:
    """Used bytes of several projects at once (a page of the project list)."""
    names = sorted(set(projects))
    if not names:
        return {}
    pairs = (
        select(_r.c.project, _l.c.digest)
        .select_from(_l.join(_r, _r.c.id == _l.c.repository_id))
        .where(_r.c.project.in_(names))
        .distinct()
        .subquery()
    )
    blobs = conn.execute(
        select(pairs.c.project, _sum(_b.c.size))
        .select_from(pairs.join(_b, _b.c.digest == pairs.c.digest))
        .group_by(pairs.c.project)
    ).all()
    manifests = conn.execute(
        select(_r.c.project, _sum(_m.c.size))
        .select_from(_m.join(_r, _r.c.id == _m.c.repository_id))
        .where(_r.c.project.in_(names))
        .group_by(_r.c.project)
    ).all()
    used = dict.fromkeys(names, 0)
    for project, size in (*blobs, *manifests):
        used[project] += int(size)
    return used


def registry_usage(conn: Connection) -> RegistryUsage:
    """Every project (with a project row or with repositories) and the registry's totals."""
    pairs = (
        select(_r.c.project, _l.c.digest)
        .select_from(_l.join(_r, _r.c.id == _l.c.repository_id))
        .distinct()
        .cte("project_blobs")
    )
    spread = (
        select(pairs.c.digest, func.count().label("projects"))
        .group_by(pairs.c.digest)
        .cte("blob_spread")
    )
    blobs = conn.execute(
        select(
            pairs.c.project,
            _sum(_b.c.size),
            _sum(case((spread.c.projects == 1, _b.c.size), else_=0)),
        )
        .select_from(
            pairs.join(_b, _b.c.digest == pairs.c.digest).join(
                spread, spread.c.digest == pairs.c.digest
            )
        )
        .group_by(pairs.c.project)
    ).all()
    manifests = conn.execute(
        select(_r.c.project, _sum(_m.c.size))
        .select_from(_m.join(_r, _r.c.id == _m.c.repository_id))
        .group_by(_r.c.project)
    ).all()
    counts = conn.execute(
        select(_r.c.project, func.count()).where(_holds_something()).group_by(_r.c.project)
    ).all()
    quotas = conn.execute(select(s.projects.c.name, s.projects.c.quota_bytes)).all()
    linked = select(_l.c.digest).where(_l.c.digest == _b.c.digest).exists()
    totals = conn.execute(select(_sum(_b.c.size), _sum(case((linked, 0), else_=_b.c.size)))).one()
    manifest_total = conn.execute(select(_sum(_m.c.size))).scalar_one()

    blob_usage = {row[0]: (int(row[1]), int(row[2])) for row in blobs}
    manifest_bytes = {row[0]: int(row[1]) for row in manifests}
    repository_count = {row[0]: int(row[1]) for row in counts}
    quota = {row[0]: None if row[1] is None else int(row[1]) for row in quotas}
    names = sorted(blob_usage.keys() | manifest_bytes.keys() | quota.keys())
    projects = []
    for name in names:
        used, unique = blob_usage.get(name, (0, 0))
        in_manifests = manifest_bytes.get(name, 0)
        projects.append(
            ProjectUsage(
                name=name,
                quota=quota.get(name),
                used=used + in_manifests,
                unique=unique + in_manifests,
                manifest_bytes=in_manifests,
                repository_count=repository_count.get(name, 0),
            )
        )
    return RegistryUsage(
        projects=tuple(projects),
        blob_bytes=int(totals[0]),
        manifest_bytes=int(manifest_total),
        unreferenced_bytes=int(totals[1]),
    )


class UsageReports:
    """The reports on read connections of their own (management API, CLI)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def project(self, name: str, *, repositories: bool = False) -> ProjectUsage:
        """A project's usage; its quota is None if it has none or has no project row."""
        with self.db.read() as conn:
            quota = conn.execute(
                select(s.projects.c.quota_bytes).where(s.projects.c.name == name)
            ).scalar_one_or_none()
            return project_usage(
                conn, name, None if quota is None else int(quota), repositories=repositories
            )

    def registry(self) -> RegistryUsage:
        with self.db.read() as conn:
            return registry_usage(conn)

    def used(self, projects: Iterable[str]) -> dict[str, int]:
        with self.db.read() as conn:
            return used_by_projects(conn, projects)
