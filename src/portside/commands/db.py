"""`portside db copy`: move the metadata to another database (portside.metadata.copy)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from portside.commands.common import CONFIG_OPTION, DATA_DIR_OPTION, echo_table
from portside.config import ConfigError, load_settings
from portside.metadata.copy import DEFAULT_BATCH, CopyError, copy_database, describe


@click.command("copy")
@CONFIG_OPTION
@DATA_DIR_OPTION
@click.option(
    "--to",
    "target",
    required=True,
    help="SQLAlchemy URL of the target, e.g. postgresql+psycopg://user:pw@host/portside.",
)
@click.option(
    "--replace",
    is_flag=True,
    help="The target may hold rows: delete them all first (in the copy's transaction).",
)
@click.option(
    "--batch-size",
    type=click.IntRange(1, 100_000),
    default=DEFAULT_BATCH,
    show_default=True,
    help="Rows read and inserted at a time (memory is bounded by one batch).",
)
def copy(
    config_file: Path | None, data_dir: Path | None, target: str, replace: bool, batch_size: int
) -> None:
    """Copy all metadata from the configured database to the one given by --to.

    Stop the registry, or run it with registry.read_only: true, while copying. The
    target is migrated to the same schema revision first and must be empty (unless
    --replace). Blobs are not copied: the storage stays where it is.
    """
    try:
        settings = load_settings(config_file, data_dir=data_dir)
    except ConfigError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(2)
    if not target.startswith(("sqlite", "postgresql")):
        click.echo("error: --to: only sqlite:// and postgresql+psycopg:// URLs", err=True)
        sys.exit(2)
    source = settings.database_url
    click.echo(f"copying {describe(source)} -> {describe(target)}")
    started = time.monotonic()
    try:
        results = copy_database(source, target, replace=replace, batch_size=batch_size)
    except CopyError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(1)
    echo_table(
        [
            [
                r.table,
                r.source_rows,
                r.target_rows,
                r.source_keys if r.ok else f"{r.source_keys} != {r.target_keys}",
                "ok" if r.ok else "MISMATCH",
            ]
            for r in results
        ],
        ["TABLE", "SOURCE ROWS", "TARGET ROWS", "KEY CHECKSUM", "CHECK"],
    )
    rows = sum(r.target_rows for r in results)
    failed = [r.table for r in results if not r.ok]
    if failed:
        click.echo(f"error: the copy does not match the source in: {', '.join(failed)}", err=True)
        sys.exit(1)
    seconds = time.monotonic() - started
    click.echo(f"copied {rows} rows in {len(results)} tables in {seconds:.1f} s; verified")
    click.echo(f"next: set database.url to {describe(target)} on every replica")
