"""An advisory as the vulnerability database stores it, whatever its source: OSV's
shape (https://ossf.github.io/osv-schema/), reduced to what matching and reporting use.
"""

from __future__ import annotations

from dataclasses import dataclass

from portside.scanning.model import Severity

# OSV range event kinds, in the order `affected.evaluate` reads them.
EVENT_KINDS = ("introduced", "fixed", "last_affected", "limit")


@dataclass(frozen=True, slots=True)
class Range:
    type: str  # "ECOSYSTEM", "SEMVER" or "GIT"
    events: tuple[tuple[str, str], ...]  # (kind, version): ("introduced", "0"), ("fixed", "1.2")


@dataclass(frozen=True, slots=True)
class Affected:
    ecosystem: str  # "Debian:12", "PyPI"
    name: str  # as the source names it (Debian and Alpine: the source package)
    ranges: tuple[Range, ...] = ()
    versions: tuple[str, ...] = ()  # explicitly listed affected versions
    severity: Severity | None = None  # for this package only (Debian urgency per release)


@dataclass(frozen=True, slots=True)
class Advisory:
    id: str
    affected: tuple[Affected, ...]
    aliases: tuple[str, ...] = ()
    summary: str = ""
    severity: Severity = Severity.UNKNOWN
    cvss_score: float | None = None
    cvss_vector: str | None = None
    links: tuple[str, ...] = ()
