"""The grammar of account, project and robot names."""

from __future__ import annotations

import re

from portside.auth.errors import Invalid

_USER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,127}")
# A project name is one repository path component (OCI grammar), at most 64 characters.
_PROJECT = re.compile(r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*")
_ROBOT = re.compile(r"[a-z0-9]+(?:[._-][a-z0-9]+)*")
ROBOT_PREFIX = "robot$"


def check_username(name: str) -> str:
    if not _USER.fullmatch(name):
        raise Invalid(
            f"invalid username {name!r}: 1-128 letters, digits, '.', '_', '@' or '-', "
            "starting with a letter or digit"
        )
    return name


def check_project_name(name: str) -> str:
    if len(name) > 64 or not _PROJECT.fullmatch(name):
        raise Invalid(
            f"invalid project name {name!r}: lowercase letters and digits, separated by "
            "'.', '_', '__' or '-', at most 64 characters"
        )
    return name


def check_robot_name(name: str) -> str:
    if len(name) > 64 or not _ROBOT.fullmatch(name):
        raise Invalid(
            f"invalid robot name {name!r}: lowercase letters and digits, separated by "
            "'.', '_' or '-', at most 64 characters"
        )
    return name


def robot_full_name(project: str | None, name: str) -> str:
    """`robot$acme+ci` for a project robot, `robot$ci` for a system robot."""
    return f"{ROBOT_PREFIX}{project}+{name}" if project else f"{ROBOT_PREFIX}{name}"
