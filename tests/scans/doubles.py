"""A test double for the Scanner interface: returns the findings it was given.

The built-in scanner (layer reader + vulnerability database, issue 12) is built in
parallel and not part of this branch, and an external scanner needs a scanner adapter
service; the scan service's own behaviour (jobs, storage, events, policy, listings) is
tested with this double wherever what a scanner finds is not the point. It is never
registered or presented as a real scanner outside the tests.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from portside.scanning.model import Finding, Inventory, Package, Severity
from portside.scans.scanner import ScanFailed, ScannerInfo, ScanReport, ScanTarget


def finding(
    vulnerability_id: str,
    severity: Severity,
    *,
    name: str = "openssl",
    version: str = "3.0.11-1",
    fixed: str | None = None,
    aliases: tuple[str, ...] = (),
) -> Finding:
    package = Package(
        ecosystem="Debian:12",
        name=name,
        version=version,
        path="var/lib/dpkg/status",
        purl=f"pkg:deb/debian/{name}@{version}",
    )
    return Finding(vulnerability_id, package, severity, fixed, aliases=aliases)


@dataclass
class RecordedFindingsScanner:
    """Test double (see the module docstring): `findings` for every image, or
    `fail_with` as the failure reason; records what it was asked to scan."""

    findings: Sequence[Finding] = ()
    fail_with: str | None = None
    name: str = "builtin"
    generation: str = "gen-1"
    inventory: Inventory | None = None
    scanned: list[ScanTarget] = field(default_factory=list)

    def info(self) -> ScannerInfo:
        return ScannerInfo("test-double", "tests", "0")

    def scan(self, target: ScanTarget, check: Callable[[], None]) -> ScanReport:
        check()
        self.scanned.append(target)
        if self.fail_with is not None:
            raise ScanFailed(self.fail_with)
        return ScanReport(
            tuple(self.findings),
            self.info(),
            db_generation=self.generation,
            inventory=self.inventory,
        )
