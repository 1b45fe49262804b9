"""OSV records (https://ossf.github.io/osv-schema/) read into Advisories.

What is kept: `id`; `aliases` and `upstream` (both name the same flaw elsewhere, e.g.
DEBIAN-CVE-2024-1 -> CVE-2024-1: used to merge reports); `summary` (else the first line
of `details`); the advisory's severity from `severity[]` (a CVSS v3 vector first, then
v4, then v2, scored by `portside.vulndb.severity`), else `database_specific.severity`
(GitHub's word); per affected package: `package.ecosystem`/`name`, `ranges[]` as they
are, `versions[]`, and a package's own severity (`affected[].severity[]`,
`ecosystem_specific.severity`/`urgency`, `database_specific.severity`);
`references[].url` as links. Withdrawn records are skipped (None).

A record that does not follow the schema is an OsvError naming the field.
"""

from __future__ import annotations

from typing import Any

from portside.scanning.model import Severity
from portside.vulndb import severity as sev
from portside.vulndb.model import EVENT_KINDS, Advisory, Affected, Range

MAX_LINKS = 20
MAX_SUMMARY = 1000
_CVSS_PREFERENCE = ("CVSS_V3", "CVSS_V4", "CVSS_V2")


class OsvError(ValueError):
    """A record that is not valid OSV; the message names the field and the problem."""


def _strings(value: Any, field: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise OsvError(f"{field} must be a list of strings")
    return tuple(value)


def _mapping(value: Any, field: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise OsvError(f"{field} must be an object")
    return value


def _cvss(entries: Any, field: str) -> tuple[float, str] | None:
    """The preferred scorable CVSS vector of a `severity` list, with its score."""
    if entries is None:
        return None
    if not isinstance(entries, list):
        raise OsvError(f"{field} must be a list")
    vectors: dict[str, str] = {}
    for index, item in enumerate(entries):
        entry = _mapping(item, f"{field}[{index}]")
        kind, score = entry.get("type"), entry.get("score")
        if not isinstance(kind, str) or not isinstance(score, str):
            raise OsvError(f"{field}[{index}] needs a string type and score")
        vectors.setdefault(kind, score)
    for kind in _CVSS_PREFERENCE:
        if kind in vectors:
            value = sev.cvss_base_score(vectors[kind])
            if value is not None:
                return value, vectors[kind]
    return None


def _range(value: Any, field: str) -> Range:
    value = _mapping(value, field)
    kind = value.get("type")
    if kind not in ("ECOSYSTEM", "SEMVER", "GIT"):
        raise OsvError(f"{field}.type must be ECOSYSTEM, SEMVER or GIT (got {kind!r})")
    events = value.get("events")
    if not isinstance(events, list) or not events:
        raise OsvError(f"{field}.events must be a non-empty list")
    found: list[tuple[str, str]] = []
    for index, item in enumerate(events):
        event = _mapping(item, f"{field}.events[{index}]")
        pairs = [(k, v) for k, v in event.items() if k in EVENT_KINDS]
        if len(pairs) != 1 or not isinstance(pairs[0][1], str) or not pairs[0][1]:
            raise OsvError(
                f"{field}.events[{index}] must have exactly one of "
                f"{', '.join(EVENT_KINDS)} with a version string"
            )
        found.append(pairs[0])
    return Range(kind, tuple(found))


def _package_severity(affected: dict[str, Any], field: str) -> Severity | None:
    scored = _cvss(affected.get("severity"), f"{field}.severity")
    if scored is not None:
        return sev.from_score(scored[0])
    for key in ("ecosystem_specific", "database_specific"):
        specific = _mapping(affected.get(key), f"{field}.{key}")
        word = sev.from_word(specific.get("severity")) or sev.from_word(specific.get("urgency"))
        if word is not None:
            return word
    return None


def _affected(value: Any, field: str) -> Affected:
    value = _mapping(value, field)
    package = _mapping(value.get("package"), f"{field}.package")
    ecosystem, name = package.get("ecosystem"), package.get("name")
    if not isinstance(ecosystem, str) or not ecosystem or not isinstance(name, str) or not name:
        raise OsvError(f"{field}.package needs an ecosystem and a name")
    ranges = value.get("ranges") or []
    if not isinstance(ranges, list):
        raise OsvError(f"{field}.ranges must be a list")
    return Affected(
        ecosystem=ecosystem,
        name=name,
        ranges=tuple(_range(r, f"{field}.ranges[{i}]") for i, r in enumerate(ranges)),
        versions=_strings(value.get("versions"), f"{field}.versions"),
        severity=_package_severity(value, field),
    )


def advisory(record: Any) -> Advisory | None:
    """The Advisory an OSV record describes (None if withdrawn); OsvError if invalid."""
    if not isinstance(record, dict):
        raise OsvError("an OSV record must be a JSON object")
    vuln_id = record.get("id")
    if not isinstance(vuln_id, str) or not vuln_id:
        raise OsvError("id is missing")
    if record.get("withdrawn"):
        return None
    affected = record.get("affected") or []
    if not isinstance(affected, list):
        raise OsvError(f"{vuln_id}: affected must be a list")
    try:
        packages = tuple(_affected(a, f"affected[{i}]") for i, a in enumerate(affected))
        aliases = _strings(record.get("aliases"), "aliases")
        aliases += _strings(record.get("upstream"), "upstream")
        scored = _cvss(record.get("severity"), "severity")
        specific = _mapping(record.get("database_specific"), "database_specific")
        references = record.get("references") or []
        if not isinstance(references, list):
            raise OsvError("references must be a list")
    except OsvError as error:
        raise OsvError(f"{vuln_id}: {error}") from None
    level = Severity.UNKNOWN
    if scored is not None:
        level = sev.from_score(scored[0])
    elif (word := sev.from_word(specific.get("severity"))) is not None:
        level = word
    links: list[str] = []
    for reference in references:
        url = reference.get("url") if isinstance(reference, dict) else None
        if isinstance(url, str) and url not in links and len(links) < MAX_LINKS:
            links.append(url)
    summary = record.get("summary") or ""
    if not summary and isinstance(record.get("details"), str):
        summary = record["details"].strip().split("\n", 1)[0]
    return Advisory(
        id=vuln_id,
        affected=packages,
        aliases=tuple(dict.fromkeys(a for a in aliases if a != vuln_id)),
        summary=str(summary)[:MAX_SUMMARY],
        severity=level,
        cvss_score=None if scored is None else scored[0],
        cvss_vector=None if scored is None else scored[1],
        links=tuple(links),
    )
