"""Fixtures for the real-client end-to-end tests.

``registry`` starts the server under test once per session:

* by default Portside: ``portside serve --listen 127.0.0.1:PORT --data-dir DIR``;
* with ``PORTSIDE_TEST_REGISTRY=distribution`` CNCF Distribution
  (``/usr/bin/docker-registry``) with a generated config, as the reference.

When a test that uses it fails, the tail of the server's log is attached to
the failure report.
"""

from __future__ import annotations

import os
import secrets
import shutil
import sys
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from portside.metadata.db import Database
from portside.metadata.engine import make_engine
from tests.conftest import fresh_database
from tests.durability.server import ServerProcess

from .images import Image, ImageIndex, build_image, build_index, write_layout
from .tooling import (
    ContainersStorageTool,
    ManagedProcess,
    RegistryHTTP,
    Skopeo,
    free_port,
    http_ok,
    repo_component,
    require_binary,
    wait_until,
)

REGISTRY_ENV = "PORTSIDE_TEST_REGISTRY"
NO_MEDIA_TYPE_BY_DIGEST_BUG = (
    "GET /v2/<name>/manifests/<digest> of an OCI manifest without mediaType is 404"
)
DISTRIBUTION_BINARY = "/usr/bin/docker-registry"
STARTUP_TIMEOUT = 30.0

_SERVER_KEY = pytest.StashKey["RegistryServer"]()
_EXTRA_LOGS = pytest.StashKey[dict[str, tuple[str, Callable[[], str]]]]()


@dataclass(frozen=True)
class RegistryServer:
    kind: str  # "portside" or "distribution"
    host: str  # "127.0.0.1:PORT"
    process: ManagedProcess

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    @property
    def is_distribution(self) -> bool:
        return self.kind == "distribution"

    def xfail_on_distribution(self, bug: str) -> None:
        """Stop the test as an expected failure when running against Distribution.

        Only for behaviour the specs require and Distribution 2.8 gets wrong;
        put such checks last in a test.
        """
        if self.is_distribution:
            pytest.xfail(f"known Distribution 2.8 bug: {bug}")

    def ref(self, repo: str, reference: str) -> str:
        """``HOST/repo:tag`` or ``HOST/repo@digest``."""
        sep = "@" if ":" in reference else ":"
        return f"{self.host}/{repo}{sep}{reference}"


def registry_kind() -> str:
    kind = os.environ.get(REGISTRY_ENV, "portside") or "portside"
    if kind not in ("portside", "distribution"):
        raise pytest.UsageError(
            f"{REGISTRY_ENV} must be 'portside' or 'distribution', not {kind!r}"
        )
    return kind


def _portside_argv(host: str, data_dir: Path) -> list[str]:
    candidate = Path(sys.executable).parent / "portside"
    binary = str(candidate) if candidate.exists() else shutil.which("portside")
    if binary is None:
        pytest.fail("the portside executable is not installed (pip install -e .)")
    return [binary, "serve", "--listen", host, "--data-dir", str(data_dir)]


def _distribution_argv(host: str, workdir: Path) -> list[str]:
    if not Path(DISTRIBUTION_BINARY).exists():
        pytest.fail(f"{REGISTRY_ENV}=distribution but {DISTRIBUTION_BINARY} is missing")
    storage = workdir / "storage"
    storage.mkdir()
    config = workdir / "config.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n"
        "  level: info\n"
        "  accesslog:\n"
        "    disabled: true\n"
        "storage:\n"
        "  filesystem:\n"
        f"    rootdirectory: {storage}\n"
        "  delete:\n"
        "    enabled: true\n"
        "  cache:\n"
        "    blobdescriptor: inmemory\n"
        "http:\n"
        f"  addr: {host}\n"
        "  headers:\n"
        "    X-Content-Type-Options: [nosniff]\n"
    )
    return [DISTRIBUTION_BINARY, "serve", str(config)]


