"""The scanning management API with authentication on: who may start scans, read results
and change settings; results with filters; vulnerability summaries in the artifact
listings; SBOM referrers listed and downloaded; allowlists; the scanners registry."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from portside.jobs.runner import Worker
from portside.scanning.model import Severity
from tests.api.helpers import canonical, descriptor, make_image, push_blob, push_manifest
from tests.auth.conftest import PASSWORD, Registry, basic, populated
from tests.mgmt.conftest import DEVELOPER, GUEST, PROJECT_ADMIN, client_for
from tests.scans.doubles import RecordedFindingsScanner, finding

API = "/api/v1"


@pytest.fixture
def world(tmp_path: Path, database_url: str) -> Iterator[tuple[Registry, RecordedFindingsScanner]]:
    double = RecordedFindingsScanner()
    with populated(tmp_path, database_url) as registry:
        # The built-in scanner is not in this branch: the test double stands in for it.
        registry.app.ctx.scans.builtin = lambda: double
        yield registry, double


def push(registry: Registry) -> str:
    admin = registry.as_caller(basic("admin", PASSWORD))
    image = make_image(admin, "acme/app", seed="api")
    push_manifest(admin, "acme/app", "v1", image)
    return image.digest


def run_jobs(registry: Registry) -> None:
    worker = Worker(registry.app.ctx, name="api-test")
    while worker.tick():
        pass


def test_scan_lifecycle_and_permissions(
    world: tuple[Registry, RecordedFindingsScanner],
) -> None:
    registry, double = world
    digest = push(registry)
    double.findings = [
        finding("CVE-2024-0001", Severity.CRITICAL, fixed="3.0.13-1"),
        finding("CVE-2024-0002", Severity.LOW, name="zlib1g", version="1.2.13"),
    ]
    guest = client_for(registry, GUEST)
    developer = client_for(registry, DEVELOPER)
    anonymous = client_for(registry)
    url = f"{API}/repositories/acme/app/-/artifacts/v1/scan"
    assert guest.post(url).status_code == 403
    assert anonymous.post(url).status_code == 404  # private: does not exist for them
    assert guest.get(url).status_code == 404  # pull allowed, but never scanned
    started = developer.post(url, json={})
    assert started.status_code == 202, started.text
    queued = guest.get(url).json()
    assert queued["status"] == "queued"
    run_jobs(registry)
    done = guest.get(url).json()
    assert done["status"] == "succeeded"
    assert done["counts"]["critical"] == 1
    assert done["worst"] == "critical"
    assert done["db_generation"] == "gen-1"

    findings = guest.get(url + "/findings").json()
    assert [f["vulnerability_id"] for f in findings] == ["CVE-2024-0001", "CVE-2024-0002"]
    assert findings[0]["fixed_version"] == "3.0.13-1"
    high = guest.get(url + "/findings", params={"severity": "high"}).json()
    assert [f["vulnerability_id"] for f in high] == ["CVE-2024-0001"]
    zlib = guest.get(url + "/findings", params={"package": "ZLIB"}).json()
    assert [f["package"] for f in zlib] == ["zlib1g"]
    unfixed = guest.get(url + "/findings", params={"fixable": "false"}).json()
    assert [f["vulnerability_id"] for f in unfixed] == ["CVE-2024-0002"]
    assert guest.get(url + "/findings", params={"severity": "bad"}).status_code == 400

    listing = guest.get(f"{API}/repositories/acme/app/-/artifacts").json()
    (artifact,) = listing
    assert artifact["digest"] == digest
    assert artifact["vulnerabilities"]["worst"] == "critical"
    detail = guest.get(f"{API}/repositories/acme/app/-/artifacts/v1").json()
    assert detail["vulnerabilities"]["counts"]["low"] == 1


def test_settings_allowlists_and_policy(world: tuple[Registry, RecordedFindingsScanner]) -> None:
    registry, _double = world
    digest = push(registry)
    admin = client_for(registry, "admin")
    project_admin = client_for(registry, PROJECT_ADMIN)
    developer = client_for(registry, DEVELOPER)
    settings_url = f"{API}/projects/acme/scan-settings"
    assert developer.get(settings_url).json()["prevent_vulnerable"] is False
    wanted = {"prevent_vulnerable": True, "severity": "high", "auto_scan": True}
    assert developer.put(settings_url, json=wanted).status_code == 403
    saved = project_admin.put(settings_url, json=wanted)
    assert saved.status_code == 200, saved.text
    assert saved.json()["severity"] == "high"
    assert saved.json()["updated_by"] == PROJECT_ADMIN
    assert project_admin.put(settings_url, json={"severity": "worst"}).status_code == 400

    refused = developer.get(f"/v2/acme/app/manifests/{digest}")
    assert refused.status_code == 403
    assert "prevent vulnerable images" in refused.json()["errors"][0]["message"]
    assert admin.get(f"/v2/acme/app/manifests/{digest}").status_code == 403  # admins too

    allowlist = f"{API}/projects/acme/cve-allowlist"
    body = {"items": ["cve-2024-1", "CVE-2024-1"], "expires_at": "2030-01-01T00:00:00Z"}
    assert developer.put(allowlist, json=body).status_code == 403
    stored = project_admin.put(allowlist, json=body).json()
    assert stored["items"] == ["CVE-2024-1"]
    assert stored["expired"] is False
    bad = project_admin.put(allowlist, json={"items": ["not an id!"]})
    assert bad.status_code == 400
    naive = project_admin.put(allowlist, json={"items": [], "expires_at": "2030-01-01T00:00:00"})
    assert naive.status_code == 400

    system = f"{API}/system/cve-allowlist"
    assert project_admin.put(system, json={"items": ["CVE-2024-2"]}).status_code == 403
    assert admin.put(system, json={"items": ["CVE-2024-2"]}).json()["scope"] == "system"
    assert developer.get(system).json()["items"] == ["CVE-2024-2"]
    assert client_for(registry).get(system).status_code == 401


def test_scanners_registry_is_for_admins(world: tuple[Registry, RecordedFindingsScanner]) -> None:
    registry, _double = world
    admin = client_for(registry, "admin")
    project_admin = client_for(registry, PROJECT_ADMIN)
    body = {
        "name": "trivy",
        "url": "http://10.0.0.5:8080",
        "auth": "Bearer",
        "access_credential": "s3cret",
        "is_default": True,
    }
    assert project_admin.get(f"{API}/scanners").status_code == 403
    assert project_admin.post(f"{API}/scanners", json=body).status_code == 403
    refused = admin.post(f"{API}/scanners", json=body)
    assert refused.status_code == 400  # private addresses need scanning.allow_private_scanners
    assert "private" in refused.text
    body["url"] = "http://8.8.8.8:8080"
    created = admin.post(f"{API}/scanners", json=body)
    assert created.status_code == 201, created.text
    assert created.json()["has_credential"] is True
    assert "s3cret" not in created.text
    assert admin.post(f"{API}/scanners", json=body).status_code == 409
    patched = admin.patch(f"{API}/scanners/trivy", json={"enabled": False})
    assert patched.json()["enabled"] is False
    assert admin.delete(f"{API}/scanners/trivy").status_code == 204
    assert admin.delete(f"{API}/scanners/trivy").status_code == 404


def test_client_pushed_sboms_are_listed_and_downloaded(
    world: tuple[Registry, RecordedFindingsScanner],
) -> None:
    registry, _double = world
    admin = registry.as_caller(basic("admin", PASSWORD))
    image = make_image(admin, "acme/app", seed="sbom")
    push_manifest(admin, "acme/app", "v1", image)
    spdx = canonical({"spdxVersion": "SPDX-2.3", "name": "acme/app", "packages": []})
    empty = b"{}"
    push_blob(admin, "acme/app", empty)
    push_blob(admin, "acme/app", spdx)
    document = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": "application/spdx+json",
        "config": descriptor("application/vnd.oci.empty.v1+json", empty),
        "layers": [descriptor("application/spdx+json", spdx)],
        "subject": image.descriptor(),
    }
    body = canonical(document)
    pushed = admin.put(
        f"/v2/acme/app/manifests/sha256:{hashlib.sha256(body).hexdigest()}",
        content=body,
        headers={"content-type": "application/vnd.oci.image.manifest.v1+json"},
    )
    assert pushed.status_code == 201, pushed.text
    guest = client_for(registry, GUEST)
    listed = guest.get(f"{API}/repositories/acme/app/-/artifacts/v1/sboms").json()
    assert [(s["format"], s["artifact_type"]) for s in listed] == [
        ("spdx", "application/spdx+json")
    ]
    downloaded = guest.get(
        f"{API}/repositories/acme/app/-/artifacts/v1/sboms/{listed[0]['digest']}"
    )
    assert downloaded.status_code == 200
    assert json.loads(downloaded.content)["spdxVersion"] == "SPDX-2.3"
    assert "attachment" in downloaded.headers["content-disposition"]
    missing = guest.get(f"{API}/repositories/acme/app/-/artifacts/v1/sboms/sha256:{'0' * 64}")
    assert missing.status_code == 404
    assert (
        client_for(registry).get(f"{API}/repositories/acme/app/-/artifacts/v1/sboms").status_code
        == 404
    )
