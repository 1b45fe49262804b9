"""`portside vulndb import|status|update` through Click's runner, and once through the
installed `portside` entry point."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner, Result

from portside.cli import main
from tests.vulndb import fixtures


def run(database_url: str, data_dir: Path, *args: str) -> Result:
    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("PORTSIDE_")}
    env["PORTSIDE_DATABASE__URL"] = database_url
    return CliRunner().invoke(main, ["vulndb", *args, "--data-dir", str(data_dir)], env=env)


def test_import_and_status(database_url: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    empty = run(database_url, data, "status")
    assert empty.exit_code == 0, empty.output
    assert "the vulnerability database is empty" in empty.output

    zipped = fixtures.osv_zip(tmp_path / "all.zip")
    tracker = fixtures.tracker_file(tmp_path / "tracker.json")
    result = run(database_url, data, "import", str(zipped), str(tracker))
    assert result.exit_code == 0, result.output
    assert f"{zipped}: 8 advisories, 9 packages (osv)" in result.stdout
    assert f"{tracker}: 2 advisories, 3 packages (debian-tracker)" in result.stdout
    assert f"importing {zipped}" in result.stderr  # progress goes to stderr

    table = run(database_url, data, "status")
    assert table.exit_code == 0, table.output
    lines = table.output.splitlines()
    assert lines[0].split() == ["SOURCE", "FORMAT", "IMPORTED", "(UTC)", "ADVISORIES", "PACKAGES"]
    assert lines[1].split()[:2] == [str(zipped), "osv"]
    assert lines[1].split()[-2:] == ["8", "9"]
    document = json.loads(run(database_url, data, "status", "--json").output)
    assert [s["name"] for s in document["sources"]] == [str(zipped), str(tracker)]
    assert document["advisories"] == 10
    assert document["generation"] == document["sources"][1]["import_id"]


def test_bad_file_is_reported_and_others_still_import(database_url: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    bad = tmp_path / "bad.json"
    bad.write_text('{"id": "X", "affected": 3}')
    good = fixtures.tracker_file(tmp_path / "tracker.json")
    result = run(database_url, data, "import", str(bad), str(tmp_path / "missing.zip"), str(good))
    assert result.exit_code == 1
    assert f"error: {bad}: X: affected must be a list (nothing imported from it)" in result.stderr
    assert f"error: {tmp_path / 'missing.zip'}: no such file or directory" in result.stderr
    assert "Traceback" not in result.output
    document = json.loads(run(database_url, data, "status", "--json").output)
    assert [s["name"] for s in document["sources"]] == [str(good)]


def test_update_without_sources_says_so(database_url: str, tmp_path: Path) -> None:
    result = run(database_url, tmp_path / "data", "update")
    assert result.exit_code == 1
    assert "no sources configured (vulndb.sources)" in result.stderr


def test_update_imports_configured_path_once(database_url: str, tmp_path: Path) -> None:
    directory = fixtures.osv_directory(tmp_path / "osv")
    config = tmp_path / "portside.yaml"
    config.write_text(f"vulndb:\n  sources:\n    - path: {directory}\n")
    first = run(database_url, tmp_path / "data", "update", "--config", str(config))
    assert first.exit_code == 0, first.output
    assert f"{directory}: imported 8 advisories" in first.stdout
    second = run(database_url, tmp_path / "data", "update", "--config", str(config))
    assert second.exit_code == 0, second.output
    assert f"{directory}: unchanged" in second.stdout


def test_real_entry_point(database_url: str, tmp_path: Path) -> None:
    portside = shutil.which("portside", path=str(Path(sys.executable).parent))
    assert portside is not None, "the portside entry point is not installed in this venv"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTSIDE_")}
    env["PORTSIDE_DATABASE__URL"] = database_url
    zipped = fixtures.osv_zip(tmp_path / "all.zip")
    data = str(tmp_path / "data")
    done = subprocess.run(
        [portside, "vulndb", "import", str(zipped), "--data-dir", data],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "8 advisories" in done.stdout
    shown = subprocess.run(
        [portside, "vulndb", "status", "--json", "--data-dir", data],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert json.loads(shown.stdout)["sources"][0]["advisories"] == 8
