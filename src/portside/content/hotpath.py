"""Hand-written SQL for the pull hot paths (blob HEAD/GET, manifest GET/HEAD).

Building and executing a SQLAlchemy statement costs several hundred microseconds; these
few queries run on one long-lived DBAPI connection in autocommit mode instead, which
makes a manifest or blob lookup a few tens of microseconds. Only reads live here; every
write goes through SQLAlchemy transactions. Each worker serves requests on one event-loop
thread, so one connection per process is enough; it is reopened after any error.
"""

from __future__ import annotations

import contextlib
from typing import Any

from sqlalchemy import Engine

from portside.errors import Unavailable

_BLOB_SIZE = """
SELECT b.size FROM repositories r
JOIN repository_blobs l ON l.repository_id = r.id
JOIN blobs b ON b.digest = l.digest
WHERE r.name = ? AND l.digest = ?
"""
_MANIFEST_BY_DIGEST = """
SELECT m.id, m.digest, m.media_type, m.content, m.last_pulled_at FROM repositories r
JOIN manifests m ON m.repository_id = r.id
WHERE r.name = ? AND m.digest = ?
"""
_MANIFEST_BY_TAG = """
SELECT m.id, m.digest, m.media_type, m.content, m.last_pulled_at FROM repositories r
JOIN tags t ON t.repository_id = r.id
JOIN manifests m ON m.id = t.manifest_id
WHERE r.name = ? AND t.name = ?
"""


class HotQueries:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._is_sqlite = engine.dialect.name == "sqlite"
        self._connection: Any = None
        marker = "?" if engine.dialect.paramstyle == "qmark" else "%s"
        self._sql = {
            name: sql.replace("?", marker)
            for name, sql in (
                ("blob_size", _BLOB_SIZE),
                ("manifest_by_digest", _MANIFEST_BY_DIGEST),
                ("manifest_by_tag", _MANIFEST_BY_TAG),
            )
        }

    def _connect(self) -> Any:
        connection = self.engine.raw_connection()
        if not self._is_sqlite:
            connection.driver_connection.autocommit = True  # type: ignore[union-attr]
        return connection

    def _fetchone(self, name: str, params: tuple[str, str]) -> Any:
        for attempt in range(2):
            try:
                if self._connection is None:
                    self._connection = self._connect()
                cursor = self._connection.cursor()
                try:
                    cursor.execute(self._sql[name], params)
                    return cursor.fetchone()
                finally:
                    cursor.close()
            except self.engine.dialect.loaded_dbapi.Error as error:
                self.close()
                if attempt == 1:
                    raise Unavailable("metadata database unavailable") from error
        return None

    def close(self) -> None:
        if self._connection is not None:
            # invalidate() closes the DBAPI connection and keeps it out of the pool.
            with contextlib.suppress(Exception):  # it is being thrown away anyway
                self._connection.invalidate()
            self._connection = None

    def blob_size(self, repo: str, digest: str) -> int | None:
        row = self._fetchone("blob_size", (repo, digest))
        return None if row is None else int(row[0])

    def manifest(self, repo: str, reference: str, *, by_digest: bool) -> Any:
        """(id, digest, media_type, content, last_pulled_at) or None."""
        name = "manifest_by_digest" if by_digest else "manifest_by_tag"
        return self._fetchone(name, (repo, reference))
