"""The shapes passed between the parts of vulnerability scanning, so each part can be
built and tested alone: the layer reader and the package collectors produce an
`Inventory` of `Package`s; the vulnerability database matches packages and produces
`Finding`s; the scan service stores both and the SBOM generators render the inventory.

Ecosystem names are OSV's (https://ossf.github.io/osv-schema/#affectedpackage-field),
with the release suffix OSV uses for distributions ("Debian:12", "Alpine:v3.19",
"Rocky Linux:9"), so a package can be looked up in an OSV export as it is.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Severity(enum.IntEnum):
    """Harbor's severity scale, ordered so that `>=` means "at least as bad"."""

    NONE = 0
    UNKNOWN = 1
    NEGLIGIBLE = 2
    LOW = 3
    MEDIUM = 4
    HIGH = 5
    CRITICAL = 6

    @property
    def label(self) -> str:
        return self.name.capitalize()

    @classmethod
    def parse(cls, text: str) -> Severity:
        """A severity from its name in any case ("high", "Critical"); ValueError if none."""
        try:
            return cls[text.strip().upper()]
        except KeyError:
            names = ", ".join(s.name.lower() for s in cls)
            raise ValueError(f"unknown severity {text!r} (one of: {names})") from None


@dataclass(frozen=True, slots=True)
class Package:
    """One installed package found in an image."""

    ecosystem: str  # OSV ecosystem, with release for distributions: "Debian:12", "PyPI"
    name: str  # binary package name as installed ("libssl3"), or the library's name
    version: str  # as recorded by its package manager ("3.0.11-1~deb12u2", "2.31.0")
    path: str  # the file in the image that recorded it ("var/lib/dpkg/status")
    purl: str  # package URL (https://github.com/package-url/purl-spec)
    source_name: str | None = None  # source package (dpkg Source:, apk origin, SRPM name)
    source_version: str | None = None  # when it differs from `version`
    licenses: tuple[str, ...] = ()
    layer: str | None = None  # digest of the layer that last wrote `path`


@dataclass(frozen=True, slots=True)
class Inventory:
    """Everything a scan found in one image manifest (one platform of an index)."""

    packages: tuple[Package, ...]
    os_id: str | None = None  # /etc/os-release ID ("debian", "alpine", "rocky")
    os_version: str | None = None  # VERSION_ID ("12", "3.19.1")
    os_pretty_name: str | None = None
    warnings: tuple[str, ...] = ()  # things skipped, with why (unreadable db, limits)


@dataclass(frozen=True, slots=True)
class Finding:
    """One vulnerability affecting one installed package."""

    vulnerability_id: str  # the advisory's id ("CVE-2024-1234", "GHSA-xxxx", "DSA-...")
    package: Package
    severity: Severity
    fixed_version: str | None  # the first version that is not affected, if known
    aliases: tuple[str, ...] = ()  # other ids of the same vulnerability
    summary: str = ""
    cvss_score: float | None = None
    cvss_vector: str | None = None
    links: tuple[str, ...] = field(default_factory=tuple)
