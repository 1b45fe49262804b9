"""What the account commands share: settings and services on a migrated database, secrets
read from stdin, sizes, and turning management errors into a message and exit status."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import click

from portside import units
from portside.auth.accounts import Accounts
from portside.auth.errors import ManagementError
from portside.auth.identity import Identity
from portside.auth.policy import Policy
from portside.auth.projects import Projects
from portside.auth.robots import Robots
from portside.auth.throttle import LoginThrottle
from portside.config import ConfigError, Settings, load_settings
from portside.events.audit import AuditLog
from portside.events.outbox import Actor
from portside.metadata.db import Database
from portside.metadata.engine import make_engine, upgrade

if TYPE_CHECKING:
    from portside.context import Context

CONFIG_OPTION = click.option(
    "--config", "config_file", type=click.Path(path_type=Path), help="YAML configuration file."
)
DATA_DIR_OPTION = click.option(
    "--data-dir", type=click.Path(path_type=Path), help="Data directory (overrides data_dir)."
)

# The person at the terminal: they can read the database, so they act as an admin.
OPERATOR = Identity("user", "cli", is_admin=True)
CLI = Actor(OPERATOR.actor)  # who the events of CLI changes name


@dataclass
class Services:
    accounts: Accounts
    projects: Projects
    robots: Robots
    audit: AuditLog


def migrated_settings(config_file: Path | None, data_dir: Path | None) -> Settings:
    """The settings (exit 2 with the message on a bad configuration), with the data
    directory created and the database migrated."""
    try:
        settings = load_settings(config_file, data_dir=data_dir)
    except ConfigError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(2)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.database_url)
    return settings


@contextmanager
def context_from(config_file: Path | None, data_dir: Path | None) -> Iterator[Context]:
    """All the services, built as the server builds them (for commands running jobs)."""
    from portside.context import build_context

    ctx = build_context(migrated_settings(config_file, data_dir))
    try:
        yield ctx
    finally:
        ctx.close()


@contextmanager
def services(config_file: Path | None, data_dir: Path | None) -> Iterator[Services]:
    settings = migrated_settings(config_file, data_dir)
    db = Database(make_engine(settings.database_url))
    policy = Policy(db)
    throttle = LoginThrottle(db, 1, 1)
    audit = AuditLog(db)
    try:
        yield Services(Accounts(db, throttle), Projects(db), Robots(db, policy), audit)
    finally:
        audit.flush()
        db.engine.dispose()


P = ParamSpec("P")
R = TypeVar("R")


def reports_errors(function: Callable[P, R]) -> Callable[P, R]:
    """Print a ManagementError's message and exit 1 instead of a traceback."""

    @wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return function(*args, **kwargs)
        except ManagementError as error:
            click.echo(f"error: {error.message}", err=True)
            sys.exit(1)

    return wrapper


def read_secret(prompt: str) -> str:
    """One line from stdin (without its newline); prompts twice on a terminal."""
    if sys.stdin.isatty():
        value: str = click.prompt(prompt, hide_input=True, confirmation_prompt=True)
        return value
    line = sys.stdin.readline()
    return line[:-1] if line.endswith("\n") else line


def parse_size(text: str) -> int:
    """`500MB`, `10GiB`, `2T` or plain bytes (see portside.units)."""
    try:
        return units.parse_size(text)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None


format_size = units.format_size


def echo_table(rows: list[list[Any]], header: list[str]) -> None:
    table = [header] + [[("-" if v is None else str(v)) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    for row in table:
        click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
