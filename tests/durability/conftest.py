"""Fixtures starting real `portside serve` processes on one data directory + database.

`server_factory` is per test (it uses tests/conftest.py's fresh `database_url`);
`shared_store` gives a module a data directory and database of its own, so servers that
take seconds to start can be shared by the tests of one module.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import fresh_database
from tests.durability.server import ServerProcess

ServerFactory = Callable[..., ServerProcess]


@dataclass
class Store:
    """A data directory and a migrated database, and the servers started on them."""

    root: Path
    database_url: str
    servers: list[ServerProcess] = field(default_factory=list)

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    def server(self, workers: int = 1) -> ServerProcess:
        log_dir = self.root / "logs"
        log_dir.mkdir(exist_ok=True)
        server = ServerProcess(
            data_dir=self.data_dir,
            database_url=self.database_url,
            log_dir=log_dir,
            workers=workers,
        )
        self.servers.append(server)
        return server

    def kill_all(self) -> None:
        for server in self.servers:
            server.kill()


@pytest.fixture
def store(tmp_path: Path, database_url: str) -> Iterator[Store]:
    created = Store(tmp_path, database_url)
    created.data_dir.mkdir()
    try:
        yield created
    finally:
        created.kill_all()


@pytest.fixture
def data_dir(store: Store) -> Path:
    return store.data_dir


@pytest.fixture
def server_factory(store: Store) -> ServerFactory:
    """Builds (not starts) servers sharing this test's data directory and database; every
    one still running at the end is killed."""
    return store.server


@pytest.fixture(scope="module")
def shared_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    root = tmp_path_factory.mktemp("shared-store")
    with fresh_database(root) as url:
        created = Store(root, url)
        created.data_dir.mkdir()
        try:
            yield created
        finally:
            created.kill_all()
