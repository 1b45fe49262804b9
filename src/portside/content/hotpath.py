"""Hand-written SQL for the pull hot paths (blob HEAD/GET, manifest GET/HEAD), and a
validated in-process cache of their answers.

Building and executing a SQLAlchemy statement costs several hundred microseconds; these
few queries run on long-lived DBAPI connections in autocommit mode instead, which makes a
manifest or blob lookup a few tens of microseconds. Only reads live here; every write
goes through SQLAlchemy transactions.

Threads: the queries run on the blocking-work pool (portside.offload), so each thread
gets its own connection (a DBAPI connection is never shared between threads); a
connection is reopened after any error.

The cache (SQLite only): answers are kept with the database's `PRAGMA data_version` as
one connection (the probe) saw it before the query ran, and served only while the probe
still reads the same value. SQLite changes that value whenever any other connection, in
this process or another, commits: so a cached answer is exactly as fresh as a query
would be, across all workers on the database, never stale. Any commit (an audit batch, a
push) empties the cache; it refills on the next lookups. The probe is a read of SQLite's
shared-memory WAL index, no disk I/O and measured at ~4 µs; it has busy_timeout 0, so
it never waits (on SQLITE_BUSY the caller treats it as a miss and queries on the pool).
This is what lets a cache hit be answered on the event loop without blocking it. On
PostgreSQL nothing is cached (there is no equally cheap check; every lookup is a query,
run on the pool).
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any

from sqlalchemy import Engine

from portside.content.pull_policy import ACTIVE
from portside.errors import Unavailable

_BLOB_SIZE = """
SELECT b.size FROM repositories r
JOIN repository_blobs l ON l.repository_id = r.id
JOIN blobs b ON b.digest = l.digest
WHERE r.name = ? AND l.digest = ?
"""
# The last column says whether the repository's project has a pull policy on
# (content.pull_policy.ACTIVE): read with the manifest, so projects without one pay nothing
# more.
_MANIFEST_BY_DIGEST = """
SELECT m.id, m.digest, m.media_type, m.content, m.last_pulled_at, ACTIVE
FROM repositories r
JOIN manifests m ON m.repository_id = r.id
LEFT JOIN projects p ON p.name = r.project
WHERE r.name = ? AND m.digest = ?
"""
_MANIFEST_BY_TAG = """
SELECT m.id, m.digest, m.media_type, m.content, m.last_pulled_at, ACTIVE
FROM repositories r
JOIN tags t ON t.repository_id = r.id
JOIN manifests m ON m.id = t.manifest_id
LEFT JOIN projects p ON p.name = r.project
WHERE r.name = ? AND t.name = ?
"""

# Bounds of the cache, per process: entries, their bytes, and the largest one kept.
_CACHE_ENTRIES = 4096
_CACHE_BYTES = 32 * 1024 * 1024
_CACHE_LARGEST = 1024 * 1024


class _Miss:
    __slots__ = ()


MISS: Any = _Miss()


class HotQueries:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._is_sqlite = engine.dialect.name == "sqlite"
        self._local = threading.local()
        self._lock = threading.Lock()
        self._open: list[Any] = []  # every thread's connection, for close()
        self._probe: Any = None
        self._probe_cursor: Any = None
        self._probe_lock = threading.Lock()
        self._cache: dict[tuple[str, str, str], Any] = {}
        self._cache_version: int | None = None
        self._cache_bytes = 0
        self.cache_enabled = self._is_sqlite
        marker = "?" if engine.dialect.paramstyle == "qmark" else "%s"
        self._sql = {
            name: sql.replace("?", marker).replace("ACTIVE", ACTIVE)
            for name, sql in (
                ("blob_size", _BLOB_SIZE),
                ("manifest_by_digest", _MANIFEST_BY_DIGEST),
                ("manifest_by_tag", _MANIFEST_BY_TAG),
            )
        }

    # -- connections ------------------------------------------------------------------
    def _connect(self) -> Any:
        connection = self.engine.raw_connection()
        if not self._is_sqlite:
            connection.driver_connection.autocommit = True  # type: ignore[union-attr]
        with self._lock:
            self._open.append(connection)
        return connection

    def _discard(self, connection: Any) -> None:
        with self._lock, contextlib.suppress(ValueError):
            self._open.remove(connection)
        # invalidate() closes the DBAPI connection and keeps it out of the pool.
        with contextlib.suppress(Exception):  # it is being thrown away anyway
            connection.invalidate()

    def _fetchone(self, name: str, params: tuple[str, str]) -> Any:
        local = self._local
        for attempt in range(2):
            connection = getattr(local, "connection", None)
            try:
                if connection is None:
                    connection = local.connection = self._connect()
                cursor = connection.cursor()
                try:
                    cursor.execute(self._sql[name], params)
                    return cursor.fetchone()
                finally:
                    cursor.close()
            except self.engine.dialect.loaded_dbapi.Error as error:
                local.connection = None
                if connection is not None:
                    self._discard(connection)
                if attempt == 1:
                    raise Unavailable("metadata database unavailable") from error
        return None

    def close(self) -> None:
        """Close every connection (at shutdown); threads that query again reconnect."""
        with self._lock:
            connections, self._open = self._open, []
        for connection in connections:
            with contextlib.suppress(Exception):
                connection.invalidate()
        self._local = threading.local()
        with self._probe_lock:
            probe, self._probe = self._probe, None
        if probe is not None:
            with contextlib.suppress(Exception):
                probe.invalidate()
        self._clear(None)

    # -- the cache --------------------------------------------------------------------
    def version(self) -> int | None:
        """The probe's `PRAGMA data_version`, or None when nothing may be served from the
        cache (PostgreSQL, or the probe failed or would have to wait)."""
        if not self.cache_enabled:
            return None
        with self._probe_lock:
            try:
                if self._probe is None:
                    self._probe = self.engine.raw_connection()
                    self._probe.driver_connection.execute("PRAGMA busy_timeout=0")
                    self._probe_cursor = self._probe.driver_connection.cursor()
                cursor = self._probe_cursor
                cursor.execute("PRAGMA data_version")
                return int(cursor.fetchone()[0])
            except self.engine.dialect.loaded_dbapi.Error:
                if self._probe is not None:
                    with contextlib.suppress(Exception):
                        self._probe.invalidate()
                self._probe = None
                return None

    def cached(self, name: str, a: str, b: str) -> tuple[int | None, Any]:
        """(version, answer) where answer is MISS unless cached and still current; pass
        the version on to the lookup that fills the cache."""
        version = self.version()
        if version is None:
            return None, MISS
        if version != self._cache_version:
            self._clear(version)
            return version, MISS
        return version, self._cache.get((name, a, b), MISS)

    def peek(self, version: int | None, key: tuple[str, str, str]) -> Any:
        """A cached answer under `version` (as cached() returned it), without probing
        again; None if there is none (so never remember None)."""
        if version is None or version != self._cache_version:
            return None
        return self._cache.get(key)

    def remember(self, version: int | None, key: tuple[str, str, str], value: Any) -> None:
        """Cache a small derived answer (a pull-policy decision) under `version`."""
        self._remember(version, key, value, 0)

    def _clear(self, version: int | None) -> None:
        with self._lock:
            self._cache = {}
            self._cache_bytes = 0
            self._cache_version = version

    def _remember(
        self, version: int | None, key: tuple[str, str, str], row: Any, size: int
    ) -> None:
        if version is None or row is None or size > _CACHE_LARGEST:
            return
        with self._lock:
            # Only under the version it was read after: a newer commit has cleared it.
            if version != self._cache_version:
                return
            if key not in self._cache:
                while self._cache and (
                    len(self._cache) >= _CACHE_ENTRIES or self._cache_bytes + size > _CACHE_BYTES
                ):
                    oldest = next(iter(self._cache))
                    self._cache_bytes -= _size_of(self._cache.pop(oldest))
                self._cache_bytes += size
            self._cache[key] = row

    # -- the queries ------------------------------------------------------------------
    def blob_size(self, repo: str, digest: str, version: int | None = None) -> int | None:
        row = self._fetchone("blob_size", (repo, digest))
        size = None if row is None else int(row[0])
        self._remember(version, ("blob_size", repo, digest), size, 0)
        return size

    def manifest(
        self, repo: str, reference: str, *, by_digest: bool, version: int | None = None
    ) -> Any:
        """(id, digest, media_type, content, last_pulled_at, policed) or None."""
        name = "manifest_by_digest" if by_digest else "manifest_by_tag"
        row = self._fetchone(name, (repo, reference))
        if row is not None:
            row = (row[0], row[1], row[2], bytes(row[3]), row[4], bool(row[5]))
            self._remember(version, (name, repo, reference), row, len(row[3]))
        return row


def _size_of(row: Any) -> int:
    return len(row[3]) if isinstance(row, tuple) else 0
