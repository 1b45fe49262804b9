"""`portside admin create` and `portside user …`: local accounts."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from portside.commands.common import (
    CLI,
    CONFIG_OPTION,
    DATA_DIR_OPTION,
    echo_table,
    read_secret,
    reports_errors,
    services,
)

PASSWORD_STDIN = click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from stdin (one line). Without it, a terminal is prompted.",
)


def _password(from_stdin: bool) -> str:
    if not from_stdin and not sys.stdin.isatty():
        raise click.UsageError("pass --password-stdin to read the password from stdin")
    return read_secret("Password")


def _create(
    *,
    config_file: Path | None,
    data_dir: Path | None,
    name: str,
    password_stdin: bool,
    email: str | None,
    admin: bool,
) -> None:
    password = _password(password_stdin)
    with services(config_file, data_dir) as svc:
        user = svc.accounts.create_user(name, password, admin=admin, email=email, actor=CLI)
    click.echo(f"created {'administrator' if admin else 'user'} {user.username}")


@click.group()
def admin() -> None:
    """System administrators."""


@admin.command("create")
@click.argument("name")
@PASSWORD_STDIN
@click.option("--email")
@CONFIG_OPTION
@DATA_DIR_OPTION
@reports_errors
def admin_create(
    name: str,
    password_stdin: bool,
    email: str | None,
    config_file: Path | None,
    data_dir: Path | None,
) -> None:
    """Create a system administrator (this turns authentication on)."""
    _create(
        config_file=config_file,
        data_dir=data_dir,
        name=name,
        password_stdin=password_stdin,
        email=email,
        admin=True,
    )


@click.group()
def user() -> None:
    """Local user accounts."""


@user.command("create")
@click.argument("name")
@PASSWORD_STDIN
@click.option("--email")
@click.option("--admin", "make_admin", is_flag=True, help="Make the user a system admin.")
@CONFIG_OPTION
@DATA_DIR_OPTION
@reports_errors
def user_create(
    *,
    name: str,
    password_stdin: bool,
    email: str | None,
    make_admin: bool,
    config_file: Path | None,
    data_dir: Path | None,
) -> None:
    """Create a local user."""
    _create(
        config_file=config_file,
        data_dir=data_dir,
        name=name,
        password_stdin=password_stdin,
        email=email,
        admin=make_admin,
    )


@user.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@CONFIG_OPTION
@DATA_DIR_OPTION
@reports_errors
def user_list(as_json: bool, config_file: Path | None, data_dir: Path | None) -> None:
    """List users."""
    with services(config_file, data_dir) as svc:
        users = svc.accounts.list_users()
    if as_json:
        click.echo(
            json.dumps(
                [
                    {
                        "username": u.username,
                        "email": u.email,
                        "source": u.source,
                        "admin": u.is_admin,
                        "disabled": u.disabled,
                        "created_at": u.created_at.isoformat(),
                    }
                    for u in users
                ],
                indent=2,
            )
        )
        return
    echo_table(
        [
            [
                u.username,
                u.source,
                "yes" if u.is_admin else "",
                "yes" if u.disabled else "",
                u.email,
            ]
            for u in users
        ],
        ["USERNAME", "SOURCE", "ADMIN", "DISABLED", "EMAIL"],
    )


def _set(config_file: Path | None, data_dir: Path | None, name: str, **change: bool) -> None:
    with services(config_file, data_dir) as svc:
        svc.accounts.update_user(name, **change, actor=CLI)  # type: ignore[arg-type]


@user.command("disable")
@click.argument("name")
@CONFIG_OPTION
@DATA_DIR_OPTION
@reports_errors
def user_disable(name: str, config_file: Path | None, data_dir: Path | None) -> None:
    """Stop a user from signing in (their tokens expire within one token lifetime)."""
    _set(config_file, data_dir, name, disabled=True)
    click.echo(f"disabled user {name}")


@user.command("enable")
@click.argument("name")
@CONFIG_OPTION
@DATA_DIR_OPTION
@reports_errors
def user_enable(name: str, config_file: Path | None, data_dir: Path | None) -> None:
    """Let a disabled user sign in again."""
    _set(config_file, data_dir, name, disabled=False)
    click.echo(f"enabled user {name}")


@user.command("passwd")
@click.argument("name")
@PASSWORD_STDIN
@CONFIG_OPTION
@DATA_DIR_OPTION
@reports_errors
def user_passwd(
    name: str, password_stdin: bool, config_file: Path | None, data_dir: Path | None
) -> None:
    """Set a local user's password."""
    password = _password(password_stdin)
    with services(config_file, data_dir) as svc:
        svc.accounts.update_user(name, password=password, actor=CLI, own_password=True)
    click.echo(f"changed the password of {name}")


@user.command("delete")
@click.argument("name")
@CONFIG_OPTION
@DATA_DIR_OPTION
@reports_errors
def user_delete(name: str, config_file: Path | None, data_dir: Path | None) -> None:
    """Delete a user and their memberships."""
    with services(config_file, data_dir) as svc:
        svc.accounts.delete_user(name, actor=CLI)
    click.echo(f"deleted user {name}")
