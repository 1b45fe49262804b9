"""The web UI's vulnerability parts: the artifact page's findings table (filters, escaped
text, the scan button with CSRF, SBOM download links), severity badges on the repository
page, and the project settings' vulnerability card (policy and allowlist)."""

from __future__ import annotations

from starlette.testclient import TestClient

from portside.jobs.runner import Worker
from portside.scanning.model import Severity
from tests.api.helpers import make_artifact, push_manifest
from tests.auth.conftest import Registry
from tests.mgmt.conftest import client_for
from tests.scans.doubles import RecordedFindingsScanner, finding
from tests.ui.conftest import browser_for
from tests.ui.test_project import flash, push


def _use_double(registry: Registry) -> RecordedFindingsScanner:
    # The built-in scanner is not in this branch: the test double stands in for it.
    double = RecordedFindingsScanner()
    registry.app.ctx.scans.builtin = lambda: double
    return double


def _run_jobs(registry: Registry) -> None:
    worker = Worker(registry.app.ctx, name="ui-test")
    while worker.tick():
        pass


def test_scan_button_findings_table_and_badges(registry: Registry) -> None:
    double = _use_double(registry)
    image = push(registry, "acme/app", "v1")
    double.findings = [
        finding("CVE-2024-0001", Severity.CRITICAL, fixed="3.0.13-1"),
        finding("<script>alert(1)</script>", Severity.LOW, name="zlib<b>", version="1.2.13"),
    ]
    page_url = f"/repositories/acme/app/-/artifacts/{image.digest}"
    guest = browser_for(registry, "guest")
    page = guest.get(page_url).text
    assert "This artifact has not been scanned." in page
    assert "Scan now" not in page  # guests may not start scans

    developer = browser_for(registry, "developer")
    developer.get(page_url)
    answered = developer.post(page_url + "/scan", {})
    assert flash(answered.text) == "Scan queued; reload the page to see its results."
    _run_jobs(registry)

    page = guest.get(page_url).text
    assert '<span class="badge severity-critical" title="1 critical">1 critical</span>' in page
    assert "CVE-2024-0001" in page
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "zlib&lt;b&gt;" in page
    filtered = guest.get(page_url, params={"severity": "high"}).text
    assert "CVE-2024-0001" in filtered
    assert "zlib&lt;b&gt;" not in filtered

    listing = guest.get("/repositories/acme/app").text
    assert "1 critical" in listing
    assert "1 low" in listing


def test_scan_button_needs_csrf(registry: Registry) -> None:
    _use_double(registry)
    image = push(registry, "acme/app", "v1")
    developer = browser_for(registry, "developer")
    page_url = f"/repositories/acme/app/-/artifacts/{image.digest}"
    developer.get(page_url)
    forged = developer.client.post(page_url + "/scan", data={"csrf": "forged"})
    assert forged.status_code == 403
    assert registry.app.ctx.scans.store.latest("acme/app", image.digest) is None


def test_sbom_download_link(registry: Registry) -> None:
    image = push(registry, "acme/app", "v1")
    admin: TestClient = client_for(registry, "admin")
    sbom = make_artifact(admin, "acme/app", image, artifact_type="application/spdx+json")
    push_manifest(admin, "acme/app", sbom.digest, sbom)
    page = browser_for(registry, "guest").get(f"/repositories/acme/app/-/artifacts/{image.digest}")
    link = f"/api/v1/repositories/acme/app/-/artifacts/{image.digest}/sboms/{sbom.digest}"
    assert f'<a href="{link}" download>SPDX</a>' in page.text


def test_project_vulnerability_settings(registry: Registry) -> None:
    admin = browser_for(registry, "projectadmin")
    admin.get("/projects/acme/settings")
    page = admin.post(
        "/projects/acme/scanning",
        {
            "auto_scan": "on",
            "prevent_vulnerable": "on",
            "severity": "high",
            "allowlist_source": "project",
            "allowlist": "CVE-2024-1, cve-2024-2\nCVE-2024-3",
            "expires_at": "2030-01-31",
        },
    ).text
    assert flash(page) == "Vulnerability settings saved."
    settings = client_for(registry, "projectadmin").get("/api/v1/projects/acme/scan-settings")
    assert settings.json()["prevent_vulnerable"] is True
    assert settings.json()["severity"] == "high"
    assert settings.json()["reuse_system_allowlist"] is False
    allowlist = client_for(registry, "projectadmin").get("/api/v1/projects/acme/cve-allowlist")
    assert allowlist.json()["items"] == ["CVE-2024-1", "CVE-2024-2", "CVE-2024-3"]
    assert allowlist.json()["expires_at"].startswith("2030-01-31")
    assert '<option value="high" selected>high</option>' in page
    bad = admin.post("/projects/acme/scanning", {"allowlist": "not an id!"}).text
    assert flash(bad).startswith("Could not save:")
    # Nothing of the refused form was saved (the allowlist is checked first).
    settings = client_for(registry, "projectadmin").get("/api/v1/projects/acme/scan-settings")
    assert settings.json()["auto_scan"] is True
