"""Repository name and tag grammar from the OCI distribution spec."""

from __future__ import annotations

import re

from portside.errors import NameInvalid, TagInvalid

NAME_MAX_LENGTH = 255
_NAME = re.compile(
    r"^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$"
)
_TAG = re.compile(r"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$")


def validate_name(name: str) -> str:
    if len(name) > NAME_MAX_LENGTH:
        raise NameInvalid(
            f"repository name is {len(name)} characters long; the limit is {NAME_MAX_LENGTH}"
        )
    if not _NAME.match(name):
        raise NameInvalid(
            f"invalid repository name {name!r}: path components of lowercase letters and "
            "digits, separated by '.', '_', '__' or '-', joined by '/'"
        )
    return name


def validate_tag(tag: str) -> str:
    if not _TAG.match(tag):
        raise TagInvalid(
            f"invalid tag {tag[:200]!r}: up to 128 characters of letters, digits, '_', '.' "
            "and '-', not starting with '.' or '-'"
        )
    return tag


def is_valid_tag(tag: str) -> bool:
    return bool(_TAG.match(tag))
