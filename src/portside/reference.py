"""Repository name and tag grammar from the OCI distribution spec."""

from __future__ import annotations

import re

from portside.errors import NameInvalid, TagInvalid

NAME_MAX_LENGTH = 255
_NAME = re.compile(
    r"^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$"
)
_TAG = re.compile(r"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$")


def is_ascii_int(text: str) -> bool:
    """Plain decimal digits only (str.isdigit also accepts '²' and other Unicode digits)."""
    return text.isascii() and text.isdigit()


def validate_name(name: str) -> str:
    if len(name) > NAME_MAX_LENGTH:
        raise NameInvalid(
            f"repository name is {len(name)} characters long; the limit is {NAME_MAX_LENGTH}"
        )
    if not _NAME.fullmatch(name):
        raise NameInvalid(
            f"invalid repository name {name!r}: path components of lowercase letters and "
            "digits, separated by '.', '_', '__' or '-', joined by '/'"
        )
    return name


def is_valid_name(name: str) -> bool:
    return len(name) <= NAME_MAX_LENGTH and bool(_NAME.fullmatch(name))


def validate_tag(tag: str) -> str:
    if not _TAG.fullmatch(tag):
        raise TagInvalid(
            f"invalid tag {tag[:200]!r}: up to 128 characters of letters, digits, '_', '.' "
            "and '-', not starting with '.' or '-'"
        )
    return tag


def is_valid_tag(tag: str) -> bool:
    return bool(_TAG.fullmatch(tag))


def project_of(name: str) -> str:
    """The project a repository belongs to: its first path component (`acme/web/api` ->
    `acme`). A one-component name is its own project."""
    return name.split("/", 1)[0]
