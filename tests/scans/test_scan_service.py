"""Scans end to end in one process: the scan job (through the real job worker), stored
findings and summaries, index platforms, failures with their reason, the outbox events,
auto-scan on push, and the "prevent vulnerable images" pull policy with allowlists."""

from __future__ import annotations

from datetime import timedelta

from starlette.testclient import TestClient

from portside.app import PortsideApp
from portside.content.vulnerability import ScanSettings
from portside.events import outbox
from portside.events.outbox import Actor
from portside.jobs.runner import Worker
from portside.jobs.scan import request_scan
from portside.metadata.db import utcnow
from portside.scanning.model import Severity
from portside.scans.settings import ScanSettingsStore
from portside.scans.store import ScanRecord
from tests.api.helpers import (
    error_message,
    make_artifact,
    make_image,
    make_index,
    push_image,
    push_manifest,
)
from tests.scans.doubles import RecordedFindingsScanner, finding

ADMIN = Actor("admin")


def scan(app: PortsideApp, repository: str, digest: str) -> ScanRecord:
    """Request a scan, then let a real worker run its job."""
    ctx = app.ctx
    with ctx.db.write() as conn:
        scan_id, _job = request_scan(
            ctx.db,
            ctx.scans,
            conn,
            repository,
            digest,
            scanner=None,
            requested_by="admin",
            sbom=False,
        )
    worker = Worker(ctx, name="test-worker")
    while worker.tick():
        pass
    done = ctx.scans.store.get(scan_id)
    assert done is not None
    return done


def settle(app: PortsideApp, **changes: object) -> None:
    current = ScanSettingsStore(app.ctx.db).get("acme")
    fields = {
        name: getattr(current, name)
        for name in (
            "auto_scan",
            "generate_sbom",
            "prevent_vulnerable",
            "severity",
            "reuse_system_allowlist",
        )
    }
    fields.update(changes)
    ScanSettingsStore(app.ctx.db).save("acme", ScanSettings(**fields), ADMIN)


def test_scan_stores_findings_summary_and_event(
    app: PortsideApp, client: TestClient, double: RecordedFindingsScanner
) -> None:
    image = push_image(client, "acme/app", "v1")
    double.findings = [
        finding("CVE-2024-0001", Severity.CRITICAL, fixed="3.0.13-1"),
        finding("CVE-2024-0002", Severity.LOW, name="zlib1g", version="1.2.13"),
    ]
    done = scan(app, "acme/app", image.digest)
    assert done.status == "succeeded", done.reason
    assert done.summary["critical"] == 1
    assert done.summary["low"] == 1
    assert done.worst == Severity.CRITICAL
    assert done.fixable == 1
    assert done.db_generation == "gen-1"
    assert done.scanner_name == "test-double"
    found = app.ctx.scans.store.findings(done, severity=Severity.HIGH)
    assert [f.vulnerability_id for f in found] == ["CVE-2024-0001"]
    assert app.ctx.scans.store.findings(done, package="zlib")[0].package_version == "1.2.13"
    assert [f.vulnerability_id for f in app.ctx.scans.store.findings(done, fixable=True)] == [
        "CVE-2024-0001"
    ]
    events = [e for e in outbox.recent(app.ctx.db, limit=1000) if e.type == outbox.SCAN_COMPLETED]
    assert events
    assert events[-1].data["summary"]["critical"] == 1
    assert events[-1].resource == f"acme/app@{image.digest}"


def test_index_is_scanned_per_platform_with_aggregate(
    app: PortsideApp, client: TestClient, double: RecordedFindingsScanner
) -> None:
    children = [make_image(client, "acme/multi", seed=str(n)) for n in range(2)]
    for child in children:
        push_manifest(client, "acme/multi", child.digest, child)
    index = make_index(children)
    push_manifest(client, "acme/multi", "v1", index)
    double.findings = [finding("CVE-2024-0003", Severity.HIGH)]
    done = scan(app, "acme/multi", index.digest)
    assert done.status == "succeeded"
    assert {p.platform for p in done.platforms} == {"linux/arch0", "linux/arch1"}
    assert all(p.summary["high"] == 1 for p in done.platforms)
    assert done.summary["high"] == 2  # the aggregate
    assert {t.digest for t in double.scanned} == {c.digest for c in children}


