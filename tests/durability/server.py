"""Real `portside serve` processes for the durability tests, and small registry helpers.

A ServerProcess runs `portside serve` in its own session (process group), so SIGKILL of
the group takes granian's worker processes down with the main process, like a crash.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.tls import TestPki

REPO_ROOT = Path(__file__).resolve().parents[2]
BIN_DIR = Path(sys.executable).parent
PORTSIDE = str(BIN_DIR / "portside") if (BIN_DIR / "portside").exists() else "portside"

START_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def portside_env(database_url: str, **extra: str) -> dict[str, str]:
    """The environment for a portside subprocess: no inherited PORTSIDE_* settings, the
    test's database, quiet logs."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTSIDE_")}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env["PORTSIDE_DATABASE__URL"] = database_url
    env["PORTSIDE_LOG__ACCESS"] = "false"
    env["PORTSIDE_LOG__LEVEL"] = "info"
    env.update(extra)
    return env


StartWorker = Callable[[], subprocess.Popen[bytes]]


@contextlib.contextmanager
def worker_processes(
    tmp_path: Path, database_url: str, env: dict[str, str]
) -> Iterator[StartWorker]:
    """`start()` runs a `portside worker` on the test's data directory and database with
    `env` (its output in tmp_path/worker-N.log); every one still running is killed at
    the end."""
    started: list[subprocess.Popen[bytes]] = []

    def start() -> subprocess.Popen[bytes]:
        log = tmp_path / f"worker-{len(started)}.log"
        with open(log, "wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "portside", "worker", "--data-dir", str(tmp_path / "data")],
                env=portside_env(database_url, **env),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        started.append(process)
        return process

    try:
        yield start
    finally:
        for process in started:
            if process.poll() is None:
                process.kill()
                process.wait(10)


def run_fsck(
    data_dir: Path, database_url: str, *, no_hash: bool = False
) -> subprocess.CompletedProcess[str]:
    command = [PORTSIDE, "fsck", "--data-dir", str(data_dir)]
    if no_hash:
        command.append("--no-hash")
    return subprocess.run(
        command,
        env=portside_env(database_url),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _group_alive(pgid: int) -> bool:
    """Any live (non-zombie) process in the process group?"""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid pgrp ...; comm may contain spaces and parentheses.
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            return True
    return False


@dataclass
class ServerProcess:
    """One `portside serve` process group on a fresh loopback port.

    With `tls` it serves HTTPS with that certificate, and `url`, the readiness probe and
    `client()` trust its CA. `env` adds PORTSIDE_* settings (or any variable) to the
    process's environment.
    """

    data_dir: Path
    database_url: str
    log_dir: Path
    workers: int = 1
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0
    log_files: list[Path] = field(default_factory=list)
    tls: TestPki | None = None
    env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    @property
    def verify(self) -> ssl.SSLContext | bool:
        """httpx's `verify` for this server: its test CA when serving TLS."""
        if self.tls is None:
            return True
        return ssl.create_default_context(cafile=self.tls.ca_certificate)

    def _env(self) -> dict[str, str]:
        extra = {"PORTSIDE_SERVER__WORKERS": str(self.workers)}
        if self.tls is not None:
            extra["PORTSIDE_TLS__CERTIFICATE"] = str(self.tls.certificate)
            extra["PORTSIDE_TLS__KEY"] = str(self.tls.key)
        return portside_env(self.database_url, **(extra | self.env))

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, port: int | None = None) -> ServerProcess:
        """Start on `port`, or on a free port (tried up to three times)."""
        assert not self.running, "already running"
        last_error = ""
        for _attempt in range(1 if port else 3):  # a free port can be taken before bind
            self.port = port or free_port()
            self.starts += 1
            log_path = self.log_dir / f"server-{self.port}-{self.starts}.log"
            self.log_files.append(log_path)
            with open(log_path, "wb") as log:
                self.process = subprocess.Popen(
                    [
                        PORTSIDE,
                        "serve",
                        "--listen",
                        f"127.0.0.1:{self.port}",
                        "--data-dir",
                        str(self.data_dir),
                    ],
                    env=self._env(),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    cwd=self.log_dir,
                )
            if self._wait_ready():
                return self
            last_error = self.log_tail()
            self.kill()
        raise RuntimeError(f"portside serve did not become ready:\n{last_error}")

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + START_TIMEOUT
        verify = self.verify
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                return False
            try:
                # /healthz, not /v2/: that one answers 401 once accounts exist.
                ok = httpx.get(f"{self.url}/healthz", timeout=2, verify=verify).status_code == 200
            except httpx.TransportError:
                ok = False
            # Also wait for every worker: granian's shutdown hangs on a half-started one.
            log = self.log_files[-1].read_text(errors="replace")
            if ok and all(f"Started worker-{n}" in log for n in range(1, self.workers + 1)):
                return True
            time.sleep(0.05)
        return False

    def kill(self) -> None:
        """SIGKILL the whole process group (main process and workers): a crash."""
        process = self.process
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=STOP_TIMEOUT)
        self._wait_group_gone(process.pid)
        self.process = None

    def stop(self) -> None:
        """Graceful stop (SIGTERM), falling back to SIGKILL."""
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=STOP_TIMEOUT)
        self.kill()

    @staticmethod
    def _wait_group_gone(pgid: int) -> None:
        deadline = time.monotonic() + STOP_TIMEOUT
        while time.monotonic() < deadline:
            if not _group_alive(pgid):
                return
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
            time.sleep(0.02)
        raise RuntimeError(f"process group {pgid} did not die")

    def client(self, timeout: float = 60.0) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=timeout, verify=self.verify)

    def log_text(self) -> str:
        return "".join(p.read_text(errors="replace") for p in self.log_files if p.exists())

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def internal_errors(self) -> list[str]:
        """Log lines of unhandled exceptions (rendered as 500) in any run of this server."""
        return [
            line
            for line in self.log_text().splitlines()
            if "internal_error" in line or "Traceback" in line
        ]


