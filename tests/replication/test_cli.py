"""`portside endpoint …` and `portside replication …` through click's CliRunner on a
fresh database: endpoints with an encrypted password (refused without a key), a
scheduled rule whose schedule follows it, a run here against a real Distribution, the
runs listing and a run's per-artifact results, and refusals in words."""

from __future__ import annotations

from pathlib import Path

from portside.endpoints.secrets import new_key
from tests.remote.peers import distribution
from tests.unit import test_cli_accounts
from tests.unit.test_cli_accounts import Cli

cli = test_cli_accounts.cli


def test_endpoints_rules_and_runs(cli: Cli, tmp_path: Path) -> None:
    cli.env["PORTSIDE_ENDPOINTS__ALLOW_PRIVATE_TARGETS"] = "true"
    with distribution(tmp_path / "d", auth=("bob", "bobs-password")) as peer:
        refused = cli("endpoint", "add", "dist", "--type", "distribution", "--url", peer.url,
                      "--username", "bob", "--password-stdin", input="bobs-password\n")  # fmt: skip
        assert refused.exit_code == 1
        assert "secrets.encryption_key" in refused.stderr
        cli.env["PORTSIDE_SECRETS__ENCRYPTION_KEY"] = new_key()
        cli.ok("endpoint", "add", "dist", "--type", "distribution", "--url", peer.url,
               "--username", "bob", "--password-stdin", input="bobs-password\n")  # fmt: skip
        shown = cli.json("endpoint", "show", "dist")
        assert isinstance(shown, dict)
        assert shown["has_credentials"] is True
        assert "bobs-password" not in str(shown)
        assert cli.ok("endpoint", "test", "dist").stdout.startswith("connected to")
        cli.ok("replication", "rule", "add", "nightly", "--direction", "push",
               "--endpoint", "dist", "--repositories", "team/**", "--trigger", "scheduled",
               "--cron", "0 3 * * *")  # fmt: skip
        assert "replication-1" in cli.ok("schedule", "list").stdout
        refused = cli("replication", "rule", "add", "bad", "--direction", "pull",
                      "--endpoint", "dist", "--trigger", "event")  # fmt: skip
        assert refused.exit_code == 1
        assert "event triggers are for push rules" in refused.stderr
        ran = cli.ok("replication", "rule", "run", "nightly", "--here")
        assert "succeeded: 0 copied" in ran.stdout.splitlines()[-1]
        listed = cli.ok("replication", "runs", "--rule", "nightly").stdout.splitlines()
        assert listed[0].split()[:4] == ["ID", "RULE", "TRIGGER", "STATUS"]
        assert listed[1].split()[1:4] == ["nightly", "manual", "succeeded"]
        shown_run = cli.json("replication", "run", "show", listed[1].split()[0])
        assert isinstance(shown_run, dict)
        assert shown_run["items"] == []
        in_use = cli("endpoint", "remove", "dist")
        assert in_use.exit_code == 1
        assert "used by replication rules: nightly" in in_use.stderr
        cli.ok("replication", "rule", "remove", "nightly")
        assert "replication-1" not in cli.ok("schedule", "list").stdout
        cli.ok("endpoint", "remove", "dist")
