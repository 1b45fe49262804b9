"""Copying all metadata from one database to another (`portside db copy`): SQLite to
PostgreSQL when a registry outgrows one machine, or back, or between two servers.

Run it with the registry stopped or in read-only mode (`registry.read_only`), so the
source does not change under the copy. The steps, each with a clear error:

1. Both databases are reached (an unreachable target is named with its host, never its
   password). The source must be at the revision this Portside's migrations end at: a
   copy between two schemas would be a migration, which is `portside serve`'s job.
2. The target is migrated to that same revision, and must hold no rows at all, unless
   `replace` (`--replace`): then its rows are deleted first, in the same transaction.
3. Tables are copied in foreign-key order (parents first), each streamed from the source
   in primary-key order and inserted in batches of `batch_size` rows: memory stays bounded
   by one batch whatever the size of the database. All inserts run in ONE transaction on
   the target: a failed copy leaves the target as it was.
4. Ids are copied as they are (tags, links and events point at them), so PostgreSQL's
   sequences are moved past the highest copied id, or the next insert would collide.
   (SQLite's AUTOINCREMENT follows explicit ids by itself.)
5. Verification, after commit: per table, the row count and an order-independent
   checksum of the primary keys (a sum of their hashes) read back from both sides must
   match; any difference is reported as a failure naming the table.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, Table, delete, func, insert, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from portside.metadata import schema as s
from portside.metadata.engine import alembic_config, make_engine, upgrade

DEFAULT_BATCH = 1000


class CopyError(Exception):
    """Why the copy cannot start or did not verify, in words for the operator."""


@dataclass(frozen=True, slots=True)
class TableResult:
    table: str
    source_rows: int
    target_rows: int
    source_keys: str
    target_keys: str

    @property
    def ok(self) -> bool:
        return self.source_rows == self.target_rows and self.source_keys == self.target_keys


def describe(url: str) -> str:
    """The URL without its password, for messages."""
    return make_url(url).render_as_string(hide_password=True)


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def _reach(engine: Engine, which: str, url: str) -> None:
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as error:
        reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
        raise CopyError(f"cannot reach the {which} database {describe(url)}: {reason}") from None


def _tables() -> list[Table]:
    return list(s.metadata.sorted_tables)  # parents before children


def _count(conn: Connection, table: Table) -> int:
    return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def _key_checksum(conn: Connection, table: Table, batch_size: int) -> str:
    """A sum of the hashes of every primary key, independent of row order (collations
    differ between SQLite and PostgreSQL), streamed."""
    columns = list(table.primary_key.columns)
    total = 0
    result = conn.execution_options(yield_per=batch_size).execute(select(*columns))
    for row in result:
        key = "\x1f".join(str(value) for value in row)
        total = (total + int.from_bytes(hashlib.sha256(key.encode()).digest()[:8])) % 2**64
    return f"{total:016x}"


def _rows(conn: Connection, table: Table, batch_size: int) -> Iterable[list[dict[str, Any]]]:
    order = list(table.primary_key.columns)
    result = conn.execution_options(yield_per=batch_size).execute(select(table).order_by(*order))
    for partition in result.partitions(batch_size):
        yield [dict(row._mapping) for row in partition]


def _reset_sequences(conn: Connection) -> None:
    """PostgreSQL: each serial id's sequence continues after the highest copied id."""
    for table in _tables():
        columns = list(table.primary_key.columns)
        if len(columns) != 1 or columns[0].type.python_type is not int:
            continue
        sequence = conn.execute(
            text("SELECT pg_get_serial_sequence(:table, :column)"),
            {"table": table.name, "column": columns[0].name},
        ).scalar_one()
        if sequence is None:
            continue  # an integer key that is not generated (retention_policies)
        highest = conn.execute(select(func.max(columns[0]))).scalar_one()
        conn.execute(
            text("SELECT setval(:sequence, :next, false)"),
            {"sequence": sequence, "next": (highest or 0) + 1},
        )


def copy_database(
    source_url: str,
    target_url: str,
    *,
    replace: bool = False,
    batch_size: int = DEFAULT_BATCH,
    progress: Callable[[str, int], None] | None = None,
) -> list[TableResult]:
    """Copy every table from source to target (see the module docstring); returns the
    per-table verification. Raises CopyError when it cannot start."""
    if make_url(source_url) == make_url(target_url):
        raise CopyError("the target is the source database: name another database")
    source = make_engine(source_url)
    target = make_engine(target_url)
    try:
        _reach(source, "source", source_url)
        _reach(target, "target", target_url)
        expected = head_revision()
        found = current_revision(source)
        if found != expected:
            raise CopyError(
                f"the source database {describe(source_url)} is at schema revision "
                f"{found or '(none)'}, this Portside's is {expected}: start this version "
                "of `portside serve` on it once (it migrates), or copy with the version "
                "that matches"
            )
        target_found = current_revision(target)
        if target_found not in (None, expected):
            raise CopyError(
                f"the target database {describe(target_url)} is at schema revision "
                f"{target_found}, not {expected}: use an empty database"
            )
        upgrade(target_url)
        with target.begin() as out:
            filled = [t.name for t in _tables() if _count(out, t)]
            if filled and not replace:
                raise CopyError(
                    f"the target database {describe(target_url)} is not empty (rows in "
                    f"{', '.join(filled)}): pass --replace to delete them and copy over"
                )
            for table in reversed(_tables()):
                out.execute(delete(table))
            with source.connect() as into:
                for table in _tables():
                    copied = 0
                    for batch in _rows(into, table, batch_size):
                        out.execute(insert(table), batch)
                        copied += len(batch)
                        if progress is not None:
                            progress(table.name, copied)
            if target.dialect.name == "postgresql":
                _reset_sequences(out)
        return verify(source, target, batch_size)
    finally:
        source.dispose()
        target.dispose()


def verify(source: Engine, target: Engine, batch_size: int = DEFAULT_BATCH) -> list[TableResult]:
    results = []
    with source.connect() as a, target.connect() as b:
        for table in _tables():
            results.append(
                TableResult(
                    table.name,
                    _count(a, table),
                    _count(b, table),
                    _key_checksum(a, table, batch_size),
                    _key_checksum(b, table, batch_size),
                )
            )
    return results
