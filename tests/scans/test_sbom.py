"""SBOMs attached after a scan: pushed as OCI 1.1 referrers through the normal upload
and manifest services, so the referrers API, the SBOM listing and the events see them.

The SPDX/CycloneDX renderers come with the built-in scanner (not in this branch); a test
double renders the inventory here, since what is under test is the attaching."""

from __future__ import annotations

import json

from starlette.testclient import TestClient

from portside.app import PortsideApp
from portside.events import outbox
from portside.jobs.runner import Worker
from portside.jobs.scan import request_scan
from portside.scanning.model import Inventory, Package
from portside.scans import sbom
from tests.api.helpers import push_image
from tests.scans.doubles import RecordedFindingsScanner

SPDX = "application/spdx+json"


def render_for_tests(inventory: Inventory, repository: str, digest: str) -> list[tuple[str, bytes]]:
    """Test double of the SBOM renderers: one SPDX-shaped document naming the packages."""
    names = [p.name for p in inventory.packages]
    return [(SPDX, json.dumps({"spdxVersion": "SPDX-2.3", "packages": names}).encode())]


def test_sbom_is_attached_as_a_referrer(
    app: PortsideApp, client: TestClient, double: RecordedFindingsScanner
) -> None:
    ctx = app.ctx
    ctx.scans.sbom_generator = render_for_tests
    double.inventory = Inventory(
        packages=(
            Package(
                "Debian:12",
                "openssl",
                "3.0.11-1",
                "var/lib/dpkg/status",
                "pkg:deb/debian/openssl@3.0.11-1",
            ),
        )
    )
    image = push_image(client, "acme/app", "v1")
    with ctx.db.write() as conn:
        request_scan(ctx.db, ctx.scans, conn, "acme/app", image.digest, scanner=None,
                     requested_by="alice", sbom=True)  # fmt: skip
    worker = Worker(ctx, name="sbom-test")
    while worker.tick():
        pass

    referrers = client.get(f"/v2/acme/app/referrers/{image.digest}")
    assert referrers.status_code == 200
    (found,) = referrers.json()["manifests"]
    assert found["artifactType"] == SPDX
    assert found["annotations"][sbom.CREATOR] == "portside"
    manifest = client.get(f"/v2/acme/app/manifests/{found['digest']}").json()
    assert manifest["subject"]["digest"] == image.digest
    assert manifest["config"]["mediaType"] == "application/vnd.oci.empty.v1+json"
    layer = client.get(f"/v2/acme/app/blobs/{manifest['layers'][0]['digest']}")
    assert json.loads(layer.content) == {"spdxVersion": "SPDX-2.3", "packages": ["openssl"]}

    (listed,) = sbom.sboms_of(ctx.manifests, "acme/app", image.digest)
    assert (listed.format, listed.created_by) == ("spdx", "portside")
    document = sbom.document(ctx.db, ctx.storage, "acme/app", listed)
    assert json.loads(b"".join(document.chunks))["packages"] == ["openssl"]

    pushed = [e for e in outbox.recent(ctx.db, limit=1000) if e.type == outbox.ARTIFACT_PUSHED]
    assert pushed[-1].data["digest"] == found["digest"]
    assert pushed[-1].actor == "scanner"


def test_no_inventory_no_sbom(
    app: PortsideApp, client: TestClient, double: RecordedFindingsScanner
) -> None:
    ctx = app.ctx
    ctx.scans.sbom_generator = render_for_tests
    image = push_image(client, "acme/app", "v1")  # the double reports no inventory
    with ctx.db.write() as conn:
        _, job_id = request_scan(ctx.db, ctx.scans, conn, "acme/app", image.digest,
                                 scanner=None, requested_by="alice", sbom=True)  # fmt: skip
    worker = Worker(ctx, name="sbom-test")
    while worker.tick():
        pass
    assert client.get(f"/v2/acme/app/referrers/{image.digest}").json()["manifests"] == []
    lines = [line.message for line in worker.jobs.log(job_id)]
    assert any("no SBOM generated" in line for line in lines), lines
