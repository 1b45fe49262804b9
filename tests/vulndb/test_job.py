"""The scheduled `vulndb_import` job: importing changed sources only, from a local
directory and from a URL served on loopback (allowed through `vulndb.allowed_networks`,
refused without), the schedule kept in step with the configuration, and the idle
worker waking for it."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from portside.config import Settings, load_settings
from portside.context import Context, build_context
from portside.events import outbox
from portside.jobs.idle import work_waiting
from portside.jobs.kinds import KINDS
from portside.jobs.runner import Worker
from portside.jobs.schedules import Schedules
from portside.jobs.store import JobRecord, Jobs
from portside.jobs.vulndb import SCHEDULE, sync_schedule
from portside.metadata import schema as s
from portside.metadata.db import Database, utcnow
from portside.vulndb import status
from tests.vulndb import fixtures


class Served:
    """A real HTTP server on 127.0.0.1 serving one file with an ETag, answering 304 to
    a matching If-None-Match; it records the requests' conditional headers."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.requests: list[str | None] = []
        served = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                etag = '"' + hashlib.sha256(served.body).hexdigest()[:16] + '"'
                asked = self.headers.get("If-None-Match")
                served.requests.append(asked)
                if self.path != "/osv/all.zip":
                    self.send_response(404)
                    self.send_header("Content-Length", "9")
                    self.end_headers()
                    self.wfile.write(b"not found")
                    return
                if asked == etag:
                    self.send_response(304)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("ETag", etag)
                self.send_header("Content-Length", str(len(served.body)))
                self.end_headers()
                self.wfile.write(served.body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str = "/osv/all.zip") -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    server = Served(fixtures.osv_zip(tmp_path / "all.zip").read_bytes())
    yield server
    server.close()


def _settings(tmp_path: Path, database_url: str, **vulndb: Any) -> Settings:
    return load_settings(
        data_dir=tmp_path / "data",
        database={"url": database_url},
        log={"access": False, "level": "warning"},
        vulndb=vulndb,
    )


def _run(ctx: Context, force: bool = False) -> JobRecord:
    jobs = Jobs(ctx.db)
    job_id = jobs.enqueue("vulndb_import", {"force": force}, created_by="test")
    assert Worker(ctx, name="w1").tick()
    record = jobs.get(job_id)
    assert record is not None
    return record


@pytest.fixture
def context_for(tmp_path: Path, database_url: str) -> Iterator[Any]:
    built: list[Context] = []

    def make(**vulndb: Any) -> Context:
        built.append(build_context(_settings(tmp_path, database_url, **vulndb)))
        return built[-1]

    yield make
    for ctx in built:
        ctx.close()


def test_local_directory_imported_when_changed(context_for: Any, tmp_path: Path) -> None:
    directory = fixtures.osv_directory(tmp_path / "osv")
    ctx = context_for(sources=[{"path": str(directory)}])
    first = _run(ctx)
    assert first.status == "succeeded", first.error
    assert first.result == {"imported": [str(directory)], "unchanged": [], "failed": []}
    generation = status(ctx.db).generation
    assert _run(ctx).result == {"imported": [], "unchanged": [str(directory)], "failed": []}
    assert status(ctx.db).generation == generation
    # A changed file makes the next run import again (a new generation, a new event).
    (directory / "GO-2024-0001.json").write_text(
        (directory / "GO-2024-0001.json").read_text() + "\n"
    )
    assert _run(ctx).result == {"imported": [str(directory)], "unchanged": [], "failed": []}
    after = status(ctx.db).generation
    assert after is not None
    assert generation is not None
    assert after > generation
    updates = [e for e in outbox.recent(ctx.db) if e.type == outbox.VULNDB_UPDATED]
    assert len(updates) == 2
    assert updates[-1].data["generation"] == after
    assert _run(ctx, force=True).result == {
        "imported": [str(directory)],
        "unchanged": [],
        "failed": [],
    }


