"""Fixtures for the job runner tests: the metadata database as the job store sees it,
settings with fast job timings, the services a worker runs jobs with, and a populated
registry with authentication on for the jobs API."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from sqlalchemy import update

from portside.auth import passwords
from portside.config import Settings, load_settings
from portside.context import Context, build_context
from portside.jobs.schedules import Schedules
from portside.jobs.store import Jobs
from portside.metadata import schema as s
from portside.metadata.db import Database, utcnow
from portside.metadata.engine import make_engine
from tests.auth.conftest import Registry, populated

# Fast enough for tests, and valid (lost_after must be more than twice the heartbeat).
FAST_JOBS = {
    "poll_seconds": 0.05,
    "heartbeat_seconds": 0.1,
    "lost_after_seconds": 1.0,
    "max_attempts": 3,
}


def fast_settings(tmp_path: Path, database_url: str, **jobs: Any) -> Settings:
    return load_settings(
        data_dir=tmp_path / "data",
        database={"url": database_url},
        log={"access": False, "level": "warning"},
        jobs=FAST_JOBS | jobs,
    )


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    engine = make_engine(database_url)
    yield Database(engine)
    engine.dispose()


@pytest.fixture
def jobs(db: Database) -> Jobs:
    return Jobs(db)


@pytest.fixture
def schedules(db: Database) -> Schedules:
    return Schedules(db)


@pytest.fixture
def services(tmp_path: Path, database_url: str) -> Iterator[Context]:
    """What `portside worker` builds: the services on this test's database."""
    ctx = build_context(fast_settings(tmp_path, database_url))
    yield ctx
    ctx.close()


def set_job(db: Database, job_id: int, **values: Any) -> None:
    """Change a job row behind the store's back (to age it, or fake a takeover)."""
    with db.write() as conn:
        conn.execute(update(s.jobs).where(s.jobs.c.id == job_id).values(**values))


def set_schedule(db: Database, name: str, **values: Any) -> None:
    with db.write() as conn:
        conn.execute(update(s.schedules).where(s.schedules.c.name == name).values(**values))


def messages(jobs: Jobs, job_id: int) -> list[str]:
    return [line.message for line in jobs.log(job_id)]


def ago(seconds: float) -> datetime:
    return utcnow() - timedelta(seconds=seconds)


@pytest.fixture
def registry(tmp_path: Path, database_url: str) -> Iterator[Registry]:
    """Auth on: `admin`, one user per role in the private project `acme`, `outsider`."""
    with populated(tmp_path, database_url) as built:
        yield built


@pytest.fixture
def cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """The cheapest argon2 parameters (the API tests sign in over Basic many times)."""
    monkeypatch.setattr(
        passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    )