def test_failed_scan_keeps_reason_and_raises_scan_failed(
    app: PortsideApp, client: TestClient, double: RecordedFindingsScanner
) -> None:
    image = push_image(client, "acme/app", "bomb")
    double.fail_with = "layer sha256:abc expands past the 4 GiB limit (decompression bomb?)"
    done = scan(app, "acme/app", image.digest)
    assert done.status == "failed"
    assert done.reason is not None
    assert "decompression bomb" in done.reason
    failed = [e for e in outbox.recent(app.ctx.db, limit=1000) if e.type == outbox.SCAN_FAILED]
    assert failed
    assert "decompression bomb" in failed[-1].data["reason"]


def test_non_images_are_not_scanned(app: PortsideApp, client: TestClient) -> None:
    image = push_image(client, "acme/app", "v1")
    sbom = make_artifact(client, "acme/app", image)
    push_manifest(client, "acme/app", sbom.digest, sbom)
    done = scan(app, "acme/app", sbom.digest)
    assert done.status == "failed"
    assert "not a container image" in (done.reason or "")


def test_auto_scan_on_push_skips_referrers(
    app: PortsideApp, client: TestClient, double: RecordedFindingsScanner
) -> None:
    settle(app, auto_scan=True)
    image = push_image(client, "acme/auto", "v1")
    signature = make_artifact(
        client, "acme/auto", image, artifact_type="application/vnd.dev.cosign.artifact.sig.v1+json"
    )
    push_manifest(client, "acme/auto", signature.digest, signature)
    worker = Worker(app.ctx, name="test-worker")
    for _ in range(5):
        worker.tick()
    assert [t.digest for t in double.scanned] == [image.digest]
    latest = app.ctx.scans.store.latest("acme/auto", image.digest)
    assert latest is not None
    assert latest.status == "succeeded"
    assert latest.requested_by == "system"


def test_auto_scan_scans_an_index_once_through_its_platforms(
    app: PortsideApp, client: TestClient, double: RecordedFindingsScanner
) -> None:
    settle(app, auto_scan=True)
    children = [make_image(client, "acme/multi", seed=str(n)) for n in range(2)]
    for child in children:  # as clients push an index: platforms by digest, then the index
        push_manifest(client, "acme/multi", child.digest, child)
    index = make_index(children)
    push_manifest(client, "acme/multi", "v1", index)
    worker = Worker(app.ctx, name="test-worker")
    for _ in range(5):
        worker.tick()
    assert sorted(t.digest for t in double.scanned) == sorted(c.digest for c in children)
    done = app.ctx.scans.store.latest("acme/multi", index.digest)
    assert done is not None
    assert done.status == "succeeded"
    assert len(done.platforms) == 2


