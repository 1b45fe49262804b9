"""`portside scan`, `portside scan results`, `portside scanner` and `portside project
policy`: what they print and store, and how they fail."""

from __future__ import annotations

import json
import os

from click.testing import CliRunner, Result
from starlette.testclient import TestClient

from portside.app import PortsideApp
from portside.cli import main
from portside.config import Settings
from portside.scanning.model import Severity
from tests.api.helpers import push_image
from tests.scans.doubles import RecordedFindingsScanner, finding
from tests.scans.test_scan_service import scan


def run(settings: Settings, *args: str, code: int = 0, stdin: str | None = None) -> Result:
    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("PORTSIDE_")}
    env["PORTSIDE_DATABASE__URL"] = settings.database_url
    result = CliRunner().invoke(
        main,
        [*args, "--data-dir", str(settings.data_dir)],
        env=env,
        input=stdin,
        catch_exceptions=False,
    )
    assert result.exit_code == code, result.output
    return result


def test_scan_wait_runs_the_builtin_scanner_here(
    app: PortsideApp, client: TestClient, settings: Settings
) -> None:
    """The CLI builds its own services, so its scan runs the real built-in scanner: the
    test image's layers are not tarballs, so the scan fails with the reader's reason."""
    image = push_image(client, "acme/app", "v1")
    failed = run(settings, "scan", "acme/app:v1", "--wait", code=1)
    assert failed.output.startswith(f"scan 1 of acme/app@{image.digest} queued (job 1)\n")
    assert f"acme/app@{image.digest}: failed: " in failed.output
    missing = run(settings, "scan", "acme/app:nope", code=1)
    assert "no artifact 'nope' in 'acme/app'" in missing.output


def test_scan_results_show_findings(
    app: PortsideApp, client: TestClient, settings: Settings, double: RecordedFindingsScanner
) -> None:
    image = push_image(client, "acme/app", "v1")
    double.findings = [
        finding("CVE-2024-0001", Severity.CRITICAL, fixed="3.0.13-1"),
        finding("CVE-2024-0002", Severity.LOW, name="zlib1g", version="1.2.13"),
    ]
    scan(app, "acme/app", image.digest)
    shown = run(settings, "scan", "results", "acme/app:v1").output.splitlines()
    assert shown[0] == f"acme/app@{image.digest}: succeeded (1 critical, 1 low; 1 fixable)"
    assert shown[1].split() == ["SEVERITY", "ID", "PACKAGE", "VERSION", "FIXED", "IN", "PLATFORM"]
    assert shown[2].split()[:5] == ["critical", "CVE-2024-0001", "openssl", "3.0.11-1", "3.0.13-1"]
    data = json.loads(run(settings, "scan", "results", f"acme/app@{image.digest}", "--json").output)
    assert [f["vulnerability_id"] for f in data["findings"]] == ["CVE-2024-0001", "CVE-2024-0002"]
    high = json.loads(
        run(settings, "scan", "results", "acme/app:v1", "--json", "--severity", "high").output
    )
    assert len(high["findings"]) == 1
    never = push_image(client, "acme/other", "v1")
    assert (
        "has not been scanned"
        in run(settings, "scan", "results", f"acme/other@{never.digest}", code=1).output
    )


def test_project_policy_and_scanners(app: PortsideApp, settings: Settings) -> None:
    run(
        settings,
        "project",
        "policy",
        "vulnerability",
        "set",
        "acme",
        "--prevent-vulnerable",
        "--severity",
        "high",
    )
    shown = json.loads(
        run(settings, "project", "policy", "vulnerability", "show", "acme", "--json").output
    )
    assert shown["prevent_vulnerable"] is True
    assert shown["severity"] == "high"
    assert shown["auto_scan"] is False
    run(
        settings,
        "project",
        "policy",
        "vulnerability",
        "allowlist",
        "acme",
        "CVE-2024-1",
        "--expires-at",
        "2030-01-01",
    )
    shown = json.loads(
        run(settings, "project", "policy", "vulnerability", "show", "acme", "--json").output
    )
    assert shown["allowlist"] == ["CVE-2024-1"]
    assert shown["allowlist_expires_at"] == "2030-01-01T00:00:00+00:00"
    assert (
        "no project 'nosuch'"
        in run(settings, "project", "policy", "vulnerability", "show", "nosuch", code=1).output
    )

    refused = run(settings, "scanner", "add", "trivy", "http://127.0.0.1:8080", code=1)
    assert "loopback" in refused.output
    run(
        settings,
        "scanner",
        "add",
        "trivy",
        "http://8.8.8.8:8080",
        "--auth",
        "Bearer",
        "--credential-stdin",
        "--default",
        stdin="secret-token\n",
    )
    listed = run(settings, "scanner", "list").output.splitlines()
    assert listed[1].split() == ["trivy", "http://8.8.8.8:8080", "Bearer", "yes", "yes"]
    run(settings, "scanner", "remove", "trivy")
    assert "no scanner 'trivy'" in run(settings, "scanner", "remove", "trivy", code=1).output
