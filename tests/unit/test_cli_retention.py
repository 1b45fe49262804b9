"""`portside retention show|set|run`: on the database and storage a (running) app uses."""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path

import yaml
from click.testing import CliRunner, Result
from sqlalchemy import update
from starlette.testclient import TestClient

from portside.app import PortsideApp
from portside.cli import main
from portside.config import Settings
from portside.content.retention import parse_policy
from portside.metadata import schema as s
from portside.metadata.db import utcnow
from tests.api.helpers import push_image

POLICY = """\
# Keep releases forever and the two newest builds of every repository.
remove_untagged: true
rules:
  - kind: always
    tag_pattern: "release-*"
  - kind: latest_pushed
    value: 2
"""


def retention(settings: Settings, *args: str, status: int = 0, stdin: str | None = None) -> Result:
    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("PORTSIDE_")}
    env["PORTSIDE_DATABASE__URL"] = settings.database_url
    result = CliRunner().invoke(
        main,
        ["retention", *args, "--data-dir", str(settings.data_dir)],
        env=env,
        input=stdin,
        catch_exceptions=False,
    )
    assert result.exit_code == status, result.output
    return result


def test_show_set_and_run(
    app: PortsideApp, settings: Settings, client: TestClient, tmp_path: Path
) -> None:
    app.ctx.auth.projects.create("team")
    assert "no rules: retention deletes nothing" in retention(settings, "show", "team").output

    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(POLICY)
    output = retention(settings, "set", "team", "--file", str(policy_file)).output
    assert "remove untagged artifacts: yes" in output
    assert "1. always (repositories **, tags release-*)" in output
    assert "2. latest_pushed 2 (repositories **, tags **)" in output
    shown = json.loads(retention(settings, "show", "team", "--json").output)
    assert shown["remove_untagged"] is True
    assert [r["kind"] for r in shown["rules"]] == ["always", "latest_pushed"]
    assert shown["updated_by"] == "cli"

    images = [push_image(client, "team/app", tag) for tag in ("b3", "b2", "release-1", "b1")]
    with app.ctx.db.write() as conn:
        for days, image in enumerate(images, 1):
            conn.execute(
                update(s.manifests)
                .where(s.manifests.c.digest == image.digest)
                .values(pushed_at=utcnow() - timedelta(days=days))
            )
    oldest = images[-1]

    dry = retention(settings, "run", "team", "--dry-run").output
    assert f"would delete team/app@{oldest.digest} [b1]: not retained by any rule" in dry
    assert "rule 2: latest_pushed 2 (repositories **, tags **): retains 2 artifacts" in dry
    assert "would delete 1 artifacts (1 tags) in 1 repositories, retained 3, skipped 0" in dry
    assert client.get(f"/v2/team/app/manifests/{oldest.digest}").status_code == 200

    done = retention(settings, "run", "team").output
    assert f"deleted team/app@{oldest.digest} [b1]: not retained by any rule" in done
    summary = done.strip().splitlines()[-1]
    assert summary.startswith("deleted 1 artifacts (1 tags) in 1 repositories")
    assert summary.endswith(" in all")
    assert client.get(f"/v2/team/app/manifests/{oldest.digest}").status_code == 404
    for image in images[:-1]:
        assert client.get(f"/v2/team/app/manifests/{image.digest}").status_code == 200
    entries, total = app.ctx.audit.find(actor="retention")
    assert total == 1
    assert entries[0].resource == f"team/app@{oldest.digest}"
    # From content.deletion's artifact.deleted (the reason is in the job's log).
    assert entries[0].action == "retention.delete"
    assert entries[0].detail == {
        "media_type": oldest.media_type,
        "tags": ["b1"],
        "reason": "not retained by any rule",
    }
    assert app.ctx.audit.find(actor="cli", action="retention.update")[1] == 1


def test_set_from_stdin_as_json(app: PortsideApp, settings: Settings) -> None:
    app.ctx.auth.projects.create("team")
    document = json.dumps({"rules": [{"kind": "pushed_within_days", "value": 30}]})
    retention(settings, "set", "team", "--file", "-", stdin=document)
    assert "1. pushed_within_days 30" in retention(settings, "show", "team").output


def test_errors(app: PortsideApp, settings: Settings, tmp_path: Path) -> None:
    app.ctx.auth.projects.create("team")
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules:\n  - kind: latest_pushed\n    value: 0\n")
    result = retention(settings, "set", "team", "--file", str(bad), status=1)
    assert f"error: {bad}: rules[0].value: must be a whole number" in result.output
    bad.write_text("rules: [unclosed\n")
    assert (
        "not YAML or JSON"
        in retention(settings, "set", "team", "--file", str(bad), status=1).output
    )
    for args in (("show", "nope"), ("run", "nope"), ("set", "nope", "--file", "-")):
        result = retention(settings, *args, status=1, stdin="rules: []")
        assert "error: no project 'nope'" in result.output


def test_the_readme_example_policy_is_valid() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    section = readme.split("## Retention policies", 1)[1]
    example = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    remove_untagged, rules = parse_policy(yaml.safe_load(example))
    assert remove_untagged
    assert [r.kind for r in rules] == ["always", "latest_pushed", "pulled_within_days", "always"]
    assert rules[3].tags.matches("nightly-20240101")
    assert not rules[3].tags.matches("nightly-2024")
    assert rules[2].repository_excluding
