"""RPM version ordering, as rpm's `rpmvercmp` and `rpmVersionCompare` decide it.

An EVR is `[epoch:]version[-release]`; the epoch (default 0) decides first, then the
version, then the release. Each part is split into runs of digits and runs of letters;
everything else only separates runs. Runs compare pairwise: numbers as numbers, letters
as byte strings, and a number beats letters. `~` sorts before everything, even the end
(`1.0~rc1 < 1.0`); `^` sorts after the end but before anything else
(`1.0 < 1.0^git1 < 1.0.1`). When all shared runs are equal, the one with more left wins.
"""

from __future__ import annotations

from portside.vulndb.versions.errors import VersionError


def _alnum(char: str) -> bool:
    return char.isascii() and char.isalnum()


def vercmp(a: str, b: str) -> int:
    """rpmvercmp: -1, 0 or 1."""
    if a == b:
        return 0
    i = j = 0
    while i < len(a) or j < len(b):
        while i < len(a) and not _alnum(a[i]) and a[i] not in "~^":
            i += 1
        while j < len(b) and not _alnum(b[j]) and b[j] not in "~^":
            j += 1
        ca = a[i] if i < len(a) else ""
        cb = b[j] if j < len(b) else ""
        if ca == "~" or cb == "~":
            if ca != "~":
                return 1
            if cb != "~":
                return -1
            i, j = i + 1, j + 1
            continue
        if ca == "^" or cb == "^":
            if ca == "":
                return -1
            if cb == "":
                return 1
            if ca != "^":
                return 1
            if cb != "^":
                return -1
            i, j = i + 1, j + 1
            continue
        if not (ca and cb):
            break
        numeric = "0" <= ca <= "9"
        start_a, start_b = i, j
        if numeric:
            while i < len(a) and "0" <= a[i] <= "9":
                i += 1
            while j < len(b) and "0" <= b[j] <= "9":
                j += 1
        else:
            while i < len(a) and a[i].isascii() and a[i].isalpha():
                i += 1
            while j < len(b) and b[j].isascii() and b[j].isalpha():
                j += 1
        run_a, run_b = a[start_a:i], b[start_b:j]
        if not run_b:  # different kinds of run: the number wins
            return 1 if numeric else -1
        if numeric:
            run_a, run_b = run_a.lstrip("0"), run_b.lstrip("0")
            if len(run_a) != len(run_b):
                return -1 if len(run_a) < len(run_b) else 1
        if run_a != run_b:
            return -1 if run_a < run_b else 1
    rest_a, rest_b = i < len(a), j < len(b)
    if not rest_a and not rest_b:
        return 0
    return 1 if rest_a else -1


def parse(evr: str) -> tuple[int, str, str | None]:
    """(epoch, version, release or None)."""
    text = evr.strip()
    epoch = 0
    head, colon, rest = text.partition(":")
    if colon:
        if not head.isascii() or not head.isdigit():
            raise VersionError(f"RPM version {evr!r}: the epoch must be a number")
        epoch, text = int(head), rest
    version, hyphen, release = text.rpartition("-")
    if not hyphen:
        return epoch, text, None
    if not version:
        raise VersionError(f"RPM version {evr!r}: empty version")
    return epoch, version, release


def compare(a: str, b: str) -> int:
    """Compare two EVRs. A missing release sorts before any release of the same version
    (so ranges from advisories, which always carry one, stay exact)."""
    ea, va, ra = parse(a)
    eb, vb, rb = parse(b)
    if ea != eb:
        return -1 if ea < eb else 1
    return vercmp(va, vb) or vercmp(ra or "", rb or "")
