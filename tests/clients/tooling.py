"""Subprocess and HTTP helpers shared by the real-client tests.

Everything that starts a process or talks to the registry lives here once:
``run`` for one-shot commands, ``ManagedProcess`` for daemons (the registry,
dockerd, containerd), small wrappers that prepend each client's private
global flags, and ``RegistryHTTP`` for looking at what the server stored.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx

from tests.missing import missing_tool

# Media types used by the tests and the clients.
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"

MANIFEST_ACCEPT = ", ".join(
    [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, "*/*;q=0.1"]
)

Argument = str | os.PathLike[str]


class CommandError(AssertionError):
    """A client command failed; the message carries its full output."""


@dataclass(frozen=True)
class Result:
    argv: tuple[str, ...]
    returncode: int
    stdout_bytes: bytes
    stderr: str

    @property
    def stdout(self) -> str:
        return self.stdout_bytes.decode(errors="replace")

    def describe(self) -> str:
        return (
            f"$ {' '.join(self.argv)}\n"
            f"exit status {self.returncode}\n"
            f"--- stdout ---\n{self.stdout[-6000:]}\n"
            f"--- stderr ---\n{self.stderr[-6000:]}"
        )


def run(
    argv: Sequence[Argument],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Argument | None = None,
    timeout: float = 180,
    check: bool = True,
    input: str | None = None,
) -> Result:
    """Run a command to completion and capture its output.

    With ``check`` (the default) a non-zero exit raises ``CommandError`` whose
    message shows the command line, exit status, stdout and stderr, so a
    failing client call is self-explanatory in the pytest report. ``input``
    is written to its stdin (``--password-stdin``); without it stdin is empty.
    """
    args = tuple(os.fspath(a) for a in argv)
    full_env = dict(os.environ)
    if env is not None:
        full_env.update(env)
    try:
        proc = subprocess.run(
            args,
            env=full_env,
            cwd=cwd,
            capture_output=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL if input is None else None,
            input=None if input is None else input.encode(),
        )
    except subprocess.TimeoutExpired as exc:
        raise CommandError(
            f"$ {' '.join(args)}\ntimed out after {timeout}s\n"
            f"--- stdout ---\n{_text(exc.stdout)}\n--- stderr ---\n{_text(exc.stderr)}"
        ) from exc
    result = Result(args, proc.returncode, proc.stdout, proc.stderr.decode(errors="replace"))
    if check and proc.returncode != 0:
        raise CommandError(result.describe())
    return result


def _text(data: str | bytes | None) -> str:
    if data is None:
        return ""
    if isinstance(data, bytes):
        return data.decode(errors="replace")
    return data


def require_binary(name: str) -> str:
    """Return the path of ``name``; when it is not installed, skip the test, or fail it
    under CI (tests.missing.missing_tool)."""
    path = shutil.which(name)
    if path is None:
        missing_tool(f"client binary {name!r} is not on PATH (scripts/test-deps installs it)")
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def short_tmpdir(prefix: str) -> Path:
    """A short directory under /tmp for unix sockets (sun_path is 108 bytes)."""
    return Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))


def wait_until(
    predicate: Callable[[], bool],
    *,
    timeout: float,
    what: str,
    interval: float = 0.1,
    alive: Callable[[], str | None] | None = None,
) -> None:
    """Poll ``predicate`` until it is true.

    ``alive`` may return an error text when the thing being waited for has
    died, which stops the wait early with that text.
    """
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return
        if alive is not None:
            problem = alive()
            if problem is not None:
                raise RuntimeError(f"{what}: {problem}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not ready after {timeout}s")
        time.sleep(interval)


@dataclass
class ManagedProcess:
    """A background daemon whose output goes to a log file.

    It runs in its own session so that ``stop`` can also reap children it
    spawned (dockerd's containerd, shims) by that session's process group,
    which is this process's own id.
    """

    name: str
    argv: Sequence[Argument]
    log_path: Path
    env: Mapping[str, str] | None = None
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False)
    _log: IO[bytes] | None = field(default=None, init=False)

    def start(self) -> ManagedProcess:
        full_env = dict(os.environ)
        if self.env is not None:
            full_env.update(self.env)
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [os.fspath(a) for a in self.argv],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=full_env,
            start_new_session=True,
        )
        return self

    def exit_problem(self) -> str | None:
        """None while running, else a description including the log."""
        assert self.proc is not None
        code = self.proc.poll()
        if code is None:
            return None
        return f"{self.name} exited with status {code}\n{self.log_tail()}"

    def log_tail(self, lines: int = 80) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        tail = "\n".join(text.splitlines()[-lines:])
        return f"--- {self.name} log ({self.log_path}) ---\n{tail}"

    def stop(self, timeout: float = 20) -> None:
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=timeout)
        # Children that outlived their parent are in our process group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        if self._log is not None:
            self._log.close()
            self._log = None


def http_ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def socket_ready(path: Path) -> bool:
    return path.is_socket()


# ---------------------------------------------------------------------------
# Talking to the registry directly (to check what clients stored there).
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class FetchedManifest:
    body: bytes
    media_type: str
    digest: str | None

    def json(self) -> dict[str, Any]:
        import json

        data: dict[str, Any] = json.loads(self.body)
        return data


class RegistryHTTP:
    """Minimal distribution-spec client used for assertions."""

    def __init__(self, url: str) -> None:
        self.client = httpx.Client(base_url=url, timeout=30)

    def close(self) -> None:
        self.client.close()

    def manifest(self, repo: str, reference: str, accept: str = MANIFEST_ACCEPT) -> FetchedManifest:
        resp = self.client.get(f"/v2/{repo}/manifests/{reference}", headers={"Accept": accept})
        assert resp.status_code == 200, (
            f"GET /v2/{repo}/manifests/{reference}: {resp.status_code} {resp.text}"
        )
        return FetchedManifest(
            body=resp.content,
            media_type=resp.headers.get("content-type", ""),
            digest=resp.headers.get("docker-content-digest"),
        )

    def manifest_status(self, repo: str, reference: str) -> int:
        resp = self.client.head(
            f"/v2/{repo}/manifests/{reference}", headers={"Accept": MANIFEST_ACCEPT}
        )
        return resp.status_code

    def blob(self, repo: str, digest: str) -> bytes:
        resp = self.client.get(f"/v2/{repo}/blobs/{digest}", follow_redirects=True)
        assert resp.status_code == 200, f"GET /v2/{repo}/blobs/{digest}: {resp.status_code}"
        return resp.content

    def tags(self, repo: str) -> list[str]:
        resp = self.client.get(f"/v2/{repo}/tags/list")
        assert resp.status_code == 200, f"GET /v2/{repo}/tags/list: {resp.status_code}"
        tags: list[str] | None = resp.json().get("tags")
        return sorted(tags or [])

    def referrers(self, repo: str, digest: str, artifact_type: str | None = None) -> httpx.Response:
        params = {"artifactType": artifact_type} if artifact_type is not None else None
        return self.client.get(f"/v2/{repo}/referrers/{digest}", params=params)


_REPO_UNSAFE = re.compile(r"[^a-z0-9]+")


def repo_component(text: str) -> str:
    """Turn any text (a test id) into a valid repository path component."""
    return _REPO_UNSAFE.sub("-", text.lower()).strip("-")[:60].strip("-") or "x"


# ---------------------------------------------------------------------------
# Client wrappers: each prepends its private global flags.
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Skopeo:
    binary: str
    env: Mapping[str, str]

    # Never let containers/image substitute, recompress or convert anything
    # unless a test asks for a conversion (--format).
    EXACT = "--preserve-digests"

    def __call__(self, *args: Argument, timeout: float = 180, check: bool = True) -> Result:
        return run([self.binary, *args], env=self.env, timeout=timeout, check=check)

    def push_layout(self, layout: Path, ref: str, dest: str, *flags: str) -> None:
        """``copy oci:LAYOUT:REF docker://DEST`` over plain HTTP."""
        exact = [] if "--format" in flags else [self.EXACT]
        self("copy", "--quiet", "--dest-tls-verify=false", *exact, *flags,
             f"oci:{layout}:{ref}", f"docker://{dest}")  # fmt: skip

    def pull_layout(self, src: str, layout: Path, ref: str, *flags: str) -> Path:
        """``copy docker://SRC oci:LAYOUT:REF`` over plain HTTP."""
        self("copy", "--quiet", "--src-tls-verify=false", self.EXACT, *flags,
             f"docker://{src}", f"oci:{layout}:{ref}")  # fmt: skip
        return layout


@dataclass(frozen=True)
class ContainersStorageTool:
    """podman or buildah with a private vfs store and a private registries.conf."""

    binary: str
    root: Path
    runroot: Path
    env: Mapping[str, str]
    extra_global: Sequence[str] = ()

    def __call__(
        self, *args: Argument, timeout: float = 180, check: bool = True, input: str | None = None
    ) -> Result:
        argv: list[Argument] = [
            self.binary,
            "--root",
            self.root,
            "--runroot",
            self.runroot,
            "--storage-driver",
            "vfs",
            *self.extra_global,
            *args,
        ]
        return run(argv, env=self.env, timeout=timeout, check=check, input=input)


@dataclass(frozen=True)
class Docker:
    binary: str
    host: str
    env: Mapping[str, str]

    def __call__(
        self, *args: Argument, timeout: float = 180, check: bool = True, input: str | None = None
    ) -> Result:
        return run(
            [self.binary, "-H", self.host, *args],
            env=self.env,
            timeout=timeout,
            check=check,
            input=input,
        )


@dataclass(frozen=True)
class Ctr:
    binary: str
    address: Path
    namespace: str = "portside-tests"

    def __call__(self, *args: Argument, timeout: float = 180, check: bool = True) -> Result:
        return run(
            [self.binary, "--address", self.address, "--namespace", self.namespace, *args],
            timeout=timeout,
            check=check,
        )
