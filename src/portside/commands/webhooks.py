"""`portside webhook …`: a project's webhooks, on the server's database (as the operator,
like the other commands): list, create, delete, send a test event, show deliveries."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from portside.commands.common import (
    CLI,
    CONFIG_OPTION,
    DATA_DIR_OPTION,
    echo_table,
    migrated_settings,
    read_secret,
    reports_errors,
)
from portside.metadata.db import Database
from portside.metadata.engine import make_engine
from portside.webhooks.deliveries import STATUSES, Deliveries
from portside.webhooks.dispatcher import Dispatcher
from portside.webhooks.payloads import EVENT_TYPES, FORMATS
from portside.webhooks.policies import WebhookPolicy

ID = click.IntRange(min=1, max=2**31 - 1)


@click.group()
def webhook() -> None:
    """Webhooks: POST a project's events (pushes, pulls, deletions...) to a URL.

    Deliveries are sent by the job workers, retried with backoff and marked dead after
    `webhooks.max_attempts`. Loopback, private, link-local and metadata addresses are
    refused as targets unless `webhooks.allow_private_targets` or
    `webhooks.allowed_networks` allow them.
    """


@contextmanager
def _dispatcher(config_file: Path | None, data_dir: Path | None) -> Iterator[Dispatcher]:
    settings = migrated_settings(config_file, data_dir)
    db = Database(make_engine(settings.database_url))
    try:
        yield Dispatcher(db, settings, "cli")
    finally:
        db.engine.dispose()


def _as_json(policy: WebhookPolicy) -> dict[str, Any]:
    return {
        "id": policy.id,
        "project": policy.project,
        "name": policy.name,
        "description": policy.description,
        "enabled": policy.enabled,
        "target_url": policy.target_url,
        "event_types": list(policy.event_types),
        "payload_format": policy.payload_format,
        "has_secret": policy.secret is not None,
        "created_by": policy.created_by,
        "created_at": policy.created_at.isoformat(),
    }


@webhook.command("list")
@click.argument("project_name", metavar="PROJECT")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@CONFIG_OPTION
@DATA_DIR_OPTION
@reports_errors
def webhook_list(
    project_name: str, as_json: bool, config_file: Path | None, data_dir: Path | None
) -> None:
    """List a project's webhooks."""
    with _dispatcher(config_file, data_dir) as dispatcher:
        policies = dispatcher.policies.find(project_name)
    if as_json:
        click.echo(json.dumps([_as_json(p) for p in policies], indent=2))
        return
    echo_table(
        [
            [
                p.id,
                p.name,
                "enabled" if p.enabled else "disabled",
                p.target_url,
                ",".join(p.event_types),
                p.payload_format,
            ]
            for p in policies
        ],
        ["ID", "NAME", "STATE", "TARGET", "EVENTS", "FORMAT"],
    )


@webhook.command("create")
@click.argument("project_name", metavar="PROJECT")
@click.option("--name", required=True, help="The webhook's name in the project.")
@click.option("--url", "target_url", required=True, help="Where to POST events.")
@click.option(
    "--event",
    "event_types",
    multiple=True,
    required=True,
    type=click.Choice(list(EVENT_TYPES)),
    help="An event to send (repeat for more).",
)
@click.option(
    "--format",
    "payload_format",
    type=click.Choice(list(FORMATS)),
    default="default",
    show_default=True,
    help="Harbor's default payload or CloudEvents 1.0.",
)
@click.option(
    "--secret-stdin",
    is_flag=True,
    help="Read a signing secret from stdin (requests then carry X-Portside-Signature).",
)
@click.option("--description", help="A note for people.")
@click.option("--disabled", is_flag=True, help="Create it disabled.")
@CONFIG_OPTION
@DATA_DIR_OPTION
@reports_errors
def webhook_create(
    *,
    project_name: str,
    name: str,
    target_url: str,
    event_types: tuple[str, ...],
    payload_format: str,
    secret_stdin: bool,
    description: str | None,
    disabled: bool,
    config_file: Path | None,
    data_dir: Path | None,
) -> None:
    """Create a webhook in a project."""
    secret = read_secret("Secret") if secret_stdin else None
    with _dispatcher(config_file, data_dir) as dispatcher:
        policy = dispatcher.policies.create(
            project_name,
            name=name,
            target_url=target_url,
            event_types=event_types,
            payload_format="cloudevents" if payload_format == "cloudevents" else "default",
            secret=secret or None,
            description=description,
            enabled=not disabled,
            actor=CLI,
        )
    click.echo(f"created {policy.describe()} (id {policy.id})")


@webhook.command("delete")
@click.argument("project_name", metavar="PROJECT")
@click.argument("webhook_id", metavar="WEBHOOK_ID", type=ID)
@CONFIG_OPTION
@DATA_DIR_OPTION
@reports_errors
def webhook_delete(
    project_name: str, webhook_id: int, config_file: Path | None, data_dir: Path | None
) -> None:
    """Delete a webhook and its delivery history."""
    with _dispatcher(config_file, data_dir) as dispatcher:
        policy = dispatcher.policies.delete(project_name, webhook_id, actor=CLI)
    click.echo(f"deleted {policy.describe()}")


@webhook.command("test")
@click.argument("project_name", metavar="PROJECT")
@click.argument("webhook_id", metavar="WEBHOOK_ID", type=ID)
@CONFIG_OPTION
@DATA_DIR_OPTION
@reports_errors
def webhook_test(
    project_name: str, webhook_id: int, config_file: Path | None, data_dir: Path | None
) -> None:
    """Send a test event now; exit 1 if the target did not accept it."""
    with _dispatcher(config_file, data_dir) as dispatcher:
        delivery = dispatcher.send_test(project_name, webhook_id, "cli")
    if delivery.status == "succeeded":
        click.echo(f"delivered: HTTP {delivery.response_code} in {delivery.latency_ms} ms")
        return
    click.echo(f"error: not delivered: {delivery.error}", err=True)
    raise SystemExit(1)


@webhook.command("deliveries")
@click.argument("project_name", metavar="PROJECT")
@click.argument("webhook_id", metavar="WEBHOOK_ID", type=ID)
@click.option("--status", type=click.Choice(list(STATUSES)), help="Only this state.")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@CONFIG_OPTION
@DATA_DIR_OPTION
@reports_errors
def webhook_deliveries(
    *,
    project_name: str,
    webhook_id: int,
    status: str | None,
    limit: int,
    config_file: Path | None,
    data_dir: Path | None,
) -> None:
    """A webhook's deliveries, newest first."""
    with _dispatcher(config_file, data_dir) as dispatcher:
        policy = dispatcher.policies.get(project_name, webhook_id)
        found, _total = Deliveries(dispatcher.db, dispatcher.deliveries.retry).find(
            policy.id, status=status, limit=limit
        )
    echo_table(
        [
            [
                d.id,
                d.event_id if d.event_id is not None else "test",
                d.event_type,
                d.status,
                d.attempts,
                d.response_code,
                d.latency_ms,
                d.updated_at.strftime("%Y-%m-%d %H:%M:%S"),
                (d.error or "")[:60],
            ]
            for d in found
        ],
        ["ID", "EVENT", "TYPE", "STATUS", "ATTEMPTS", "CODE", "MS", "UPDATED", "ERROR"],
    )
