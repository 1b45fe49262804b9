"""Which projects are proxy caches, of which upstream: the `proxy_projects` rows, the
mirror mode's project from the config, and a per-process snapshot of both that the /v2
handlers read without touching the database.

The snapshot is what keeps a normal pull as fast as before: a GET asks `bound(name)`, a
dict lookup, and only a proxy project's requests do anything more. It is reloaded (on the
blocking-work pool, in the background) when older than SNAPSHOT_SECONDS, so a project
made a proxy cache in another process is seen within that time. Writes do not trust it:
`refuse_writes` asks the database, so a push into a proxy project created a moment ago
is refused too.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select

from portside.auth.errors import Invalid, Missing
from portside.auth.projects import project_id
from portside.config import ConfigError, ProxySettings
from portside.errors import Denied
from portside.events import outbox
from portside.events.outbox import Actor
from portside.metadata import schema as s
from portside.metadata.db import Database, utcnow
from portside.reference import project_of

SNAPSHOT_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class Binding:
    """A proxy-cache project: the endpoints it caches (one for a proxy project, the
    configured list, asked in order, for the mirror's project)."""

    project: str
    endpoints: tuple[str, ...]
    tag_ttl_seconds: int
    cache_limit_bytes: int | None = None
    mirror: bool = False

    def upstream_name(self, repository: str) -> str:
        """The repository's name without the project: what the upstream is asked for."""
        return repository[len(self.project) + 1 :]


@dataclass(frozen=True, slots=True)
class CachedArtifact:
    repository: str
    digest: str
    tags: tuple[str, ...]
    size: int
    pushed_at: datetime  # when it was cached
    last_pulled_at: datetime | None
    pulls: int  # artifact.pulled events still kept (events.keep_days)


@dataclass(frozen=True, slots=True)
class CacheStatus:
    binding: Binding
    used_bytes: int
    artifact_count: int
    last_pulled_at: datetime | None
    pulls: int
    artifacts: list[CachedArtifact]  # most recently pulled first, at most `limit`


class ProxyStore:
    def __init__(self, db: Database, settings: ProxySettings) -> None:
        self.db = db
        self.settings = settings
        self._snapshot: dict[str, Binding] | None = None
        self._projects: frozenset[str] = frozenset()
        self._loaded_at = 0.0
        self._reloading = False

    # -- the snapshot (memory; reloaded on the pool) -----------------------------------
    def bound(self, repository: str) -> Binding | None:
        """The binding of the repository's project from the snapshot (None: not a proxy
        project). Never blocks; call `reload_due` to keep the snapshot current."""
        snapshot = self._snapshot
        if snapshot is None or not snapshot:
            return None
        return snapshot.get(project_of(repository))

    @property
    def loaded(self) -> bool:
        return self._snapshot is not None

    def reload_due(self) -> bool:
        """True once per SNAPSHOT_SECONDS (the caller then runs reload on the pool)."""
        if self._reloading or time.monotonic() - self._loaded_at < SNAPSHOT_SECONDS:
            return False
        self._reloading = True
        return True

    def forget(self) -> None:
        """Make the snapshot due for a reload (it missed a binding)."""
        self._loaded_at = 0.0

    def reload(self) -> None:
        """Read every binding (and, in mirror mode, every project name) again."""
        try:
            with self.db.read() as conn:
                rows = conn.execute(_binding_query()).all()
                projects: frozenset[str] = frozenset()
                if self.settings.mirror is not None:
                    projects = frozenset(conn.execute(select(s.projects.c.name)).scalars())
            snapshot = {row.name: _binding(row) for row in rows}
            mirror = self.mirror_binding()
            if mirror is not None:
                snapshot[mirror.project] = mirror
            self._snapshot, self._projects = snapshot, projects
            self._loaded_at = time.monotonic()
        finally:
            self._reloading = False

    def mirror_binding(self) -> Binding | None:
        mirror = self.settings.mirror
        if mirror is None:
            return None
        return Binding(mirror.project, mirror.endpoints, self.settings.tag_ttl_seconds, mirror=True)

    def mirrored(self, name: str) -> str | None:
        """In mirror mode, the name a request for `name` is served under (the mirror's
        project + name) when `name`'s project does not exist; else None."""
        mirror = self.settings.mirror
        if mirror is None or project_of(name) in self._projects:
            return None
        return f"{mirror.project}/{name}"

    # -- the database ----------------------------------------------------------------
    def binding(self, project: str) -> Binding | None:
        """The project's binding from the database (authoritative)."""
        mirror = self.mirror_binding()
        if mirror is not None and mirror.project == project:
            return mirror
        with self.db.read() as conn:
            row = conn.execute(_binding_query().where(s.projects.c.name == project)).first()
        return None if row is None else _binding(row)

    def refuse_writes(self, repository: str, what: str) -> None:
        """DENIED if the repository is in a proxy-cache project: its content comes from
        the upstream only (blocking: one query)."""
        binding = self.binding(project_of(repository))
        if binding is not None:
            source = ", ".join(binding.endpoints)
            raise Denied(
                f"project {binding.project!r} is a proxy cache of {source}: {what} is not "
                "accepted; push to the upstream registry instead",
                detail={"project": binding.project},
            )

    def bind(
        self,
        project: str,
        endpoint: str,
        *,
        tag_ttl_seconds: int | None,
        cache_limit_bytes: int | None,
        actor: Actor,
    ) -> Binding:
        """Make a project (empty, just created) a proxy cache of `endpoint`."""
        _check(tag_ttl_seconds, cache_limit_bytes)
        ttl = self.settings.tag_ttl_seconds if tag_ttl_seconds is None else tag_ttl_seconds
        with self.db.write() as conn:
            found = project_id(conn, project)
            if _has_content(conn, project):
                raise Invalid(f"project {project!r} has content; only an empty one can proxy")
            self.db.insert_ignore(
                conn,
                s.proxy_projects,
                {
                    "project_id": found,
                    "endpoint": endpoint,
                    "tag_ttl_seconds": ttl,
                    "cache_limit_bytes": cache_limit_bytes,
                    "created_at": utcnow(),
                },
            )
            data = {"endpoint": endpoint, "tag_ttl_seconds": ttl, "limit": cache_limit_bytes}
            _emit(conn, actor, project, {"proxy": data})
        self._loaded_at = 0.0  # this process sees it at once
        binding = self.binding(project)
        assert binding is not None
        return binding

    def update(
        self,
        project: str,
        *,
        tag_ttl_seconds: int | None = None,
        cache_limit_bytes: int | None = None,
        clear_limit: bool = False,
        actor: Actor,
    ) -> Binding:
        _check(tag_ttl_seconds, cache_limit_bytes)
        p = s.proxy_projects
        values: dict[str, Any] = {}
        if tag_ttl_seconds is not None:
            values["tag_ttl_seconds"] = tag_ttl_seconds
        if cache_limit_bytes is not None or clear_limit:
            values["cache_limit_bytes"] = None if clear_limit else cache_limit_bytes
        with self.db.write() as conn:
            found = project_id(conn, project)
            if values:
                updated = conn.execute(p.update().where(p.c.project_id == found).values(values))
                if updated.rowcount == 0:
                    raise Missing(f"project {project!r} is not a proxy cache")
                _emit(conn, actor, project, {"proxy": values})
        self._loaded_at = 0.0
        binding = self.binding(project)
        if binding is None or binding.mirror:
            raise Missing(f"project {project!r} is not a proxy cache")
        return binding

    def limited(self) -> list[Binding]:
        """Proxy projects with a cache size limit (eviction's work list)."""
        with self.db.read() as conn:
            rows = conn.execute(
                _binding_query().where(s.proxy_projects.c.cache_limit_bytes.is_not(None))
            ).all()
        return [_binding(row) for row in rows]

    def status(self, project: str, limit: int = 100) -> CacheStatus:
        """Size, artifacts and pulls of a proxy project's cache."""
        from portside.content.usage import used_by_projects

        binding = self.binding(project)
        if binding is None:
            raise Missing(f"project {project!r} is not a proxy cache")
        r, m, t = s.repositories, s.manifests, s.tags
        with self.db.read() as conn:
            used = used_by_projects(conn, [project])[project]
            rows = conn.execute(
                select(r.c.name, m.c.id, m.c.digest, m.c.size, m.c.pushed_at, m.c.last_pulled_at)
                .join(r, r.c.id == m.c.repository_id)
                .where(r.c.project == project)
            ).all()
            tags: dict[int, list[str]] = {}
            for manifest_id, tag in conn.execute(
                select(t.c.manifest_id, t.c.name)
                .join(r, r.c.id == t.c.repository_id)
                .where(r.c.project == project)
            ):
                tags.setdefault(int(manifest_id), []).append(tag)
            pulls = _pull_counts(conn, project)
        artifacts = [
            CachedArtifact(
                row.name,
                row.digest,
                tuple(sorted(tags.get(int(row.id), ()))),
                int(row.size),
                row.pushed_at,
                row.last_pulled_at,
                pulls.get((row.name, row.digest), 0),
            )
            for row in rows
        ]
        artifacts.sort(key=lambda a: (a.last_pulled_at is not None, a.last_pulled_at), reverse=True)
        pulled = [a.last_pulled_at for a in artifacts if a.last_pulled_at is not None]
        return CacheStatus(
            binding,
            used,
            len(artifacts),
            max(pulled) if pulled else None,
            sum(pulls.values()),
            artifacts[:limit],
        )


def _binding_query() -> Any:
    p, proj = s.proxy_projects, s.projects
    return select(proj.c.name, p.c.endpoint, p.c.tag_ttl_seconds, p.c.cache_limit_bytes).join(
        proj, proj.c.id == p.c.project_id
    )


def _binding(row: Any) -> Binding:
    return Binding(
        row.name,
        (row.endpoint,),
        int(row.tag_ttl_seconds),
        None if row.cache_limit_bytes is None else int(row.cache_limit_bytes),
    )


def _check(tag_ttl_seconds: int | None, cache_limit_bytes: int | None) -> None:
    if tag_ttl_seconds is not None and tag_ttl_seconds < 0:
        raise Invalid("tag_ttl_seconds must not be negative")
    if cache_limit_bytes is not None and cache_limit_bytes < 0:
        raise Invalid("cache_limit_bytes must not be negative")


def _has_content(conn: Connection, project: str) -> bool:
    r, m = s.repositories, s.manifests
    found = conn.execute(
        select(func.count())
        .select_from(m.join(r, r.c.id == m.c.repository_id))
        .where(r.c.project == project)
    ).scalar_one()
    return bool(found)


def _pull_counts(conn: Connection, project: str) -> dict[tuple[str, str], int]:
    """Pulls per (repository, digest) from the kept `artifact.pulled` events (each row
    counts identical pulls of one batch window, events.batch)."""
    import json

    e = s.events
    counts: dict[tuple[str, str], int] = {}
    for repository, data in conn.execute(
        select(e.c.repository, e.c.data).where(
            e.c.project == project, e.c.type == outbox.ARTIFACT_PULLED
        )
    ):
        try:
            parsed = json.loads(data)
            key = (str(repository), str(parsed["digest"]))
            counts[key] = counts.get(key, 0) + int(parsed.get("count", 1))
        except (ValueError, KeyError, TypeError):
            continue
    return counts


def _emit(conn: Connection, actor: Actor, project: str, data: dict[str, Any]) -> None:
    outbox.emit(conn, outbox.PROJECT_UPDATED, actor, resource=project, project=project, data=data)


def check_mirror(db: Database, settings: ProxySettings) -> None:
    """With `proxy.mirror` configured, its project must exist: ConfigError naming the key
    otherwise. It is not created for the administrator, because whether it is public
    (anonymous clients pulling through the mirror) is theirs to choose."""
    mirror = settings.mirror
    if mirror is None:
        return
    with db.read() as conn:
        found = conn.execute(
            select(s.projects.c.id).where(s.projects.c.name == mirror.project)
        ).first()
    if found is None:
        raise ConfigError(
            f"proxy.mirror.project: there is no project {mirror.project!r}; create it first "
            f"(`portside project create {mirror.project} --public` for anonymous clients, "
            "without --public for clients that log in)"
        )
