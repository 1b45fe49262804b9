"""Event-triggered replication end to end: a real `portside serve` with its job worker,
an event rule made on its database, a real skopeo push of an image, and the image on a
real Distribution 2.8 a moment later with the same digest (nothing run by hand)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from portside.config import load_settings
from portside.endpoints.store import EndpointStore
from portside.metadata.db import Database
from portside.metadata.engine import make_engine
from portside.remote import RegistryClient
from portside.replication.rules import RuleStore
from tests.clients.conftest import containers_config
from tests.clients.images import build_image, write_layout
from tests.clients.tooling import Skopeo, require_binary
from tests.durability.server import ServerProcess
from tests.remote.peers import LOOPBACK_ALLOWED, distribution
from tests.replication.conftest import ADMIN

pytestmark = pytest.mark.clients


def test_a_skopeo_push_is_replicated_by_the_worker(tmp_path: Path, database_url: str) -> None:
    skopeo = Skopeo(require_binary("skopeo"), containers_config(tmp_path, insecure=None))
    image = build_image("replicated-by-event", big_layer_kib=256)
    layout = write_layout(tmp_path / "layout", {"v1": image})
    with distribution(tmp_path / "dist") as peer:
        settings = load_settings(
            data_dir=tmp_path / "data",
            database={"url": database_url},
            endpoints={"allow_private_targets": True},
        )
        db = Database(make_engine(database_url))
        try:
            EndpointStore(db, settings).create(
                name="dist", kind="distribution", url=peer.url, actor=ADMIN
            )
            RuleStore(db).create(
                name="live", direction="push", endpoint="dist", actor=ADMIN,
                repositories="events/**", trigger="event",
            )  # fmt: skip
        finally:
            db.engine.dispose()
        (tmp_path / "data").mkdir(exist_ok=True)
        server = ServerProcess(
            data_dir=tmp_path / "data",
            database_url=database_url,
            log_dir=tmp_path,
            env={
                "PORTSIDE_JOBS__WORKERS": "1",
                "PORTSIDE_JOBS__POLL_SECONDS": "0.5",
                "PORTSIDE_ENDPOINTS__ALLOW_PRIVATE_TARGETS": "true",
            },
        )
        server.start()
        try:
            host = server.url.split("://", 1)[1]
            skopeo("copy", "--quiet", Skopeo.EXACT, "--dest-tls-verify=false",
                   f"oci:{layout}:v1", f"docker://{host}/events/app:v1")  # fmt: skip
            deadline = time.monotonic() + 90
            with RegistryClient(peer.url, egress=LOOPBACK_ALLOWED) as there:
                found = None
                while time.monotonic() < deadline and found is None:
                    found = there.head_manifest("events/app", "v1")
                    if found is None:
                        time.sleep(0.5)
            assert found is not None, server.log_tail()
            assert found.digest == image.digest
            assert server.internal_errors() == []
        finally:
            server.stop()
