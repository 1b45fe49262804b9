"""A second Portside as a peer: a real `portside serve` subprocess (tests/durability
ServerProcess) with an admin (so token auth is on) and projects created on push."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.durability.server import ServerProcess

PEER_ADMIN = ("admin", "peer-admin-password")


@contextmanager
def portside_peer(directory: Path, database_url: str, **env: str) -> Iterator[ServerProcess]:
    """`env`: more PORTSIDE_* settings (e.g. PORTSIDE_JOBS__WORKERS=1 for replication)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "data").mkdir(exist_ok=True)
    server = ServerProcess(
        data_dir=directory / "data",
        database_url=database_url,
        log_dir=directory,
        env={
            "PORTSIDE_AUTH__INITIAL_ADMIN_PASSWORD": PEER_ADMIN[1],
            "PORTSIDE_PROJECTS__AUTO_CREATE": "true",
            "PORTSIDE_JOBS__WORKERS": "0",
            **env,
        },
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()
