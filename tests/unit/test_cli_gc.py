"""`portside gc`: dry run and run from the command line, on the database and storage a
(running) app uses."""

from __future__ import annotations

import os
from datetime import timedelta

import click
import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from portside.app import PortsideApp
from portside.cli import main
from portside.commands.gc import parse_duration
from portside.config import Settings
from tests.api.helpers import push_blob, push_image


def run_gc(settings: Settings, *args: str) -> str:
    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("PORTSIDE_")}
    env["PORTSIDE_DATABASE__URL"] = settings.database_url
    result = CliRunner().invoke(
        main, ["gc", "--data-dir", str(settings.data_dir), *args], env=env, catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    return result.output


def test_dry_run_then_run(app: PortsideApp, settings: Settings, client: TestClient) -> None:
    push_image(client, "team/app", "v1")
    orphan = b"never referenced" * 100
    digest = push_blob(client, "team/app", orphan)

    dry = run_gc(settings, "--dry-run", "--grace-period", "0")
    assert f"would delete blob {digest} ({len(orphan)} bytes): no repository links it" in dry
    assert f"would delete link team/app -> {digest}" in dry
    assert dry.rstrip().endswith(f"freeing {len(orphan)} bytes (1.6 KiB)")
    assert client.head(f"/v2/team/app/blobs/{digest}").status_code == 200

    kept = run_gc(settings)  # default grace period: 2 hours
    assert "deleted 0 manifests, 0 links and 0 blobs, freed 0 bytes" in kept

    done = run_gc(settings, "--grace-period", "0")
    assert f"delete blob {digest}" in done
    assert f"deleted 0 manifests, 1 links and 1 blobs, freed {len(orphan)} bytes" in done
    assert client.head(f"/v2/team/app/blobs/{digest}").status_code == 404
    assert client.get("/v2/team/app/manifests/v1").status_code == 200
    # Every deletion is in the audit log with its reason.
    entries, _ = app.ctx.audit.find(action="gc.delete")
    recorded = {(e.actor, e.resource_type, e.resource, e.detail["reason"]) for e in entries}
    assert recorded == {
        ("gc", "blob", digest, "no repository links it"),
        ("gc", "link", f"team/app@{digest}", "no manifest in the repository lists it"),
    }


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("0", 0), ("90", 90), ("90s", 90), ("30m", 1800), ("2h", 7200), ("1d", 86400), ("1.5h", 5400)],
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "h", "-1h", "2 weeks", "1h30m"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(click.BadParameter):
        parse_duration(text)
