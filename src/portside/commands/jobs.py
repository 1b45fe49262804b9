"""`portside worker`, `portside job …` and `portside schedule …`: the background jobs
from the command line."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from portside import readonly
from portside.commands.common import (
    CLI,
    CONFIG_OPTION,
    DATA_DIR_OPTION,
    context_from,
    echo_table,
    migrated_settings,
)
from portside.jobs.kinds import KINDS, ParamsError
from portside.jobs.store import STATUSES, JobConflict, JobRecord

if TYPE_CHECKING:
    from portside.context import Context


def _echo(level: str, message: str) -> None:
    click.echo(message, err=level == "error")


def run_here(
    ctx: Context, kind_name: str, params: dict[str, Any], *, project: str | None
) -> JobRecord:
    """Queue a job and run it in this process at once, printing its log as it goes; the
    job stays in the history like any other."""
    from portside.jobs.runner import Worker
    from portside.jobs.store import Jobs
    from portside.logs import configure

    if ctx.settings.registry.read_only:
        click.echo(f"error: {kind_name} does not run: {readonly.MESSAGE}", err=True)
        sys.exit(2)
    # The job's own lines are the output; the worker's log events would only repeat them.
    configure("warning", ctx.settings.log.format)
    worker = Worker(ctx, echo=_echo)
    jobs = Jobs(ctx.db)
    try:
        checked = KINDS[kind_name].params(params)
        job_id = jobs.enqueue(
            kind_name,
            checked,
            project=project,
            created_by=CLI.name,
            run_by=worker.name,
            actor=CLI,
        )
    except ParamsError as error:
        raise click.BadParameter(str(error)) from None
    except JobConflict as conflict:
        click.echo(
            f"error: job {conflict.existing} ({kind_name}) is already queued or running; "
            f"see `portside job show {conflict.existing}`",
            err=True,
        )
        sys.exit(1)
    record = jobs.get(job_id)
    assert record is not None
    final = worker.run(record)
    if final.status != "succeeded":
        click.echo(f"job {final.id} {final.status}: {final.error or ''}".rstrip(": "), err=True)
    return final


@click.command()
@CONFIG_OPTION
@DATA_DIR_OPTION
@click.option(
    "--parent-pid",
    type=int,
    hidden=True,
    help="Exit when this process is gone (used by `portside serve`).",
)
def worker(config_file: Path | None, data_dir: Path | None, parent_pid: int | None) -> None:
    """Run background jobs (GC, retention, schedules) until interrupted."""
    from portside.config import settings_from_environment
    from portside.jobs.process import run_worker

    if parent_pid is not None and config_file is None and data_dir is None:
        settings = settings_from_environment()  # started by `serve`: its exact settings
    else:
        settings = migrated_settings(config_file, data_dir)
    if settings.registry.read_only:
        click.echo(f"error: no jobs run: {readonly.MESSAGE}", err=True)
        sys.exit(2)
    run_worker(settings, parent_pid)


@click.group()
def job() -> None:
    """Background jobs: list, inspect, start, stop."""


def _row(record: JobRecord) -> list[Any]:
    progress = (
        f"{record.progress_done}/{record.progress_total}"
        if record.progress_total is not None
        else str(record.progress_done or "")
    )
    when = record.started_at or record.created_at
    return [
        record.id,
        record.kind,
        record.project,
        record.status,
        when.strftime("%Y-%m-%d %H:%M:%S"),
        progress,
        record.created_by,
    ]


def as_json(record: JobRecord) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for field in record.__dataclass_fields__:
        value = getattr(record, field)
        data[field] = value.isoformat() if hasattr(value, "isoformat") else value
    return data


@job.command("list")
@click.option("--kind", type=click.Choice(sorted(KINDS)))
@click.option("--status", type=click.Choice(STATUSES))
@click.option("--project")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@click.option("--json", "as_json_output", is_flag=True, help="Print JSON.")
@CONFIG_OPTION
@DATA_DIR_OPTION
def list_jobs(
    *,
    kind: str | None,
    status: str | None,
    project: str | None,
    limit: int,
    as_json_output: bool,
    config_file: Path | None,
    data_dir: Path | None,
) -> None:
    """Recent jobs, newest first."""
    from portside.jobs.store import Jobs

    with context_from(config_file, data_dir) as ctx:
        records, _total = Jobs(ctx.db).find(kind=kind, status=status, project=project, limit=limit)
    if as_json_output:
        click.echo(json.dumps([as_json(r) for r in records], indent=2))
        return
    echo_table(
        [_row(r) for r in records],
        ["ID", "KIND", "PROJECT", "STATUS", "STARTED", "PROGRESS", "BY"],
    )


@job.command("show")
@click.argument("job_id", type=click.IntRange(1, 2**31 - 1))
@click.option("--json", "as_json_output", is_flag=True, help="Print JSON (without the log).")
@CONFIG_OPTION
@DATA_DIR_OPTION
def show_job(
    job_id: int, as_json_output: bool, config_file: Path | None, data_dir: Path | None
) -> None:
    """A job's state, result and log."""
    from portside.jobs.store import Jobs

    with context_from(config_file, data_dir) as ctx:
        jobs = Jobs(ctx.db)
        record = jobs.get(job_id)
        if record is None:
            click.echo(f"error: no job {job_id}", err=True)
            sys.exit(1)
        lines = [] if as_json_output else _whole_log(jobs, job_id)
    if as_json_output:
        click.echo(json.dumps(as_json(record), indent=2))
        return
    for label, value in (
        ("job", record.id),
        ("kind", record.kind),
        ("project", record.project),
        ("params", json.dumps(record.params, sort_keys=True)),
        ("status", record.status + (" (stop requested)" if record.stop_requested else "")),
        ("created", f"{record.created_at.isoformat()} by {record.created_by}"),
        ("started", record.started_at and record.started_at.isoformat()),
        ("finished", record.finished_at and record.finished_at.isoformat()),
        ("worker", record.worker),
        ("attempts", record.attempts),
        ("error", record.error),
        ("result", record.result and json.dumps(record.result, sort_keys=True)),
    ):
        if value is not None:
            click.echo(f"{label + ':':10} {value}")
    if lines:
        click.echo("log:")
        for line in lines:
            click.echo(f"  {line.at.strftime('%H:%M:%S')} {line.level:7} {line.message}")


