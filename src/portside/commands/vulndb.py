"""`portside vulndb`: import vulnerability data (OSV exports, the Debian security
tracker), import the configured sources now, and show what the database holds."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from portside.commands.common import CONFIG_OPTION, DATA_DIR_OPTION, echo_table, migrated_settings
from portside.metadata.db import Database
from portside.metadata.engine import make_engine


@click.group()
def vulndb() -> None:
    """The vulnerability database scans match packages against."""


def _database(config_file: Path | None, data_dir: Path | None) -> Database:
    settings = migrated_settings(config_file, data_dir)
    return Database(make_engine(settings.database_url))


def _progress(count: int) -> None:
    click.echo(f"  {count} advisories read", err=True)


@vulndb.command("import")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["auto", "osv", "debian-tracker"]),
    default="auto",
    show_default=True,
    help="What FILES hold; auto tells OSV (zip, directory, JSON) from the Debian tracker.",
)
@CONFIG_OPTION
@DATA_DIR_OPTION
def import_files(
    files: tuple[Path, ...], fmt: str, config_file: Path | None, data_dir: Path | None
) -> None:
    """Import FILES: OSV JSON records, directories of them, OSV ecosystem zip exports,
    or the Debian security tracker's JSON. Each file is one source (named by its
    absolute path), replaced as a whole: a failed import leaves its old data."""
    from portside.vulndb import FeedError, import_path
    from portside.vulndb.feeds import Format

    db = _database(config_file, data_dir)
    failed = 0
    try:
        for path in files:
            if not path.exists():
                click.echo(f"error: {path}: no such file or directory", err=True)
                failed += 1
                continue
            click.echo(f"importing {path}", err=True)
            chosen: Format | None = None if fmt == "auto" else fmt  # type: ignore[assignment]
            try:
                result = import_path(db, path, fmt=chosen, progress=_progress)
            except FeedError as error:
                click.echo(f"error: {error} (nothing imported from it)", err=True)
                failed += 1
                continue
            click.echo(
                f"{result.source}: {result.advisories} advisories, {result.packages} "
                f"packages ({result.format}) in {result.seconds:.1f} s; "
                f"generation {result.generation}"
            )
    finally:
        db.engine.dispose()
    sys.exit(1 if failed else 0)


@vulndb.command("update")
@click.option("--force", is_flag=True, help="Import every source, changed or not.")
@CONFIG_OPTION
@DATA_DIR_OPTION
def update(force: bool, config_file: Path | None, data_dir: Path | None) -> None:
    """Import the configured sources (vulndb.sources) that changed, now, here (the
    scheduled `vulndb_import` job does the same in a worker)."""
    from portside.vulndb.sources import import_source

    settings = migrated_settings(config_file, data_dir)
    if not settings.vulndb.sources:
        click.echo("error: no sources configured (vulndb.sources)", err=True)
        sys.exit(1)
    db = Database(make_engine(settings.database_url))
    failed = 0
    try:
        for source in settings.vulndb.sources:
            click.echo(f"checking {source.name}", err=True)
            outcome = import_source(db, settings, source, force=force, progress=_progress)
            if outcome.result is not None:
                click.echo(
                    f"{outcome.source}: imported {outcome.result.advisories} advisories; "
                    f"generation {outcome.result.generation}"
                )
            else:
                failed += outcome.state == "failed"
                click.echo(f"{outcome.source}: {outcome.state} {outcome.detail}".rstrip())
    finally:
        db.engine.dispose()
    sys.exit(1 if failed else 0)


@vulndb.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (the management API's fields).")
@CONFIG_OPTION
@DATA_DIR_OPTION
def show_status(as_json: bool, config_file: Path | None, data_dir: Path | None) -> None:
    """What the database holds: per source, its last import and counts; the generation."""
    from portside.vulndb import status

    db = _database(config_file, data_dir)
    try:
        document = status(db).document()
    finally:
        db.engine.dispose()
    if as_json:
        click.echo(json.dumps(document, indent=2))
        return
    if not document["sources"]:
        click.echo("the vulnerability database is empty (see `portside vulndb import`)")
    else:
        rows = [
            [s["name"], s["format"], s["imported_at"][:19], s["advisories"], s["packages"]]
            for s in document["sources"]
        ]
        echo_table(rows, ["SOURCE", "FORMAT", "IMPORTED (UTC)", "ADVISORIES", "PACKAGES"])
        click.echo(f"generation {document['generation']}, {document['advisories']} advisories")
    for failure in document["failures"]:
        click.echo(f"last import of {failure['source']} failed: {failure['error']}")
