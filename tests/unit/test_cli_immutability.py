"""`portside project immutability …` through click's CliRunner, on a fresh database (the
`cli` fixture of test_cli_accounts: SQLite, or PostgreSQL when configured)."""

from __future__ import annotations

from typing import Any

from portside.content.immutability import ImmutabilityRules
from portside.events.audit import AuditLog
from tests.unit import test_cli_accounts
from tests.unit.test_cli_accounts import Cli

cli = test_cli_accounts.cli


def rules_of(cli: Cli, project: str = "team") -> list[dict[str, Any]]:
    found = cli.json("project", "immutability", "list", project)
    assert isinstance(found, list)
    return found


def test_add_list_disable_enable_remove(cli: Cli) -> None:
    cli.ok("project", "create", "team")
    added = cli.ok("project", "immutability", "add", "team", "--tag", "v*")
    assert added.stdout == (
        "added immutability rule 1 of project 'team' (repositories '**', tags 'v*')\n"
    )
    cli.ok(
        "project", "immutability", "add", "team",
        "--repository", "app/.*", "--tag", r"rel-\d+", "--regex",
    )  # fmt: skip
    cli.ok("project", "immutability", "add", "team", "--tag", "x.*", "--regex")
    listed = rules_of(cli)
    assert [(r["id"], r["repository_pattern"], r["tag_pattern"], r["syntax"]) for r in listed] == [
        (1, "**", "v*", "glob"),
        (2, "app/.*", r"rel-\d+", "regex"),
        (3, ".*", "x.*", "regex"),
    ]
    assert {r["created_by"] for r in listed} == {"cli"}
    assert not any(r["disabled"] for r in listed)

    result = cli.ok("project", "immutability", "disable", "team", "1")
    assert result.stdout.startswith("disabled immutability rule 1 of project 'team'")
    table = cli.ok("project", "immutability", "list", "team").stdout.splitlines()
    assert table[0].split() == ["ID", "REPOSITORIES", "TAGS", "SYNTAX", "STATE", "CREATED", "BY"]
    assert table[1].split() == ["1", "**", "v*", "glob", "disabled", "cli"]
    assert table[2].split() == ["2", "app/.*", r"rel-\d+", "regex", "enabled", "cli"]
    cli.ok("project", "immutability", "enable", "team", "1")
    assert rules_of(cli)[0]["disabled"] is False

    removed = cli.ok("project", "immutability", "remove", "team", "2")
    assert removed.stdout.startswith("removed immutability rule 2 of project 'team'")
    assert [r["id"] for r in rules_of(cli)] == [1, 3]
    assert [r.id for r in ImmutabilityRules(cli.db).find("team")] == [1, 3]

    entries, _ = AuditLog(cli.db).find(projects=["team"])
    assert [(e.actor, e.action, e.resource_type, e.resource) for e in entries][:4] == [
        ("cli", "delete", "immutability-rule", "team/immutability-rules/2"),
        ("cli", "update", "immutability-rule", "team/immutability-rules/1"),
        ("cli", "update", "immutability-rule", "team/immutability-rules/1"),
        ("cli", "create", "immutability-rule", "team/immutability-rules/3"),
    ]


def test_errors_name_the_problem(cli: Cli) -> None:
    cli.ok("project", "create", "team")
    bad = cli("project", "immutability", "add", "team", "--tag", "v[")
    assert bad.exit_code == 1
    assert (
        bad.stderr == "error: tag_pattern: invalid glob pattern 'v[': unclosed '[' at position 1\n"
    )
    regex = cli("project", "immutability", "add", "team", "--tag", "(", "--regex")
    assert regex.exit_code == 1
    assert regex.stderr.startswith("error: tag_pattern: invalid regex pattern '(': ")
    missing_tag = cli("project", "immutability", "add", "team")
    assert missing_tag.exit_code == 2
    assert "--tag" in missing_tag.stderr
    cli.ok("project", "immutability", "add", "team", "--tag", "v*")
    twice = cli("project", "immutability", "add", "team", "--tag", "v*", "--repository", "**")
    assert twice.exit_code == 1
    assert "already has this rule: immutability rule 1" in twice.stderr
    for command in ("enable", "disable", "remove"):
        unknown = cli("project", "immutability", command, "team", "7")
        assert (unknown.exit_code, unknown.stderr) == (
            1,
            "error: no immutability rule 7 in project 'team'\n",
        )
        assert cli("project", "immutability", command, "team", "0").exit_code == 2
    nope = cli("project", "immutability", "list", "nope")
    assert (nope.exit_code, nope.stderr) == (1, "error: no project 'nope'\n")
    assert len(rules_of(cli)) == 1