def _whole_log(jobs: Any, job_id: int) -> list[Any]:
    lines: list[Any] = []
    while True:
        chunk = jobs.log(job_id, after=lines[-1].id if lines else 0, limit=5000)
        lines += chunk
        if len(chunk) < 5000:
            return lines


@job.command("start")
@click.argument("kind", type=click.Choice(sorted(KINDS)))
@click.option("--project", help="The project (retention jobs).")
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="NAME=JSON",
    help="A parameter, e.g. --param dry_run=true --param grace_period_seconds=0.",
)
@CONFIG_OPTION
@DATA_DIR_OPTION
def start_job(
    kind: str,
    project: str | None,
    params: tuple[str, ...],
    config_file: Path | None,
    data_dir: Path | None,
) -> None:
    """Queue a job for the workers (of `portside serve` or `portside worker`)."""
    from portside.jobs.store import Jobs

    values = _parse_params(params)
    job_kind = KINDS[kind]
    if job_kind.per_project and not project:
        raise click.BadParameter(f"{kind} jobs need --project", param_hint="--project")
    try:
        checked = job_kind.params(values)
    except ParamsError as error:
        raise click.BadParameter(str(error), param_hint="--param") from None
    with context_from(config_file, data_dir) as ctx:
        try:
            job_id = Jobs(ctx.db).enqueue(
                kind,
                checked,
                project=project if job_kind.per_project else None,
                created_by=CLI.name,
                actor=CLI,
            )
        except JobConflict as conflict:
            click.echo(f"error: job {conflict.existing} is already queued or running", err=True)
            sys.exit(1)
    click.echo(f"queued job {job_id}")


def _parse_params(items: tuple[str, ...]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for item in items:
        name, sep, raw = item.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"{item!r} is not NAME=VALUE", param_hint="--param")
        try:
            values[name] = json.loads(raw)
        except json.JSONDecodeError:
            values[name] = raw
    return values


@job.command("stop")
@click.argument("job_id", type=click.IntRange(1, 2**31 - 1))
@CONFIG_OPTION
@DATA_DIR_OPTION
def stop_job(job_id: int, config_file: Path | None, data_dir: Path | None) -> None:
    """Stop a queued job, or ask a running one to stop at its next check point."""
    from portside.jobs.store import Jobs

    with context_from(config_file, data_dir) as ctx:
        record = Jobs(ctx.db).request_stop(job_id, actor=CLI)
    if record is None:
        click.echo(f"error: no job {job_id}", err=True)
        sys.exit(1)
    if record.status == "running":
        click.echo(f"job {job_id} asked to stop")
    else:
        click.echo(f"job {job_id} is {record.status}")


@click.group()
def schedule() -> None:
    """Cron schedules that queue jobs (times in UTC)."""


