"""End to end through a real `portside serve`: `vulndb.sources` in the environment
becomes the `vulndb-import` schedule at start-up; once due, the idle job worker wakes,
runs the import, and GET /api/v1/vulndb shows the data."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import update

from portside.jobs.schedules import Schedules
from portside.jobs.vulndb import SCHEDULE
from portside.metadata import schema as s
from portside.metadata.db import Database, utcnow
from tests.durability.server import ServerProcess
from tests.vulndb import fixtures


def test_configured_source_is_imported_by_the_server_worker(
    tmp_path: Path, database_url: str, db: Database
) -> None:
    directory = fixtures.osv_directory(tmp_path / "osv")
    logs = tmp_path / "logs"
    logs.mkdir()
    server = ServerProcess(
        data_dir=tmp_path / "data",
        database_url=database_url,
        log_dir=logs,
        env={
            "PORTSIDE_JOBS__POLL_SECONDS": "0.2",
            "PORTSIDE_VULNDB__SOURCES": json.dumps([{"path": str(directory)}]),
            "PORTSIDE_VULNDB__SCHEDULE": "0 4 * * *",
        },
    )
    try:
        server.start()
        schedule = Schedules(db).get(SCHEDULE)
        assert schedule is not None, server.log_tail()
        assert (schedule.kind, schedule.cron) == ("vulndb_import", "0 4 * * *")
        with db.write() as conn:  # make it due now rather than at 04:00
            conn.execute(
                update(s.schedules)
                .where(s.schedules.c.name == SCHEDULE)
                .values(next_run_at=utcnow() - timedelta(seconds=1))
            )
        deadline = time.monotonic() + 60
        body: dict[str, Any] = {}
        while time.monotonic() < deadline:
            body = httpx.get(f"{server.url}/api/v1/vulndb", timeout=10).json()
            if body["sources"]:
                break
            time.sleep(0.2)
        assert body["sources"], server.log_tail()
        assert body["advisories"] == 8
        assert body["sources"][0]["name"] == str(directory)
    finally:
        server.stop()
