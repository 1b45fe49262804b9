"""Shared fixtures: a fresh database per test (SQLite file, or a PostgreSQL schema when
PORTSIDE_TEST_DATABASE_URL is set), settings, the ASGI app, and a test client."""

from __future__ import annotations

import os
import queue
import shutil
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from starlette.testclient import TestClient

from portside.app import PortsideApp, create_app
from portside.config import Settings, load_settings
from portside.metadata.engine import upgrade
from tests.s3server import MotoServer, moto_server

POSTGRES_URL = os.environ.get("PORTSIDE_TEST_DATABASE_URL")


class _Copies:
    """Copies of one PostgreSQL template database, made and dropped by two background
    threads so a test never waits for CREATE DATABASE or DROP DATABASE (together about
    0.1 s a test, some five minutes of a PostgreSQL run): `take` hands out a copy made
    ahead, `give_back` queues it for dropping (WITH FORCE, so connections a test's server
    left behind do not keep it alive). Only a copy no test has touched is ever handed out."""

    AHEAD = 2

    def __init__(self, template: str) -> None:
        self.template = template
        self.admin = create_engine(POSTGRES_URL or "", isolation_level="AUTOCOMMIT")
        self.ready: queue.Queue[str] = queue.Queue(maxsize=self.AHEAD)
        self.used: queue.Queue[str | None] = queue.Queue()
        self.stopping = threading.Event()
        self.threads = [
            threading.Thread(target=self._make, name="pg-copies-make", daemon=True),
            threading.Thread(target=self._drop, name="pg-copies-drop", daemon=True),
        ]
        for thread in self.threads:
            thread.start()

    def _make(self) -> None:
        while not self.stopping.is_set():
            name = f"portside_t_{uuid.uuid4().hex[:12]}"
            with self.admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"'))
            while True:
                try:
                    self.ready.put(name, timeout=0.5)
                    break
                except queue.Full:
                    if self.stopping.is_set():
                        self.used.put(name)
                        return

    def _drop(self) -> None:
        while (name := self.used.get()) is not None:
            with self.admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    def take(self) -> str:
        return self.ready.get(timeout=120)

    def give_back(self, name: str) -> None:
        self.used.put(name)

    def close(self) -> None:
        self.stopping.set()
        self.threads[0].join(timeout=30)
        while not self.ready.empty():
            self.used.put(self.ready.get_nowait())
        self.used.put(None)
        self.threads[1].join(timeout=120)
        self.admin.dispose()


_copies: dict[str, _Copies] = {}


@contextmanager
def fresh_database(directory: Path, template: str | None = None) -> Iterator[str]:
    """A migrated, empty metadata database: a SQLite file in `directory`, or a new
    PostgreSQL database when PORTSIDE_TEST_DATABASE_URL is set (dropped afterwards).
    With `template` (from `migrated_template`) it is copied instead of migrated."""
    if not POSTGRES_URL:
        path = directory / "portside.db"
        if template is None:
            upgrade(f"sqlite:///{path}")
        else:
            shutil.copyfile(template, path)
        yield f"sqlite:///{path}"
        return
    base = POSTGRES_URL.rsplit("/", 1)[0]
    if template is not None and template in _copies:
        copies = _copies[template]
        name = copies.take()
        try:
            yield f"{base}/{name}"
        finally:
            copies.give_back(name)
        return
    name = f"portside_t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    clause = f' TEMPLATE "{template}"' if template else ""
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"{clause}'))
    url = f"{base}/{name}"
    if template is None:
        upgrade(url)
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One migrated database per session that each test's database is copied from
    (running the migrations for each of several hundred tests would dominate the run)."""
    with fresh_database(tmp_path_factory.mktemp("template")) as url:
        if not POSTGRES_URL:
            yield url.removeprefix("sqlite:///")
            return
        template = url.rsplit("/", 1)[1]
        _copies[template] = copies = _Copies(template)
        try:
            yield template
        finally:
            del _copies[template]
            copies.close()


@pytest.fixture
def database_url(tmp_path: Path, migrated_template: str) -> Iterator[str]:
    """A migrated, empty metadata database private to one test."""
    with fresh_database(tmp_path, migrated_template) as url:
        yield url


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return load_settings(
        data_dir=tmp_path / "data",
        database={"url": database_url},
        log={"access": False, "level": "warning"},
    )


@pytest.fixture
def app(settings: Settings) -> Iterator[PortsideApp]:
    application = create_app(settings)
    yield application
    application.ctx.close()


@pytest.fixture
def client(app: PortsideApp) -> Iterator[TestClient]:
    with TestClient(app, base_url="http://registry.test") as test_client:
        yield test_client


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """A real S3 API server (moto's server mode) shared by the session's tests; each test
    takes its own bucket (`s3_bucket`)."""
    with moto_server(tmp_path_factory.mktemp("moto")) as server:
        yield server


@pytest.fixture
def s3_bucket(s3_server: MotoServer) -> str:
    return s3_server.new_bucket()
