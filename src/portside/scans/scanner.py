"""The `Scanner` interface every scanner implements, and what a scan hands it and gets.

A scanner scans one image manifest (one platform of an index) and returns its findings;
the scan service (portside.scans.service) walks indexes, stores results and raises events.
Scanners run in the job worker and may block (read layers, wait on an HTTP adapter).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from portside.scanning.model import Finding, Inventory

BUILTIN = "builtin"


class ScanFailed(Exception):
    """The scan cannot complete; the message is the reason users see."""


@dataclass(frozen=True, slots=True)
class ScanTarget:
    scan_id: int
    repository: str
    digest: str  # the image manifest scanned
    media_type: str
    tag: str | None = None


@dataclass(frozen=True, slots=True)
class ScannerInfo:
    name: str
    vendor: str
    version: str


@dataclass(frozen=True, slots=True)
class ScanReport:
    findings: tuple[Finding, ...]
    scanner: ScannerInfo
    db_generation: str | None = None  # the vulnerability database the scan matched against
    inventory: Inventory | None = None  # the packages found (built-in scanners: SBOMs)


class Scanner(Protocol):
    """One scanner (the built-in one, or a registered Harbor adapter)."""

    name: str  # "builtin" or the registration's name

    def info(self) -> ScannerInfo:
        """Who the scanner is (for the registry of scanners and each scan's record)."""
        ...

    def scan(self, target: ScanTarget, check: Callable[[], None]) -> ScanReport:
        """Scan one image manifest. `check` raises when the job should stop; call it
        between steps. Raises ScanFailed with a reason users can act on."""
        ...