@schedule.command("list")
@click.option("--json", "as_json_output", is_flag=True, help="Print JSON.")
@CONFIG_OPTION
@DATA_DIR_OPTION
def list_schedules(as_json_output: bool, config_file: Path | None, data_dir: Path | None) -> None:
    """Every schedule and when it next fires."""
    from portside.jobs.schedules import Schedules

    with context_from(config_file, data_dir) as ctx:
        found = Schedules(ctx.db).all()
    if as_json_output:
        click.echo(
            json.dumps(
                [
                    {
                        "name": x.name,
                        "kind": x.kind,
                        "project": x.project,
                        "cron": x.cron,
                        "params": x.params,
                        "enabled": x.enabled,
                        "next_run_at": x.next_run_at and x.next_run_at.isoformat(),
                        "last_job_id": x.last_job_id,
                    }
                    for x in found
                ],
                indent=2,
            )
        )
        return
    echo_table(
        [
            [
                x.name,
                x.kind,
                x.cron,
                "yes" if x.enabled else "no",
                x.next_run_at and x.next_run_at.strftime("%Y-%m-%d %H:%M"),
                x.last_job_id,
                json.dumps(x.params, sort_keys=True),
            ]
            for x in found
        ],
        ["NAME", "KIND", "CRON", "ENABLED", "NEXT RUN (UTC)", "LAST JOB", "PARAMS"],
    )


@schedule.command("set-gc")
@click.argument("cron")
@click.option("--grace-period", default="2h", show_default=True)
@click.option("--delete-untagged", is_flag=True)
@click.option("--disabled", is_flag=True, help="Keep the schedule but do not fire it.")
@CONFIG_OPTION
@DATA_DIR_OPTION
def set_gc_schedule(
    *,
    cron: str,
    grace_period: str,
    delete_untagged: bool,
    disabled: bool,
    config_file: Path | None,
    data_dir: Path | None,
) -> None:
    """Run garbage collection on a cron schedule, e.g. '0 3 * * *' (03:00 UTC daily)."""
    from portside.commands.gc import parse_duration
    from portside.jobs.schedules import ScheduleError, Schedules

    params = {
        "dry_run": False,
        "grace_period_seconds": parse_duration(grace_period).total_seconds(),
        "delete_untagged": delete_untagged,
    }
    with context_from(config_file, data_dir) as ctx:
        try:
            saved = Schedules(ctx.db).put(
                "gc",
                kind="gc",
                cron=cron,
                params=KINDS["gc"].params(params),
                enabled=not disabled,
                created_by=CLI.name,
                actor=CLI,
            )
        except ScheduleError as error:
            raise click.BadParameter(str(error), param_hint="CRON") from None
    nxt = saved.next_run_at.isoformat() if saved.next_run_at else "never (disabled)"
    click.echo(f"schedule gc: {saved.cron}; next run {nxt}")


@schedule.command("set-eviction")
@click.argument("cron")
@click.option(
    "--protect",
    default="10m",
    show_default=True,
    help="Never evict what was pulled or cached this recently.",
)
@click.option("--grace-period", default="2h", show_default=True, help="GC's grace period.")
@click.option("--disabled", is_flag=True, help="Keep the schedule but do not fire it.")
@CONFIG_OPTION
@DATA_DIR_OPTION
def set_eviction_schedule(
    *,
    cron: str,
    protect: str,
    grace_period: str,
    disabled: bool,
    config_file: Path | None,
    data_dir: Path | None,
) -> None:
    """Evict least-recently-pulled artifacts of proxy caches over their size limit on a
    cron schedule (the `proxy-evict` job), e.g. '*/30 * * * *'."""
    from portside.commands.gc import parse_duration
    from portside.jobs.schedules import ScheduleError, Schedules

    params = {
        "protect_seconds": parse_duration(protect).total_seconds(),
        "grace_period_seconds": parse_duration(grace_period).total_seconds(),
    }
    with context_from(config_file, data_dir) as ctx:
        try:
            saved = Schedules(ctx.db).put(
                "proxy-evict",
                kind="proxy-evict",
                cron=cron,
                params=KINDS["proxy-evict"].params(params),
                enabled=not disabled,
                created_by=CLI.name,
                actor=CLI,
            )
        except ScheduleError as error:
            raise click.BadParameter(str(error), param_hint="CRON") from None
    nxt = saved.next_run_at.isoformat() if saved.next_run_at else "never (disabled)"
    click.echo(f"schedule proxy-evict: {saved.cron}; next run {nxt}")


@schedule.command("delete")
@click.argument("name")
@CONFIG_OPTION
@DATA_DIR_OPTION
def delete_schedule(name: str, config_file: Path | None, data_dir: Path | None) -> None:
    """Remove a schedule (queued or running jobs it started are not affected)."""
    from portside.jobs.schedules import Schedules

    with context_from(config_file, data_dir) as ctx:
        if not Schedules(ctx.db).delete(name, actor=CLI):
            click.echo(f"error: no schedule {name!r}", err=True)
            sys.exit(1)
    click.echo(f"deleted schedule {name}")
