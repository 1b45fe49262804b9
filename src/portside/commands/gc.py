"""`portside gc`: online garbage collection from the command line, run as a job in this
process (kept in the job history), while a server may keep running on the same database
and storage."""

from __future__ import annotations

import re
import sys
from datetime import timedelta
from pathlib import Path

import click

from portside.commands.common import CONFIG_OPTION, DATA_DIR_OPTION, context_from
from portside.commands.jobs import run_here

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(s|m|h|d)?")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


def parse_duration(text: str) -> timedelta:
    """`2h`, `30m`, `1d`, `90s` or plain seconds."""
    match = _DURATION.fullmatch(text.strip().lower())
    if not match:
        raise click.BadParameter(f"{text!r} is not a duration such as 2h, 30m, 1d or 0")
    return timedelta(seconds=float(match.group(1)) * _UNIT[match.group(2)])


@click.command()
@click.option("--dry-run", is_flag=True, help="Report what would be deleted; delete nothing.")
@click.option(
    "--grace-period",
    default="2h",
    show_default=True,
    help="Keep anything pushed, linked or mounted this recently (e.g. 2h, 30m, 0).",
)
@click.option(
    "--delete-untagged",
    is_flag=True,
    help="Also delete manifests with no tag that no index or kept manifest needs.",
)
@CONFIG_OPTION
@DATA_DIR_OPTION
def gc(
    *,
    dry_run: bool,
    grace_period: str,
    delete_untagged: bool,
    config_file: Path | None,
    data_dir: Path | None,
) -> None:
    """Delete blobs no manifest references any more, while the registry keeps serving."""
    grace = parse_duration(grace_period)
    with context_from(config_file, data_dir) as ctx:
        params = {
            "dry_run": dry_run,
            "grace_period_seconds": grace.total_seconds(),
            "delete_untagged": delete_untagged,
        }
        final = run_here(ctx, "gc", params, project=None)
    if final.status != "succeeded":
        sys.exit(1)
