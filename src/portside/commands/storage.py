"""`portside storage copy`: copy every stored file from the configured driver to another
(e.g. from a local directory to an S3 bucket), resumable and digest-verified."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from portside.commands.common import CONFIG_OPTION, DATA_DIR_OPTION
from portside.config import ConfigError, Settings, load_settings


def _load(config_file: Path | None, data_dir: Path | None, what: str) -> Settings:
    try:
        return load_settings(config_file, data_dir=data_dir)
    except ConfigError as error:
        click.echo(f"error: {what}: {error}", err=True)
        sys.exit(2)


@click.group()
def storage() -> None:
    """Blob storage maintenance."""


@storage.command("copy")
@click.option(
    "--to",
    "target",
    required=True,
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    help="YAML configuration file whose `storage` section is the destination.",
)
@click.option(
    "--workers", default=8, show_default=True, type=click.IntRange(1, 64), help="Files in flight."
)
@CONFIG_OPTION
@DATA_DIR_OPTION
def copy(target: Path, workers: int, config_file: Path | None, data_dir: Path | None) -> None:
    """Copy all stored files (blobs, uploads in progress) to the storage `--to` names.

    Run it with the registry stopped or read-only (registry.read_only). Files the
    destination already has with the same size are skipped, so an interrupted copy is
    resumed by running it again. Blobs are verified against their digest while they
    stream. Then point storage at the destination and run `portside fsck`.
    """
    from portside.storage.copy import CopyReport, copy_storage
    from portside.storage.factory import check_storage, open_storage

    source_settings = _load(config_file, data_dir, "source")
    target_settings = _load(target, data_dir, str(target))
    try:
        check_storage(source_settings)
        check_storage(target_settings)
    except ConfigError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(2)
    source = open_storage(source_settings)
    destination = open_storage(target_settings)

    def progress(report: CopyReport) -> None:
        done = report.copied + report.present + len(report.failures)
        click.echo(f"... {done}/{report.files} files ({report.copied_bytes} bytes copied)")

    report = copy_storage(source, destination, workers=workers, progress=progress)
    for failure in report.failures:
        click.echo(f"failed: {failure}", err=True)
    click.echo(report.summary())
    sys.exit(1 if report.failures else 0)
