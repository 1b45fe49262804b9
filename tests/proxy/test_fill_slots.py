"""Fill threads are bounded per process (`proxy.max_fills`): with every slot busy, a
request for another missing blob waits `proxy.fill_slot_wait_seconds`, then gets the blob
passed through from the upstream uncached (or, when the upstream does not say its
length, a 503 with Retry-After); once a slot is free, blobs are cached again.

The upstream is a real Distribution 2.8; to keep the one slot busy for as long as the
test needs, its blob download for one digest is held at a gate in front of the real
client (a wrapper, since no real registry can be told to stall one blob)."""

from __future__ import annotations

import concurrent.futures
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from portside.app import PortsideApp, create_app
from portside.config import load_settings
from portside.digest import Digest
from portside.errors import BlobUnknown
from portside.proxy.endpoints import RemoteUpstream
from tests.proxy.conftest import Factory, Upstreams, bind, remote_upstream, wait_cached
from tests.proxy.upstreams import OCI_MANIFEST, push_image


class GatedUpstream(RemoteUpstream):
    """The real upstream client, except that the download of `held` waits for `gate`."""

    def __init__(self, real: RemoteUpstream, held: str, unsized: str) -> None:
        super().__init__(real.label, real.kind, real.client)
        self.held = held
        self.unsized = unsized  # answered without its length (as a chunked response)
        self.entered = threading.Event()
        self.gate = threading.Event()

    def blob(self, repository: str, digest: str) -> Any:  # the real client's download
        if digest == self.held:
            self.entered.set()
            assert self.gate.wait(120), "the test never opened the gate"
        stream = super().blob(repository, digest)
        return Unsized(stream) if digest == self.unsized else stream


class Unsized:
    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.size = None

    def chunks(self) -> Iterator[bytes]:
        return iter(self.stream.chunks())

    def close(self) -> None:
        self.stream.close()


@pytest.fixture
def one_slot(tmp_path: Path, database_url: str) -> Iterator[PortsideApp]:
    settings = load_settings(
        data_dir=tmp_path / "data",
        database={"url": database_url},
        log={"access": False, "level": "warning"},
        proxy={"max_fills": 1, "fill_slot_wait_seconds": 0.5},
    )
    app = create_app(settings)
    yield app
    app.ctx.close()


def _cached(app: PortsideApp, repository: str, digest: str) -> bool:
    try:
        app.ctx.blobs.stat(repository, Digest.parse(digest))
    except BlobUnknown:
        return False
    return True


def test_a_busy_process_passes_blobs_through_then_caches_again(
    one_slot: PortsideApp, upstream: Upstreams
) -> None:
    app = one_slot
    with upstream.seed() as seed:
        image = push_image(seed, "team/app", "v1", [os.urandom(300_000), os.urandom(200_000)])
    held, passed = (d for d in list(image.blobs)[1:])
    config = next(iter(image.blobs))
    bind(app, upstream)
    gated = GatedUpstream(remote_upstream(upstream.counting.url), held, unsized=config)
    app.ctx.proxy.upstreams = Factory({"up": gated})
    with (
        TestClient(app, base_url="http://registry.test") as client,
        concurrent.futures.ThreadPoolExecutor(1) as pool,
    ):
        got = client.get("/v2/hub/team/app/manifests/v1", headers={"accept": OCI_MANIFEST})
        assert got.status_code == 200, got.text
        first = pool.submit(client.get, f"/v2/hub/team/app/blobs/{held}")
        assert gated.entered.wait(60), "the first fill never started"
        # The only slot is taken: this blob is passed through, whole, and not cached.
        through = client.get(f"/v2/hub/team/app/blobs/{passed}")
        assert through.status_code == 200, through.text
        assert through.headers["x-portside-cache"] == "pass"
        assert through.content == image.blobs[passed]
        head = client.head(f"/v2/hub/team/app/blobs/{passed}")
        assert head.status_code == 200, head.text
        assert head.headers["x-portside-cache"] == "pass"
        assert int(head.headers["content-length"]) == len(image.blobs[passed])
        # Without a length to announce, the client is told to come back.
        busy = client.get(f"/v2/hub/team/app/blobs/{config}")
        assert busy.status_code == 503, busy.text
        assert busy.json()["errors"][0]["code"] == "UNAVAILABLE"
        assert busy.headers["retry-after"] == "5"
        assert not _cached(app, "hub/team/app", passed)
        assert not _cached(app, "hub/team/app", config)
        gated.gate.set()
        held_answer = first.result(timeout=120)
        assert held_answer.status_code == 200, held_answer.text
        assert held_answer.headers["x-portside-cache"] == "miss"
        assert held_answer.content == image.blobs[held]
        wait_cached(app, "hub/team/app", [held])
        # The slot is free again: the next miss fills the cache.
        again = client.get(f"/v2/hub/team/app/blobs/{passed}")
        assert again.status_code == 200
        assert again.content == image.blobs[passed]
        assert again.headers.get("x-portside-cache") != "pass"  # "miss", or already cached
        wait_cached(app, "hub/team/app", [passed])
