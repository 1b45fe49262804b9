"""Database access for the content services: short transactions, dialect-aware upserts."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, Table, exc, select
from sqlalchemy.dialects import postgresql, sqlite

from portside.errors import Unavailable
from portside.metadata import schema as s
from portside.reference import project_of


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes for timezone-aware columns; they are UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class Database:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.is_sqlite = engine.dialect.name == "sqlite"

    @contextmanager
    def read(self) -> Iterator[Connection]:
        try:
            with self.engine.connect() as conn:
                yield conn
        except exc.OperationalError as error:
            raise Unavailable("metadata database unavailable") from error

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction. On SQLite it takes the write lock up front (BEGIN IMMEDIATE),
        so two writers queue instead of failing on lock upgrade."""
        try:
            with self.engine.connect() as conn:
                if self.is_sqlite:
                    conn.info["sqlite_begin"] = "IMMEDIATE"
                try:
                    with conn.begin():
                        yield conn
                finally:
                    conn.info.pop("sqlite_begin", None)
        except exc.OperationalError as error:
            raise Unavailable("metadata database unavailable") from error

    def insert_ignore(self, conn: Connection, table: Table, values: dict[str, Any]) -> None:
        """INSERT unless a row with the same primary/unique key exists."""
        dialect = postgresql if not self.is_sqlite else sqlite
        conn.execute(dialect.insert(table).values(**values).on_conflict_do_nothing())

    def ensure_repository(self, conn: Connection, name: str) -> int:
        self.insert_ignore(
            conn,
            s.repositories,
            {"name": name, "project": project_of(name), "created_at": utcnow()},
        )
        repo_id = conn.execute(
            select(s.repositories.c.id).where(s.repositories.c.name == name)
        ).scalar_one()
        return int(repo_id)

    def ensure_push_repository(self, conn: Connection, name: str) -> tuple[int, int | None]:
        """ensure_repository for a push: the id and, read by the same query, the quota of
        the repository's project (None: no quota, or no project row)."""
        self.insert_ignore(
            conn,
            s.repositories,
            {"name": name, "project": project_of(name), "created_at": utcnow()},
        )
        r, p = s.repositories, s.projects
        quota = select(p.c.quota_bytes).where(p.c.name == r.c.project).scalar_subquery()
        row = conn.execute(select(r.c.id, quota).where(r.c.name == name)).one()
        return int(row[0]), None if row[1] is None else int(row[1])


def repository_id(conn: Connection, name: str) -> int | None:
    value = conn.execute(
        select(s.repositories.c.id).where(s.repositories.c.name == name)
    ).scalar_one_or_none()
    return None if value is None else int(value)
