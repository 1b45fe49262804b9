"""`portside webhook …` through click's CliRunner on a fresh database, against a real
receiver: create (the target checked), list, test, deliveries, delete."""

from __future__ import annotations

from typing import Any

from portside.events.audit import AuditLog
from tests.unit import test_cli_accounts
from tests.unit.test_cli_accounts import Cli
from tests.webhooks.receiver import receiving

cli = test_cli_accounts.cli


def hooks_of(cli: Cli) -> list[dict[str, Any]]:
    found = cli.json("webhook", "list", "team")
    assert isinstance(found, list)
    return found


def test_create_list_test_deliveries_delete(cli: Cli) -> None:
    cli.ok("project", "create", "team")
    with receiving() as receiver:
        refused = cli("webhook", "create", "team", "--name", "ci", "--url", receiver.url,
                      "--event", "artifact.pushed")  # fmt: skip
        assert refused.exit_code == 1
        assert "loopback address" in refused.stderr
        cli.env["PORTSIDE_WEBHOOKS__ALLOW_PRIVATE_TARGETS"] = "true"
        created = cli.ok(
            "webhook", "create", "team", "--name", "ci", "--url", receiver.url,
            "--event", "artifact.pushed", "--event", "artifact.deleted",
            "--format", "cloudevents", "--secret-stdin",
            input="cli-secret\n",
        )  # fmt: skip
        assert created.stdout.startswith("created webhook 'ci' of project 'team'")
        [hook] = hooks_of(cli)
        assert (hook["name"], hook["event_types"], hook["payload_format"], hook["has_secret"]) == (
            "ci",
            ["artifact.pushed", "artifact.deleted"],
            "cloudevents",
            True,
        )
        tested = cli.ok("webhook", "test", "team", str(hook["id"]))
        assert tested.stdout.splitlines()[-1].startswith("delivered: HTTP 200")
        [request] = receiver.received
        assert request.signed_by("cli-secret")
    failed = cli("webhook", "test", "team", str(hook["id"]))  # the receiver is gone
    assert failed.exit_code == 1
    assert "not delivered" in failed.stderr
    listed = cli.ok("webhook", "deliveries", "team", str(hook["id"])).stdout.splitlines()
    assert listed[0].split() == [
        "ID", "EVENT", "TYPE", "STATUS", "ATTEMPTS", "CODE", "MS", "UPDATED", "ERROR"
    ]  # fmt: skip
    assert [line.split()[3] for line in listed[1:]] == ["dead", "succeeded"]
    dead = cli.ok("webhook", "deliveries", "team", str(hook["id"]), "--status", "dead")
    assert len(dead.stdout.splitlines()) == 2
    assert cli.ok("webhook", "delete", "team", str(hook["id"])).stdout.startswith("deleted")
    assert hooks_of(cli) == []
    missing = cli("webhook", "delete", "team", str(hook["id"]))
    assert missing.exit_code == 1
    entries, _ = AuditLog(cli.db).find(resource="team/webhooks/ci")
    assert sorted(e.action for e in entries) == ["create", "delete"]
    # The policy store raises the event, so the CLI records what the API records.
    [create] = [e for e in entries if e.action == "create"]
    assert create.detail == {
        "target_url": receiver.url,
        "event_types": ["artifact.pushed", "artifact.deleted"],
        "payload_format": "cloudevents",
    }
