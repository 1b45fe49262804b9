"""PEP 440 ordering (PyPI), as `packaging.version` implements it."""

from __future__ import annotations

from packaging.version import InvalidVersion, Version

from portside.vulndb.versions.errors import VersionError


def parse(version: str) -> Version:
    try:
        return Version(version)
    except InvalidVersion:
        raise VersionError(f"{version!r} is not a PEP 440 version") from None


def compare(a: str, b: str) -> int:
    va, vb = parse(a), parse(b)
    return (va > vb) - (va < vb)