@pytest.fixture(scope="session")
def registry(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RegistryServer]:
    kind = registry_kind()
    workdir = tmp_path_factory.mktemp(f"registry-{kind}")
    host = f"127.0.0.1:{free_port()}"
    if kind == "distribution":
        argv = _distribution_argv(host, workdir)
    else:
        data_dir = workdir / "data"
        data_dir.mkdir()
        argv = _portside_argv(host, data_dir)
    process = ManagedProcess(kind, argv, workdir / "server.log").start()
    server = RegistryServer(kind=kind, host=host, process=process)
    try:
        wait_until(
            lambda: http_ok(f"{server.url}/v2/"),
            timeout=STARTUP_TIMEOUT,
            what=f"{kind} registry at {server.url}",
            alive=process.exit_problem,
        )
    except (TimeoutError, RuntimeError) as exc:
        process.stop()
        pytest.fail(f"{exc}\n{process.log_tail(200)}", pytrace=False)
    request.config.stash[_SERVER_KEY] = server
    yield server
    crashed = process.exit_problem()
    process.stop()
    if crashed is not None:
        pytest.fail(f"the registry died during the session: {crashed}", pytrace=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    server = item.config.stash.get(_SERVER_KEY, None)
    if report.failed and server is not None and "registry" in getattr(item, "fixturenames", ()):
        report.sections.append((f"{server.kind} registry log (tail)", server.process.log_tail(30)))
    if report.failed:
        for fixture, (title, tail) in item.config.stash.get(_EXTRA_LOGS, {}).items():
            if fixture in getattr(item, "fixturenames", ()):
                report.sections.append((title, tail()))
    return report


def attach_log_on_failure(
    config: pytest.Config, fixture: str, title: str, tail: Callable[[], str]
) -> None:
    """Append ``tail()`` to the report of each failing test that uses ``fixture``: for
    servers a test module starts itself, as the ``registry`` log is above."""
    config.stash.setdefault(_EXTRA_LOGS, {})[fixture] = (title, tail)


@contextmanager
def own_portside(
    request: pytest.FixtureRequest, root: Path, label: str
) -> Iterator[tuple[ServerProcess, Database]]:
    """An (open) Portside of a test module's own, on a fresh database under `root`, with
    that database for setting up what an operator would with the CLI; its log tail is
    attached to failures as "portside (LABEL) log (tail)"."""
    with fresh_database(root) as database_url:
        (root / "data").mkdir()
        (root / "logs").mkdir()
        process = ServerProcess(
            data_dir=root / "data", database_url=database_url, log_dir=root / "logs"
        )
        db = Database(make_engine(database_url))
        try:
            process.start()
            attach_log_on_failure(
                request.config, f"{label}_registry", f"portside ({label}) log (tail)",
                process.log_tail,
            )  # fmt: skip
            yield process, db
        finally:
            process.stop()
            db.engine.dispose()


@pytest.fixture(scope="session")
def registry_http(registry: RegistryServer) -> Iterator[RegistryHTTP]:
    http = RegistryHTTP(registry.url)
    yield http
    http.close()


@pytest.fixture
def repo(request: pytest.FixtureRequest, registry: RegistryServer) -> str:
    """A repository name unique to the test: ``clients/<module>/<test>``."""
    module = repo_component(request.node.module.__name__.rsplit(".", 1)[-1])
    return f"clients/{module}/{repo_component(request.node.name)}"


@pytest.fixture(scope="session")
def session_nonce() -> str:
    """Makes image content unique per run (see ``images.build_image``)."""
    return secrets.token_hex(4)


@pytest.fixture
def image(repo: str, session_nonce: str) -> Image:
    """A three-layer amd64 image with content unique to the test and run."""
    return build_image(f"{repo}#{session_nonce}")


@pytest.fixture
def image_index(repo: str, session_nonce: str) -> ImageIndex:
    """An amd64 + arm64 image index with content unique to the test and run."""
    return build_index(f"{repo}#{session_nonce}")


@dataclass
class Target:
    """Where a test pushes: the registry, its repository, and scratch space."""

    server: RegistryServer
    http: RegistryHTTP
    repo: str
    tmp: Path
    _layouts: int = 0

    @property
    def host(self) -> str:
        return self.server.host

    def ref(self, reference: str, repo: str | None = None) -> str:
        """``HOST/REPO:tag`` or ``HOST/REPO@digest`` (REPO defaults to the test's)."""
        return self.server.ref(repo or self.repo, reference)

    def layout(self, refs: dict[str, Image | ImageIndex]) -> Path:
        """Write images into a fresh OCI image layout directory."""
        self._layouts += 1
        return write_layout(self.tmp / f"layout-{self._layouts}", refs)

    def scratch(self, name: str) -> Path:
        """A path (not created) in the test's temporary directory."""
        return self.tmp / name


@pytest.fixture
def target(
    registry: RegistryServer, registry_http: RegistryHTTP, repo: str, tmp_path: Path
) -> Target:
    return Target(registry, registry_http, repo, tmp_path)


# ---------------------------------------------------------------------------
# containers/image tools (skopeo, podman, buildah) with private configuration
# ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def containers_env(
    registry: RegistryServer, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    """Environment that points c/image tools at private config files.

    registries.conf marks the registry under test insecure (plain HTTP) so
    commands without ``--tls-verify=false`` (``buildah from``) work too.
    """
    return containers_config(tmp_path_factory.mktemp("containers-conf"), insecure=registry.host)


def containers_config(conf: Path, *, insecure: str | None) -> dict[str, str]:
    """Write private containers/image config files into `conf` (a registries.conf that
    marks only `insecure` as plain-HTTP, a containers.conf, an empty auth file) and
    return the environment pointing c/image tools at them."""
    registries = conf / "registries.conf"
    text = "unqualified-search-registries = []\n"
    if insecure is not None:
        text += f'\n[[registry]]\nlocation = "{insecure}"\ninsecure = true\n'
    registries.write_text(text)
    containers = conf / "containers.conf"
    containers.write_text(
        '[engine]\nevents_logger = "file"\n'
        f'events_logfile_path = "{conf}/events.log"\n'
        'cgroup_manager = "cgroupfs"\n'
    )
    # buildah refuses a REGISTRY_AUTH_FILE that does not exist; an empty one also means
    # only the credentials a test passes are used.
    auth = conf / "auth.json"
    auth.write_text('{"auths": {}}\n')
    return {
        "CONTAINERS_REGISTRIES_CONF": str(registries),
        "CONTAINERS_CONF": str(containers),
        "REGISTRY_AUTH_FILE": str(auth),
    }


@pytest.fixture
def skopeo(containers_env: dict[str, str]) -> Skopeo:
    return Skopeo(require_binary("skopeo"), containers_env)


def storage_tool(
    name: str, tmp_path_factory: pytest.TempPathFactory, env: dict[str, str]
) -> ContainersStorageTool:
    """podman/buildah with a fresh private vfs store."""
    binary = require_binary(name)
    base = tmp_path_factory.mktemp(f"{name}-store")
    extra: list[str] = []
    if name == "podman":
        extra = ["--cgroup-manager", "cgroupfs", "--events-backend", "file"]
    return ContainersStorageTool(
        binary=binary,
        root=base / "root",
        runroot=base / "run",
        env=env,
        extra_global=extra,
    )
