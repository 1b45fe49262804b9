"""A real `portside serve` (several workers: several processes) whose project `hub`
caches a real Distribution 2.8 behind the counting proxy, seeded on the database before
it starts: the registry endpoint (Basic credentials, encrypted), the public project, its
proxy binding."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from portside.auth.projects import Projects
from portside.config import load_settings
from portside.endpoints.secrets import new_key
from portside.endpoints.store import EndpointStore
from portside.events.outbox import SYSTEM
from portside.metadata.db import Database
from portside.metadata.engine import make_engine
from portside.proxy.bindings import ProxyStore
from tests.durability.server import ServerProcess
from tests.proxy.conftest import PASSWORD, USER, Upstreams


@dataclass
class Served:
    server: ServerProcess
    upstream: Upstreams

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def host(self) -> str:
        return self.server.url.split("://", 1)[1]


@contextmanager
def proxy_server(
    tmp_path: Path,
    database_url: str,
    upstream: Upstreams,
    *,
    workers: int = 2,
    tag_ttl_seconds: int = 300,
    mirror: bool = False,
) -> Iterator[Served]:
    key = new_key()
    settings = load_settings(
        data_dir=tmp_path / "portside",
        database={"url": database_url},
        endpoints={"allow_private_targets": True},
        secrets={"encryption_key": key},
    )
    engine = make_engine(database_url)
    try:
        db = Database(engine)
        EndpointStore(db, settings).create(
            name="up",
            kind="distribution",
            url=upstream.counting.url,
            username=USER,
            password=PASSWORD,
            actor=SYSTEM,
        )
        Projects(db).create("hub", public=True)
        ProxyStore(db, settings.proxy).bind(
            "hub", "up", tag_ttl_seconds=tag_ttl_seconds, cache_limit_bytes=None, actor=SYSTEM
        )
        if mirror:
            Projects(db).create("mirror", public=True)
    finally:
        engine.dispose()
    env = {
        "PORTSIDE_ENDPOINTS__ALLOW_PRIVATE_TARGETS": "true",
        "PORTSIDE_SECRETS__ENCRYPTION_KEY": key,
    }
    if mirror:
        env["PORTSIDE_PROXY__MIRROR__PROJECT"] = "mirror"
        env["PORTSIDE_PROXY__MIRROR__ENDPOINTS"] = '["up"]'
    logs = tmp_path / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    server = ServerProcess(tmp_path / "portside", database_url, logs, workers=workers, env=env)
    server.start()
    try:
        yield Served(server, upstream)
        assert server.internal_errors() == []
    finally:
        server.stop()
