"""Starting and stopping the registries under test (and the null server)."""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench.client import Endpoint

DISTRIBUTION_BIN = "/usr/bin/docker-registry"
HOST = "127.0.0.1"

DISTRIBUTION_CONFIG = """\
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {data_dir}
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: {host}:{port}
  secret: portside-bench-secret
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Server:
    name: str
    proc: subprocess.Popen[bytes]
    endpoint: Endpoint
    data_dir: Path
    log_path: Path
    command: list[str]

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        """Stop the process group this harness created for the server (and only it)."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)


def _wait_ready(server: Server, timeout: float) -> None:
    import http.client

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(
                f"{server.name} exited with {server.proc.returncode}:\n{server.log_tail()}"
            )
        try:
            conn = server.endpoint.connect()
            conn.timeout = 2
            conn.request("GET", "/v2/")
            status = conn.getresponse().status
            conn.close()
            if status in (200, 401):  # 401: up, with authentication on
                return
        except (OSError, http.client.HTTPException):
            pass
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"{server.name} not ready after {timeout:.0f}s:\n{server.log_tail()}")


def _launch(
    name: str,
    argv: list[str],
    data_dir: Path,
    log_path: Path,
    port: int,
    *,
    env: dict[str, str] | None = None,
) -> Server:
    log = log_path.open("wb")
    proc = subprocess.Popen(
        argv,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log.close()
    server = Server(name, proc, Endpoint(HOST, port), data_dir, log_path, argv)
    _wait_ready(server, timeout=60)
    return server


def start_distribution(
    name: str, workdir: Path, binary: str = DISTRIBUTION_BIN, extra_config: str = ""
) -> Server:
    port = free_port()
    slug = name.lower().replace(" ", "-")
    data_dir = workdir / f"{slug}-data"
    data_dir.mkdir(parents=True)
    config = workdir / f"{slug}-config.yml"
    text = DISTRIBUTION_CONFIG.format(data_dir=data_dir, host=HOST, port=port)
    config.write_text(text + extra_config)
    argv = [binary, "serve", str(config)]
    return _launch(name, argv, data_dir, workdir / f"{slug}.log", port)


def start_command(
    name: str, workdir: Path, template: str, env: dict[str, str] | None = None
) -> Server:
    """Start a server from a command template with {host}, {port}, {listen}, {data_dir}."""
    port = free_port()
    slug = name.lower().replace(" ", "-")
    data_dir = workdir / f"{slug}-data"
    data_dir.mkdir(parents=True)
    cmd = template.format(host=HOST, port=port, listen=f"{HOST}:{port}", data_dir=data_dir)
    return _launch(name, shlex.split(cmd), data_dir, workdir / f"{slug}.log", port, env=env)


class NullServer:
    def __init__(self, size: int) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.nullserver", str(size)],
            stdout=subprocess.PIPE,
            start_new_session=True,
        )
        assert self.proc.stdout is not None
        self.endpoint = Endpoint(HOST, int(self.proc.stdout.readline()))

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
