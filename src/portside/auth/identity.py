"""Who is making a request: anonymous, a user (local or LDAP), a robot, or an external token.

An Identity is resolved once per request (from a token, Basic credentials or a session
cookie) and is all the authorization code needs to know about the caller.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Kind = Literal["anonymous", "user", "robot", "external"]


@dataclass(frozen=True, slots=True)
class Identity:
    kind: Kind
    name: str = ""
    user_id: int | None = None
    robot_id: int | None = None
    is_admin: bool = False
    groups: frozenset[str] = field(default_factory=frozenset)

    @property
    def subject(self) -> str:
        """Stable label for logs, audit and upload ownership: `user:alice`, `robot:robot$x`."""
        return "anonymous" if self.kind == "anonymous" else f"{self.kind}:{self.name}"

    @property
    def actor(self) -> str:
        return self.name or "anonymous"


ANONYMOUS = Identity("anonymous")
