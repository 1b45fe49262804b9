"""The Harbor scanner-adapter client against a real adapter server (tests/scans/adapter.py,
standing in for Trivy's adapter) and a real `portside serve` with authentication on: the
adapter pulls the image with the token Portside gave it, even though the project's
"prevent vulnerable images" policy refuses everyone else, and cannot push with it."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from portside.auth.accounts import Accounts
from portside.auth.projects import Projects
from portside.auth.throttle import LoginThrottle
from portside.config import load_settings
from portside.content.vulnerability import ScanSettings
from portside.context import Context, build_context
from portside.events.outbox import Actor
from portside.jobs.runner import Worker
from portside.jobs.scan import request_scan
from portside.scanning.model import Severity
from portside.scans.settings import ScanSettingsStore
from tests.durability.server import (
    ServerProcess,
    free_port,
    image_manifest,
    push_monolithic,
    put_manifest,
    sha256,
)
from tests.scans.adapter import Adapter, running_adapter

PASSWORD = "correct-horse-battery"


def basic() -> dict[str, str]:
    raw = base64.b64encode(f"admin:{PASSWORD}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


@pytest.fixture
def served(tmp_path: Path, database_url: str) -> Iterator[tuple[ServerProcess, Context]]:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    port = free_port()
    services = build_context(
        load_settings(
            data_dir=data_dir,
            database={"url": database_url},
            log={"access": False, "level": "warning"},
            scanning={
                "allow_private_scanners": True,
                "registry_url": f"http://127.0.0.1:{port}",
            },
        )
    )
    db = services.db
    Accounts(db, LoginThrottle(db, 5, 300)).create_user("admin", PASSWORD, admin=True)
    Projects(db).create("acme", creator="admin")
    server = ServerProcess(data_dir=data_dir, database_url=database_url, log_dir=tmp_path)
    server.start(port)
    try:
        # The scans run in this process (as `portside worker` would), on the same database.
        yield server, services
    finally:
        server.stop()
        services.close()


def push(server: ServerProcess) -> str:
    with httpx.Client(base_url=server.url, headers=basic(), timeout=30) as http:
        config = json.dumps({"architecture": "amd64", "os": "linux"}).encode()
        layer = b"adapter test layer"
        for blob in (config, layer):
            assert push_monolithic(http, "acme/app", blob).status_code == 201
        body = image_manifest(config, [layer])
        assert put_manifest(http, "acme/app", "v1", body).status_code == 201
    return sha256(body)


def test_adapter_scans_with_a_pull_only_token(
    served: tuple[ServerProcess, Context],
) -> None:
    server, services = served
    digest = push(server)
    ScanSettingsStore(services.db).save(
        "acme",
        ScanSettings(prevent_vulnerable=True, severity=Severity.HIGH),
        Actor("admin"),
    )
    with running_adapter() as adapter:
        adapter.vulnerabilities = [
            {
                "id": "CVE-2023-5678",
                "package": "libssl3",
                "version": "3.0.11-1~deb12u1",
                "fix_version": "3.0.11-1~deb12u2",
                "severity": "High",
                "description": "openssl: excessive time in DH checks",
                "links": ["https://security-tracker.debian.org/tracker/CVE-2023-5678"],
                "preferred_cvss": {
                    "score_v3": 7.5,
                    "vector_v3": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H",
                },
            }
        ]
        services.scans.registry.add(
            "trivy",
            adapter.url,
            auth="X-ScannerAdapter-API-Key",
            access_credential=adapter.api_key,
            is_default=True,
            created_by="admin",
        )
        with services.db.write() as conn:
            scan_id, _ = request_scan(
                services.db,
                services.scans,
                conn,
                "acme/app",
                digest,
                scanner=None,
                requested_by="admin",
                sbom=False,
            )
        worker = Worker(services, name="adapter-test")
        while worker.tick():
            pass
        done = services.scans.store.get(scan_id)
        assert done is not None
        assert done.status == "succeeded", done.reason
        pulled = adapter.pulled[0]
        # The token pulled the manifest and its config despite the policy (scanners are
        # exempt), and could not push.
        assert pulled["manifest_status"] == 200, pulled
        assert pulled["config_status"] == 200
        assert pulled["push_status"] in (401, 403)
        request = adapter.requests[0]
        assert request["registry"]["url"] == server.url
        assert request["registry"]["authorization"].startswith("Bearer ")
        assert request["artifact"] == {
            "repository": "acme/app",
            "digest": digest,
            "mime_type": "application/vnd.oci.image.manifest.v1+json",
            "tag": "v1",
        }
        assert done.scanner == "trivy"
        assert done.scanner_name == "Trivy"
        assert done.scanner_version == "0.50.1"
        (found,) = services.scans.store.findings(done)
        assert (found.vulnerability_id, found.severity) == ("CVE-2023-5678", Severity.HIGH)
        assert found.cvss_score == 7.5
        assert found.fixed_version == "3.0.11-1~deb12u2"
        # Everyone else is refused with the policy's message; the admin too.
        with httpx.Client(base_url=server.url, headers=basic(), timeout=30) as http:
            refused = http.get(f"/v2/acme/app/manifests/{digest}")
        assert refused.status_code == 403
        message = refused.json()["errors"][0]["message"]
        assert "CVE-2023-5678 (high) in libssl3 3.0.11-1~deb12u1" in message


def test_adapter_errors_fail_the_scan_with_their_message(
    served: tuple[ServerProcess, Context],
) -> None:
    server, services = served
    digest = push(server)
    with running_adapter() as adapter:
        services.scans.registry.add(
            "broken",
            adapter.url,
            auth="X-ScannerAdapter-API-Key",
            access_credential="wrong-key",
            is_default=True,
            created_by="admin",
        )
        with services.db.write() as conn:
            scan_id, _ = request_scan(
                services.db,
                services.scans,
                conn,
                "acme/app",
                digest,
                scanner=None,
                requested_by="admin",
                sbom=False,
            )
        worker = Worker(services, name="adapter-test")
        while worker.tick():
            pass
        done = services.scans.store.get(scan_id)
        assert done is not None
        assert done.status == "failed"
        assert done.reason == "scanner 'broken' metadata: HTTP 401: wrong API key"
        assert isinstance(adapter, Adapter)
        assert adapter.requests == []
