"""Robot accounts for CI: project robots (`robot$acme+ci`) and system robots (`robot$ci`).

A robot holds explicit pull/push/delete permissions per project, may expire, can be
disabled, and has a secret that is shown once (only its hash is stored) and can be
rotated. Nobody can give a robot more than they have themselves, and robots cannot
create robots. Each change raises its `robot.*` event (never with the secret).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, select, update

from portside.auth import passwords
from portside.auth.errors import Exists, Forbidden, Invalid, Missing
from portside.auth.identity import Identity
from portside.auth.names import ROBOT_PREFIX, check_robot_name, robot_full_name
from portside.auth.policy import Policy
from portside.auth.projects import project_id
from portside.auth.scopes import REPOSITORY_ACTIONS
from portside.events import outbox
from portside.events.outbox import SYSTEM, Actor
from portside.metadata import schema as s
from portside.metadata.db import Database, utcnow


@dataclass(frozen=True, slots=True)
class Robot:
    id: int
    name: str
    project: str | None
    description: str | None
    disabled: bool
    expires_at: datetime | None
    created_by: str
    created_at: datetime
    permissions: dict[str, frozenset[str]]


def parse_actions(text: str) -> frozenset[str]:
    actions = frozenset(a.strip() for a in text.split(",") if a.strip())
    unknown = actions - REPOSITORY_ACTIONS
    if not actions or unknown:
        raise Invalid("permissions are a comma-separated subset of pull, push, delete")
    return actions


class Robots:
    def __init__(self, db: Database, policy: Policy) -> None:
        self.db = db
        self.policy = policy

    def create(
        self,
        creator: Identity,
        name: str,
        permissions: dict[str, frozenset[str]],
        *,
        project: str | None = None,
        expires_at: datetime | None = None,
        description: str | None = None,
        actor: Actor | None = None,
    ) -> tuple[Robot, str]:
        """Create a robot; returns it and its secret (the only time the secret exists).
        `actor` is the creator unless given (with the caller's address)."""
        check_robot_name(name)
        if creator.kind == "robot":
            raise Forbidden("robots cannot create robots")
        if not permissions:
            raise Invalid("a robot needs permissions in at least one project")
        if project is not None and set(permissions) != {project}:
            raise Invalid(f"a project robot has permissions in its project {project!r} only")
        if project is None and not creator.is_admin:
            raise Forbidden("only system administrators create system robots")
        for project_name, actions in permissions.items():
            if not actions or actions - REPOSITORY_ACTIONS:
                raise Invalid("permissions are a subset of pull, push, delete")
            access = self.policy.project_access(creator, project_name)
            if not access.exists:
                raise Missing(f"no project {project_name!r}")
            if "robots" not in access.permissions:
                raise Forbidden(f"you may not manage robots in project {project_name!r}")
            beyond = actions - access.actions
            if beyond:
                raise Forbidden(
                    f"a robot cannot get more than its creator: you lack "
                    f"{', '.join(sorted(beyond))} in project {project_name!r}"
                )
        if expires_at is not None and expires_at <= utcnow():
            raise Invalid("expiry must be in the future")
        full_name = robot_full_name(project, name)
        secret = passwords.new_secret()
        with self.db.write() as conn:
            if conn.execute(select(s.robots.c.id).where(s.robots.c.name == full_name)).first():
                raise Exists(f"robot {full_name!r} already exists")
            project_ids = {p: project_id(conn, p) for p in permissions}
            robot_id = conn.execute(
                s.robots.insert()
                .values(
                    name=full_name,
                    project_id=project_ids[project] if project else None,
                    description=description,
                    secret_hash=passwords.hash_secret(secret),
                    disabled=False,
                    expires_at=expires_at,
                    created_by=creator.actor,
                    created_at=utcnow(),
                )
                .returning(s.robots.c.id)
            ).scalar_one()
            for project_name, actions in permissions.items():
                conn.execute(
                    s.robot_permissions.insert().values(
                        robot_id=robot_id,
                        project_id=project_ids[project_name],
                        actions=",".join(sorted(actions)),
                    )
                )
            granted = {p: sorted(a) for p, a in sorted(permissions.items())}
            data = {"permissions": granted}
            _emit(conn, outbox.ROBOT_CREATED, actor or Actor(creator.actor), full_name, data)
        return self.get(full_name), secret

    def get(self, full_name: str) -> Robot:
        robots = self._load(select(s.robots.c.id).where(s.robots.c.name == full_name))
        if not robots:
            raise Missing(f"no robot {full_name!r}")
        return robots[0]

    def find(self, project: str | None = None) -> list[Robot]:
        """Robots of a project (project robots and system robots with rights in it), or
        with no project given, every robot."""
        if project is None:
            return self._load(select(s.robots.c.id))
        ids = (
            select(s.robot_permissions.c.robot_id)
            .join(s.projects, s.projects.c.id == s.robot_permissions.c.project_id)
            .where(s.projects.c.name == project)
        )
        return self._load(ids)

    def _load(self, ids: object) -> list[Robot]:
        r, rp, p = s.robots, s.robot_permissions, s.projects
        owner = p.alias("owner")
        with self.db.read() as conn:
            rows = conn.execute(
                select(r, owner.c.name.label("project_name"))
                .outerjoin(owner, owner.c.id == r.c.project_id)
                .where(r.c.id.in_(ids))  # type: ignore[arg-type]
                .order_by(r.c.name)
            ).all()
            grants: dict[int, dict[str, frozenset[str]]] = {}
            for g in conn.execute(
                select(rp.c.robot_id, p.c.name, rp.c.actions)
                .join(p, p.c.id == rp.c.project_id)
                .where(rp.c.robot_id.in_([row.id for row in rows]))
            ):
                grants.setdefault(int(g.robot_id), {})[g.name] = frozenset(g.actions.split(","))
        return [
            Robot(
                int(row.id),
                row.name,
                row.project_name,
                row.description,
                bool(row.disabled),
                row.expires_at,
                row.created_by,
                row.created_at,
                grants.get(int(row.id), {}),
            )
            for row in rows
        ]

    def set_disabled(self, full_name: str, disabled: bool, *, actor: Actor = SYSTEM) -> Robot:
        with self.db.write() as conn:
            self._update(conn, full_name, disabled=disabled)
            _emit(conn, outbox.ROBOT_UPDATED, actor, full_name, {"disabled": disabled})
        return self.get(full_name)

    def rotate_secret(self, full_name: str, *, actor: Actor = SYSTEM) -> str:
        secret = passwords.new_secret()
        with self.db.write() as conn:
            self._update(conn, full_name, secret_hash=passwords.hash_secret(secret))
            _emit(conn, outbox.ROBOT_ROTATED, actor, full_name, {})
        return secret

    def delete(self, full_name: str, *, actor: Actor = SYSTEM) -> None:
        with self.db.write() as conn:
            result = conn.execute(delete(s.robots).where(s.robots.c.name == full_name))
            if result.rowcount == 0:
                raise Missing(f"no robot {full_name!r}")
            _emit(conn, outbox.ROBOT_DELETED, actor, full_name, {})

    def _update(self, conn: Connection, full_name: str, **values: object) -> None:
        result = conn.execute(update(s.robots).where(s.robots.c.name == full_name).values(**values))
        if result.rowcount == 0:
            raise Missing(f"no robot {full_name!r}")


def _emit(
    conn: Connection,
    type_: str,
    actor: Actor,
    full_name: str,
    data: dict[str, Any],
) -> None:
    """A robot event: its project is the one in a project robot's name (none for a
    system robot); a creation carries the permissions granted, per project."""
    name = full_name.removeprefix(ROBOT_PREFIX)
    project = name.split("+", 1)[0] if "+" in name else None
    outbox.emit(conn, type_, actor, resource=full_name, project=project, data=data)