def test_prevent_vulnerable_policy_with_allowlists(
    app: PortsideApp, client: TestClient, double: RecordedFindingsScanner
) -> None:
    image = push_image(client, "acme/app", "v1")
    url = f"/v2/acme/app/manifests/{image.digest}"
    assert client.get(url).status_code == 200  # no policy yet
    settle(app, prevent_vulnerable=True, severity=Severity.HIGH, reuse_system_allowlist=False)

    refused = client.get(url)
    assert refused.status_code == 403
    assert "has not been scanned" in error_message(refused)
    assert client.head(url).status_code == 200  # HEAD is not refused (as in Harbor)

    double.findings = [
        finding("CVE-2024-1234", Severity.CRITICAL, aliases=("DSA-5555-1",)),
        finding("CVE-2024-9999", Severity.MEDIUM, name="zlib1g", version="1.2.13"),
    ]
    scan(app, "acme/app", image.digest)
    refused = client.get("/v2/acme/app/manifests/v1")
    assert refused.status_code == 403
    assert error_message(refused) == (
        f"pull refused by project policy 'prevent vulnerable images': {image.digest}: "
        "CVE-2024-1234 (critical) in openssl 3.0.11-1 (threshold: high)"
    )

    store = ScanSettingsStore(app.ctx.db)
    store.save_allowlist("acme", ["cve-2024-1234"], utcnow() + timedelta(days=1), ADMIN)
    assert client.get(url).status_code == 200  # allowlisted; the medium one is below high

    # A rescan that has not run yet leaves the previous outcome in force.
    ctx = app.ctx
    with ctx.db.write() as conn:
        request_scan(ctx.db, ctx.scans, conn, "acme/app", image.digest, scanner=None,
                     requested_by="admin", sbom=False)  # fmt: skip
    queued = ctx.scans.store.latest("acme/app", image.digest)
    assert queued is not None
    assert queued.status == "queued"
    assert queued.summary["critical"] == 1  # the previous results, until the new ones
    assert client.get(url).status_code == 200

    store.save_allowlist("acme", ["CVE-2024-1234"], utcnow() - timedelta(seconds=1), ADMIN)
    assert client.get(url).status_code == 403  # the list expired

    # The project reuses the system list: the project's own no longer counts.
    store.save_allowlist(None, ["CVE-2024-1234"], None, ADMIN)
    settle(app, reuse_system_allowlist=True)
    assert client.get(url).status_code == 200

    # Another project without the policy pays nothing and is never refused.
    other = push_image(client, "nopolicy/app", "v1")
    assert client.get(f"/v2/nopolicy/app/manifests/{other.digest}").status_code == 200


def test_rescan_when_the_vulnerability_database_changes(
    app: PortsideApp, client: TestClient, double: RecordedFindingsScanner
) -> None:
    image = push_image(client, "acme/app", "v1")
    first = scan(app, "acme/app", image.digest)
    assert first.db_generation == "gen-1"
    assert first.total == 0
    # The vulnerability database imported new data: its import raises vulndb.updated.
    double.generation = "gen-2"
    double.findings = [finding("CVE-2025-0001", Severity.HIGH)]
    with app.ctx.db.write() as conn:
        outbox.emit(
            conn,
            outbox.VULNDB_UPDATED,
            Actor("vulndb"),
            resource="vulndb",
            data={"generation": "gen-2"},
        )
    worker = Worker(app.ctx, name="test-worker")
    for _ in range(3):
        worker.tick()
    again = app.ctx.scans.store.get(first.id)
    assert again is not None
    assert again.db_generation == "gen-2"
    assert again.summary["high"] == 1
    assert again.requested_by == "system"
    # Scanned against the current generation already: the same event rescans nothing.
    before = len(double.scanned)
    with app.ctx.db.write() as conn:
        outbox.emit(
            conn,
            outbox.VULNDB_UPDATED,
            Actor("vulndb"),
            resource="vulndb",
            data={"generation": "gen-2"},
        )
    for _ in range(3):
        worker.tick()
    assert len(double.scanned) == before


def test_a_deleted_artifacts_scans_go_with_it(
    app: PortsideApp, client: TestClient, double: RecordedFindingsScanner
) -> None:
    image = push_image(client, "acme/app", "v1")
    double.findings = [finding("CVE-2024-0001", Severity.HIGH)]
    done = scan(app, "acme/app", image.digest)
    assert client.delete(f"/v2/acme/app/manifests/{image.digest}").status_code == 202
    # In the deleting transaction: no worker needs to run.
    assert app.ctx.scans.store.get(done.id) is None
    assert app.ctx.scans.store.latest("acme/app", image.digest) is None
