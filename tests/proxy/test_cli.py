"""`portside project create NAME --proxy-endpoint E` and `portside project cache NAME`."""

from __future__ import annotations

import subprocess
from pathlib import Path

from portside.config import load_settings
from portside.endpoints.secrets import new_key
from portside.endpoints.store import EndpointStore
from portside.events.outbox import SYSTEM
from portside.metadata.db import Database
from portside.metadata.engine import make_engine
from tests.durability.server import PORTSIDE, portside_env


def _portside(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PORTSIDE, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_cli_creates_a_proxy_project_and_shows_its_cache(tmp_path: Path, database_url: str) -> None:
    key = new_key()
    extra = {
        "PORTSIDE_ENDPOINTS__ALLOW_PRIVATE_TARGETS": "true",
        "PORTSIDE_SECRETS__ENCRYPTION_KEY": key,
        "PORTSIDE_DATA_DIR": str(tmp_path / "data"),
    }
    env = portside_env(database_url, **extra)
    settings = load_settings(
        data_dir=tmp_path / "data",
        database={"url": database_url},
        endpoints={"allow_private_targets": True},
        secrets={"encryption_key": key},
    )
    engine = make_engine(database_url)
    try:
        EndpointStore(Database(engine), settings).create(
            name="hub", kind="docker-hub", url="http://127.0.0.1:9", actor=SYSTEM
        )
    finally:
        engine.dispose()
    unknown = _portside(env, "project", "create", "cache", "--proxy-endpoint", "nope")
    assert unknown.returncode == 1
    assert "nope" in unknown.stderr
    assert _portside(env, "project", "cache", "cache").returncode == 1  # not created
    created = _portside(
        env,
        "project", "create", "cache", "--public",
        "--proxy-endpoint", "hub", "--tag-ttl", "60", "--cache-limit", "1GiB",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    assert "proxy-cache (of hub)" in created.stdout
    shown = _portside(env, "project", "cache", "cache")
    assert shown.returncode == 0, shown.stderr
    assert "proxy cache of hub" in shown.stdout
    assert "re-checked after 60 s" in shown.stdout
    assert "limit 1.0 GiB" in shown.stdout or "limit 1 GiB" in shown.stdout, shown.stdout
    changed = _portside(env, "project", "cache", "cache", "--no-limit", "--tag-ttl", "5")
    assert changed.returncode == 0, changed.stderr
    assert "limit none" in changed.stdout
    assert "after 5 s" in changed.stdout
    plain = _portside(env, "project", "create", "plain")
    assert plain.returncode == 0
    not_proxy = _portside(env, "project", "cache", "plain")
    assert not_proxy.returncode == 1
    assert "not a proxy cache" in not_proxy.stderr
