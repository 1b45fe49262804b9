"""The built-in scanner end to end: an image with a real dpkg status database in a gzip
layer, pushed through the registry API; a small OSV record imported into the
vulnerability database; the scan job reads the layers through the storage driver,
matches, stores the finding with the database generation, and attaches SPDX and
CycloneDX SBOMs as referrers. A layer that is not a tarball fails the scan with the
layer reader's reason."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from starlette.testclient import TestClient

from portside.app import PortsideApp, create_app
from portside.config import load_settings
from portside.events.outbox import Actor
from portside.jobs.runner import Worker
from portside.jobs.scan import request_scan
from portside.scanning.model import Severity
from portside.scans import sbom
from portside.scans.builtin import BuiltinScanner, render_sboms
from portside.scans.store import ScanRecord
from portside.vulndb import generation, import_path
from tests.api.helpers import make_image, push_manifest
from tests.scanning.build import file, tar

STATUS = """Package: openssl
Status: install ok installed
Architecture: amd64
Version: 3.0.11-1~deb12u1
Source: openssl

Package: zlib1g
Status: install ok installed
Architecture: amd64
Version: 1:1.2.13.dfsg-1
Source: zlib

"""
OS_RELEASE = 'ID=debian\nVERSION_ID="12"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n'
ADVISORY = {
    "id": "DEBIAN-CVE-2023-5678",
    "modified": "2024-01-01T00:00:00Z",
    "aliases": ["CVE-2023-5678"],
    "summary": "openssl: excessive time in DH checks",
    "affected": [
        {
            "package": {"ecosystem": "Debian:12", "name": "openssl"},
            "ranges": [
                {
                    "type": "ECOSYSTEM",
                    "events": [{"introduced": "0"}, {"fixed": "3.0.11-1~deb12u2"}],
                }
            ],
            "ecosystem_specific": {"urgency": "high"},
        }
    ],
    "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H"}],
}


def run_scan(app: PortsideApp, digest: str, *, sbom_wanted: bool = False) -> ScanRecord:
    ctx = app.ctx
    with ctx.db.write() as conn:
        scan_id, _ = request_scan(ctx.db, ctx.scans, conn, "acme/app", digest, scanner=None,
                                  requested_by="alice", sbom=sbom_wanted)  # fmt: skip
    worker = Worker(ctx, name="builtin-test")
    while worker.tick():
        pass
    done = ctx.scans.store.get(scan_id)
    assert done is not None
    return done


def use_builtin(app: PortsideApp) -> None:
    """Undo the conftest's test double: these tests run the real built-in scanner."""
    ctx = app.ctx
    ctx.scans.builtin = lambda: BuiltinScanner(ctx.db, ctx.storage)
    ctx.scans.sbom_generator = lambda found, repository, digest: render_sboms(
        found, repository, digest, "registry.test"
    )


def test_builtin_scan_of_a_debian_image(
    app: PortsideApp, client: TestClient, tmp_path: Path
) -> None:
    use_builtin(app)
    records = tmp_path / "osv"
    records.mkdir()
    (records / "DEBIAN-CVE-2023-5678.json").write_text(json.dumps(ADVISORY))
    import_path(app.ctx.db, records, source="test-osv")
    layer = tar([file("etc/os-release", OS_RELEASE), file("var/lib/dpkg/status", STATUS)])
    image = make_image(client, "acme/app", layers=[gzip.compress(layer)], seed="builtin")
    push_manifest(client, "acme/app", "v1", image)

    done = run_scan(app, image.digest, sbom_wanted=True)
    assert done.status == "succeeded", done.reason
    assert done.scanner == "builtin"
    assert done.db_generation == str(generation(app.ctx.db))
    (found,) = app.ctx.scans.store.findings(done)
    assert found.vulnerability_id in ("DEBIAN-CVE-2023-5678", "CVE-2023-5678")
    assert (found.package_name, found.package_version) == ("openssl", "3.0.11-1~deb12u1")
    assert found.fixed_version == "3.0.11-1~deb12u2"
    assert found.severity >= Severity.HIGH
    assert found.path == "var/lib/dpkg/status"

    inventory = app.ctx.scans.store.inventory(done.id)
    assert inventory is not None
    assert {p.name for p in inventory.packages} == {"openssl", "zlib1g"}
    listed = sbom.sboms_of(app.ctx.manifests, "acme/app", image.digest)
    assert {s.format for s in listed} == {"spdx", "cyclonedx"}
    referrers = client.get(f"/v2/acme/app/referrers/{image.digest}").json()["manifests"]
    assert {r["artifactType"] for r in referrers} == {
        "application/spdx+json",
        "application/vnd.cyclonedx+json",
    }
    spdx = next(s for s in listed if s.format == "spdx")
    document = json.loads(
        b"".join(sbom.document(app.ctx.db, app.ctx.storage, "acme/app", spdx).chunks)
    )
    assert document["spdxVersion"] == "SPDX-2.3"
    assert "openssl" in {p["name"] for p in document["packages"]}


def test_a_layer_that_is_not_a_tarball_fails_the_scan(app: PortsideApp, client: TestClient) -> None:
    use_builtin(app)
    image = make_image(client, "acme/app", layers=[b"\x1f\x8b this is no gzip stream"], seed="x")
    push_manifest(client, "acme/app", "v1", image)
    done = run_scan(app, image.digest)
    assert done.status == "failed"
    assert done.reason
    assert "layer" in done.reason


def test_configured_limits_reach_the_scanner_and_fail_the_scan_with_the_reason(
    tmp_path: Path, database_url: str
) -> None:
    """`scanning.limits.*` from the settings, through the service container, to the
    layer reader: an image the defaults read (two entries, as in the test above) fails
    under `max_entries: 1`, and the scan says why."""
    settings = load_settings(
        data_dir=tmp_path / "data",
        database={"url": database_url},
        log={"access": False, "level": "warning"},
        scanning={"limits": {"max_entries": 1, "max_layer_bytes": 10**6}},
    )
    app = create_app(settings)
    try:
        app.ctx.auth.projects.create("acme", creator="cli", actor=Actor("cli"))
        with TestClient(app, base_url="http://registry.test") as client:
            layer = tar([file("etc/os-release", OS_RELEASE), file("var/lib/dpkg/status", STATUS)])
            image = make_image(client, "acme/app", layers=[gzip.compress(layer)], seed="limits")
            push_manifest(client, "acme/app", "v1", image)
            done = run_scan(app, image.digest)
        assert done.status == "failed"
        assert done.reason is not None
        assert "more than 1 tar entries" in done.reason, done.reason
    finally:
        app.ctx.close()
