"""The `scan` job (one scan of one artifact), and the outbox consumer that queues scans:
on `artifact.pushed` in a project with `auto_scan`, and on `vulndb.updated` a rescan of
what the built-in scanner scanned against an older database generation. A deleted
artifact's scans are deleted by portside.content.deletion, in the deleting transaction.

The consumer (`scans`) runs in the job worker's tick. Its cursor is created when a
project turns auto-scan on or a scan is first requested (portside.scans.settings.
ensure_cursor), so a registry that never scans never reads the outbox for it; the idle
worker (portside.jobs.idle) wakes when events it handles are after the cursor.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import Connection, select

from portside.content.vulnerability import read_settings
from portside.errors import ManifestUnknown
from portside.events.outbox import (
    ARTIFACT_PUSHED,
    SYSTEM,
    VULNDB_UPDATED,
    Consumer,
    Event,
)
from portside.jobs.context import JobContext, JobFailed
from portside.jobs.store import Jobs
from portside.metadata import schema as s
from portside.metadata.db import Database
from portside.scans.scanner import BUILTIN
from portside.scans.service import NoScanner, NotScannable, ScanService, images_of
from portside.scans.settings import CURSOR, ensure_cursor

if TYPE_CHECKING:
    from portside.context import Context

log = structlog.get_logger(__name__)

HANDLED = (ARTIFACT_PUSHED, VULNDB_UPDATED)  # raised by pushes, and by vulndb imports


def request_scan(
    db: Database,
    service: ScanService,
    conn: Connection,
    repository: str,
    digest: str,
    *,
    scanner: str | None,
    requested_by: str,
    sbom: bool,
) -> tuple[int, int]:
    """Record a scan request and queue its job, in the caller's transaction:
    (scan id, job id). NoScanner if no scanner is available."""
    name = scanner or service.default_scanner()
    if name != BUILTIN:
        service.registry.get(name)  # Missing if unknown
    scan_id = service.store.request_in(
        conn, repository, digest, name, requested_by=requested_by, sbom=sbom
    )
    job_id = Jobs(db).enqueue_in(
        conn,
        "scan",
        {"scan_id": scan_id},
        project=repository.split("/", 1)[0],
        created_by=requested_by,
        exclusive=False,
    )
    service.store.attach_job(conn, scan_id, job_id)
    ensure_cursor(db, conn)
    return scan_id, job_id


def run_scan(job: JobContext) -> dict[str, Any]:
    service = job.services.scans
    scan_id = int(job.params["scan_id"])
    try:
        done = service.run(scan_id, job.check_stop, job.log)
    except ManifestUnknown as error:
        raise JobFailed(str(error)) from None
    result: dict[str, Any] = {
        "scan_id": done.id,
        "artifact": f"{done.repository}@{done.digest}",
        "status": done.status,
        "summary": done.summary,
    }
    if done.status == "failed":
        raise JobFailed(f"scan of {done.repository}@{done.digest} failed: {done.reason}")
    return result


def _cursor_exists(db: Database) -> bool:
    with db.read() as conn:
        return (
            conn.execute(
                select(s.event_cursors.c.position).where(s.event_cursors.c.consumer == CURSOR)
            ).first()
            is not None
        )


def catch_up(db: Database, services: Callable[[], Context]) -> int:
    """Queue the scans new events ask for; how many events were read. The services are
    built only when the cursor exists (an idle worker that never scans stays small)."""
    if not _cursor_exists(db):
        return 0
    service = services().scans

    def handle(conn: Connection, events: Sequence[Event]) -> None:
        for event in events:
            try:
                if event.type == ARTIFACT_PUSHED:
                    _on_push(db, service, conn, event)
                elif event.type == VULNDB_UPDATED:
                    _on_vulndb(db, service, conn, event)
            except (NoScanner, NotScannable, ManifestUnknown) as error:
                log.info("scans.not_queued", event_id=event.id, reason=str(error))

    return Consumer(db, CURSOR, start_at_end=True).catch_up(handle)


def _on_push(db: Database, service: ScanService, conn: Connection, event: Event) -> None:
    repository = event.repository or event.data.get("repository")
    digest = event.data.get("digest")
    if not repository or not isinstance(digest, str) or event.project is None:
        return
    project_id = conn.execute(
        select(s.projects.c.id).where(s.projects.c.name == event.project)
    ).scalar_one_or_none()
    if project_id is None:
        return
    settings = read_settings(conn, int(project_id))
    if not settings.auto_scan:
        return
    if event.data.get("tag") is None and _is_platform_of_index(conn, repository, digest):
        return  # scanned as a platform of its index (clients push platforms first)
    images_of(db, repository, digest)  # NotScannable: a signature, an SBOM, a chart...
    request_scan(
        db,
        service,
        conn,
        repository,
        digest,
        scanner=None,
        requested_by=SYSTEM.name,
        sbom=settings.generate_sbom,
    )


def _is_platform_of_index(conn: Connection, repository: str, digest: str) -> bool:
    m = s.manifests
    return (
        conn.execute(
            select(s.manifest_children.c.manifest_id)
            .join(m, m.c.id == s.manifest_children.c.manifest_id)
            .join(s.repositories, s.repositories.c.id == m.c.repository_id)
            .where(
                s.repositories.c.name == repository, s.manifest_children.c.child_digest == digest
            )
            .limit(1)
        ).first()
        is not None
    )


def _on_vulndb(db: Database, service: ScanService, conn: Connection, event: Event) -> None:
    if service.builtin is None:
        return
    generation = event.data.get("generation")
    for repository, digest in service.store.scanned_artifacts(
        BUILTIN, str(generation) if generation is not None else None
    ):
        request_scan(
            db,
            service,
            conn,
            repository,
            digest,
            scanner=BUILTIN,
            requested_by=SYSTEM.name,
            sbom=False,
        )
