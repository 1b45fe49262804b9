"""Is a version inside an advisory's affected ranges? OSV's evaluation
(https://ossf.github.io/osv-schema/#evaluation), with each ecosystem's own ordering.

For each range, its events are sorted by version ("0" before all); walking them in
order, `introduced` at or below the version makes it affected, `fixed` at or below it
unaffected again, `last_affected` below it unaffected again; `limit` events, when there
are any, cap the range (the version must be below one of them). A version listed in
`versions` is affected whatever the ranges say. The fix to report is the lowest `fixed`
event above the version.

GIT ranges cannot be evaluated against an installed version and are ignored; an
ecosystem without a known ordering raises CannotCompare, an unreadable version
VersionError: the caller reports the package as not compared, never as not affected.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

from portside.vulndb.model import Range
from portside.vulndb.versions import CannotCompare, Compare, VersionError, ordering

_KIND_ORDER = {"introduced": 0, "last_affected": 1, "fixed": 2, "limit": 3}


@dataclass(frozen=True, slots=True)
class Verdict:
    affected: bool
    fixed: str | None = None  # the first fixed version above the installed one


def _sorted(events: Sequence[tuple[str, str]], compare: Compare) -> list[tuple[str, str]]:
    def order(a: tuple[str, str], b: tuple[str, str]) -> int:
        zero = a[1] == "0" or b[1] == "0"
        found = (a[1] != "0") - (b[1] != "0") if zero else compare(a[1], b[1])
        return found or _KIND_ORDER[a[0]] - _KIND_ORDER[b[0]]

    return sorted(events, key=functools.cmp_to_key(order))


def _in_range(version: str, events: list[tuple[str, str]], compare: Compare) -> bool:
    limits = [v for kind, v in events if kind == "limit"]
    if limits and not any(compare(version, limit) < 0 for limit in limits):
        return False
    affected = False
    for kind, value in events:
        if kind == "introduced" and (value == "0" or compare(version, value) >= 0):
            affected = True
        elif (kind == "fixed" and compare(version, value) >= 0) or (
            kind == "last_affected" and compare(version, value) > 0
        ):
            affected = False
    return affected


def evaluate(
    ecosystem: str, version: str, ranges: Sequence[Range], versions: Sequence[str]
) -> Verdict:
    """Whether `version` of a package in `ecosystem` is affected, and its fix. A version
    listed in `versions` is affected even where the ranges cannot be evaluated."""
    try:
        return _evaluate(ecosystem, version, ranges, versions)
    except (CannotCompare, VersionError):
        if version in versions:
            return Verdict(True)
        raise


def _evaluate(
    ecosystem: str, version: str, ranges: Sequence[Range], versions: Sequence[str]
) -> Verdict:
    affected = version in versions
    fixes: list[str] = []
    compare: Compare | None = None
    evaluable = [r for r in ranges if r.type != "GIT"]
    if ranges and not evaluable and not versions:
        raise CannotCompare("only GIT ranges, which name commits, not versions")
    for range_ in evaluable:
        compare = ordering(ecosystem, range_.type)
        events = _sorted(range_.events, compare)
        if _in_range(version, events, compare):
            affected = True
        fixes += [v for kind, v in events if kind == "fixed" and compare(v, version) > 0]
    if not affected:
        return Verdict(False)
    fixed = None
    if fixes and compare is not None:
        fixed = min(fixes, key=functools.cmp_to_key(compare))
    return Verdict(True, fixed)
