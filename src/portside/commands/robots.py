"""`portside robot …`: robot accounts for CI. The secret is printed once, on creation or
rotation; only its hash is stored."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import click

from portside.auth.robots import Robot, parse_actions
from portside.commands.common import (
    CLI,
    CONFIG_OPTION,
    DATA_DIR_OPTION,
    OPERATOR,
    echo_table,
    reports_errors,
    services,
)
from portside.metadata.db import as_utc, utcnow


def _describe(robot: Robot) -> dict[str, object]:
    return {
        "name": robot.name,
        "project": robot.project,
        "permissions": {p: sorted(a) for p, a in robot.permissions.items()},
        "disabled": robot.disabled,
        "expires_at": as_utc(robot.expires_at).isoformat() if robot.expires_at else None,
        "created_by": robot.created_by,
        "description": robot.description,
    }


def _print_secret(robot: Robot, secret: str, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps({**_describe(robot), "secret": secret}, indent=2))
        return
    click.echo(f"name:   {robot.name}")
    click.echo(f"secret: {secret}")
    click.echo("The secret is shown only now; store it (e.g. as a CI secret).", err=True)


@click.group()
def robot() -> None:
    """Robot accounts for CI."""


@robot.command("create")
@click.argument("project_name", metavar="PROJECT")
@click.argument("name")
@click.option("--permissions", required=True, help="Comma-separated subset of pull, push, delete.")
@click.option("--expires-in", type=click.IntRange(min=1), help="Days until it expires.")
@click.option("--description")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (with the secret).")
@CONFIG_OPTION
@DATA_DIR_OPTION
@reports_errors
def robot_create(
    *,
    project_name: str,
    name: str,
    permissions: str,
    expires_in: int | None,
    description: str | None,
    as_json: bool,
    config_file: Path | None,
    data_dir: Path | None,
) -> None:
    """Create a project robot, robot$PROJECT+NAME, and print its secret once."""
    actions = parse_actions(permissions)
    expires_at = utcnow() + timedelta(days=expires_in) if expires_in else None
    with services(config_file, data_dir) as svc:
        created, secret = svc.robots.create(
            OPERATOR,
            name,
            {project_name: actions},
            project=project_name,
            expires_at=expires_at,
            description=description,
            actor=CLI,
        )
    _print_secret(created, secret, as_json)


@robot.command("create-system")
@click.argument("name")
@click.option(
    "--grant",
    "grants",
    multiple=True,
    required=True,
    metavar="PROJECT:ACTIONS",
    help="Permissions in one project, e.g. acme:pull,push. Repeat for more projects.",
)
@click.option("--expires-in", type=click.IntRange(min=1), help="Days until it expires.")
@click.option("--description")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (with the secret).")
@CONFIG_OPTION
@DATA_DIR_OPTION
@reports_errors
def robot_create_system(
    *,
    name: str,
    grants: tuple[str, ...],
    expires_in: int | None,
    description: str | None,
    as_json: bool,
    config_file: Path | None,
    data_dir: Path | None,
) -> None:
    """Create a system robot, robot$NAME, with permissions in several projects."""
    permissions = {}
    for grant in grants:
        project_name, sep, actions = grant.partition(":")
        if not sep or not project_name:
            raise click.BadParameter(f"{grant!r} is not PROJECT:ACTIONS", param_hint="--grant")
        permissions[project_name] = parse_actions(actions)
    expires_at = utcnow() + timedelta(days=expires_in) if expires_in else None
    with services(config_file, data_dir) as svc:
        created, secret = svc.robots.create(
            OPERATOR,
            name,
            permissions,
            expires_at=expires_at,
            description=description,
            actor=CLI,
        )
    _print_secret(created, secret, as_json)


@robot.command("list")
@click.argument("project_name", metavar="[PROJECT]", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@CONFIG_OPTION
@DATA_DIR_OPTION
@reports_errors
def robot_list(
    project_name: str | None, as_json: bool, config_file: Path | None, data_dir: Path | None
) -> None:
    """List robots (of one project, or all)."""
    with services(config_file, data_dir) as svc:
        robots = svc.robots.find(project_name)
    if as_json:
        click.echo(json.dumps([_describe(r) for r in robots], indent=2))
        return
    rows = [
        [
            r.name,
            " ".join(f"{p}:{','.join(sorted(a))}" for p, a in sorted(r.permissions.items())),
            "yes" if r.disabled else "",
            r.expires_at.date().isoformat() if r.expires_at else "never",
        ]
        for r in robots
    ]
    echo_table(rows, ["NAME", "PERMISSIONS", "DISABLED", "EXPIRES"])


def _toggle(name: str, disabled: bool, config_file: Path | None, data_dir: Path | None) -> None:
    with services(config_file, data_dir) as svc:
        svc.robots.set_disabled(name, disabled, actor=CLI)
    click.echo(f"{'disabled' if disabled else 'enabled'} {name}")


@robot.command("disable")
@click.argument("name")
@CONFIG_OPTION
@DATA_DIR_OPTION
@reports_errors
def robot_disable(name: str, config_file: Path | None, data_dir: Path | None) -> None:
    """Stop a robot from signing in."""
    _toggle(name, True, config_file, data_dir)


@robot.command("enable")
@click.argument("name")
@CONFIG_OPTION
@DATA_DIR_OPTION
@reports_errors
def robot_enable(name: str, config_file: Path | None, data_dir: Path | None) -> None:
    """Let a disabled robot sign in again."""
    _toggle(name, False, config_file, data_dir)


@robot.command("rotate")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (with the secret).")
@CONFIG_OPTION
@DATA_DIR_OPTION
@reports_errors
def robot_rotate(name: str, as_json: bool, config_file: Path | None, data_dir: Path | None) -> None:
    """Give a robot a new secret (the old one stops working at once)."""
    with services(config_file, data_dir) as svc:
        secret = svc.robots.rotate_secret(name, actor=CLI)
        current = svc.robots.get(name)
    _print_secret(current, secret, as_json)


@robot.command("delete")
@click.argument("name")
@CONFIG_OPTION
@DATA_DIR_OPTION
@reports_errors
def robot_delete(name: str, config_file: Path | None, data_dir: Path | None) -> None:
    """Delete a robot."""
    with services(config_file, data_dir) as svc:
        svc.robots.delete(name, actor=CLI)
    click.echo(f"deleted {name}")
