"""Project roles (Harbor's semantics) and what each allows.

Repository actions are pull, push and delete. Project permissions beyond those:
`list` (see the project's repositories), `log` (read its audit log), `members` (change
them), `robots` (manage robots; `robots:read` to see them), `webhooks` (manage webhook
policies; `webhooks:read` to see them and their deliveries, as Harbor lets maintainers)
`keys` (manage the trusted signing keys; anyone with `list` sees them) and `settings`
(which include the pull policies). Adding a tag
through the management API needs push, removing one needs delete, as on /v2.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    PROJECT_ADMIN = "project-admin"
    MAINTAINER = "maintainer"
    DEVELOPER = "developer"
    GUEST = "guest"
    LIMITED_GUEST = "limited-guest"


_REPOSITORY: dict[Role, frozenset[str]] = {
    Role.PROJECT_ADMIN: frozenset({"pull", "push", "delete"}),
    Role.MAINTAINER: frozenset({"pull", "push", "delete"}),
    Role.DEVELOPER: frozenset({"pull", "push"}),
    Role.GUEST: frozenset({"pull"}),
    Role.LIMITED_GUEST: frozenset({"pull"}),
}

_PROJECT: dict[Role, frozenset[str]] = {
    Role.PROJECT_ADMIN: frozenset(
        {"list", "log", "members", "robots", "settings", "webhooks", "webhooks:read", "keys"}
    ),
    Role.MAINTAINER: frozenset({"list", "log", "robots:read", "webhooks:read", "keys"}),
    Role.DEVELOPER: frozenset({"list", "log"}),
    Role.GUEST: frozenset({"list", "log"}),
    Role.LIMITED_GUEST: frozenset(),
}

# Higher first: when a user holds several roles (directly and through LDAP groups) the
# strongest applies.
RANK = [Role.PROJECT_ADMIN, Role.MAINTAINER, Role.DEVELOPER, Role.GUEST, Role.LIMITED_GUEST]

ALL_PROJECT_PERMISSIONS = frozenset().union(*_PROJECT.values())


def repository_actions(role: Role) -> frozenset[str]:
    return _REPOSITORY[role]


def project_permissions(role: Role) -> frozenset[str]:
    return _PROJECT[role]


def strongest(roles: list[Role]) -> Role | None:
    for role in RANK:
        if role in roles:
            return role
    return None


def parse_role(text: str) -> Role:
    try:
        return Role(text)
    except ValueError:
        names = ", ".join(r.value for r in Role)
        raise ValueError(f"unknown role {text!r}; roles are: {names}") from None
