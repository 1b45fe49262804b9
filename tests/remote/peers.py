"""Real peer registries for the remote-client and replication tests: Distribution 2.8
(Debian's `docker-registry`, /usr/bin/docker-registry) started on a free loopback port
with its storage in the test's temporary directory, optionally with htpasswd (bcrypt,
made with Apache's `htpasswd`) and TLS (a test CA from tests/tls.py).

    with distribution(tmp_path, auth=("alice", "pw"), tls=True) as peer:
        peer.url, peer.ca_pem, peer.client()   # an httpx client that trusts it
"""

from __future__ import annotations

import base64
import shutil
import ssl
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from portside.egress import EgressPolicy
from tests.durability.server import free_port
from tests.missing import missing_tool
from tests.tls import make_test_pki

REGISTRY = "/usr/bin/docker-registry"
# Loopback is what the tests reach; the SSRF guard allows it only when asked.
LOOPBACK_ALLOWED = EgressPolicy(allow_private=True, timeout_seconds=30.0)


@dataclass
class Peer:
    url: str
    process: subprocess.Popen[bytes]
    log: Path
    ca_pem: str | None = None
    username: str | None = None
    password: str | None = None

    @property
    def host(self) -> str:
        return self.url.split("://", 1)[1]

    def verify(self) -> ssl.SSLContext | bool:
        if self.ca_pem is None:
            return True
        return ssl.create_default_context(cadata=self.ca_pem)

    def client(self) -> httpx.Client:
        """A plain httpx client to drive the peer directly (seeding, checking)."""
        headers = {}
        if self.username:
            raw = f"{self.username}:{self.password}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(raw).decode()
        return httpx.Client(base_url=self.url, verify=self.verify(), headers=headers, timeout=30.0)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


@contextmanager
def distribution(
    directory: Path, *, auth: tuple[str, str] | None = None, tls: bool = False
) -> Iterator[Peer]:
    """A running Distribution 2.8 registry (stopped at the end)."""
    if not Path(REGISTRY).exists():
        missing_tool("docker-registry (Debian package docker-registry) is not installed")
    directory.mkdir(parents=True, exist_ok=True)
    lines = [
        "version: 0.1",
        "log: {level: warn, accesslog: {disabled: true}}",
        f"storage: {{filesystem: {{rootdirectory: {directory / 'storage'}}}, "
        "delete: {enabled: true}, cache: {blobdescriptor: inmemory}}",
    ]
    port = free_port()
    http = [f"  addr: 127.0.0.1:{port}", "  secret: portside-tests"]
    ca_pem = None
    if tls:
        pki = make_test_pki(directory / "pki")
        http.append(f"  tls: {{certificate: {pki.certificate}, key: {pki.key}}}")
        ca_pem = pki.ca_certificate.read_text()
    if auth is not None:
        htpasswd = shutil.which("htpasswd")
        if htpasswd is None:
            missing_tool("htpasswd (Debian package apache2-utils) is not installed")
        line = (
            subprocess.run([htpasswd, "-Bbn", auth[0], auth[1]], check=True, capture_output=True)
            .stdout.decode()
            .strip()
        )
        (directory / "htpasswd").write_text(line + "\n")
        lines.append(
            f"auth: {{htpasswd: {{realm: portside-tests, path: {directory / 'htpasswd'}}}}}"
        )
    lines += ["http:", *http]
    config = directory / "config.yml"
    config.write_text("\n".join(lines) + "\n")
    log = directory / "registry.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [REGISTRY, "serve", str(config)], stdout=out, stderr=subprocess.STDOUT
        )
    scheme = "https" if tls else "http"
    peer = Peer(f"{scheme}://127.0.0.1:{port}", process, log, ca_pem, *(auth or (None, None)))
    try:
        _wait_ready(peer)
        yield peer
    finally:
        peer.stop()


def _wait_ready(peer: Peer) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if peer.process.poll() is not None:
            raise RuntimeError(f"docker-registry exited:\n{peer.log.read_text()[-2000:]}")
        try:
            httpx.get(f"{peer.url}/v2/", verify=peer.verify(), timeout=2)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"docker-registry did not start:\n{peer.log.read_text()[-2000:]}")
