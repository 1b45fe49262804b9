"""`portside db copy`: a populated SQLite registry (images pushed through the API, users,
projects, members, a robot, a webhook, events, jobs, the token signing key) copied to a
real PostgreSQL database, served from there by `portside serve` (pull, push), and copied
back to a new SQLite file, served again. Plus its refusals: a non-empty target without
--replace, an unreachable target, a source at another schema revision.

PostgreSQL-only (tests/cluster/conftest.py).
"""

from __future__ import annotations

import base64
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, func, inspect, select, text

from portside.jobs.store import Jobs
from portside.metadata import schema as s
from portside.metadata.copy import CopyError, copy_database, head_revision
from portside.metadata.engine import upgrade
from tests.auth.conftest import PASSWORD, basic, populated
from tests.cluster.conftest import postgres_database
from tests.durability.server import PORTSIDE, ServerProcess, free_port, portside_env, sha256
from tests.mgmt.helpers import Content, push_content

REPO = "acme/team/app"


def _counts(url: str) -> dict[str, int]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return {
                t.name: conn.execute(select(func.count()).select_from(t)).scalar_one()
                for t in s.metadata.sorted_tables
            }
    finally:
        engine.dispose()


def _db_copy(source_url: str, data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PORTSIDE, "db", "copy", "--data-dir", str(data_dir), *args],
        env=portside_env(source_url),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _pull_everything(url: str, content: Content) -> None:
    with httpx.Client(base_url=url, headers=basic("admin"), timeout=60) as client:
        image = content.image
        got = client.get(f"/v2/{REPO}/manifests/v1", headers={"accept": image.manifest.media_type})
        assert got.status_code == 200, got.text
        assert got.content == image.manifest.body
        for digest, size in content.blobs.items():
            blob = client.get(f"/v2/{REPO}/blobs/{digest}")
            assert blob.status_code == 200, blob.text
            assert len(blob.content) == size
        assert sorted(client.get(f"/v2/{REPO}/tags/list").json()["tags"]) == ["multi", "v1"]
        # New rows get fresh ids (sequences were moved past the copied ones).
        data = f"pushed after the copy to {url}".encode()
        pushed = client.post(f"/v2/{REPO}/blobs/uploads/?digest={sha256(data)}", content=data)
        assert pushed.status_code == 201, pushed.text
        made = client.post("/api/v1/projects", json={"name": f"after{free_port()}"})
        assert made.status_code == 201, made.text


@pytest.fixture
def source(tmp_path: Path) -> Iterator[tuple[str, Path, Content, str]]:
    """(SQLite URL, data directory, pushed content, robot secret) of a populated registry."""
    url = f"sqlite:///{tmp_path / 'source.db'}"
    upgrade(url)
    with populated(tmp_path, url, webhooks={"allow_private_targets": True}) as registry:
        admin = registry.as_caller(basic("admin"))
        content = push_content(admin, REPO)
        robot, secret = registry.auth.robots.create(
            registry.auth.accounts.identity_for("admin"),
            "ci",
            {"acme": frozenset({"pull", "push"})},
            project="acme",
        )
        hook = admin.post(
            "/api/v1/projects/acme/webhooks",
            json={
                "name": "hook",
                "target_url": "http://127.0.0.1:9/never-called",
                "event_types": ["artifact.pushed"],
            },
        )
        assert hook.status_code == 201, hook.text
        Jobs(registry.app.ctx.db).enqueue("probe", {"seconds": 0}, project=None, created_by="t")
        registry.token(f"repository:{REPO}:pull", user="admin")  # creates the signing key
        registry.app.ctx.events.flush()
        yield url, tmp_path / "data", content, f"{robot.name}:{secret}"


