"""`portside usage`: tables and JSON on the database a (running) app uses."""

from __future__ import annotations

import json
import os
from typing import Any

from click.testing import CliRunner, Result
from starlette.testclient import TestClient

from portside.app import PortsideApp
from portside.cli import main
from portside.config import Settings
from tests.api.helpers import push_blob, push_image

SHARED = b"shared layer" * 200  # 2400 bytes
OWN = b"own layer" * 1000  # 9000 bytes


def run(settings: Settings, *args: str) -> Result:
    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("PORTSIDE_")}
    env["PORTSIDE_DATABASE__URL"] = settings.database_url
    return CliRunner().invoke(main, ["usage", *args, "--data-dir", str(settings.data_dir)], env=env)


def ok(settings: Settings, *args: str) -> str:
    result = run(settings, *args)
    assert result.exit_code == 0, result.output
    return result.output


def as_json(settings: Settings, *args: str) -> Any:
    return json.loads(ok(settings, *args, "--json"))


def populate(app: PortsideApp, client: TestClient) -> None:
    app.ctx.auth.projects.create("team", quota_bytes=20 * 1024)
    push_blob(client, "team/app", SHARED)
    push_blob(client, "team/app", OWN)
    push_blob(client, "other/app", SHARED)


def test_one_project(app: PortsideApp, settings: Settings, client: TestClient) -> None:
    populate(app, client)
    lines = ok(settings, "team").splitlines()
    assert lines[0].split() == [
        "PROJECT",
        "QUOTA",
        "USED",
        "USE%",
        "UNIQUE",
        "SHARED",
        "REPOSITORIES",
    ]
    assert lines[1].split() == [
        "team", "20.0", "KiB", "11.1", "KiB", "56%", "8.8", "KiB", "2.3", "KiB", "1",
    ]  # fmt: skip
    assert len(lines) == 2
    body = as_json(settings, "team", "--repositories")
    assert body == {
        "name": "team",
        "quota_bytes": 20 * 1024,
        "used_bytes": len(SHARED) + len(OWN),
        "unique_bytes": len(OWN),
        "shared_bytes": len(SHARED),
        "manifest_bytes": 0,
        "repository_count": 1,
        "repositories": [
            {
                "name": "team/app",
                "used_bytes": len(SHARED) + len(OWN),
                "unique_bytes": len(OWN),
                "shared_bytes": len(SHARED),
                "manifest_bytes": 0,
            }
        ],
    }
    table = ok(settings, "team", "--repositories").splitlines()
    assert table[3].split() == ["REPOSITORY", "USED", "UNIQUE", "SHARED"]
    assert table[4].split() == ["team/app", "11.1", "KiB", "8.8", "KiB", "2.3", "KiB"]


def test_every_project_and_totals(app: PortsideApp, settings: Settings, client: TestClient) -> None:
    populate(app, client)
    push_image(client, "other/web", "v1")
    output = ok(settings)
    rows = {line.split()[0]: line.split() for line in output.splitlines()[1:3]}
    assert sorted(rows) == ["other", "team"]
    assert (rows["other"][1], rows["other"][4]) == ("-", "-")  # no quota, no percentage
    assert "stored:" in output
    assert "unreferenced: 0 B" in output
    body = as_json(settings)
    assert {p["name"] for p in body["projects"]} == {"other", "team"}
    assert body["stored_bytes"] == body["blob_bytes"] + body["manifest_bytes"]
    assert body["projects_used_bytes"] == body["stored_bytes"] + len(SHARED)
    detailed = as_json(settings, "--repositories")
    other = next(p for p in detailed["projects"] if p["name"] == "other")
    assert [r["name"] for r in other["repositories"]] == ["other/app", "other/web"]
    assert "project other:" in ok(settings, "--repositories")


def test_unknown_project(settings: Settings, client: TestClient) -> None:
    result = run(settings, "nothing")
    assert result.exit_code == 1
    assert "error: no project 'nothing'" in result.output
