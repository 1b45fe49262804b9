"""Blocking work (database, files, password checks) off the event loop, in a bounded pool.

Each HTTP worker serves every connection on one event-loop thread; a database query or a
file write run on that thread stalls every other request of the worker meanwhile (a
busy SQLite writer lock, a PostgreSQL round trip, an fsync of a large blob). Handlers
therefore run service calls through `Offloader.run`, on a pool of threads sized to the
database connection pool (metadata.engine.POOL_SIZE): a thread never waits for a
connection, and no more calls run than connections can serve.

The pool is made on first use, so a process that never serves requests (a CLI command)
starts no threads, and a forked process gets its own.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import threading
import weakref
from collections.abc import Callable, Hashable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


class Offloader:
    def __init__(self, threads: int) -> None:
        self.threads = threads
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        # Calls in flight by key, per event loop (a future belongs to one loop).
        self._flights: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, dict[Hashable, asyncio.Future[Any]]
        ] = weakref.WeakKeyDictionary()

    @property
    def executor(self) -> ThreadPoolExecutor:
        executor = self._executor
        if executor is None:
            with self._lock:
                if self._executor is None:
                    self._executor = ThreadPoolExecutor(
                        self.threads, thread_name_prefix="portside-io"
                    )
                executor = self._executor
        return executor

    async def run(self, function: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run function(*args, **kwargs) on the pool and wait for it without blocking the
        loop; the caller's context variables (log bindings) go with it."""
        return await self.start(function, *args, **kwargs)

    def start(
        self, function: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs
    ) -> asyncio.Future[T]:
        """Start function on the pool now and return its future (to overlap it with
        other work on the loop, e.g. receiving the next chunk while this one is written)."""
        call = functools.partial(contextvars.copy_context().run, function, *args, **kwargs)
        return asyncio.get_running_loop().run_in_executor(self.executor, call)

    async def shared(
        self, key: Hashable, function: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """run(), but callers passing an equal key while a call is in flight wait for
        that call's answer (or exception) instead of starting another: after a cache is
        emptied, the requests already queued on one key cost one query, not one each.
        Only for calls whose answer is the same for all of them (the key must say
        everything that matters, such as the cache version read before the call)."""
        loop = asyncio.get_running_loop()
        flights = self._flights.get(loop)
        if flights is None:
            flights = self._flights[loop] = {}
        future = flights.get(key)
        if future is None:
            future = flights[key] = self.start(function, *args, **kwargs)

            def landed(done: asyncio.Future[Any], flights: dict[Hashable, Any] = flights) -> None:
                if flights.get(key) is done:
                    del flights[key]

            future.add_done_callback(landed)
        # shield: one caller going away (client disconnect) must not cancel the others.
        result: T = await asyncio.shield(future)
        return result

    def submit(self, function: Callable[[], object]) -> Future[object]:
        """Fire and forget (from any thread): the caller handles its own errors."""
        return self.executor.submit(function)

    def close(self) -> None:
        """Wait for running calls to finish (at shutdown) and stop the threads."""
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)
