"""The upstream of a proxy project: the outgoing Distribution-API client
(portside.remote.client: auth, retries, the egress policy) adapted to proxy.upstream's
Protocol, its errors sorted into "missing" and "unavailable"."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from portside.auth.errors import Missing
from portside.config import Settings
from portside.endpoints.secrets import SecretUnreadable
from portside.endpoints.store import EndpointStore
from portside.metadata.db import Database
from portside.proxy.service import UpstreamFactory
from portside.proxy.upstream import (
    ManifestAnswer,
    Upstream,
    UpstreamMissing,
    UpstreamUnavailable,
)
from portside.remote.client import RegistryClient
from portside.remote.errors import NotFound, RemoteError
from portside.remote.kinds import remote_repository
from portside.remote.retry import RetryPolicy


class RemoteUpstream:
    """An endpoint's client as a proxy upstream (thread-safe, as the client is)."""

    def __init__(self, label: str, kind: str, client: RegistryClient) -> None:
        self._label = label
        self.kind = kind
        self.client = client

    @property
    def label(self) -> str:
        return self._label

    def repository(self, name: str) -> str:
        return remote_repository(self.kind, name)

    def manifest_digest(self, repository: str, reference: str) -> str | None:
        with _sorted_errors():
            found = self.client.head_manifest(repository, reference)
        if found is None:
            raise UpstreamMissing(f"{repository}:{reference} not found upstream")
        return found.digest

    def manifest(self, repository: str, reference: str) -> ManifestAnswer:
        with _sorted_errors():
            got = self.client.get_manifest(repository, reference)
        return ManifestAnswer(got.body, got.media_type, got.digest)

    def blob(self, repository: str, digest: str) -> _RemoteBlob:
        opened = self.client.open_blob(repository, digest)
        with _sorted_errors():
            stream = opened.__enter__()
        return _RemoteBlob(opened, stream)


class _RemoteBlob:
    def __init__(self, opened: Any, stream: Any) -> None:
        self._opened = opened
        self._stream = stream

    @property
    def size(self) -> int | None:
        size = int(self._stream.size)
        return size if size >= 0 else None

    def chunks(self) -> Iterator[bytes]:
        with _sorted_errors():
            yield from self._stream.chunks()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._opened.__exit__(None, None, None)


@contextlib.contextmanager
def _sorted_errors() -> Iterator[None]:
    try:
        yield
    except NotFound as error:
        raise UpstreamMissing(str(error)) from None
    except RemoteError as error:
        raise UpstreamUnavailable(str(error)) from None


class EndpointUpstreams:
    """Upstreams by endpoint name, built from the registry endpoints (portside.endpoints)
    and kept per process with their connections; an endpoint is read again at most every
    REREAD_SECONDS, and a changed one (its `updated_at`) gets a new client. A pull waits
    for the upstream, so its retries are fewer and shorter than replication's."""

    REREAD_SECONDS = 30.0

    def __init__(self, settings: Settings, db: Database) -> None:
        self.store = EndpointStore(db, settings)
        self._lock = threading.Lock()
        self._clients: dict[str, tuple[RemoteUpstream, datetime, float]] = {}
        self._retired: list[RemoteUpstream] = []

    def __call__(self, name: str) -> Upstream:
        now = time.monotonic()
        with self._lock:
            cached = self._clients.get(name)
        if cached is not None and now - cached[2] < self.REREAD_SECONDS:
            return cached[0]
        try:
            endpoint = self.store.get(name)
            with self._lock:
                cached = self._clients.get(name)
                if cached is not None and cached[1] == endpoint.updated_at:
                    upstream = cached[0]
                else:
                    retry = RetryPolicy(
                        attempts=min(self.store.settings.endpoints.retry_attempts, 3),
                        max_wait=5.0,
                    )
                    client = self.store.client(endpoint, retry=retry)
                    upstream = RemoteUpstream(endpoint.name, endpoint.kind, client)
                    if cached is not None:
                        # Downloads may still be reading through it: closed at the end.
                        self._retired.append(cached[0])
                self._clients[name] = (upstream, endpoint.updated_at, now)
        except Missing:
            raise UpstreamUnavailable(f"there is no registry endpoint {name!r}") from None
        except SecretUnreadable as error:
            raise UpstreamUnavailable(f"endpoint {name!r}: {error}") from None
        return upstream

    def close(self) -> None:
        with self._lock:
            clients, self._clients = self._clients, {}
            retired, self._retired = self._retired, []
        for upstream in [*(c[0] for c in clients.values()), *retired]:
            upstream.client.close()


def endpoint_upstreams(settings: Settings, db: Database) -> UpstreamFactory:
    return EndpointUpstreams(settings, db)
