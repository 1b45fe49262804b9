"""Fixtures of the proxy-cache tests: a real Distribution 2.8 upstream (with htpasswd
auth) behind the counting proxy, and an app whose project `hub` caches it."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from portside.app import PortsideApp
from portside.digest import Digest
from portside.errors import BlobUnknown
from portside.events.outbox import SYSTEM
from portside.proxy.endpoints import RemoteUpstream
from portside.proxy.upstream import Upstream, UpstreamUnavailable
from portside.remote.auth import Credentials
from portside.remote.client import RegistryClient
from portside.remote.retry import RetryPolicy
from tests.proxy.upstreams import CountingProxy, counting_proxy
from tests.remote.peers import LOOPBACK_ALLOWED, Peer, distribution

USER, PASSWORD = "puller", "upstream-secret"


@dataclass
class Upstreams:
    peer: Peer
    counting: CountingProxy

    def seed(self) -> httpx.Client:
        """A client pushing straight to the upstream (not counted)."""
        return self.peer.client()


@pytest.fixture
def upstream(tmp_path: Path) -> Iterator[Upstreams]:
    with (
        distribution(tmp_path / "upstream", auth=(USER, PASSWORD)) as peer,
        counting_proxy(peer.url) as counting,
    ):
        yield Upstreams(peer, counting)


def remote_upstream(url: str, label: str = "up", kind: str = "distribution") -> RemoteUpstream:
    client = RegistryClient(
        url,
        egress=LOOPBACK_ALLOWED,
        credentials=Credentials(USER, PASSWORD),
        retry=RetryPolicy(attempts=2, base_seconds=0.05, max_wait=0.5),
        timeout_seconds=10.0,
    )
    return RemoteUpstream(label, kind, client)


class Factory:
    """Upstreams by endpoint name (what portside.proxy.endpoints builds from the
    registry endpoints); closed with the app."""

    def __init__(self, upstreams: dict[str, RemoteUpstream]) -> None:
        self.upstreams = upstreams

    def __call__(self, name: str) -> Upstream:
        if name not in self.upstreams:
            raise UpstreamUnavailable(f"no endpoint {name!r}")
        return self.upstreams[name]

    def close(self) -> None:
        for upstream in self.upstreams.values():
            upstream.client.close()


def wait_cached(app: PortsideApp, repository: str, digests: Iterable[str]) -> None:
    """Until the blobs are committed to the cache: a client has every byte of a blob
    being filled a moment before the fill commits it."""
    deadline = time.monotonic() + 60
    for digest in digests:
        while True:
            try:
                app.ctx.blobs.stat(repository, Digest.parse(digest))
                break
            except BlobUnknown:
                assert time.monotonic() < deadline, f"{digest} never cached"
                time.sleep(0.05)


def bind(app: PortsideApp, upstream: Upstreams, project: str = "hub", **options: object) -> None:
    """Make `project` (public) a proxy cache of the counting proxy, as endpoint `up`."""
    ctx = app.ctx
    ctx.proxy.upstreams = Factory({"up": remote_upstream(upstream.counting.url)})
    ctx.auth.projects.create(project, public=True)
    ctx.proxy.store.bind(
        project,
        "up",
        tag_ttl_seconds=options.get("tag_ttl_seconds", 300),  # type: ignore[arg-type]
        cache_limit_bytes=options.get("cache_limit_bytes"),  # type: ignore[arg-type]
        actor=SYSTEM,
    )
