"""Scan records and their findings in the metadata database.

A scan is requested (a top-level row per repository, digest and scanner: queued again on
a rescan, its old platform rows and findings replaced), started, then finished with its
results or failed with a reason. Finishing writes the findings, the summary and the
`scan.completed`/`scan.failed` event in one transaction, so webhooks see exactly the
results that were stored.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, func, insert, or_, select, update

from portside.errors import ManifestUnknown
from portside.events import outbox
from portside.events.outbox import SYSTEM
from portside.metadata import schema as s
from portside.metadata.db import Database, as_utc, utcnow
from portside.scanning.model import Finding, Inventory, Package, Severity
from portside.scans.scanner import ScanReport

# Severities counted in a summary, worst first (Harbor's scale without "none").
COUNTED = tuple(sorted((v for v in Severity if v != Severity.NONE), reverse=True))


def empty_summary() -> dict[str, int]:
    return {v.name.lower(): 0 for v in COUNTED}


@dataclass(frozen=True, slots=True)
class ScanRecord:
    id: int
    repository: str
    digest: str
    scanner: str
    parent_id: int | None
    platform: str | None
    status: str
    reason: str | None
    job_id: int | None
    requested_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    scanner_name: str | None
    scanner_version: str | None
    db_generation: str | None
    summary: dict[str, int]
    worst: Severity
    fixable: int
    sbom: bool
    platforms: tuple[ScanRecord, ...] = field(default=())

    @property
    def total(self) -> int:
        return sum(self.summary.values())


@dataclass(frozen=True, slots=True)
class FindingRecord:
    vulnerability_id: str
    severity: Severity
    package_name: str
    package_version: str
    ecosystem: str
    purl: str | None
    path: str | None
    fixed_version: str | None
    cvss_score: float | None
    cvss_vector: str | None
    aliases: tuple[str, ...]
    links: tuple[str, ...]
    summary: str
    digest: str  # the image manifest it was found in
    platform: str | None


def _opt(value: datetime | None) -> datetime | None:
    return None if value is None else as_utc(value)


def _record(row: Any, repository: str, platforms: Sequence[ScanRecord] = ()) -> ScanRecord:
    return ScanRecord(
        id=int(row.id),
        repository=repository,
        digest=row.digest,
        scanner=row.scanner,
        parent_id=row.parent_id,
        platform=row.platform,
        status=row.status,
        reason=row.reason,
        job_id=row.job_id,
        requested_by=row.requested_by,
        created_at=as_utc(row.created_at),
        started_at=_opt(row.started_at),
        finished_at=_opt(row.finished_at),
        scanner_name=row.scanner_name,
        scanner_version=row.scanner_version,
        db_generation=row.db_generation,
        summary={**empty_summary(), **json.loads(row.summary)} if row.summary else empty_summary(),
        worst=Severity(int(row.worst)),
        fixable=int(row.fixable),
        sbom=bool(row.sbom),
        platforms=tuple(platforms),
    )


def summarize(findings: Iterable[Finding]) -> tuple[dict[str, int], Severity, int]:
    counts = Counter(f.severity for f in findings if f.severity != Severity.NONE)
    fixable = 0
    worst = Severity.NONE
    summary = empty_summary()
    for severity, count in counts.items():
        summary[severity.name.lower()] = count
        worst = max(worst, severity)
    return summary, worst, fixable


def inventory_json(inventory: Inventory) -> str:
    return json.dumps(
        {
            "os_id": inventory.os_id,
            "os_version": inventory.os_version,
            "os_pretty_name": inventory.os_pretty_name,
            "warnings": list(inventory.warnings),
            "packages": [
                {
                    "ecosystem": p.ecosystem,
                    "name": p.name,
                    "version": p.version,
                    "path": p.path,
                    "purl": p.purl,
                    "source_name": p.source_name,
                    "source_version": p.source_version,
                    "licenses": list(p.licenses),
                    "layer": p.layer,
                }
                for p in inventory.packages
            ],
        }
    )


def inventory_from_json(text: str) -> Inventory:
    data = json.loads(text)
    return Inventory(
        packages=tuple(
            Package(**{**p, "licenses": tuple(p.get("licenses") or ())}) for p in data["packages"]
        ),
        os_id=data.get("os_id"),
        os_version=data.get("os_version"),
        os_pretty_name=data.get("os_pretty_name"),
        warnings=tuple(data.get("warnings") or ()),
    )


class ScanStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- requesting and running ---------------------------------------------------------
    @staticmethod
    def repository_id(conn: Connection, repository: str) -> int | None:
        value = conn.execute(
            select(s.repositories.c.id).where(s.repositories.c.name == repository)
        ).scalar_one_or_none()
        return None if value is None else int(value)

    def request_in(
        self,
        conn: Connection,
        repository: str,
        digest: str,
        scanner: str,
        *,
        requested_by: str,
        sbom: bool,
    ) -> int:
        """Queue a scan of `repository@digest` (or re-queue the existing row); its id.
        ManifestUnknown if the repository has no such manifest."""
        repo_id = self.repository_id(conn, repository)
        exists = (
            repo_id is not None
            and conn.execute(
                select(s.manifests.c.id).where(
                    s.manifests.c.repository_id == repo_id, s.manifests.c.digest == digest
                )
            ).first()
            is not None
        )
        if repo_id is None or not exists:
            raise ManifestUnknown(f"no manifest {digest} in {repository}")
        t = s.scans
        existing = conn.execute(
            select(t.c.id).where(
                t.c.repository_id == repo_id,
                t.c.digest == digest,
                t.c.scanner == scanner,
                t.c.parent_id.is_(None),
            )
        ).scalar_one_or_none()
        # The previous run's outcome, reason and results stay until this run finishes.
        values = {
            "status": "queued",
            "job_id": None,
            "requested_by": requested_by,
            "created_at": utcnow(),
            "started_at": None,
            "sbom": sbom,
        }
        if existing is not None:
            conn.execute(update(t).where(t.c.id == existing).values(**values))
            return int(existing)
        return int(
            conn.execute(
                insert(t)
                .values(
                    repository_id=repo_id,
                    digest=digest,
                    scanner=scanner,
                    worst=0,
                    fixable=0,
                    **values,
                )
                .returning(t.c.id)
            ).scalar_one()
        )

    def attach_job(self, conn: Connection, scan_id: int, job_id: int) -> None:
        conn.execute(update(s.scans).where(s.scans.c.id == scan_id).values(job_id=job_id))

    def start(self, scan_id: int) -> ScanRecord:
        with self.db.write() as conn:
            conn.execute(
                update(s.scans)
                .where(s.scans.c.id == scan_id)
                .values(status="running", started_at=utcnow())
            )
        found = self.get(scan_id)
        if found is None:
            raise ManifestUnknown(f"scan {scan_id} is gone (its artifact was deleted)")
        return found

    def finish(
        self,
        scan: ScanRecord,
        results: Sequence[tuple[str, str | None, ScanReport]],
        *,
        failures: Sequence[tuple[str, str | None, str]] = (),
    ) -> ScanRecord:
        """Store a scan's results: one (digest, platform, report) per image manifest
        scanned (for an image, just the image; for an index, each platform), and
        (digest, platform, reason) for platforms that failed. One platform failing fails
        the scan (its reason says which), keeping what the others found."""
        t = s.scans
        now = utcnow()
        with self.db.write() as conn:
            parent = conn.execute(select(t).where(t.c.id == scan.id)).first()
            if parent is None:
                raise ManifestUnknown(f"scan {scan.id} is gone (its artifact was deleted)")
            conn.execute(delete(t).where(t.c.parent_id == scan.id))
            conn.execute(delete(s.scan_findings).where(s.scan_findings.c.scan_id == scan.id))
            conn.execute(delete(s.scan_inventories).where(s.scan_inventories.c.scan_id == scan.id))
            is_index = any(platform is not None for _, platform, _ in results) or bool(failures)
            all_findings: list[Finding] = []
            info = None
            generation = None
            for digest, platform, report in results:
                info, generation = report.scanner, report.db_generation
                all_findings += report.findings
                target = scan.id
                if is_index:
                    target = self._child(conn, parent, digest, platform, "succeeded", None, now)
                    self._counts(conn, target, report.findings, report)
                self._findings(conn, target, digest, report.findings)
                if report.inventory is not None:
                    conn.execute(
                        insert(s.scan_inventories).values(
                            scan_id=target, content=inventory_json(report.inventory)
                        )
                    )
            for digest, platform, why in failures:
                self._child(conn, parent, digest, platform, "failed", why, now)
            summary, worst, _ = summarize(all_findings)
            reason = None
            if failures:
                reason = "; ".join(
                    f"{platform or digest}: {why}" for digest, platform, why in failures
                )
            conn.execute(
                update(t)
                .where(t.c.id == scan.id)
                .values(
                    status="failed" if failures else "succeeded",
                    result="failed" if failures else "succeeded",
                    reason=reason[:4000] if reason else None,
                    finished_at=now,
                    scanner_name=info.name[:128] if info else None,
                    scanner_version=info.version[:128] if info else None,
                    db_generation=generation,
                    summary=json.dumps(summary),
                    worst=int(worst),
                    fixable=sum(1 for f in all_findings if f.fixed_version),
                )
            )
            self._event(conn, scan, "failed" if failures else "succeeded", reason, summary, worst)
        done = self.get(scan.id)
        assert done is not None
        return done

    def fail(self, scan: ScanRecord, reason: str) -> None:
        with self.db.write() as conn:
            gone = (
                conn.execute(
                    update(s.scans)
                    .where(s.scans.c.id == scan.id)
                    .values(
                        status="failed", result="failed", reason=reason[:4000], finished_at=utcnow()
                    )
                ).rowcount
                == 0
            )
            if not gone:
                self._event(conn, scan, "failed", reason, None, None)

    def _child(  # noqa: PLR0917 - one call site, in finish()
        self,
        conn: Connection,
        parent: Any,
        digest: str,
        platform: str | None,
        status: str,
        reason: str | None,
        now: datetime,
    ) -> int:
        return int(
            conn.execute(
                insert(s.scans)
                .values(
                    repository_id=parent.repository_id,
                    digest=digest,
                    scanner=parent.scanner,
                    parent_id=parent.id,
                    platform=platform,
                    status=status,
                    result=status,
                    reason=reason,
                    requested_by=parent.requested_by,
                    created_at=now,
                    started_at=parent.started_at,
                    finished_at=now,
                    worst=0,
                    fixable=0,
                    sbom=False,
                )
                .returning(s.scans.c.id)
            ).scalar_one()
        )

    @staticmethod
    def _counts(
        conn: Connection, scan_id: int, findings: Sequence[Finding], report: ScanReport
    ) -> None:
        summary, worst, _ = summarize(findings)
        conn.execute(
            update(s.scans)
            .where(s.scans.c.id == scan_id)
            .values(
                summary=json.dumps(summary),
                worst=int(worst),
                fixable=sum(1 for f in findings if f.fixed_version),
                scanner_name=report.scanner.name[:128],
                scanner_version=report.scanner.version[:128],
                db_generation=report.db_generation,
            )
        )

    @staticmethod
    def _findings(conn: Connection, scan_id: int, digest: str, findings: Sequence[Finding]) -> None:
        rows = [
            {
                "scan_id": scan_id,
                "vulnerability_id": f.vulnerability_id[:128],
                "severity": int(f.severity),
                "package_name": f.package.name[:512],
                "package_version": f.package.version[:255],
                "ecosystem": f.package.ecosystem[:128],
                "purl": f.package.purl or None,
                "path": f.package.path or None,
                "fixed_version": f.fixed_version[:255] if f.fixed_version else None,
                "cvss_score": f.cvss_score,
                "cvss_vector": f.cvss_vector,
                "aliases": json.dumps(list(f.aliases)),
                "links": json.dumps(list(f.links)),
                "summary": f.summary,
            }
            for f in findings
        ]
        for start in range(0, len(rows), 500):
            conn.execute(insert(s.scan_findings), rows[start : start + 500])

    @staticmethod
    def _event(  # noqa: PLR0917
        conn: Connection,
        scan: ScanRecord,
        status: str,
        reason: str | None,
        summary: dict[str, int] | None,
        worst: Severity | None,
    ) -> None:
        data: dict[str, Any] = {
            "repository": scan.repository,
            "digest": scan.digest,
            "scanner": scan.scanner,
            "scan_id": scan.id,
            "status": status,
        }
        if summary is not None:
            data["summary"] = summary
            data["worst"] = (worst or Severity.NONE).name.lower()
        if reason:
            data["reason"] = reason
        outbox.emit(
            conn,
            outbox.SCAN_COMPLETED if status == "succeeded" else outbox.SCAN_FAILED,
            SYSTEM if scan.requested_by == SYSTEM.name else outbox.Actor(scan.requested_by),
            resource=f"{scan.repository}@{scan.digest}",
            repository=scan.repository,
            data=data,
        )

    # -- reading ------------------------------------------------------------------------
    def get(self, scan_id: int) -> ScanRecord | None:
        t = s.scans
        with self.db.read() as conn:
            row = conn.execute(
                select(t, s.repositories.c.name.label("repository_name"))
                .join(s.repositories, s.repositories.c.id == t.c.repository_id)
                .where(t.c.id == scan_id)
            ).first()
            if row is None:
                return None
            children = conn.execute(
                select(t).where(t.c.parent_id == scan_id).order_by(t.c.platform, t.c.digest)
            ).all()
        name = row.repository_name
        return _record(row, name, [_record(c, name) for c in children])

    def latest(self, repository: str, digest: str, scanner: str | None = None) -> ScanRecord | None:
        """The artifact's most recent top-level scan (by `scanner`, else by any)."""
        t = s.scans
        with self.db.read() as conn:
            repo_id = self.repository_id(conn, repository)
            if repo_id is None:
                return None
            query = select(t.c.id).where(
                t.c.repository_id == repo_id, t.c.digest == digest, t.c.parent_id.is_(None)
            )
            if scanner is not None:
                query = query.where(t.c.scanner == scanner)
            found = conn.execute(
                query.order_by(t.c.created_at.desc(), t.c.id.desc()).limit(1)
            ).scalar_one_or_none()
        return None if found is None else self.get(int(found))

    def findings(
        self,
        scan: ScanRecord,
        *,
        severity: Severity | None = None,
        package: str | None = None,
        fixable: bool | None = None,
        limit: int = 10_000,
    ) -> list[FindingRecord]:
        """A scan's findings (an index's: all its platforms'), worst first."""
        f = s.scan_findings
        platforms = {p.id: p for p in scan.platforms}
        with self.db.read() as conn:
            query = (
                select(f)
                .where(or_(f.c.scan_id == scan.id, f.c.scan_id.in_(list(platforms))))
                .order_by(f.c.severity.desc(), f.c.vulnerability_id, f.c.package_name, f.c.id)
                .limit(limit)
            )
            if severity is not None:
                query = query.where(f.c.severity >= int(severity))
            if package:
                query = query.where(func.lower(f.c.package_name).contains(package.lower()))
            if fixable is True:
                query = query.where(f.c.fixed_version.is_not(None))
            elif fixable is False:
                query = query.where(f.c.fixed_version.is_(None))
            rows = conn.execute(query).all()
        found = []
        for row in rows:
            owner = platforms.get(row.scan_id)
            found.append(
                FindingRecord(
                    vulnerability_id=row.vulnerability_id,
                    severity=Severity(int(row.severity)),
                    package_name=row.package_name,
                    package_version=row.package_version,
                    ecosystem=row.ecosystem,
                    purl=row.purl,
                    path=row.path,
                    fixed_version=row.fixed_version,
                    cvss_score=row.cvss_score,
                    cvss_vector=row.cvss_vector,
                    aliases=tuple(json.loads(row.aliases)),
                    links=tuple(json.loads(row.links)),
                    summary=row.summary,
                    digest=owner.digest if owner else scan.digest,
                    platform=owner.platform if owner else None,
                )
            )
        return found

    def inventory(self, scan_id: int) -> Inventory | None:
        with self.db.read() as conn:
            text = conn.execute(
                select(s.scan_inventories.c.content).where(s.scan_inventories.c.scan_id == scan_id)
            ).scalar_one_or_none()
        return None if text is None else inventory_from_json(text)

    def summaries(self, repository: str, digests: Sequence[str]) -> dict[str, ScanRecord]:
        """The latest top-level scan of each digest that has one (for listings)."""
        t = s.scans
        if not digests:
            return {}
        with self.db.read() as conn:
            repo_id = self.repository_id(conn, repository)
            if repo_id is None:
                return {}
            rows = conn.execute(
                select(t)
                .where(
                    t.c.repository_id == repo_id,
                    t.c.digest.in_(list(digests)),
                    t.c.parent_id.is_(None),
                )
                .order_by(t.c.created_at, t.c.id)
            ).all()
        return {row.digest: _record(row, repository) for row in rows}

    def scanned_artifacts(self, scanner: str, other_than: str | None) -> list[tuple[str, str]]:
        """(repository, digest) of artifacts whose latest scan by `scanner` succeeded
        against a database generation other than `other_than` (for rescans)."""
        t = s.scans
        with self.db.read() as conn:
            query = (
                select(s.repositories.c.name, t.c.digest)
                .join(s.repositories, s.repositories.c.id == t.c.repository_id)
                .where(t.c.scanner == scanner, t.c.parent_id.is_(None))
                .where(t.c.result.is_not(None), t.c.status.in_(("succeeded", "failed")))
            )
            if other_than is not None:
                query = query.where(
                    or_(t.c.db_generation.is_(None), t.c.db_generation != other_than)
                )
            return [(row[0], row[1]) for row in conn.execute(query)]
