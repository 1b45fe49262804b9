"""The `portside` command: serve, fsck, config check, db upgrade."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from portside.config import ConfigError, Settings, load_settings

CONFIG_OPTION = click.option(
    "--config", "config_file", type=click.Path(path_type=Path), help="YAML configuration file."
)
DATA_DIR_OPTION = click.option(
    "--data-dir", type=click.Path(path_type=Path), help="Data directory (overrides data_dir)."
)


def _settings(config_file: Path | None, **overrides: Any) -> Settings:
    try:
        return load_settings(config_file, **overrides)
    except ConfigError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(2)


@click.group()
@click.version_option(package_name="portside")
def main() -> None:
    """Portside: a fast, spec-exact OCI container image registry."""


@main.command()
@CONFIG_OPTION
@DATA_DIR_OPTION
@click.option("--listen", help="HOST:PORT to listen on (overrides listen).")
def serve(config_file: Path | None, data_dir: Path | None, listen: str | None) -> None:
    """Run the registry."""
    from portside.logs import configure
    from portside.server import serve as run

    settings = _settings(config_file, data_dir=data_dir, listen=listen)
    configure(settings.log.level, settings.log.format)
    try:
        run(settings)
    except ConfigError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(2)


@main.command()
@CONFIG_OPTION
@DATA_DIR_OPTION
@click.option(
    "--verify-hashes/--no-hash",
    default=True,
    help="Re-hash every blob by reading it (the default), or only check sizes (faster; on "
    "object storage, sizes come from listings and no blob is read).",
)
def fsck(config_file: Path | None, data_dir: Path | None, verify_hashes: bool) -> None:
    """Check tags -> manifests -> blobs, blob sizes and hashes, and database integrity."""
    from portside.fsck import run_fsck

    settings = _settings(config_file, data_dir=data_dir)
    report = run_fsck(settings, verify_hashes=verify_hashes)
    for problem in report.problems:
        click.echo(f"problem: {problem}")
    click.echo(report.summary())
    sys.exit(1 if report.problems else 0)


@main.group()
def uploads() -> None:
    """Blob uploads in progress."""


@uploads.command("purge")
@CONFIG_OPTION
@DATA_DIR_OPTION
@click.option(
    "--older-than-hours",
    type=click.FloatRange(min=0),
    help="Idle time before an upload is abandoned (default: registry.upload_expiry_hours).",
)
def uploads_purge(
    config_file: Path | None, data_dir: Path | None, older_than_hours: float | None
) -> None:
    """Delete uploads idle too long and leftover upload data no upload claims."""
    from datetime import timedelta

    from portside.content.purge import purge_uploads
    from portside.context import build_context

    settings = _settings(config_file, data_dir=data_dir)
    hours = settings.registry.upload_expiry_hours if older_than_hours is None else older_than_hours
    ctx = build_context(settings)
    try:
        result = purge_uploads(ctx.db, ctx.storage, timedelta(hours=hours))
    finally:
        ctx.close()
    click.echo(
        f"purged {result.expired_uploads} expired uploads and "
        f"{result.orphan_directories} leftover upload directories"
        + (
            f", aborted {result.aborted_multipart} orphaned multipart uploads"
            if result.aborted_multipart
            else ""
        )
    )


@main.group()
def config() -> None:
    """Configuration helpers."""


@config.command("check")
@click.argument("config_file", type=click.Path(path_type=Path))
def config_check(config_file: Path) -> None:
    """Validate a configuration file (and PORTSIDE_* variables) without starting."""
    settings = _settings(config_file)
    click.echo(f"{config_file}: ok (listen {settings.listen}, data_dir {settings.data_dir})")


@main.group()
def db() -> None:
    """Metadata database maintenance."""


@db.command("upgrade")
@CONFIG_OPTION
@DATA_DIR_OPTION
def db_upgrade(config_file: Path | None, data_dir: Path | None) -> None:
    """Apply schema migrations (serve does this at start too)."""
    from portside.metadata.engine import upgrade

    settings = _settings(config_file, data_dir=data_dir)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.database_url)
    click.echo("database schema is up to date")


def _register_account_commands() -> None:
    from portside.commands.db import copy
    from portside.commands.endpoints import endpoint
    from portside.commands.gc import gc
    from portside.commands.immutability import immutability
    from portside.commands.jobs import job, schedule, worker
    from portside.commands.projects import project
    from portside.commands.replication import replication
    from portside.commands.retention import retention
    from portside.commands.robots import robot
    from portside.commands.scans import scan, scanner, vulnerability
    from portside.commands.signatures import key, policy, signatures
    from portside.commands.storage import storage
    from portside.commands.usage import usage
    from portside.commands.users import admin, user
    from portside.commands.vulndb import vulndb
    from portside.commands.webhooks import webhook

    for command in (admin, user, project, robot, gc, job, schedule, worker, webhook, endpoint):
        main.add_command(command)
    project.add_command(immutability)
    db.add_command(copy)
    project.add_command(key)
    project.add_command(policy)
    main.add_command(signatures)
    policy.add_command(vulnerability)
    main.add_command(scan)
    main.add_command(scanner)
    main.add_command(usage)
    main.add_command(retention)
    main.add_command(vulndb)
    main.add_command(storage)
    main.add_command(replication)


_register_account_commands()
