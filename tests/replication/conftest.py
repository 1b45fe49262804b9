"""Fixtures for replication: a Portside (in process, open registry) whose endpoints may
be on loopback and whose credentials key is set, helpers to make endpoints and rules,
and to run a rule's job to its end with a real worker."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from portside.app import PortsideApp, create_app
from portside.config import load_settings
from portside.endpoints.secrets import new_key
from portside.endpoints.store import Endpoint, EndpointStore
from portside.events.outbox import Actor
from portside.jobs.replication import queue_run
from portside.jobs.runner import Worker
from portside.jobs.store import JobRecord, Jobs
from portside.replication.rules import Rule, RuleStore
from portside.replication.runs import Item, Runs

ADMIN = Actor("admin")


@dataclass
class Local:
    app: PortsideApp
    client: TestClient

    @property
    def endpoints(self) -> EndpointStore:
        return EndpointStore(self.app.ctx.db, self.app.ctx.settings)

    @property
    def rules(self) -> RuleStore:
        return RuleStore(self.app.ctx.db)

    def endpoint(self, name: str, url: str, kind: str = "distribution", **extra: Any) -> Endpoint:
        return self.endpoints.create(name=name, kind=kind, url=url, actor=ADMIN, **extra)

    def rule(self, name: str, direction: str, endpoint: str, **options: Any) -> Rule:
        return self.rules.create(
            name=name, direction=direction, endpoint=endpoint, actor=ADMIN, **options
        )

    def run(self, rule: Rule) -> tuple[JobRecord, list[Item]]:
        """Queue a manual run and let a worker run it; the job and its items."""
        job_id = queue_run(self.app.ctx.db, rule, actor=ADMIN)
        return self.finish(job_id)

    def finish(self, job_id: int) -> tuple[JobRecord, list[Item]]:
        worker = Worker(self.app.ctx, name="test-worker")
        jobs = Jobs(self.app.ctx.db)
        for _ in range(20):
            record = jobs.get(job_id)
            assert record is not None
            if record.status not in ("queued", "running"):
                break
            worker.tick()
        record = jobs.get(job_id)
        assert record is not None
        items, _ = Runs(self.app.ctx.db).items(job_id)
        return record, items


@pytest.fixture
def local(tmp_path: Path, database_url: str) -> Iterator[Local]:
    settings = load_settings(
        data_dir=tmp_path / "data",
        database={"url": database_url},
        log={"access": False, "level": "warning"},
        endpoints={"allow_private_targets": True, "chunk_bytes": 64 * 1024},
        secrets={"encryption_key": new_key()},
    )
    app = create_app(settings)
    try:
        with TestClient(app, base_url="http://registry.test") as client:
            yield Local(app, client)
    finally:
        app.ctx.close()
