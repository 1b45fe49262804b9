"""What an identity may do: repository actions and project permissions, from the database.

System admins may do everything. Anyone may pull from a public project and list its
repositories. Users get their strongest role in a project, directly or through an LDAP
group; robots get exactly the actions they were created with. Repositories whose
project does not exist are visible to admins only.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from portside.auth import roles
from portside.auth.identity import Identity
from portside.auth.roles import Role
from portside.metadata import schema as s
from portside.metadata.db import Database
from portside.reference import project_of

ALL_ACTIONS = frozenset({"pull", "push", "delete"})


@dataclass(frozen=True, slots=True)
class ProjectAccess:
    project_id: int | None
    public: bool
    role: Role | None
    actions: frozenset[str]  # on the project's repositories
    permissions: frozenset[str]  # project management: list, log, tags, members, ...

    @property
    def exists(self) -> bool:
        return self.project_id is not None

    @property
    def visible(self) -> bool:
        """May the caller learn that the project exists?"""
        return self.exists and (self.public or bool(self.actions) or bool(self.permissions))


NO_ACCESS = ProjectAccess(None, False, None, frozenset(), frozenset())


class Policy:
    def __init__(self, db: Database) -> None:
        self.db = db

    def repository_actions(self, identity: Identity, repository: str) -> frozenset[str]:
        return self.project_access(identity, project_of(repository)).actions

    def project_access(self, identity: Identity, project: str) -> ProjectAccess:
        p = s.projects
        with self.db.read() as conn:
            row = conn.execute(select(p.c.id, p.c.public).where(p.c.name == project)).first()
            if row is None:
                if identity.is_admin:
                    return ProjectAccess(None, False, None, ALL_ACTIONS, frozenset())
                return NO_ACCESS
            project_id, public = int(row.id), bool(row.public)
            if identity.is_admin:
                return ProjectAccess(
                    project_id,
                    public,
                    Role.PROJECT_ADMIN,
                    ALL_ACTIONS,
                    roles.ALL_PROJECT_PERMISSIONS,
                )
            role: Role | None = None
            actions: frozenset[str] = frozenset()
            if identity.kind == "user" and identity.user_id is not None:
                found = [
                    Role(r)
                    for r in conn.execute(
                        select(s.project_members.c.role).where(
                            s.project_members.c.project_id == project_id,
                            s.project_members.c.user_id == identity.user_id,
                        )
                    ).scalars()
                ]
                if identity.groups:
                    g = s.project_groups
                    found += [
                        Role(r)
                        for r in conn.execute(
                            select(g.c.role).where(
                                g.c.project_id == project_id,
                                g.c.group_name.in_(
                                    sorted(name.casefold() for name in identity.groups)
                                ),
                            )
                        ).scalars()
                    ]
                role = roles.strongest(found)
                if role is not None:
                    actions = roles.repository_actions(role)
            elif identity.kind == "robot" and identity.robot_id is not None:
                granted = conn.execute(
                    select(s.robot_permissions.c.actions).where(
                        s.robot_permissions.c.robot_id == identity.robot_id,
                        s.robot_permissions.c.project_id == project_id,
                    )
                ).scalar_one_or_none()
                if granted:
                    actions = frozenset(granted.split(","))
        permissions = roles.project_permissions(role) if role is not None else frozenset()
        if public:
            actions |= {"pull"}
            permissions |= {"list"}
        return ProjectAccess(project_id, public, role, actions, permissions)

    def visible_projects(
        self, identity: Identity, *, listing_only: bool = True
    ) -> list[str] | None:
        """Projects whose repositories the caller may list; None means every repository.
        With listing_only=False: every project the caller has any role in (a limited
        guest sees the project, not its repository list)."""
        if identity.is_admin:
            return None
        p = s.projects
        with self.db.read() as conn:
            names = set(conn.execute(select(p.c.name).where(p.c.public)).scalars())
            listing = [
                r.value for r in Role if "list" in roles.project_permissions(r) or not listing_only
            ]
            if identity.kind == "user" and identity.user_id is not None:
                m = s.project_members
                names.update(
                    conn.execute(
                        select(p.c.name)
                        .join(m, m.c.project_id == p.c.id)
                        .where(m.c.user_id == identity.user_id, m.c.role.in_(listing))
                    ).scalars()
                )
                if identity.groups:
                    g = s.project_groups
                    names.update(
                        conn.execute(
                            select(p.c.name)
                            .join(g, g.c.project_id == p.c.id)
                            .where(
                                g.c.group_name.in_(
                                    sorted(name.casefold() for name in identity.groups)
                                ),
                                g.c.role.in_(listing),
                            )
                        ).scalars()
                    )
            elif identity.kind == "robot" and identity.robot_id is not None:
                rp = s.robot_permissions
                names.update(
                    conn.execute(
                        select(p.c.name)
                        .join(rp, rp.c.project_id == p.c.id)
                        .where(rp.c.robot_id == identity.robot_id)
                    ).scalars()
                )
        return sorted(names)
