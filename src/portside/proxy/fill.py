"""Filling the cache with a blob from an upstream, once, while clients are served.

A fill runs on a thread of its own, not tied to any request: it reads the upstream's
response a chunk at a time, hashes it, and appends it to an upload file in batches
(each batch closed, so what is written is readable by others); when the upstream is
done and the bytes hash to the digest asked for (and match the length the upstream
announced), they are made durable and committed as the blob through the normal content
service (content.blobs.commit_upload: quota, links, the blob row GC respects). Bytes
that do not verify are thrown away; nothing is committed.

Clients are followers: every request for the blob in this process (the first one too)
streams from the upload file as it grows, waiting for the next batch when it has caught
up. So the first client does not wait for the whole blob, memory is one batch per fill
whatever the blob's size and the number of clients, a slow client does not slow the
fill (the disk absorbs the difference), and a client that goes away only stops
reading: the fill goes on and the next request finds the blob cached.

Concurrent requests share one upstream fetch:
- in one process, through the `Fills` map (single flight per digest);
- across processes (replicas, granian's workers), through a lease row in `proxy_fills`:
  the process holding it fetches, renewing it at a third of `proxy.fill_lease_seconds`.
  The choice for followers in other processes: they *wait* (polling the database) until
  the blob is committed, then serve it from storage; if the lease lapses (its holder
  died), one of them takes it over and fetches. Streaming their partial file across
  processes would save the wait for the first byte, but needs the holder's progress in
  the database; waiting keeps the rule simple and the cold cost is one blob's download.
Followers stream from the partial file only on drivers with local files (filesystem);
on others they wait for the commit too.

Each fill holds a thread for as long as its download, so a process runs at most
`proxy.max_fills` at once. A request for another blob waits up to
`proxy.fill_slot_wait_seconds` for one to end; if none does, the blob is passed through
from the upstream without being cached (clients keep working; the next request after the
rush fills the cache), see proxy.service.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import threading
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Literal

import structlog
from sqlalchemy import delete, select

from portside.content.blobs import BlobService
from portside.digest import Digest
from portside.events.outbox import Actor
from portside.metadata import schema as s
from portside.metadata.db import Database, as_utc, utcnow
from portside.proxy.upstream import BlobStream, UpstreamMissing, UpstreamUnavailable
from portside.storage import paths
from portside.storage.base import PathNotFound, StorageDriver

log = structlog.get_logger(__name__)

PROXY_ACTOR = Actor("proxy")
_BATCH = 1024 * 1024  # bytes written (and made readable) at a time
_POLL_SECONDS = 0.2  # how often a process waiting for another's fill looks

Phase = Literal["starting", "streaming", "waiting", "done", "failed"]


class Lease:
    """The `proxy_fills` row of a digest: who fetches it, until when."""

    def __init__(self, db: Database, seconds: float) -> None:
        self.db = db
        self.seconds = seconds

    def acquire(self, digest: str, holder: str) -> bool:
        f = s.proxy_fills
        expires = utcnow() + timedelta(seconds=self.seconds)
        with self.db.write() as conn:
            self.db.insert_ignore(
                conn, f, {"digest": digest, "holder": holder, "expires_at": expires}
            )
            row = conn.execute(
                select(f.c.holder, f.c.expires_at).where(f.c.digest == digest).with_for_update()
            ).one()
            if row.holder == holder:
                return True
            if as_utc(row.expires_at) > utcnow():
                return False
            log.info("proxy.lease_taken_over", digest=digest, previous=row.holder)
            conn.execute(
                f.update().where(f.c.digest == digest).values(holder=holder, expires_at=expires)
            )
            return True

    def renew(self, digest: str, holder: str) -> None:
        f = s.proxy_fills
        expires = utcnow() + timedelta(seconds=self.seconds)
        with self.db.write() as conn:
            conn.execute(
                f.update()
                .where(f.c.digest == digest, f.c.holder == holder)
                .values(expires_at=expires)
            )

    def release(self, digest: str, holder: str) -> None:
        f = s.proxy_fills
        with self.db.write() as conn:
            conn.execute(delete(f).where(f.c.digest == digest, f.c.holder == holder))


OpenBlob = Callable[[], BlobStream]
"""Opens the upstream download (trying the binding's endpoints in order)."""


class Fill:
    """One blob being fetched into the cache (or waited for) by this process. Its state
    is written by the fill's thread and read on the event loop; every change wakes the
    loop's waiters."""

    def __init__(self, digest: Digest, repository: str, loop: asyncio.AbstractEventLoop) -> None:
        self.digest = digest
        self.repository = repository  # linked to this one; others link on their request
        self.id = uuid.uuid4().hex
        self.path = paths.upload_data_path(self.id)
        self.phase: Phase = "starting"
        self.size: int | None = None
        self.written = 0  # bytes readable from `path`
        self.readable = False  # followers may read `path` as it grows
        self.error: Exception | None = None
        self._loop = loop
        self._waiters: list[asyncio.Future[None]] = []

    # -- the thread's side ----------------------------------------------------------
    def changed(self) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
            self._loop.call_soon_threadsafe(self._wake)

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    # -- the loop's side --------------------------------------------------------------
    async def wait(self) -> None:
        """Until the next change of state or progress."""
        waiter = self._loop.create_future()
        self._waiters.append(waiter)
        await waiter

    async def ready(self) -> None:
        """Until followers can start: streaming (size known), done or failed."""
        while self.phase in ("starting", "waiting") or (
            self.phase == "streaming" and (self.size is None or not self.readable)
        ):
            await self.wait()

    async def finished(self) -> None:
        while self.phase not in ("done", "failed"):
            await self.wait()

    @property
    def over(self) -> bool:
        return self.phase in ("done", "failed")


class Fills:
    """The fills of this process, one per digest."""

    def __init__(
        self,
        db: Database,
        storage: StorageDriver,
        blobs: BlobService,
        *,
        lease_seconds: float,
        wait_seconds: float,
        max_fills: int = 32,
        slot_wait_seconds: float = 5.0,
    ) -> None:
        self.db = db
        self.storage = storage
        self.blobs = blobs
        self.lease = Lease(db, lease_seconds)
        self.wait_seconds = wait_seconds
        self.max_fills = max_fills
        self.slot_wait_seconds = slot_wait_seconds
        self._fills: dict[str, Fill] = {}
        self._threads: set[threading.Thread] = set()
        self._running = 0  # fills started and not yet forgotten (each holds a thread)
        self._slot_waiters: list[asyncio.Future[None]] = []

    async def start(self, repository: str, digest: Digest, open_blob: OpenBlob) -> Fill | None:
        """The fill of `digest` in progress in this process, or a new one (on the loop).
        At most `max_fills` run at once (each is a thread): a new one waits up to
        `slot_wait_seconds` for a slot, and None means there was none (the caller serves
        the blob without caching it)."""
        loop = asyncio.get_running_loop()
        key = str(digest)
        deadline = loop.time() + self.slot_wait_seconds
        while True:
            fill = self._fills.get(key)
            if fill is not None and not fill.over:
                return fill  # joining a fill in progress takes no slot
            if self._running < self.max_fills:
                break
            remaining = deadline - loop.time()
            if remaining <= 0:
                log.info("proxy.fill_slots_full", digest=key, max_fills=self.max_fills)
                return None
            waiter = loop.create_future()
            self._slot_waiters.append(waiter)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(waiter, remaining)
        fill = Fill(digest, repository, loop)
        self._fills[key] = fill
        self._running += 1
        thread = threading.Thread(
            target=self._run, args=(fill, open_blob), name="portside-fill", daemon=True
        )
        self._threads = {t for t in self._threads if t.is_alive()}
        self._threads.add(thread)
        thread.start()
        return fill

    def close(self, timeout: float = 10.0) -> None:
        """At shutdown: give fills in progress a moment to finish (one cut off leaves
        its lease to lapse and its upload data to the upload purge)."""
        deadline = time.monotonic() + timeout
        for thread in list(self._threads):
            thread.join(max(0.0, deadline - time.monotonic()))

    def _forget(self, fill: Fill) -> None:
        """On the loop, once per fill when its thread is done: its slot is free."""
        if self._fills.get(str(fill.digest)) is fill:
            del self._fills[str(fill.digest)]
        self._running -= 1
        waiters, self._slot_waiters = self._slot_waiters, []
        for waiter in waiters:  # they look again; those finding no slot wait again
            if not waiter.done():
                waiter.set_result(None)

    def _run(self, fill: Fill, open_blob: OpenBlob) -> None:
        digest = str(fill.digest)
        held = False
        try:
            held = self.lease.acquire(digest, fill.id)
            if not held:
                fill.phase = "waiting"
                fill.changed()
                held = self._wait_for_other(fill)
            if held:
                self._fetch(fill, open_blob)
            fill.phase = "done"
        except Exception as error:  # reported to every follower; nothing is committed
            fill.error = error
            fill.phase = "failed"
            log.warning("proxy.fill_failed", digest=digest, repo=fill.repository, error=str(error))
        finally:
            if held:
                with contextlib.suppress(Exception):  # it lapses anyway
                    self.lease.release(digest, fill.id)
            with contextlib.suppress(PathNotFound, OSError):
                self.storage.delete(paths.upload_dir(fill.id))
            fill.changed()
            with contextlib.suppress(RuntimeError):
                fill._loop.call_soon_threadsafe(self._forget, fill)

    def _wait_for_other(self, fill: Fill) -> bool:
        """Another process fetches the blob: wait until it is stored (False), or take the
        lease over if its holder stopped renewing it (True)."""
        deadline = time.monotonic() + self.wait_seconds
        while time.monotonic() < deadline:
            time.sleep(_POLL_SECONDS)
            if self.blobs.link_stored(fill.repository, fill.digest) is not None:
                return False
            if self.lease.acquire(str(fill.digest), fill.id):
                return True
        raise UpstreamUnavailable(
            f"blob {fill.digest} is being fetched by another process for longer than "
            f"{self.wait_seconds:g} s (proxy.wait_seconds)"
        )

    def _fetch(self, fill: Fill, open_blob: OpenBlob) -> None:
        if self.blobs.link_stored(fill.repository, fill.digest) is not None:
            return  # stored meanwhile (the previous holder finished)
        stream = open_blob()
        try:
            self.storage.writer(fill.path, append=False).close()
            fill.size = stream.size
            fill.readable = self.storage.local_path(fill.path) is not None
            fill.phase = "streaming"
            fill.changed()
            hasher = hashlib.new(fill.digest.algorithm)
            renewed = time.monotonic()
            batch: list[bytes] = []
            batched = 0
            for chunk in stream.chunks():
                hasher.update(chunk)
                batch.append(chunk)
                batched += len(chunk)
                if fill.size is not None and fill.written + batched > fill.size:
                    raise UpstreamUnavailable(
                        f"upstream sent more than the {fill.size} bytes it announced"
                    )
                if batched >= _BATCH:
                    self._append(fill, batch, batched)
                    batch, batched = [], 0
                    if time.monotonic() - renewed > self.lease.seconds / 3:
                        self.lease.renew(str(fill.digest), fill.id)
                        renewed = time.monotonic()
            self._append(fill, batch, batched)
        finally:
            stream.close()
        if fill.size is not None and fill.written != fill.size:
            raise UpstreamUnavailable(
                f"upstream sent {fill.written} of the {fill.size} bytes it announced"
            )
        if hasher.hexdigest() != fill.digest.hex:
            raise UpstreamUnavailable(
                f"upstream sent content with digest {fill.digest.algorithm}:"
                f"{hasher.hexdigest()} for {fill.digest}; not cached"
            )
        writer = self.storage.writer(fill.path, append=True)
        writer.commit()  # durable before the commit's transaction (as uploads do)
        self.blobs.commit_upload(fill.repository, fill.path, fill.digest, fill.written, PROXY_ACTOR)
        fill.size = fill.written
        log.info("proxy.blob_cached", digest=str(fill.digest), repo=fill.repository, size=fill.size)

    def _append(self, fill: Fill, batch: list[bytes], batched: int) -> None:
        if not batch:
            return
        writer = self.storage.writer(fill.path, append=True)
        try:
            for chunk in batch:
                writer.write(chunk)
        finally:
            writer.close()  # flushed: followers may read it now
        fill.written += batched
        fill.changed()


__all__ = ["PROXY_ACTOR", "Fill", "Fills", "Lease", "UpstreamMissing"]
