"""Matching installed packages against the vulnerability database.

`match_all` reads the generations in use once, then looks packages up in batches (one
query per batch of names), evaluates each candidate's ranges with the ecosystem's
ordering (portside.vulndb.ranges) and merges reports of the same flaw.

Lookups: a package is looked up in its own ecosystem ("Debian:12") and, for advisories
whose data names no release, in the ecosystem without release ("Debian"); never in
another release. OSV names Ubuntu's LTS releases "Ubuntu:22.04:LTS": an "Ubuntu:22.04"
package is looked up there too. Distributions whose advisories name source packages
(names.SOURCE_KEYED) are looked up by binary name (with `version`) and by `source_name`
(with `source_version`, else `version`).

Merging (one finding per flaw and package): two candidates for the same package are the
same flaw when their ids or aliases share an id (an OSV DEBIAN-CVE-2024-1 record whose
upstream is CVE-2024-1, and the tracker's CVE-2024-1). The richer record wins: the one
with a CVSS score, then with a known severity, then with a fixed version, then more
links, then a longer summary, then the CVE id; gaps in it (fixed version, CVSS, summary,
links) are filled from the others, and every id of the group is kept as an alias.

Severity of a finding: the package's own severity in the advisory when given (Debian's
urgency for that release), else the advisory's (from CVSS or the source's word).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import select

from portside.metadata import schema as s
from portside.metadata.db import Database
from portside.scanning.model import Finding, Package, Severity
from portside.vulndb import names
from portside.vulndb.model import Range
from portside.vulndb.ranges import evaluate
from portside.vulndb.store import current_generation, current_imports
from portside.vulndb.versions import CannotCompare, VersionError, base_ecosystem

BATCH = 500  # packages per query


@dataclass(frozen=True, slots=True)
class Uncompared:
    """A package some advisory could not be evaluated for, and why."""

    package: Package
    reason: str


@dataclass(frozen=True, slots=True)
class MatchResult:
    findings: list[Finding]
    generation: int | None  # the database generation the findings come from
    uncompared: list[Uncompared] = field(default_factory=list)


def match(db: Database, packages: Iterable[Package]) -> list[Finding]:
    """The findings for `packages` (see match_all for the generation and what could not
    be compared)."""
    return match_all(db, packages).findings


def _lookups(package: Package) -> list[tuple[str, str, str]]:
    """(ecosystem, key name, version to compare) to look the package up by."""
    ecosystems = [package.ecosystem]
    base = base_ecosystem(package.ecosystem)
    if base == "Ubuntu" and package.ecosystem.count(":") == 1:
        ecosystems.append(package.ecosystem + ":LTS")  # OSV names LTS releases so
    if base != package.ecosystem:
        ecosystems.append(base)
    pairs = [(package.name, package.version)]
    if names.source_keyed(package.ecosystem) and package.source_name:
        pairs.append((package.source_name, package.source_version or package.version))
    return [
        (eco, names.normalize(eco, name), version)
        for eco in ecosystems
        for name, version in dict.fromkeys(pairs)
    ]


def _ranges(text: str) -> tuple[Range, ...]:
    return tuple(
        Range(r["type"], tuple(next(iter(e.items())) for e in r["events"]))
        for r in json.loads(text)
    )


def _candidates(rows: Sequence[Any], package: Package, version: str) -> list[Finding]:
    found: list[Finding] = []
    for row in rows:
        verdict = evaluate(row.ecosystem, version, _ranges(row.ranges), json.loads(row.versions))
        if not verdict.affected:
            continue
        level = Severity(row.package_severity if row.package_severity is not None else row.severity)
        found.append(
            Finding(
                vulnerability_id=row.vuln_id,
                package=package,
                severity=level,
                fixed_version=verdict.fixed,
                aliases=tuple(json.loads(row.aliases)),
                summary=row.summary,
                cvss_score=row.cvss_score,
                cvss_vector=row.cvss_vector,
                links=tuple(json.loads(row.links)),
            )
        )
    return found


def _richness(finding: Finding) -> tuple[int, int, int, int, int, int]:
    return (
        finding.cvss_score is not None,
        finding.severity != Severity.UNKNOWN,
        finding.fixed_version is not None,
        len(finding.links),
        len(finding.summary),
        finding.vulnerability_id.startswith("CVE-"),
    )


def merge(findings: Sequence[Finding]) -> list[Finding]:
    """One finding per flaw (see the module docstring), in a stable order."""
    groups: list[tuple[set[str], list[Finding]]] = []
    for finding in findings:
        ids = {finding.vulnerability_id, *finding.aliases}
        joined = [g for g in groups if g[0] & ids]
        merged_ids, members = set(ids), [finding]
        for group in joined:
            merged_ids |= group[0]
            members += group[1]
            groups.remove(group)
        groups.append((merged_ids, members))
    result: list[Finding] = []
    for ids, members in groups:
        ranked = sorted(members, key=_richness, reverse=True)
        best = ranked[0]
        for other in ranked[1:]:
            best = replace(
                best,
                fixed_version=best.fixed_version or other.fixed_version,
                cvss_score=best.cvss_score if best.cvss_score is not None else other.cvss_score,
                cvss_vector=best.cvss_vector or other.cvss_vector,
                severity=best.severity if best.severity != Severity.UNKNOWN else other.severity,
                summary=best.summary or other.summary,
                links=tuple(dict.fromkeys(best.links + other.links)),
            )
        aliases = tuple(sorted(ids - {best.vulnerability_id}))
        result.append(replace(best, aliases=aliases))
    return sorted(result, key=lambda f: f.vulnerability_id)


def match_all(db: Database, packages: Iterable[Package], *, batch: int = BATCH) -> MatchResult:
    """Findings for `packages`, the generation they come from, and the packages some
    advisory could not be evaluated for (unknown ordering, unreadable version)."""
    af, ad = s.vulndb_affected, s.vulndb_advisories
    with db.read() as conn:
        imports = current_imports(conn)
        generation = current_generation(conn)
    if not imports:
        return MatchResult([], None)
    findings: list[Finding] = []
    uncompared: dict[Package, str] = {}
    pending = list(packages)
    for start in range(0, len(pending), batch):
        chunk = pending[start : start + batch]
        lookups = {package: _lookups(package) for package in chunk}
        ecosystems = sorted({eco for keys in lookups.values() for eco, _, _ in keys})
        keys = sorted({name for keys in lookups.values() for _, name, _ in keys})
        query = (
            select(
                af.c.ecosystem,
                af.c.name,
                af.c.ranges,
                af.c.versions,
                af.c.severity.label("package_severity"),
                ad.c.vuln_id,
                ad.c.aliases,
                ad.c.summary,
                ad.c.severity,
                ad.c.cvss_score,
                ad.c.cvss_vector,
                ad.c.links,
            )
            .join(ad, ad.c.id == af.c.advisory_id)
            .where(
                af.c.import_id.in_(imports),
                af.c.ecosystem.in_(ecosystems),
                af.c.name.in_(keys),
            )
        )
        with db.read() as conn:
            rows = conn.execute(query).all()
        by_key: dict[tuple[str, str], list[Any]] = {}
        for row in rows:
            by_key.setdefault((row.ecosystem, row.name), []).append(row)
        for package, package_lookups in lookups.items():
            candidates: list[Finding] = []
            for ecosystem, name, version in package_lookups:
                for row in by_key.get((ecosystem, name), []):
                    try:
                        candidates += _candidates([row], package, version)
                    except (CannotCompare, VersionError) as error:
                        uncompared.setdefault(package, f"{row.vuln_id}: {error}")
            findings += merge(candidates)
    return MatchResult(findings, generation, [Uncompared(p, why) for p, why in uncompared.items()])
