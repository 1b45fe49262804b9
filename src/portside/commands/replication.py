"""`portside replication …`: replication rules (add, list, show, update, remove, run)
and their runs (list, show with per-artifact results), on the server's database as the
operator. `rule run` queues a run for the workers, or runs it here with `--here`."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from portside.commands.common import (
    CLI,
    CONFIG_OPTION,
    DATA_DIR_OPTION,
    context_from,
    echo_table,
    migrated_settings,
    reports_errors,
)
from portside.metadata.db import Database
from portside.metadata.engine import make_engine
from portside.replication.rules import DIRECTIONS, RESOURCES, TRIGGERS, Rule, RuleStore
from portside.replication.runs import Runs
from portside.units import format_size

ID = click.IntRange(min=1, max=2**31 - 1)


@click.group()
def replication() -> None:
    """Replication: copy artifacts to (push) or from (pull) registry endpoints by rule.

    Rules select repositories and tags by pattern, optionally labels and the kind of
    resource, and name a destination namespace and flattening level (as in Harbor).
    Runs are jobs; each records what it did per artifact.
    """


@replication.group()
def rule() -> None:
    """Replication rules."""


@contextmanager
def _db(config_file: Path | None, data_dir: Path | None) -> Iterator[Database]:
    settings = migrated_settings(config_file, data_dir)
    db = Database(make_engine(settings.database_url))
    try:
        yield db
    finally:
        db.engine.dispose()


def rule_json(item: Rule) -> dict[str, Any]:
    return {
        "id": item.id,
        "name": item.name,
        "description": item.description,
        "enabled": item.enabled,
        "direction": item.direction,
        "endpoint": item.endpoint,
        "repositories": item.repositories,
        "tags": item.tags,
        "labels": list(item.labels),
        "resources": item.resources,
        "destination_namespace": item.destination_namespace,
        "flattening": item.flattening,
        "copy_deletions": item.copy_deletions,
        "override": item.override,
        "bandwidth_kbps": item.bandwidth_kbps,
        "trigger": item.trigger,
        "cron": item.cron,
        "created_by": item.created_by,
        "created_at": item.created_at.isoformat(),
        "updated_at": item.updated_at.isoformat(),
    }


def _rule_options(function: Any) -> Any:
    options = [
        click.option("--repositories", help="Repository name pattern (glob; default **)."),
        click.option("--tags", help="Tag pattern (glob; default **)."),
        click.option("--label", "labels", multiple=True, help="key=value annotation required."),
        click.option("--resources", type=click.Choice(list(RESOURCES)), help="Default all."),
        click.option("--namespace", "destination_namespace", help="Destination namespace."),
        click.option(
            "--flattening",
            type=click.IntRange(-1, 3),
            help="-1 all levels, 0 none, 1 (default), 2, 3.",
        ),
        click.option(
            "--copy-deletions/--no-copy-deletions",
            default=None,
            help="Push rules: delete on the destination, within the rule's filters, what "
            "was deleted here (event runs as it happens; manual and scheduled runs sweep).",
        ),
        click.option("--override/--no-override", default=None, help="Replace existing tags."),
        click.option("--bandwidth-kbps", type=click.IntRange(0, 10**8), help="0: unlimited."),
        click.option("--trigger", type=click.Choice(list(TRIGGERS))),
        click.option("--cron", help="For --trigger scheduled, e.g. '0 3 * * *' (UTC)."),
        click.option("--description"),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def _given(options: dict[str, Any]) -> dict[str, Any]:
    given = {k: v for k, v in options.items() if v is not None}
    if "labels" in given:
        given["labels"] = list(given["labels"]) or None
        if given["labels"] is None:
            del given["labels"]
    return given


def _sync(db: Database, item: Rule | None, name: str) -> None:
    from portside.jobs.replication import sync_schedule

    sync_schedule(db, item, actor=CLI, name=name)


@rule.command("add")
@click.argument("name")
@click.option("--direction", type=click.Choice(list(DIRECTIONS)), required=True)
@click.option("--endpoint", required=True, help="The endpoint's name.")
@click.option("--disabled", is_flag=True)
@_rule_options
@CONFIG_OPTION
@DATA_DIR_OPTION
@reports_errors
def rule_add(
    *,
    name: str,
    direction: str,
    endpoint: str,
    disabled: bool,
    config_file: Path | None,
    data_dir: Path | None,
    **options: Any,
) -> None:
    """Add a replication rule."""
    with _db(config_file, data_dir) as db:
        created = RuleStore(db).create(
            name=name,
            direction=direction,
            endpoint=endpoint,
            actor=CLI,
            enabled=not disabled,
            **_given(options),
        )
        _sync(db, created, created.schedule_name)
    click.echo(f"added {created.describe()}")


@rule.command("list")
@click.option("--json", "json_output", is_flag=True)
@CONFIG_OPTION
@DATA_DIR_OPTION
@reports_errors
def rule_list(json_output: bool, config_file: Path | None, data_dir: Path | None) -> None:
    """List the replication rules."""
    with _db(config_file, data_dir) as db:
        found = RuleStore(db).find()
    if json_output:
        click.echo(json.dumps([rule_json(r) for r in found], indent=2))
        return
    echo_table(
        [
            [
                r.name,
                r.direction,
                r.endpoint,
                r.repositories,
                r.tags,
                r.trigger + (f" {r.cron}" if r.cron else ""),
                "enabled" if r.enabled else "disabled",
            ]
            for r in found
        ],
        ["NAME", "DIRECTION", "ENDPOINT", "REPOSITORIES", "TAGS", "TRIGGER", "STATE"],
    )


@rule.command("show")
@click.argument("name")
@click.option("--json", "json_output", is_flag=True, help="JSON (the default anyway).")
@CONFIG_OPTION
@DATA_DIR_OPTION
@reports_errors
def rule_show(
    name: str, json_output: bool, config_file: Path | None, data_dir: Path | None
) -> None:
    """Show a rule (JSON)."""
    with _db(config_file, data_dir) as db:
        click.echo(json.dumps(rule_json(RuleStore(db).get(name)), indent=2))


@rule.command("update")
@click.argument("name")
@click.option("--endpoint")
@click.option("--enabled/--disabled", default=None)
@_rule_options
@CONFIG_OPTION
@DATA_DIR_OPTION
@reports_errors
def rule_update(
    *,
    name: str,
    endpoint: str | None,
    enabled: bool | None,
    config_file: Path | None,
    data_dir: Path | None,
    **options: Any,
) -> None:
    """Change a rule (only what is given)."""
    with _db(config_file, data_dir) as db:
        changed = RuleStore(db).update(
            name, actor=CLI, endpoint=endpoint, enabled=enabled, **_given(options)
        )
        _sync(db, changed, changed.schedule_name)
    click.echo(f"updated {changed.describe()}")


@rule.command("remove")
@click.argument("name")
@CONFIG_OPTION
@DATA_DIR_OPTION
@reports_errors
def rule_remove(name: str, config_file: Path | None, data_dir: Path | None) -> None:
    """Remove a rule (and its schedule)."""
    with _db(config_file, data_dir) as db:
        removed = RuleStore(db).delete(name, actor=CLI)
        _sync(db, None, removed.schedule_name)
    click.echo(f"removed {removed.describe()}")


@rule.command("run")
@click.argument("name")
@click.option("--here", is_flag=True, help="Run it in this process, printing its log.")
@CONFIG_OPTION
@DATA_DIR_OPTION
@reports_errors
def rule_run(name: str, here: bool, config_file: Path | None, data_dir: Path | None) -> None:
    """Start a run of a rule: queued for the workers, or here with --here."""
    if here:
        from portside.commands.jobs import run_here

        with context_from(config_file, data_dir) as ctx:
            found = RuleStore(ctx.db).get(name)
            final = run_here(ctx, "replication", {"rule": found.id}, project=None)
            result = final.result or {}
        click.echo(
            f"run {final.id} {final.status}: {result.get('copied', 0)} copied, "
            f"{result.get('skipped', 0)} skipped, {result.get('failed', 0)} failed, "
            f"{format_size(int(result.get('bytes', 0)))}"
        )
        if final.error:
            click.echo(f"error: {final.error}", err=True)
        if final.status != "succeeded" or result.get("failed"):
            sys.exit(1)
        return
    from portside.jobs.replication import queue_run

    with _db(config_file, data_dir) as db:
        job_id = queue_run(db, RuleStore(db).get(name), actor=CLI)
    click.echo(f"queued run {job_id}; see `portside replication run show {job_id}`")


@replication.command("runs")
@click.option("--rule", "rule_name", help="Only this rule's runs.")
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True)
@click.option("--json", "json_output", is_flag=True)
@CONFIG_OPTION
@DATA_DIR_OPTION
@reports_errors
def runs_list(
    rule_name: str | None,
    limit: int,
    json_output: bool,
    config_file: Path | None,
    data_dir: Path | None,
) -> None:
    """Replication runs, newest first."""
    with _db(config_file, data_dir) as db:
        rule_id = RuleStore(db).get(rule_name).id if rule_name else None
        found, _ = Runs(db).find(rule_id=rule_id, limit=limit)
    if json_output:
        click.echo(json.dumps([_run_json(r) for r in found], indent=2))
        return
    echo_table(
        [
            [
                r.job_id,
                r.rule or "-",
                r.trigger,
                r.status,
                (r.result or {}).get("copied", "-"),
                (r.result or {}).get("failed", "-"),
                format_size(int((r.result or {}).get("bytes", 0))),
                r.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            ]
            for r in found
        ],
        ["ID", "RULE", "TRIGGER", "STATUS", "COPIED", "FAILED", "BYTES", "CREATED"],
    )


def _run_json(run: Any) -> dict[str, Any]:
    return {
        "id": run.job_id,
        "rule": run.rule,
        "trigger": run.trigger,
        "status": run.status,
        "created_at": run.created_at.isoformat(),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "result": run.result,
        "error": run.error,
    }


@replication.group("run")
def run_group() -> None:
    """One replication run."""


@run_group.command("show")
@click.argument("run_id", type=ID)
@click.option("--json", "json_output", is_flag=True)
@CONFIG_OPTION
@DATA_DIR_OPTION
@reports_errors
def run_show(
    run_id: int, json_output: bool, config_file: Path | None, data_dir: Path | None
) -> None:
    """A run and what it did per artifact."""
    from portside.auth.errors import Missing

    with _db(config_file, data_dir) as db:
        runs = Runs(db)
        found = runs.get(run_id)
        if found is None:
            raise Missing(f"no replication run {run_id}")
        items, total = runs.items(run_id)
    if json_output:
        body = _run_json(found) | {
            "items": [
                {
                    "source": i.source,
                    "destination": i.destination,
                    "digest": i.digest,
                    "status": i.status,
                    "blobs": i.blobs,
                    "bytes": i.bytes,
                    "message": i.message,
                }
                for i in items
            ]
        }
        click.echo(json.dumps(body, indent=2))
        return
    click.echo(f"run {found.job_id} of rule {found.rule} ({found.trigger}): {found.status}")
    if found.error:
        click.echo(f"error: {found.error}")
    echo_table(
        [
            [i.status, i.source, i.destination, i.blobs, format_size(i.bytes), i.message or ""]
            for i in items
        ],
        ["STATUS", "SOURCE", "DESTINATION", "BLOBS", "BYTES", "MESSAGE"],
    )
    if total > len(items):
        click.echo(f"({total - len(items)} more)")
