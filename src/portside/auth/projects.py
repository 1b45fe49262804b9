"""Projects and their members: create, list, change visibility or quota, delete when empty,
and give users (or LDAP groups) a role in a project. Each change raises its event
(`project.*`, `member.*`) in its transaction, whoever asked for it (CLI, API, UI)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, exists, func, select, update

from portside.auth.errors import Exists, Invalid, Missing
from portside.auth.names import check_project_name
from portside.auth.roles import Role
from portside.events import outbox
from portside.events.outbox import SYSTEM, Actor
from portside.metadata import schema as s
from portside.metadata.db import Database, utcnow


@dataclass(frozen=True, slots=True)
class Project:
    id: int
    name: str
    public: bool
    quota_bytes: int | None
    created_at: datetime
    created_by: str | None
    repository_count: int


@dataclass(frozen=True, slots=True)
class Member:
    kind: str  # "user" or "group"
    name: str
    role: Role


def _repository_count() -> Any:
    return (
        select(func.count())
        .select_from(s.repositories)
        .where(
            s.repositories.c.project == s.projects.c.name,
            exists().where(s.manifests.c.repository_id == s.repositories.c.id),
        )
        .scalar_subquery()
    )


_COLUMNS = (
    s.projects.c.id,
    s.projects.c.name,
    s.projects.c.public,
    s.projects.c.quota_bytes,
    s.projects.c.created_at,
    s.projects.c.created_by,
)


def _project(row: Any) -> Project:
    return Project(
        int(row.id),
        row.name,
        bool(row.public),
        row.quota_bytes,
        row.created_at,
        row.created_by,
        int(row.repository_count),
    )


def project_id(conn: Connection, name: str) -> int:
    """The id of a project; Missing if there is none of that name."""
    found = conn.execute(
        select(s.projects.c.id).where(s.projects.c.name == name)
    ).scalar_one_or_none()
    if found is None:
        raise Missing(f"no project {name!r}")
    return int(found)


class Projects:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create(
        self,
        name: str,
        *,
        public: bool = False,
        quota_bytes: int | None = None,
        creator: str | None = None,
        creator_user_id: int | None = None,
        actor: Actor = SYSTEM,
    ) -> Project:
        check_project_name(name)
        if quota_bytes is not None and quota_bytes < 0:
            raise Invalid("quota must not be negative")
        with self.db.write() as conn:
            if conn.execute(select(s.projects.c.id).where(s.projects.c.name == name)).first():
                raise Exists(f"project {name!r} already exists")
            project_id = conn.execute(
                s.projects.insert()
                .values(
                    name=name,
                    public=public,
                    quota_bytes=quota_bytes,
                    created_at=utcnow(),
                    created_by=creator,
                )
                .returning(s.projects.c.id)
            ).scalar_one()
            if creator_user_id is not None:
                conn.execute(
                    s.project_members.insert().values(
                        project_id=project_id, user_id=creator_user_id, role=Role.PROJECT_ADMIN
                    )
                )
            data = {"public": public, "quota_bytes": quota_bytes}
            _emit(conn, outbox.PROJECT_CREATED, actor, name, data)
        return self.get(name)

    def get(self, name: str) -> Project:
        query = select(*_COLUMNS, _repository_count().label("repository_count")).where(
            s.projects.c.name == name
        )
        with self.db.read() as conn:
            row = conn.execute(query).first()
        if row is None:
            raise Missing(f"no project {name!r}")
        return _project(row)

    def find(self, names: list[str] | None = None, search: str | None = None) -> list[Project]:
        """All projects, or only those named (the caller's visible set)."""
        query = select(*_COLUMNS, _repository_count().label("repository_count")).order_by(
            s.projects.c.name
        )
        if names is not None:
            query = query.where(s.projects.c.name.in_(names))
        if search:
            query = query.where(s.projects.c.name.contains(search, autoescape=True))
        with self.db.read() as conn:
            return [_project(r) for r in conn.execute(query)]

    def update(
        self,
        name: str,
        *,
        public: bool | None = None,
        quota_bytes: int | None = None,
        clear_quota: bool = False,
        actor: Actor = SYSTEM,
    ) -> Project:
        """Change visibility or quota; the event names exactly what was set (a removed
        quota is `quota_bytes: null`)."""
        values: dict[str, Any] = {}
        if public is not None:
            values["public"] = public
        if quota_bytes is not None:
            if quota_bytes < 0:
                raise Invalid("quota must not be negative")
            values["quota_bytes"] = quota_bytes
        if clear_quota:
            values["quota_bytes"] = None
        with self.db.write() as conn:
            self._id(conn, name)
            if values:
                conn.execute(update(s.projects).where(s.projects.c.name == name).values(**values))
            _emit(conn, outbox.PROJECT_UPDATED, actor, name, values)
        return self.get(name)

    def delete(self, name: str, *, actor: Actor = SYSTEM) -> None:
        """Delete a project that holds no repository with content."""
        with self.db.write() as conn:
            project_id = self._id(conn, name)
            used = conn.execute(
                select(s.repositories.c.name)
                .where(
                    s.repositories.c.project == name,
                    exists().where(s.manifests.c.repository_id == s.repositories.c.id),
                )
                .limit(1)
            ).scalar_one_or_none()
            if used is not None:
                raise Invalid(
                    f"project {name!r} still has repositories (e.g. {used!r}); delete them first"
                )
            conn.execute(delete(s.projects).where(s.projects.c.id == project_id))
            _emit(conn, outbox.PROJECT_DELETED, actor, name, {})

    def _id(self, conn: Connection, name: str) -> int:
        return project_id(conn, name)

    # --- members -------------------------------------------------------------------

    def set_member(self, project: str, username: str, role: Role, *, actor: Actor = SYSTEM) -> None:
        """Give a user a role in the project (adding or changing their membership)."""
        with self.db.write() as conn:
            project_id = self._id(conn, project)
            user_id = conn.execute(
                select(s.users.c.id).where(s.users.c.username == username)
            ).scalar_one_or_none()
            if user_id is None:
                raise Missing(f"no user {username!r}")
            m = s.project_members
            where = (m.c.project_id == project_id, m.c.user_id == user_id)
            if conn.execute(select(m.c.role).where(*where)).first():
                conn.execute(update(m).where(*where).values(role=role.value))
            else:
                conn.execute(m.insert().values(project_id=project_id, user_id=user_id, role=role))
            data = {"member": username, "kind": "user", "role": role.value}
            _emit(conn, outbox.MEMBER_SET, actor, project, data)

    def set_group(self, project: str, group: str, role: Role, *, actor: Actor = SYSTEM) -> None:
        """Give every member of an LDAP group a role in the project. Group names compare
        without regard to case, as LDAP compares them."""
        group = group.strip().casefold()
        if not group or len(group) > 255:
            raise Invalid("group name must be 1-255 characters")
        with self.db.write() as conn:
            project_id = self._id(conn, project)
            g = s.project_groups
            where = (g.c.project_id == project_id, g.c.group_name == group)
            if conn.execute(select(g.c.role).where(*where)).first():
                conn.execute(update(g).where(*where).values(role=role.value))
            else:
                conn.execute(g.insert().values(project_id=project_id, group_name=group, role=role))
            data = {"member": group, "kind": "group", "role": role.value}
            _emit(conn, outbox.MEMBER_SET, actor, project, data)

    def remove_member(
        self, project: str, name: str, *, group: bool = False, actor: Actor = SYSTEM
    ) -> None:
        with self.db.write() as conn:
            project_id = self._id(conn, project)
            if group:
                g = s.project_groups
                result = conn.execute(
                    delete(g).where(
                        g.c.project_id == project_id, g.c.group_name == name.strip().casefold()
                    )
                )
            else:
                m = s.project_members
                user_ids = select(s.users.c.id).where(s.users.c.username == name)
                result = conn.execute(
                    delete(m).where(m.c.project_id == project_id, m.c.user_id.in_(user_ids))
                )
            if result.rowcount == 0:
                raise Missing(f"{name!r} is not a member of project {project!r}")
            member = name.strip().casefold() if group else name
            data = {"member": member, "kind": "group" if group else "user"}
            _emit(conn, outbox.MEMBER_REMOVED, actor, project, data)

    def members(self, project: str) -> list[Member]:
        m, g, u = s.project_members, s.project_groups, s.users
        with self.db.read() as conn:
            project_id = self._id(conn, project)
            users = conn.execute(
                select(u.c.username, m.c.role)
                .join(m, m.c.user_id == u.c.id)
                .where(m.c.project_id == project_id)
                .order_by(u.c.username)
            ).all()
            groups = conn.execute(
                select(g.c.group_name, g.c.role)
                .where(g.c.project_id == project_id)
                .order_by(g.c.group_name)
            ).all()
        return [Member("user", r.username, Role(r.role)) for r in users] + [
            Member("group", r.group_name, Role(r.role)) for r in groups
        ]


def _emit(conn: Connection, type_: str, actor: Actor, project: str, data: dict[str, Any]) -> None:
    """A project event: the project is the resource (member changes included)."""
    outbox.emit(conn, type_, actor, resource=project, project=project, data=data)