def test_sqlite_to_postgresql_and_back(
    source: tuple[str, Path, Content, str], postgres_server: str, tmp_path: Path
) -> None:
    sqlite_url, data_dir, content, _ = source
    before = _counts(sqlite_url)
    for table in ("users", "projects", "project_members", "robots", "manifests", "tags",
                  "blobs", "events", "jobs", "webhook_policies", "signing_keys"):  # fmt: skip
        assert before[table] > 0, table
    with postgres_database(postgres_server, migrate=False) as pg_url:
        done = _db_copy(sqlite_url, data_dir, "--to", pg_url)
        assert done.returncode == 0, done.stderr
        assert "verified" in done.stdout
        assert "MISMATCH" not in done.stdout
        assert _counts(pg_url) == before

        # A second copy into the now full target is refused, naming the fix.
        again = _db_copy(sqlite_url, data_dir, "--to", pg_url)
        assert again.returncode == 1
        assert "is not empty" in again.stderr
        assert "--replace" in again.stderr
        replaced = _db_copy(sqlite_url, data_dir, "--to", pg_url, "--replace")
        assert replaced.returncode == 0, replaced.stderr
        assert _counts(pg_url) == before

        # Served from PostgreSQL, on the same storage: everything pulls, pushes work.
        server = ServerProcess(
            data_dir=data_dir, database_url=pg_url, log_dir=tmp_path, workers=1
        ).start()
        try:
            _pull_everything(server.url, content)
        finally:
            server.stop()
        assert not server.internal_errors()

        # And back, into a new SQLite file, served again.
        back_url = f"sqlite:///{tmp_path / 'back.db'}"
        back = _db_copy(pg_url, data_dir, "--to", back_url)
        assert back.returncode == 0, back.stderr
        assert _counts(back_url) == _counts(pg_url)
        server = ServerProcess(
            data_dir=data_dir, database_url=back_url, log_dir=tmp_path, workers=1
        ).start()
        try:
            _pull_everything(server.url, content)
        finally:
            server.stop()
        assert not server.internal_errors()


def test_an_unreachable_target_is_named(
    source: tuple[str, Path, Content, str], tmp_path: Path
) -> None:
    sqlite_url, data_dir, _, _ = source
    target = f"postgresql+psycopg://portside:secret-pw@127.0.0.1:{free_port()}/portside"
    done = _db_copy(sqlite_url, data_dir, "--to", target)
    assert done.returncode == 1
    assert "cannot reach the target database" in done.stderr
    assert "secret-pw" not in done.stderr + done.stdout
    assert "Traceback" not in done.stderr


def test_a_source_at_another_revision_is_refused(
    source: tuple[str, Path, Content, str], postgres_server: str
) -> None:
    sqlite_url, data_dir, _, _ = source
    engine = create_engine(sqlite_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0005'"))
    engine.dispose()
    with postgres_database(postgres_server, migrate=False) as pg_url:
        done = _db_copy(sqlite_url, data_dir, "--to", pg_url)
        assert done.returncode == 1
        assert "schema revision 0005" in done.stderr
        assert head_revision() in done.stderr
        engine = create_engine(pg_url)
        try:
            assert inspect(engine).get_table_names() == []  # not even migrated
        finally:
            engine.dispose()


def test_copy_refuses_to_copy_onto_itself(source: tuple[str, Path, Content, str]) -> None:
    sqlite_url, _, _, _ = source
    with pytest.raises(CopyError, match="the target is the source"):
        copy_database(sqlite_url, sqlite_url)


def test_robot_credentials_survive_the_copy(
    source: tuple[str, Path, Content, str], postgres_server: str, tmp_path: Path
) -> None:
    sqlite_url, data_dir, _, robot = source
    with postgres_database(postgres_server, migrate=False) as pg_url:
        assert _db_copy(sqlite_url, data_dir, "--to", pg_url).returncode == 0
        env = {"PORTSIDE_AUTH__CACHE_SECONDS": "0"}
        server = ServerProcess(
            data_dir=data_dir, database_url=pg_url, log_dir=tmp_path, workers=1, env=env
        ).start()
        try:
            header = {"authorization": "Basic " + base64.b64encode(robot.encode()).decode()}
            got = httpx.get(f"{server.url}/v2/{REPO}/tags/list", headers=header, timeout=60)
            assert got.status_code == 200, got.text
            wrong = {"authorization": "Basic " + base64.b64encode(b"admin:nope").decode()}
            assert httpx.get(f"{server.url}/v2/{REPO}/tags/list", headers=wrong).status_code == 401
            right = {
                "authorization": "Basic " + base64.b64encode(f"admin:{PASSWORD}".encode()).decode()
            }
            assert httpx.get(f"{server.url}/v2/{REPO}/tags/list", headers=right).status_code == 200
        finally:
            server.stop()
