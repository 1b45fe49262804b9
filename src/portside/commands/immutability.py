"""`portside project immutability …`: a project's tag immutability rules."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from portside.commands.common import (
    CLI,
    CONFIG_OPTION,
    DATA_DIR_OPTION,
    Services,
    echo_table,
    reports_errors,
    services,
)
from portside.content.immutability import ImmutabilityRules, RuleRecord
from portside.content.patterns import Syntax

RULE_ID = click.IntRange(min=1, max=2**31 - 1)


@click.group()
def immutability() -> None:
    """Tag immutability rules: matching tags cannot be moved to another digest or deleted.

    Patterns are globs (`*`, `**`, `?`, `[...]`, `{a,b}`) or, with --regex, regular
    expressions matched against the whole name. Repository patterns name repositories
    without their project (`app/*` in project `team` matches `team/app/web`).
    """


def _rules(svc: Services) -> ImmutabilityRules:
    return ImmutabilityRules(svc.projects.db)


def _as_json(rule: RuleRecord) -> dict[str, Any]:
    return {
        "id": rule.id,
        "project": rule.project,
        "repository_pattern": rule.repository_pattern,
        "tag_pattern": rule.tag_pattern,
        "syntax": rule.syntax,
        "disabled": rule.disabled,
        "created_by": rule.created_by,
        "created_at": rule.created_at.isoformat(),
    }


@immutability.command("list")
@click.argument("project_name", metavar="PROJECT")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@CONFIG_OPTION
@DATA_DIR_OPTION
@reports_errors
def immutability_list(
    project_name: str, as_json: bool, config_file: Path | None, data_dir: Path | None
) -> None:
    """List a project's rules, in the order they are checked."""
    with services(config_file, data_dir) as svc:
        rules = _rules(svc).find(project_name)
    if as_json:
        click.echo(json.dumps([_as_json(r) for r in rules], indent=2))
        return
    echo_table(
        [
            [
                r.id,
                r.repository_pattern,
                r.tag_pattern,
                r.syntax,
                "disabled" if r.disabled else "enabled",
                r.created_by,
            ]
            for r in rules
        ],
        ["ID", "REPOSITORIES", "TAGS", "SYNTAX", "STATE", "CREATED BY"],
    )


@immutability.command("add")
@click.argument("project_name", metavar="PROJECT")
@click.option("--tag", "tag_pattern", required=True, help="Tags to protect, e.g. 'v*'.")
@click.option(
    "--repository",
    "repository_pattern",
    help="Repositories (named without the project) the rule applies to, e.g. 'app/*'. "
    "Default: all ('**', or '.*' with --regex).",
)
@click.option("--regex", is_flag=True, help="The patterns are regular expressions.")
@CONFIG_OPTION
@DATA_DIR_OPTION
@reports_errors
def immutability_add(
    *,
    project_name: str,
    tag_pattern: str,
    repository_pattern: str | None,
    regex: bool,
    config_file: Path | None,
    data_dir: Path | None,
) -> None:
    """Add a rule to a project."""
    syntax: Syntax = "regex" if regex else "glob"
    with services(config_file, data_dir) as svc:
        rule = _rules(svc).add(
            project_name,
            tag_pattern=tag_pattern,
            repository_pattern=repository_pattern,
            syntax=syntax,
            creator=CLI.name,
            actor=CLI,
        )
    click.echo(f"added {rule.describe()}")


def _set_disabled(
    project_name: str,
    rule_id: int,
    disabled: bool,
    config_file: Path | None,
    data_dir: Path | None,
) -> None:
    with services(config_file, data_dir) as svc:
        rule = _rules(svc).update(project_name, rule_id, disabled=disabled, actor=CLI)
    click.echo(f"{'disabled' if disabled else 'enabled'} {rule.describe()}")


@immutability.command("enable")
@click.argument("project_name", metavar="PROJECT")
@click.argument("rule_id", metavar="RULE_ID", type=RULE_ID)
@CONFIG_OPTION
@DATA_DIR_OPTION
@reports_errors
def immutability_enable(
    project_name: str, rule_id: int, config_file: Path | None, data_dir: Path | None
) -> None:
    """Enforce a disabled rule again."""
    _set_disabled(project_name, rule_id, False, config_file, data_dir)


@immutability.command("disable")
@click.argument("project_name", metavar="PROJECT")
@click.argument("rule_id", metavar="RULE_ID", type=RULE_ID)
@CONFIG_OPTION
@DATA_DIR_OPTION
@reports_errors
def immutability_disable(
    project_name: str, rule_id: int, config_file: Path | None, data_dir: Path | None
) -> None:
    """Stop enforcing a rule without removing it."""
    _set_disabled(project_name, rule_id, True, config_file, data_dir)


@immutability.command("remove")
@click.argument("project_name", metavar="PROJECT")
@click.argument("rule_id", metavar="RULE_ID", type=RULE_ID)
@CONFIG_OPTION
@DATA_DIR_OPTION
@reports_errors
def immutability_remove(
    project_name: str, rule_id: int, config_file: Path | None, data_dir: Path | None
) -> None:
    """Remove a rule."""
    with services(config_file, data_dir) as svc:
        rule = _rules(svc).delete(project_name, rule_id, actor=CLI)
    click.echo(f"removed {rule.describe()}")
