"""Scanning with real clients against a real `portside serve` (authentication on): an
image pushed with skopeo is scanned on push by the server's own job worker (woken from
its idle state by the push) through a registered Harbor adapter (tests/scans/adapter.py,
standing in for Trivy's adapter), and the project's "prevent vulnerable images" policy
then refuses `skopeo copy` from the registry with the policy's message, until the CVE is
allowlisted.

The podman and docker variants of the refusal are written but not run in this session
(they need a private dockerd / container storage, which collide when several helpers
run them at once); skopeo shows the same refusal through containers/image.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from portside.auth.accounts import Accounts
from portside.auth.projects import Projects
from portside.auth.throttle import LoginThrottle
from portside.metadata.db import Database
from portside.metadata.engine import make_engine
from tests.clients.conftest import containers_config, storage_tool
from tests.clients.images import Image, build_image, write_layout
from tests.clients.test_auth_clients import fatal_message
from tests.clients.test_docker import docker
from tests.clients.tooling import ContainersStorageTool, Docker, Skopeo, require_binary
from tests.durability.server import ServerProcess
from tests.scans.adapter import Adapter, running_adapter

pytestmark = pytest.mark.clients

PASSWORD = "correct-horse-battery"
CREDS = f"admin:{PASSWORD}"
POLICY = "pull refused by project policy 'prevent vulnerable images'"
VULNERABILITY = {
    "id": "CVE-2024-1234",
    "package": "openssl",
    "version": "3.0.11-1",
    "fix_version": "3.0.13-1",
    "severity": "Critical",
    "description": "a test vulnerability",
    "links": ["https://security-tracker.debian.org/tracker/CVE-2024-1234"],
}
__all__ = ["docker"]  # the private dockerd fixture, for the docker test


@dataclass
class Scene:
    server: ServerProcess
    adapter: Adapter
    api: httpx.Client
    skopeo: Skopeo
    tmp: Path
    image: Image

    @property
    def host(self) -> str:
        return self.server.url.removeprefix("http://")

    def scan_of(self, reference: str) -> dict[str, Any] | None:
        answer = self.api.get(f"/api/v1/repositories/acme/app/-/artifacts/{reference}/scan")
        return answer.json() if answer.status_code == 200 else None


@pytest.fixture
def scene(tmp_path: Path, database_url: str) -> Iterator[Scene]:
    db = Database(make_engine(database_url))
    try:
        Accounts(db, LoginThrottle(db, 5, 300)).create_user("admin", PASSWORD, admin=True)
        Projects(db).create("acme", creator="admin")
    finally:
        db.engine.dispose()
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    server = ServerProcess(
        data_dir=data_dir,
        database_url=database_url,
        log_dir=tmp_path,
        env={
            "PORTSIDE_SCANNING__ALLOW_PRIVATE_SCANNERS": "true",
            "PORTSIDE_JOBS__POLL_SECONDS": "0.5",
        },
    )
    with running_adapter() as adapter:
        adapter.vulnerabilities = [VULNERABILITY]
        server.start()
        try:
            with httpx.Client(base_url=server.url, auth=("admin", PASSWORD), timeout=30) as api:
                added = api.post(
                    "/api/v1/scanners",
                    json={
                        "name": "trivy",
                        "url": adapter.url,
                        "auth": "X-ScannerAdapter-API-Key",
                        "access_credential": adapter.api_key,
                        "is_default": True,
                    },
                )
                assert added.status_code == 201, added.text
                saved = api.put(
                    "/api/v1/projects/acme/scan-settings",
                    json={
                        "auto_scan": True,
                        "prevent_vulnerable": True,
                        "severity": "high",
                        "reuse_system_allowlist": False,
                    },
                )
                assert saved.status_code == 200, saved.text
                (tmp_path / "containers").mkdir()
                env = containers_config(tmp_path / "containers", insecure=server.url[7:])
                yield Scene(
                    server,
                    adapter,
                    api,
                    Skopeo(require_binary("skopeo"), env),
                    tmp_path,
                    build_image("scan-on-push"),
                )
        finally:
            server.stop()


def push_and_wait_for_scan(scene: Scene) -> dict[str, Any]:
    layout = write_layout(scene.tmp / "in", {"v1": scene.image})
    scene.skopeo.push_layout(layout, "v1", f"{scene.host}/acme/app:v1", "--dest-creds", CREDS)
    deadline = time.monotonic() + 180  # generous: the machine may be loaded
    while time.monotonic() < deadline:
        found = scene.scan_of("v1")
        if found is not None and found["status"] in ("succeeded", "failed"):
            return found
        time.sleep(0.5)
    raise AssertionError(f"no scan finished:\n{scene.server.log_tail()}")


def pull(scene: Scene, name: str) -> Any:
    return scene.skopeo(
        "copy", "--quiet", "--src-tls-verify=false", "--src-creds", CREDS, Skopeo.EXACT,
        f"docker://{scene.host}/acme/app:v1", f"oci:{scene.tmp / name}:v1", check=False,
    )  # fmt: skip


def test_scan_on_push_and_policy_refusal_with_skopeo(scene: Scene) -> None:
    done = push_and_wait_for_scan(scene)
    assert done["status"] == "succeeded", done
    assert done["scanner"] == "trivy"
    assert done["counts"]["critical"] == 1
    assert scene.adapter.pulled[0]["manifest_status"] == 200  # the adapter pulled with its token
    assert done["requested_by"] == "system"

    refused = pull(scene, "refused")
    message = fatal_message(refused)
    assert POLICY in message, refused.describe()
    assert "CVE-2024-1234 (critical) in openssl 3.0.11-1" in message

    allowed = scene.api.put(
        "/api/v1/projects/acme/cve-allowlist", json={"items": ["CVE-2024-1234"]}
    )
    assert allowed.status_code == 200, allowed.text
    assert pull(scene, "allowed").returncode == 0


def test_policy_refusal_with_podman(scene: Scene, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Written, not run in this session (see the module docstring)."""
    push_and_wait_for_scan(scene)
    podman: ContainersStorageTool = storage_tool("podman", tmp_path_factory, dict(scene.skopeo.env))
    refused = podman(
        "pull", "--tls-verify=false", "--creds", CREDS, f"{scene.host}/acme/app:v1", check=False
    )
    assert refused.returncode != 0
    assert POLICY in refused.stderr, refused.describe()


def test_policy_refusal_with_docker(scene: Scene, docker: Docker) -> None:
    """Written, not run in this session (see the module docstring)."""
    push_and_wait_for_scan(scene)
    login = docker("login", "--username", "admin", "--password-stdin", scene.host,
                   input=PASSWORD + "\n", check=False)  # fmt: skip
    assert login.returncode == 0, login.describe()
    refused = docker("pull", f"{scene.host}/acme/app:v1", check=False)
    assert refused.returncode != 0
    assert POLICY in refused.stderr, refused.describe()
