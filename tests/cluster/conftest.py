"""Several `portside serve` replicas on one PostgreSQL database and one shared storage
directory, behind a real nginx (Debian's package) using docs/deploy/nginx.conf.

Every test here is PostgreSQL-only (replicas on SQLite would share one file, which is
not a deployment). The server comes from PORTSIDE_TEST_DATABASE_URL or scripts/postgres;
each test module gets a database of its own on it. They run ONCE in scripts/test: the
ones marked `clients` (skopeo) or `s3` (the cluster on a moto bucket) in the first pass,
the only one with the real clients and the S3 server; the others in the PostgreSQL pass
(with CI set, the first pass skips them).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from bench import nginx
from sqlalchemy import create_engine, text

from portside.metadata.engine import upgrade
from tests.durability.server import ServerProcess, free_port
from tests.missing import missing_tool

REPO_ROOT = Path(__file__).resolve().parents[2]
# What replicas remember credentials and role answers for here (auth.cache_seconds).
CACHE_SECONDS = 2.0
# The first replica creates `admin` with it (auth.initial_admin_password).
ADMIN_PASSWORD = "cluster-admin-password"


# The PostgreSQL pass of scripts/test deselects these (-m "not clients ... not s3"), so
# the cluster tests carrying one run in the first pass, on a PostgreSQL they start.
FIRST_PASS_MARKERS = ("clients", "s3")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    in_first_pass = os.environ.get("CI") and not os.environ.get("PORTSIDE_TEST_DATABASE_URL")
    for item in items:
        if here not in Path(str(item.fspath)).parents:
            continue
        item.add_marker(pytest.mark.postgres)
        runs_in_first_pass = any(item.get_closest_marker(m) for m in FIRST_PASS_MARKERS)
        if in_first_pass and not runs_in_first_pass:
            item.add_marker(pytest.mark.skip(reason="PostgreSQL-only: runs in the PostgreSQL pass"))


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The URL of a PostgreSQL server's maintenance database for the cluster tests."""
    url = os.environ.get("PORTSIDE_TEST_DATABASE_URL")
    if url:
        return url
    if not list(Path("/usr/lib/postgresql").glob("*/bin/initdb")):
        missing_tool("PostgreSQL is not installed (scripts/test-deps installs it)")
    done = subprocess.run(
        [str(REPO_ROOT / "scripts" / "postgres")], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        pytest.fail(f"scripts/postgres failed:\n{done.stderr}")
    return done.stdout.strip()


@contextlib.contextmanager
def postgres_database(server_url: str, *, migrate: bool = True) -> Iterator[str]:
    """A new database on the server (migrated unless told not to), dropped afterwards."""
    name = f"portside_c_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = server_url.rsplit("/", 1)[0] + f"/{name}"
    if migrate:
        upgrade(url)
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


def nginx_binary() -> str:
    found = nginx.binary()
    if not found:
        missing_tool("nginx is not installed (scripts/test-deps installs Debian's nginx)")
    return found


@dataclass
class Nginx:
    """nginx in the foreground with docs/deploy/nginx.conf, on a loopback port."""

    root: Path
    port: int
    upstreams: list[str]
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Nginx:
        nginx_binary()
        self.process = subprocess.Popen(
            nginx.command(self.root, self.port, self.upstreams),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"nginx exited:\n{self.error_log()}")
            with contextlib.suppress(httpx.TransportError):
                httpx.get(f"{self.url}/v2/", timeout=2)
                return self
            time.sleep(0.05)
        raise RuntimeError(f"nginx did not start:\n{self.error_log()}")

    def error_log(self) -> str:
        path = self.root / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.process = None


@dataclass
class Cluster:
    """N replicas (each its own data directory, one shared storage root and database)
    and nginx round-robin in front."""

    root: Path
    database_url: str
    size: int = 3
    env: dict[str, str] = field(default_factory=dict)
    # The shared store's settings (PORTSIDE_STORAGE__*): a directory under `root` unless
    # given (the S3 cluster: one bucket).
    storage_settings: dict[str, str] | None = None
    replicas: list[ServerProcess] = field(default_factory=list)
    nginx: Nginx | None = None

    @property
    def storage(self) -> Path:
        return self.root / "shared-storage"

    @property
    def url(self) -> str:
        assert self.nginx is not None
        return self.nginx.url

    def storage_env(self) -> dict[str, str]:
        if self.storage_settings is not None:
            return dict(self.storage_settings)
        return {"PORTSIDE_STORAGE__FILESYSTEM__ROOT": str(self.storage)}

    def replica_env(self, nginx_port: int) -> dict[str, str]:
        """What every replica shares: database (portside_env), storage, the URL clients
        use, and (from the database) the token signing key and session store."""
        return {
            **self.storage_env(),
            "PORTSIDE_EXTERNAL_URL": f"http://127.0.0.1:{nginx_port}",
            "PORTSIDE_JOBS__WORKERS": "1",
            "PORTSIDE_JOBS__POLL_SECONDS": "0.5",
            "PORTSIDE_AUTH__CACHE_SECONDS": str(CACHE_SECONDS),
            "PORTSIDE_AUTH__INITIAL_ADMIN_PASSWORD": ADMIN_PASSWORD,
            **self.env,
        }

    def start(self) -> Cluster:
        self.storage.mkdir(parents=True, exist_ok=True)
        nginx_port = free_port()
        for n in range(self.size):
            data_dir = self.root / f"replica-{n}"
            log_dir = self.root / f"logs-{n}"
            log_dir.mkdir(parents=True, exist_ok=True)
            replica = ServerProcess(
                data_dir=data_dir,
                database_url=self.database_url,
                log_dir=log_dir,
                workers=1,
                env=self.replica_env(nginx_port),
            )
            self.replicas.append(replica.start())
        self.nginx = Nginx(
            self.root / "nginx", nginx_port, [f"127.0.0.1:{r.port}" for r in self.replicas]
        ).start()
        return self

    def client(self, **kwargs: object) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=60, **kwargs)  # type: ignore[arg-type]

    def stop(self) -> None:
        if self.nginx is not None:
            self.nginx.stop()
        for replica in self.replicas:
            replica.stop()

    def internal_errors(self) -> list[str]:
        return [line for r in self.replicas for line in r.internal_errors()]


@pytest.fixture(scope="module")
def cluster_database(postgres_server: str) -> Iterator[str]:
    with postgres_database(postgres_server) as url:
        yield url


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, cluster_database: str) -> Iterator[Cluster]:
    """Three replicas and nginx, shared by the tests of a module."""
    nginx_binary()
    built = Cluster(tmp_path_factory.mktemp("cluster"), cluster_database)
    try:
        yield built.start()
    finally:
        built.stop()