# -- registry helpers -------------------------------------------------------------------


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def error_codes(response: httpx.Response) -> list[str]:
    try:
        body = response.json()
    except ValueError:
        return []
    return [str(e.get("code")) for e in body.get("errors", []) if isinstance(e, dict)]


def upload_range_end(response: httpx.Response) -> int:
    """Bytes received so far per the `Range: 0-<last>` header (0-0 may mean 0 or 1 byte)."""
    value = response.headers["range"]
    start, _, end = value.partition("-")
    assert start == "0", value
    return int(end) + 1


def start_upload(client: httpx.Client, repo: str) -> str:
    response = client.post(f"/v2/{repo}/blobs/uploads/")
    assert response.status_code == 202, (response.status_code, response.text)
    return str(response.headers["location"])


def patch_chunk(client: httpx.Client, location: str, data: bytes, offset: int) -> httpx.Response:
    return client.patch(
        location,
        content=data,
        headers={
            "content-type": "application/octet-stream",
            "content-range": f"{offset}-{offset + len(data) - 1}",
        },
    )


def finish_upload(
    client: httpx.Client, location: str, digest: str, data: bytes = b""
) -> httpx.Response:
    separator = "&" if "?" in location else "?"
    return client.put(
        f"{location}{separator}digest={digest}",
        content=data,
        headers={"content-type": "application/octet-stream"},
    )


def push_monolithic(client: httpx.Client, repo: str, data: bytes) -> httpx.Response:
    return client.post(
        f"/v2/{repo}/blobs/uploads/?digest={sha256(data)}",
        content=data,
        headers={"content-type": "application/octet-stream"},
    )


def image_manifest(config: bytes, layers: list[bytes], annotation: str | None = None) -> bytes:
    document: dict[str, object] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": sha256(config), "size": len(config)},
        "layers": [
            {"mediaType": OCI_LAYER, "digest": sha256(layer), "size": len(layer)}
            for layer in layers
        ],
    }
    if annotation is not None:
        document["annotations"] = {"test.portside/id": annotation}
    return json.dumps(document).encode()


def put_manifest(client: httpx.Client, repo: str, reference: str, body: bytes) -> httpx.Response:
    return client.put(
        f"/v2/{repo}/manifests/{reference}", content=body, headers={"content-type": OCI_MANIFEST}
    )


def manifest_blob_digests(body: bytes) -> list[str]:
    document = json.loads(body)
    return [document["config"]["digest"]] + [layer["digest"] for layer in document["layers"]]