def test_url_on_loopback_with_allowlist(context_for: Any, served: Served) -> None:
    ctx = context_for(sources=[{"url": served.url()}], allowed_networks=["127.0.0.1/32"])
    first = _run(ctx)
    assert first.status == "succeeded", first.error
    assert first.result == {"imported": [served.url()], "unchanged": [], "failed": []}
    (source,) = status(ctx.db).sources
    assert (source.name, source.advisories) == (served.url(), 8)
    second = _run(ctx)
    assert second.result == {"imported": [], "unchanged": [served.url()], "failed": []}
    assert served.requests[0] is None
    assert served.requests[1] is not None  # the ETag of the first answer, sent back


def test_url_refused_without_allowlist(context_for: Any, served: Served) -> None:
    ctx = context_for(sources=[{"url": served.url()}])
    record = _run(ctx)
    assert record.status == "failed"
    assert record.error is not None
    assert "refused" in record.error
    assert "loopback" in record.error
    assert served.requests == []  # never contacted
    assert status(ctx.db).sources == ()


def test_one_failing_source_does_not_stop_the_others(
    context_for: Any, served: Served, tmp_path: Path
) -> None:
    directory = fixtures.osv_directory(tmp_path / "osv")
    missing = served.url("/nothing.zip")
    ctx = context_for(
        sources=[{"url": missing}, {"path": str(directory)}], allowed_networks=["127.0.0.0/8"]
    )
    record = _run(ctx)
    assert record.status == "succeeded", record.error
    assert record.result is not None
    assert record.result["imported"] == [str(directory)]
    assert record.result["failed"] == [
        {"source": missing, "error": f"{missing} answered 404: not found"}
    ]


def test_schedule_follows_configuration_and_wakes_idle_worker(
    tmp_path: Path, database_url: str, db: Database
) -> None:
    configured = _settings(
        tmp_path, database_url, sources=[{"path": str(tmp_path)}], schedule="15 4 * * *"
    )
    sync_schedule(db, configured)
    schedule = Schedules(db).get(SCHEDULE)
    assert schedule is not None
    assert (schedule.kind, schedule.cron, schedule.params) == (
        "vulndb_import",
        "15 4 * * *",
        {"force": False},
    )
    # The idle worker (plain SQL, no SQLAlchemy) sees the schedule once it is due.
    with db.read() as conn:

        def query(sql: str) -> list[tuple[Any, ...]]:
            return [tuple(r) for r in conn.exec_driver_sql(sql).fetchall()]

        assert not work_waiting(query, None, timedelta(seconds=60))
    with db.write() as conn:
        conn.execute(
            update(s.schedules)
            .where(s.schedules.c.name == SCHEDULE)
            .values(next_run_at=utcnow() - timedelta(seconds=1))
        )
    with db.read() as conn:
        assert work_waiting(query, None, timedelta(seconds=60))
    # Without sources the schedule goes away.
    sync_schedule(db, _settings(tmp_path, database_url))
    assert Schedules(db).get(SCHEDULE) is None


def test_a_queued_import_wakes_the_idle_worker(db: Database) -> None:
    """The idle state watches the kinds the full worker runs (sorted(KINDS))."""
    Jobs(db).enqueue("vulndb_import", {"force": False}, created_by="test")
    with db.read() as conn:

        def query(sql: str) -> list[tuple[Any, ...]]:
            return [tuple(r) for r in conn.exec_driver_sql(sql).fetchall()]

        assert work_waiting(query, sorted(KINDS), timedelta(seconds=60))
        assert not work_waiting(query, ["gc"], timedelta(seconds=60))


def test_download_larger_than_allowed_fails_cleanly(context_for: Any, served: Served) -> None:
    assert len(served.body) > 1024
    ctx = context_for(
        sources=[{"url": served.url()}], allowed_networks=["127.0.0.1/32"], max_download_bytes=1024
    )
    record = _run(ctx)
    assert record.status == "failed"
    assert record.error is not None
    assert "larger than 1024 bytes" in record.error
    assert status(ctx.db).sources == ()
    assert list((Path(ctx.settings.data_dir) / "tmp").iterdir()) == []  # no download left
