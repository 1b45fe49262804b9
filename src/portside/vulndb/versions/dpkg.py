"""Debian package version ordering, as `dpkg --compare-versions` decides it.

A version is `[epoch:]upstream[-revision]`: the epoch (digits, default 0) decides first,
then the upstream version, then the revision (after the LAST hyphen; none is the same
as "0"). Upstream and revision compare alike: alternating runs of non-digits and
digits, left to right. Non-digit runs compare character by character with `~` before
the end of the string, the end before letters, and letters before every other
character; digit runs compare as numbers. So `1.0~rc1 < 1.0 < 1.0a < 1.0+b1 < 1.0.1`.
"""

from __future__ import annotations

from portside.vulndb.versions.errors import VersionError


def _digit(char: str) -> bool:
    return "0" <= char <= "9"


def _order(char: str) -> int:
    """The weight of one character of a non-digit run ("" is the end of the run)."""
    if char == "" or _digit(char):
        return 0
    if char == "~":
        return -1
    if char.isascii() and char.isalpha():
        return ord(char)
    return ord(char) + 256


def _compare_part(a: str, b: str) -> int:
    i = j = 0
    while i < len(a) or j < len(b):
        while (i < len(a) and not _digit(a[i])) or (j < len(b) and not _digit(b[j])):
            ac = _order(a[i] if i < len(a) else "")
            bc = _order(b[j] if j < len(b) else "")
            if ac != bc:
                return -1 if ac < bc else 1
            i += 1
            j += 1
        start_a, start_b = i, j
        while i < len(a) and _digit(a[i]):
            i += 1
        while j < len(b) and _digit(b[j]):
            j += 1
        na = int(a[start_a:i] or "0")
        nb = int(b[start_b:j] or "0")
        if na != nb:
            return -1 if na < nb else 1
    return 0


def parse(version: str) -> tuple[int, str, str]:
    """(epoch, upstream, revision); VersionError for what dpkg refuses."""
    text = version.strip()
    epoch = 0
    if ":" in text:
        head, text = text.split(":", 1)
        if not head or not all(map(_digit, head)):
            raise VersionError(f"dpkg version {version!r}: the epoch must be a number")
        epoch = int(head)
    upstream, hyphen, revision = text.rpartition("-")
    if not hyphen:
        upstream, revision = text, ""
    if not upstream:
        raise VersionError(f"dpkg version {version!r}: empty upstream version")
    if any(c.isspace() for c in text):
        raise VersionError(f"dpkg version {version!r}: contains whitespace")
    return epoch, upstream, revision


def compare(a: str, b: str) -> int:
    """-1, 0 or 1 as `a` sorts before, with or after `b`."""
    ea, ua, ra = parse(a)
    eb, ub, rb = parse(b)
    if ea != eb:
        return -1 if ea < eb else 1
    return _compare_part(ua, ub) or _compare_part(ra, rb)
