"""The proxy cache as the /v2 handlers use it.

Manifests (GET/HEAD on a proxy project's repository):
- by digest: served from the cache; on a miss fetched from the upstream, its digest
  verified, stored (content.manifests, without the reference checks: its blobs come on
  their own first request) and served;
- by tag: served from the cache while the tag was confirmed against the upstream less
  than the project's `tag_ttl_seconds` ago; after that the upstream is asked (a HEAD for
  the digest: the cached copy is kept and served when unchanged, else the new manifest
  is fetched and the tag moved); on a miss fetched and tagged.
- the upstream unreachable or failing (anything but "not found"): the cached copy is
  served with `X-Portside-Cache: stale` and `Warning: 110`, and a `proxy.stale` log
  line; with no cached copy the pull fails with 503 UNAVAILABLE. The upstream saying
  "not found" is believed: the pull fails with MANIFEST_UNKNOWN.

Blobs (GET/HEAD) on a miss: only digests a cached manifest of the repository lists are
fetched (the proxy is not an open fetcher of arbitrary upstream content); a blob already
stored for another repository is linked, else filled from the upstream while clients
stream it (proxy.fill). When all of this process's fill slots (`proxy.max_fills`) stay
busy for `proxy.fill_slot_wait_seconds`, the blob is passed through from the upstream
without being cached (`X-Portside-Cache: pass`), its reads on a pool of `max_fills`
threads: clients keep working and threads stay bounded (an upstream that does not say
the blob's length gets the client a 503 with Retry-After instead).

Upstream calls block: they run on the proxy's own small thread pool, so a slow upstream
never holds the blocking-work pool that local requests need. Concurrent misses of one
manifest in a process share one upstream call.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

import structlog
from sqlalchemy import select

from portside.auth.errors import Invalid
from portside.config import Settings
from portside.content.blobs import BlobService
from portside.content.manifests import ManifestService, StoredManifest
from portside.digest import Digest, is_digest, is_valid_digest
from portside.errors import BlobUnknown, DigestInvalid, ManifestUnknown, Unavailable
from portside.metadata import schema as s
from portside.metadata.db import Database, as_utc, repository_id, utcnow
from portside.offload import Offloader
from portside.proxy.bindings import Binding, ProxyStore
from portside.proxy.fill import PROXY_ACTOR, Fill, Fills
from portside.proxy.upstream import (
    BlobStream,
    ManifestAnswer,
    Upstream,
    UpstreamError,
    UpstreamMissing,
    UpstreamUnavailable,
)
from portside.reference import is_valid_tag, project_of
from portside.storage import paths
from portside.storage.base import PathNotFound, Reader, StorageDriver

log = structlog.get_logger(__name__)

T = TypeVar("T")
UpstreamFactory = Callable[[str], Upstream]
"""The upstream client of a registry endpoint, by name (UpstreamUnavailable if none)."""

STALE_HEADERS: list[tuple[str, str]] = [
    ("x-portside-cache", "stale"),
    ("warning", '110 portside "Response is Stale: the upstream registry is unavailable"'),
]
_UPSTREAM_THREADS = 4
_READ_ONLY = (
    "the registry is in read-only mode (registry.read_only): the proxy cache serves what "
    "it holds and fetches nothing"
)
_READ_CHUNK = 512 * 1024


class ProxyService:
    def __init__(
        self,
        db: Database,
        storage: StorageDriver,
        *,
        blobs: BlobService,
        manifests: ManifestService,
        io: Offloader,
        settings: Settings,
        upstreams: UpstreamFactory,
    ) -> None:
        self.db = db
        self.storage = storage
        self.blobs = blobs
        self.manifests = manifests
        self.io = io
        self.store = ProxyStore(db, settings.proxy)
        self.upstreams = upstreams
        self.fills = Fills(
            db,
            storage,
            blobs,
            lease_seconds=settings.proxy.fill_lease_seconds,
            wait_seconds=settings.proxy.wait_seconds,
            max_fills=settings.proxy.max_fills,
            slot_wait_seconds=settings.proxy.fill_slot_wait_seconds,
        )
        self._passing: ThreadPoolExecutor | None = None
        self.mirror = settings.proxy.mirror is not None
        # Read-only mode (portside.readonly): what is cached is served as it is; nothing
        # is fetched or revalidated (that would write).
        self.read_only = settings.registry.read_only
        self._executor: ThreadPoolExecutor | None = None
        self._flights: dict[Hashable, asyncio.Future[Any]] = {}
        self._confirmed: dict[tuple[str, str], float] = {}  # (repo, tag) -> monotonic

    # -- cheap checks on the event loop ----------------------------------------------
    def bound(self, repository: str) -> Binding | None:
        """The repository's proxy binding, from memory (a dict lookup); starts a
        background reload of the snapshot when it is due."""
        if self.store.reload_due():
            self.io.submit(self.store.reload)
        return self.store.bound(repository)

    async def bound_now(self, repository: str) -> Binding | None:
        """bound(), but a project missing from the snapshot is asked of the database (one
        query): for a miss, so a proxy project made a moment ago in another process
        serves its first pull instead of a 404."""
        binding = self.bound(repository)
        if binding is None:
            binding = await self.io.run(self.store.binding, project_of(repository))
            if binding is not None:
                self.store.forget()
        return binding

    async def ensure_loaded(self) -> None:
        if not self.store.loaded:
            await self.io.run(self.store.reload)

    def confirmed(self, binding: Binding, repository: str, tag: str) -> bool:
        """Was the tag confirmed upstream within the project's TTL (memory only)?"""
        at = self._confirmed.get((repository, tag))
        return at is not None and time.monotonic() - at < binding.tag_ttl_seconds

    async def mirrored(self, name: str) -> str | None:
        await self.ensure_loaded()
        if self.store.reload_due():
            self.io.submit(self.store.reload)
        return self.store.mirrored(name)

    def check_endpoint(self, name: str) -> None:
        """Invalid unless `name` is a registry endpoint a proxy project can use."""
        try:
            self.upstreams(name)
        except UpstreamError as error:
            raise Invalid(f"cannot use endpoint {name!r}: {error}") from None

    async def refuse_writes(self, repository: str, what: str) -> None:
        await self.io.run(self.store.refuse_writes, repository, what)

    # -- manifests --------------------------------------------------------------------
    async def manifest(
        self, binding: Binding, repository: str, reference: str
    ) -> tuple[StoredManifest, bool]:
        """The manifest (fetched or revalidated as the module docstring says) and
        whether it is served stale."""
        key = ("manifest", repository, reference)
        return await self._shared(key, self._manifest, binding, repository, reference)

    def _manifest(
        self, binding: Binding, repository: str, reference: str
    ) -> tuple[StoredManifest, bool]:
        by_digest = is_digest(reference)
        if not (is_valid_digest(reference) if by_digest else is_valid_tag(reference)):
            raise ManifestUnknown(detail={"reference": reference[:200]})
        local: StoredManifest | None
        try:
            local = self.manifests.lookup(repository, reference)
        except ManifestUnknown:
            local = None
        if local is not None and (by_digest or self._fresh(binding, repository, reference)):
            return local, False
        if self.read_only:
            if local is not None:
                return local, False
            raise Unavailable(_READ_ONLY)
        name = binding.upstream_name(repository)
        failures: list[str] = []
        for upstream in self._upstreams(binding, failures):
            remote = upstream.repository(name)
            try:
                if local is not None:
                    digest = upstream.manifest_digest(remote, reference)
                    if digest == local.digest:
                        self._confirm(repository, reference)
                        return local, False
                answer = upstream.manifest(remote, reference)
                stored = self._store_manifest(repository, reference, answer, upstream)
            except UpstreamMissing:
                continue
            except UpstreamError as error:
                failures.append(f"{upstream.label}: {error}")
                continue
            return stored, False
        if failures and local is not None:
            log.warning(
                "proxy.stale", repo=repository, reference=reference, upstream="; ".join(failures)
            )
            return local, True
        if failures:
            raise Unavailable(
                "the upstream registry is unavailable and nothing is cached: " + "; ".join(failures)
            )
        raise ManifestUnknown(
            "not found in the upstream registry", detail={"reference": reference[:200]}
        )

    def _store_manifest(
        self, repository: str, reference: str, answer: ManifestAnswer, upstream: Upstream
    ) -> StoredManifest:
        if answer.digest is not None and is_digest(answer.digest):
            sent = Digest.parse(answer.digest)
            if Digest.of(answer.body, sent.algorithm) != sent:
                raise UpstreamUnavailable(
                    f"manifest from {upstream.label} does not match its digest {sent}"
                )
        try:
            self.manifests.put(
                repository,
                reference,
                answer.body,
                answer.media_type,
                PROXY_ACTOR,
                check_references=False,
            )
        except DigestInvalid as error:
            raise UpstreamUnavailable(
                f"manifest from {upstream.label} does not match {reference}: {error.message}"
            ) from None
        if not is_digest(reference):
            self._confirm(repository, reference)
        log.info("proxy.manifest_cached", repo=repository, reference=reference)
        return self.manifests.lookup(repository, reference)

    def _fresh(self, binding: Binding, repository: str, tag: str) -> bool:
        if binding.tag_ttl_seconds <= 0:
            return False
        if self.confirmed(binding, repository, tag):
            return True
        t = s.proxy_tags
        with self.db.read() as conn:
            repo_id = repository_id(conn, repository)
            checked = conn.execute(
                select(t.c.checked_at).where(t.c.repository_id == repo_id, t.c.tag == tag)
            ).scalar_one_or_none()
        if checked is None:
            return False
        age = utcnow() - as_utc(checked)
        if age >= timedelta(seconds=binding.tag_ttl_seconds):
            return False
        self._confirmed[(repository, tag)] = time.monotonic() - age.total_seconds()
        return True

    def _confirm(self, repository: str, tag: str) -> None:
        t = s.proxy_tags
        now = utcnow()
        with self.db.write() as conn:
            repo_id = repository_id(conn, repository)
            if repo_id is None:
                return
            updated = conn.execute(
                t.update()
                .where(t.c.repository_id == repo_id, t.c.tag == tag)
                .values(checked_at=now)
            )
            if updated.rowcount == 0:
                self.db.insert_ignore(
                    conn, t, {"repository_id": repo_id, "tag": tag, "checked_at": now}
                )
        if len(self._confirmed) > 100_000:
            self._confirmed.clear()
        self._confirmed[(repository, tag)] = time.monotonic()

    # -- blobs ------------------------------------------------------------------------
    async def blob(
        self, binding: Binding, repository: str, digest: Digest, *, head: bool
    ) -> Streamed | None:
        """A blob missing from the repository: None once it is stored and linked (the
        caller then serves it as usual), or what to stream (from its fill, or passed
        through when no fill slot came free)."""
        listed = await self.io.run(self._listed, repository, digest)
        if not listed:
            raise BlobUnknown(detail={"digest": str(digest)})
        if self.read_only:
            raise Unavailable(_READ_ONLY)
        if await self.io.run(self.blobs.link_stored, repository, digest) is not None:
            return None
        name = binding.upstream_name(repository)
        fill = await self.fills.start(
            repository, digest, lambda: self._open_blob(binding, name, str(digest))
        )
        if fill is None:
            return await self._pass_through(binding, name, digest, head=head)
        await fill.ready()
        if fill.phase == "failed":
            raise _blob_error(fill.error, digest)
        if fill.phase == "streaming" and fill.readable and fill.size is not None:
            return Streamed(fill.size, FollowStream(self, fill, fill.size), "miss")
        await fill.finished()
        if fill.error is not None:
            raise _blob_error(fill.error, digest)
        if fill.repository != repository:
            await self.io.run(self.blobs.link_stored, repository, digest)
        return None

    async def _pass_through(
        self, binding: Binding, name: str, digest: Digest, *, head: bool
    ) -> Streamed:
        """The upstream's blob, streamed to the client without being cached."""
        loop = asyncio.get_running_loop()
        pool = self.passing
        try:
            stream = await loop.run_in_executor(pool, self._open_blob, binding, name, str(digest))
        except UpstreamError as error:
            raise _blob_error(error, digest) from None
        size = stream.size
        if size is None or head:
            await loop.run_in_executor(pool, stream.close)
        if size is None:  # no length to announce: let the client come back
            raise Unavailable(
                f"blob {digest}: every proxy fill slot is busy (proxy.max_fills); try again",
                headers={"Retry-After": "5"},
            )
        log.info("proxy.blob_passed", digest=str(digest), repo=name, size=size)
        return Streamed(size, PassStream(pool, stream), "pass")

    def _listed(self, repository: str, digest: Digest) -> bool:
        """Does a manifest of the repository list the blob (config or layer)?"""
        m, mb = s.manifests, s.manifest_blobs
        with self.db.read() as conn:
            repo_id = repository_id(conn, repository)
            found = conn.execute(
                select(mb.c.digest)
                .join(m, m.c.id == mb.c.manifest_id)
                .where(m.c.repository_id == repo_id, mb.c.digest == str(digest))
                .limit(1)
            ).first()
        return found is not None

    def _open_blob(self, binding: Binding, name: str, digest: str) -> BlobStream:
        failures: list[str] = []
        for upstream in self._upstreams(binding, failures):
            try:
                return upstream.blob(upstream.repository(name), digest)
            except UpstreamMissing:
                continue
            except UpstreamError as error:
                failures.append(f"{upstream.label}: {error}")
        if failures:
            raise UpstreamUnavailable("; ".join(failures))
        raise UpstreamMissing(f"blob {digest} not found upstream")

    # -- plumbing ---------------------------------------------------------------------
    def _upstreams(self, binding: Binding, failures: list[str]) -> list[Upstream]:
        found = []
        for endpoint in binding.endpoints:
            try:
                found.append(self.upstreams(endpoint))
            except UpstreamError as error:
                failures.append(f"{endpoint}: {error}")
        return found

    @property
    def passing(self) -> ThreadPoolExecutor:
        """Threads reading passed-through blobs (as many as fill slots)."""
        if self._passing is None:
            self._passing = ThreadPoolExecutor(self.fills.max_fills, "portside-pass")
        return self._passing

    @property
    def executor(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(_UPSTREAM_THREADS, "portside-upstream")
        return self._executor

    async def _shared(self, key: Hashable, function: Callable[..., T], *args: Any) -> T:
        """Run on the upstream pool; callers with an equal key share the call in flight."""
        future = self._flights.get(key)
        if future is None:
            loop = asyncio.get_running_loop()
            future = loop.run_in_executor(self.executor, function, *args)
            self._flights[key] = future

            def landed(done: asyncio.Future[Any]) -> None:
                if self._flights.get(key) is done:
                    del self._flights[key]

            future.add_done_callback(landed)
        result: T = await asyncio.shield(future)
        return result

    def close(self) -> None:
        self.fills.close()
        closing = getattr(self.upstreams, "close", None)
        if closing is not None:  # the factory's clients (their connections)
            closing()
        for executor in (self._executor, self._passing):
            if executor is not None:
                executor.shutdown(wait=False, cancel_futures=True)
        self._executor = self._passing = None


def _blob_error(error: Exception | None, digest: Digest) -> Exception:
    if isinstance(error, UpstreamMissing):
        return BlobUnknown("not found in the upstream registry", detail={"digest": str(digest)})
    return Unavailable(f"could not fetch blob {digest} from the upstream registry: {error}")


@dataclass(frozen=True, slots=True)
class Streamed:
    """A blob response body the cache streams: its length, the body (a response body
    stream, as api.http sends them) and the `X-Portside-Cache` value: `miss` (being
    cached) or `pass` (not cached)."""

    size: int
    body: FollowStream | PassStream
    cache: str


class PassStream:
    """An upstream blob download relayed as it is read, each read on `pool`. Nothing is
    stored; the client checks the digest, as for any blob."""

    def __init__(self, pool: ThreadPoolExecutor, stream: BlobStream) -> None:
        self.pool = pool
        self.stream = stream

    async def chunks(self) -> AsyncGenerator[bytes, None]:
        loop = asyncio.get_running_loop()
        source = iter(self.stream.chunks())
        while True:
            try:
                chunk = await loop.run_in_executor(self.pool, next, source, None)
            except Exception as error:  # the upstream broke off: end the response short
                log.warning("proxy.pass_failed", error=str(error))
                return
            if chunk is None:
                return
            yield chunk

    async def close(self) -> None:
        with contextlib.suppress(Exception):  # a broken upstream connection: gone anyway
            await asyncio.get_running_loop().run_in_executor(self.pool, self.stream.close)


class FollowStream:
    """A blob response read from a fill's upload file as it grows (a response body
    stream, as api.http sends them). When the fill ends short or fails, the response
    ends short: the client sees a truncated body, never wrong bytes it could accept
    (it checks the digest, and the length announced)."""

    def __init__(self, service: ProxyService, fill: Fill, size: int) -> None:
        self.io = service.io
        self.storage = service.storage
        self.fill = fill
        self.size = size
        self.reader: Reader | None = None

    async def chunks(self) -> AsyncGenerator[bytes, None]:
        fill = self.fill
        offset = 0
        try:
            self.reader = await self.io.run(self.storage.reader, fill.path, 0)
        except PathNotFound:
            # Being committed (its upload file moved) or given up: see which.
            await fill.finished()
            if fill.phase != "done":
                return
            self.reader = await self.io.run(self.storage.reader, _blob_path(fill), 0)
        reader = self.reader
        while offset < self.size:
            available = fill.written if fill.phase != "done" else self.size
            if available <= offset:
                if fill.over:
                    return  # failed short: end the response short
                await fill.wait()
                continue
            chunk = await self.io.run(reader.read, min(_READ_CHUNK, available - offset))
            if not chunk:
                return
            offset += len(chunk)
            yield chunk

    async def close(self) -> None:
        reader, self.reader = self.reader, None
        if reader is not None:
            with contextlib.suppress(OSError):
                await self.io.run(reader.close)


def _blob_path(fill: Fill) -> str:
    return paths.blob_path(fill.digest)
