"""`portside retention show|set|run PROJECT`: a project's retention policy from the
command line. `run` plans and applies it in this process (a server may keep running on
the same database); `--dry-run` only prints what would go."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from portside.commands.common import CLI, CONFIG_OPTION, DATA_DIR_OPTION, context_from

if TYPE_CHECKING:
    from portside.content.retention import RetentionPolicy


def _fail(message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


def _echo_policy(policy: RetentionPolicy) -> None:
    click.echo(f"project {policy.project}")
    click.echo(f"remove untagged artifacts: {'yes' if policy.remove_untagged else 'no'}")
    if not policy.rules:
        click.echo("no rules: retention deletes nothing")
    for number, rule in enumerate(policy.rules, 1):
        click.echo(f"{number}. {rule.describe()}{' (disabled)' if rule.disabled else ''}")
    if policy.updated_by:
        assert policy.updated_at is not None
        click.echo(f"updated by {policy.updated_by} at {policy.updated_at.isoformat()}")


@click.group()
def retention() -> None:
    """Retention policies: which artifacts of a project to keep; the rest is deleted."""


@retention.command("show")
@click.argument("project")
@click.option("--json", "as_json", is_flag=True, help="Print the policy as JSON.")
@CONFIG_OPTION
@DATA_DIR_OPTION
def show(project: str, as_json: bool, config_file: Path | None, data_dir: Path | None) -> None:
    """Print a project's retention policy."""
    from portside.content.retention import PolicyStore, ProjectUnknown

    with context_from(config_file, data_dir) as ctx:
        try:
            policy = PolicyStore(ctx.db).get(project)
        except ProjectUnknown as error:
            _fail(str(error))
    if as_json:
        click.echo(json.dumps(policy.to_dict(), indent=2))
    else:
        _echo_policy(policy)


@retention.command("set")
@click.argument("project")
@click.option(
    "--file",
    "policy_file",
    type=click.File("r"),
    required=True,
    help="YAML or JSON document: remove_untagged and rules (`-` for stdin).",
)
@CONFIG_OPTION
@DATA_DIR_OPTION
def set_policy(
    project: str, policy_file: Any, config_file: Path | None, data_dir: Path | None
) -> None:
    """Replace a project's retention policy with the one in --file."""
    import yaml

    from portside.content.retention import PolicyError, PolicyStore, ProjectUnknown, parse_policy

    try:
        document = yaml.safe_load(policy_file)
    except yaml.YAMLError as error:
        _fail(f"{policy_file.name}: not YAML or JSON: {error}")
    try:
        remove_untagged, rules = parse_policy({} if document is None else document)
    except PolicyError as error:
        _fail(f"{policy_file.name}: {error}")
    with context_from(config_file, data_dir) as ctx:
        try:
            stored = PolicyStore(ctx.db).put(
                project, remove_untagged, rules, updated_by=CLI.name, actor=CLI
            )
        except ProjectUnknown as error:
            _fail(str(error))
    _echo_policy(stored)


@retention.command("run")
@click.argument("project")
@click.option("--dry-run", is_flag=True, help="Print what would be deleted; delete nothing.")
@CONFIG_OPTION
@DATA_DIR_OPTION
def run(project: str, dry_run: bool, config_file: Path | None, data_dir: Path | None) -> None:
    """Apply a project's retention policy now (as a job in this process, kept in the job
    history), printing every deletion."""
    from portside.commands.jobs import run_here
    from portside.content.retention import PolicyStore, ProjectUnknown

    with context_from(config_file, data_dir) as ctx:
        try:
            PolicyStore(ctx.db).get(project)
        except ProjectUnknown as error:
            _fail(str(error))
        final = run_here(ctx, "retention", {"dry_run": dry_run}, project=project)
    if final.status != "succeeded":
        sys.exit(1)
