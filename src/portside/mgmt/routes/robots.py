"""Robot accounts: project robots under their project, system robots for admins, and
disable / rotate / delete by the robot's full name."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter

from portside.auth.errors import Forbidden, Missing, Unauthenticated
from portside.auth.robots import Robot
from portside.metadata.db import utcnow
from portside.mgmt.routes import convert
from portside.mgmt.schemas import RobotIn, RobotOut, RobotPatch, RobotSecretOut, SystemRobotIn
from portside.mgmt.security import Admin, Caller, Ctx, Principal, require

router = APIRouter(tags=["robots"])


def _with_secret(robot: Robot, secret: str) -> RobotSecretOut:
    return RobotSecretOut(**convert.robot(robot).model_dump(), secret=secret)


@router.get("/projects/{project}/robots", response_model=list[RobotOut])
def list_project_robots(project: str, ctx: Ctx, caller: Caller) -> list[RobotOut]:
    access = require(ctx, caller, project, "list")
    if not caller.signed_in:
        raise Unauthenticated("sign in first")
    if not {"robots", "robots:read"} & access.permissions:
        raise Forbidden(f"you may not see the robots of project {project!r}")
    # System robots with rights here are listed to system admins, who manage them.
    return [
        convert.robot(r)
        for r in ctx.auth.robots.find(project)
        if r.project == project or caller.identity.is_admin
    ]


@router.post("/projects/{project}/robots", response_model=RobotSecretOut, status_code=201)
def create_project_robot(project: str, body: RobotIn, ctx: Ctx, caller: Caller) -> RobotSecretOut:
    """Create `robot$PROJECT+NAME`. The secret is in this response only."""
    require(ctx, caller, project, "robots")
    expires = utcnow() + timedelta(days=body.expires_in_days) if body.expires_in_days else None
    robot, secret = ctx.auth.robots.create(
        caller.identity,
        body.name,
        {project: frozenset(body.permissions)},
        project=project,
        expires_at=expires,
        description=body.description,
        actor=caller.actor,
    )
    return _with_secret(robot, secret)


@router.get("/robots", response_model=list[RobotOut])
def list_robots(ctx: Ctx, caller: Admin) -> list[RobotOut]:
    return [convert.robot(r) for r in ctx.auth.robots.find()]


@router.post("/robots", response_model=RobotSecretOut, status_code=201)
def create_system_robot(body: SystemRobotIn, ctx: Ctx, caller: Admin) -> RobotSecretOut:
    """Create a system robot `robot$NAME` with permissions in several projects."""
    expires = utcnow() + timedelta(days=body.expires_in_days) if body.expires_in_days else None
    robot, secret = ctx.auth.robots.create(
        caller.identity,
        body.name,
        {p: frozenset(a) for p, a in body.permissions.items()},
        expires_at=expires,
        description=body.description,
        actor=caller.actor,
    )
    return _with_secret(robot, secret)


def _manageable(ctx: Ctx, caller: Principal, name: str, *, read_only: bool = False) -> Robot:
    """The robot, if the caller may manage it — or, read_only, see it (404 if they may
    not even see it, 403 if they may see but not manage it)."""
    if caller.identity.kind == "robot":
        raise Forbidden("robots cannot manage robots")
    try:
        robot = ctx.auth.robots.get(name)
    except Missing:
        raise Missing(f"no robot {name!r}") from None
    if caller.identity.is_admin:
        return robot
    if robot.project is None:
        raise Missing(f"no robot {name!r}")
    access = ctx.auth.policy.project_access(caller.identity, robot.project)
    if "robots" in access.permissions or (read_only and "robots:read" in access.permissions):
        return robot
    if "robots:read" in access.permissions:
        raise Forbidden(f"you may not manage robot {name!r}")
    raise Missing(f"no robot {name!r}")


@router.get("/robots/{name}", response_model=RobotOut)
def get_robot(name: str, ctx: Ctx, caller: Caller) -> RobotOut:
    return convert.robot(_manageable(ctx, caller, name, read_only=True))


@router.patch("/robots/{name}", response_model=RobotOut)
def update_robot(name: str, body: RobotPatch, ctx: Ctx, caller: Caller) -> RobotOut:
    _manageable(ctx, caller, name)
    updated = ctx.auth.robots.set_disabled(name, body.disabled, actor=caller.actor)
    return convert.robot(updated)


@router.post("/robots/{name}/secret", response_model=RobotSecretOut)
def rotate_robot_secret(name: str, ctx: Ctx, caller: Caller) -> RobotSecretOut:
    """A new secret; the old one stops working at once."""
    _manageable(ctx, caller, name)
    secret = ctx.auth.robots.rotate_secret(name, actor=caller.actor)
    return _with_secret(ctx.auth.robots.get(name), secret)


@router.delete("/robots/{name}", status_code=204)
def delete_robot(name: str, ctx: Ctx, caller: Caller) -> None:
    _manageable(ctx, caller, name)
    ctx.auth.robots.delete(name, actor=caller.actor)
