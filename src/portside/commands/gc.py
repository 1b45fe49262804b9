"""`portside gc`: online garbage collection from the command line (a server may keep
running on the same database and storage)."""

from __future__ import annotations

import re
import sys
from datetime import timedelta
from pathlib import Path

import click

from portside.commands.common import CONFIG_OPTION, DATA_DIR_OPTION, format_size
from portside.config import ConfigError, load_settings

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
    from portside.app import build_context
    from portside.content.gc import GarbageCollector
    from portside.content.purge import purge_uploads
    from portside.metadata.engine import upgrade

    grace = parse_duration(grace_period)
    try:
        settings = load_settings(config_file, data_dir=data_dir)
    except ConfigError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(2)
    upgrade(settings.database_url)
    ctx = build_context(settings)
    try:
        audit = ctx.audit

        def record(kind: str, resource: str, reason: str, detail: dict[str, object]) -> None:
            # Every deletion, with its reason, in the audit log (actor "gc").
            audit.record(
                actor="gc",
                action="gc.delete",
                resource_type=kind,
                resource=resource,
                project=resource.split("/", 1)[0] if kind != "blob" else None,
                detail={"reason": reason, **detail},
                batched=True,
            )

        collector = GarbageCollector(ctx.db, ctx.storage, record)
        plan = collector.plan(grace, delete_untagged=delete_untagged)
        verb = "would delete" if dry_run else "delete"
        for m in plan.manifests:
            click.echo(f"{verb} manifest {m.repository}@{m.digest}: {m.reason}")
        for link in plan.links:
            click.echo(f"{verb} link {link.repository} -> {link.digest}: {link.reason}")
        for blob in plan.blobs:
            click.echo(f"{verb} blob {blob.digest} ({blob.size} bytes): {blob.reason}")
        if dry_run:
            click.echo(
                f"dry run: would delete {len(plan.manifests)} manifests, {len(plan.links)} "
                f"links and {len(plan.blobs)} blobs, freeing {plan.bytes} bytes "
                f"({format_size(plan.bytes)})"
            )
            return
        result = collector.run(plan)
        purged = purge_uploads(
            ctx.db, ctx.storage, timedelta(hours=settings.registry.upload_expiry_hours)
        )
    finally:
        ctx.close()
    click.echo(
        f"deleted {result.manifests} manifests, {result.links} links and {result.blobs} "
        f"blobs, freed {result.bytes} bytes ({format_size(result.bytes)}); "
        f"{result.skipped} planned deletions skipped (in use again); "
        f"purged {purged.expired_uploads} expired uploads"
    )
