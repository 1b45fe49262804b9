"""Helpers shared by the access-control tests: a populated registry built with any settings,
identities for the service layer, robots, forged JWTs and reading a token's claims."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from typing import Any

import jwt
from sqlalchemy import select, update

from portside.auth.identity import Identity
from portside.metadata import schema as s
from portside.metadata.db import utcnow
from tests.auth.conftest import PASSWORD, ROLE_USERS, Registry, basic, populated


def admin_identity(registry: Registry, username: str = "admin") -> Identity:
    user = registry.auth.accounts.get_user(username)
    return Identity("user", user.username, user_id=user.id, is_admin=user.is_admin)


def make_robot(
    registry: Registry,
    name: str = "ci",
    project: str | None = "acme",
    actions: frozenset[str] = frozenset({"pull", "push"}),
    grants: dict[str, frozenset[str]] | None = None,
) -> tuple[str, str]:
    """Create a robot as the admin; returns (full name, secret)."""
    permissions = grants if grants is not None else {project or "acme": actions}
    robot, secret = registry.auth.robots.create(
        admin_identity(registry), name, permissions, project=project
    )
    return robot.name, secret


def expire_robot(registry: Registry, full_name: str) -> None:
    """Set the robot's expiry an hour in the past, directly in the database."""
    with registry.app.ctx.db.write() as conn:
        result = conn.execute(
            update(s.robots)
            .where(s.robots.c.name == full_name)
            .values(expires_at=utcnow() - timedelta(hours=1))
        )
    assert result.rowcount == 1


def claims_of(token: str) -> dict[str, Any]:
    """The payload of a JWT, unverified (what the token says, not whether to trust it)."""
    claims = jwt.decode(token, options={"verify_signature": False})
    assert isinstance(claims, dict)
    return claims


def access_of(token: str) -> dict[tuple[str, str], list[str]]:
    """The token's `access` claim as {(type, name): sorted actions}."""
    access = claims_of(token).get("access")
    assert isinstance(access, list), access
    result: dict[tuple[str, str], list[str]] = {}
    for entry in access:
        key = (entry["type"], entry["name"])
        assert key not in result, f"duplicate access entry for {key}"
        result[key] = sorted(entry["actions"])
    return result


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def compact(header: dict[str, Any], payload: dict[str, Any] | bytes, signature: bytes) -> str:
    """Assemble a JWS by hand (for tokens PyJWT refuses to produce)."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return ".".join((b64url(json.dumps(header).encode()), b64url(body), b64url(signature)))


def sign(
    claims: dict[str, Any],
    key: Any,
    algorithm: str,
    headers: dict[str, Any] | None = None,
) -> str:
    """Sign arbitrary claims (PyJWT's JWS layer: no claim checks on the way out)."""
    return jwt.api_jws.encode(
        json.dumps(claims).encode(), key, algorithm=algorithm, headers=headers
    )


def audit_rows(registry: Registry) -> list[dict[str, Any]]:
    """Every audit row with every column (after flushing the pull buffer)."""
    registry.app.ctx.audit.flush()
    with registry.app.ctx.db.read() as conn:
        return [dict(row._mapping) for row in conn.execute(select(s.audit_log))]


__all__ = [
    "PASSWORD",
    "ROLE_USERS",
    "access_of",
    "admin_identity",
    "audit_rows",
    "basic",
    "claims_of",
    "compact",
    "expire_robot",
    "make_robot",
    "populated",
    "sign",
]
