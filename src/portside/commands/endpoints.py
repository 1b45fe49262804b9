"""`portside endpoint …`: registry endpoints (other registries to replicate with or cache
from), on the server's database as the operator: add, list, show, update, remove, test,
and `new-key` to make a `secrets.encryption_key`."""

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
from portside.endpoints.secrets import new_key
from portside.endpoints.store import Endpoint, EndpointStore
from portside.metadata.db import Database
from portside.metadata.engine import make_engine
from portside.remote.kinds import KINDS


@click.group()
def endpoint() -> None:
    """Registry endpoints: other registries (Portside, Distribution, Docker Hub, Harbor,
    GHCR, ECR...) that replication rules copy to or from.

    Passwords and tokens are stored encrypted with `secrets.encryption_key` (make one
    with `portside endpoint new-key`) and never shown. Loopback, private, link-local and
    metadata addresses are refused unless `endpoints.allow_private_targets` or
    `endpoints.allowed_networks` allow them.
    """


@contextmanager
def _store(config_file: Path | None, data_dir: Path | None) -> Iterator[EndpointStore]:
    settings = migrated_settings(config_file, data_dir)
    db = Database(make_engine(settings.database_url))
    try:
        yield EndpointStore(db, settings)
    finally:
        db.engine.dispose()


def as_json(item: Endpoint) -> dict[str, Any]:
    return {
        "id": item.id,
        "name": item.name,
        "type": item.kind,
        "url": item.url,
        "username": item.username,
        "has_credentials": item.has_credentials,
        "verify_tls": item.verify_tls,
        "ca_bundle": item.ca_pem is not None,
        "description": item.description,
        "created_by": item.created_by,
        "created_at": item.created_at.isoformat(),
        "updated_at": item.updated_at.isoformat(),
    }


def _ca(path: Path | None) -> str | None:
    return None if path is None else path.read_text()


@endpoint.command("new-key")
def endpoint_new_key() -> None:
    """Print a new key for `secrets.encryption_key`."""
    click.echo(new_key())


@endpoint.command("add")
@click.argument("name")
@click.option("--type", "kind", type=click.Choice(list(KINDS)), required=True)
@click.option("--url", help="The registry's root URL (docker-hub and ghcr have a default).")
@click.option("--username", help="User to authenticate as.")
@click.option("--password-stdin", is_flag=True, help="Read the password or token from stdin.")
@click.option("--insecure", is_flag=True, help="Do not verify the TLS certificate.")
@click.option(
    "--ca-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="PEM CA bundle to trust for this endpoint.",
)
@click.option("--description", help="A note for people.")
@CONFIG_OPTION
@DATA_DIR_OPTION
@reports_errors
def endpoint_add(
    *,
    name: str,
    kind: str,
    url: str | None,
    username: str | None,
    password_stdin: bool,
    insecure: bool,
    ca_file: Path | None,
    description: str | None,
    config_file: Path | None,
    data_dir: Path | None,
) -> None:
    """Register a registry endpoint."""
    password = read_secret("Password") if password_stdin else None
    with _store(config_file, data_dir) as store:
        created = store.create(
            name=name,
            kind=kind,
            url=url,
            username=username,
            password=password,
            verify_tls=not insecure,
            ca_pem=_ca(ca_file),
            description=description,
            actor=CLI,
        )
    click.echo(f"added {created.describe()}")


@endpoint.command("list")
@click.option("--json", "json_output", is_flag=True, help="Print JSON.")
@CONFIG_OPTION
@DATA_DIR_OPTION
@reports_errors
def endpoint_list(json_output: bool, config_file: Path | None, data_dir: Path | None) -> None:
    """List the registry endpoints."""
    with _store(config_file, data_dir) as store:
        found = store.find()
    if json_output:
        click.echo(json.dumps([as_json(e) for e in found], indent=2))
        return
    echo_table(
        [
            [e.name, e.kind, e.url, e.username or "-", "yes" if e.verify_tls else "no"]
            for e in found
        ],
        ["NAME", "TYPE", "URL", "USER", "VERIFY-TLS"],
    )


@endpoint.command("show")
@click.argument("name")
@click.option("--json", "json_output", is_flag=True, help="JSON (the default anyway).")
@CONFIG_OPTION
@DATA_DIR_OPTION
@reports_errors
def endpoint_show(
    name: str, json_output: bool, config_file: Path | None, data_dir: Path | None
) -> None:
    """Show an endpoint (JSON; never its password)."""
    with _store(config_file, data_dir) as store:
        click.echo(json.dumps(as_json(store.get(name)), indent=2))


@endpoint.command("update")
@click.argument("name")
@click.option("--type", "kind", type=click.Choice(list(KINDS)))
@click.option("--url")
@click.option("--username", help="New user (give the password too, or keep the old one).")
@click.option("--password-stdin", is_flag=True, help="Read a new password or token from stdin.")
@click.option("--anonymous", is_flag=True, help="Forget the credentials.")
@click.option("--verify-tls/--insecure", default=None, help="Verify the TLS certificate or not.")
@click.option("--ca-file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--no-ca", is_flag=True, help="Remove the CA bundle.")
@click.option("--description")
@CONFIG_OPTION
@DATA_DIR_OPTION
@reports_errors
def endpoint_update(
    *,
    name: str,
    kind: str | None,
    url: str | None,
    username: str | None,
    password_stdin: bool,
    anonymous: bool,
    verify_tls: bool | None,
    ca_file: Path | None,
    no_ca: bool,
    description: str | None,
    config_file: Path | None,
    data_dir: Path | None,
) -> None:
    """Change an endpoint."""
    password = read_secret("Password") if password_stdin else None
    with _store(config_file, data_dir) as store:
        changed = store.update(
            name,
            kind=kind,
            url=url,
            username=username,
            password=password,
            clear_credentials=anonymous,
            verify_tls=verify_tls,
            ca_pem="" if no_ca else _ca(ca_file),
            description=description,
            actor=CLI,
        )
    click.echo(f"updated {changed.describe()}")


@endpoint.command("remove")
@click.argument("name")
@CONFIG_OPTION
@DATA_DIR_OPTION
@reports_errors
def endpoint_remove(name: str, config_file: Path | None, data_dir: Path | None) -> None:
    """Remove an endpoint no replication rule uses."""
    with _store(config_file, data_dir) as store:
        removed = store.delete(name, actor=CLI)
    click.echo(f"removed {removed.describe()}")


@endpoint.command("test")
@click.argument("name")
@CONFIG_OPTION
@DATA_DIR_OPTION
@reports_errors
def endpoint_test(name: str, config_file: Path | None, data_dir: Path | None) -> None:
    """Connect (GET /v2/ with the credentials); exit 1 with the reason if it fails."""
    with _store(config_file, data_dir) as store:
        ping = store.test(store.get(name))
    if ping.ok:
        click.echo(ping.message)
        return
    click.echo(f"error: {ping.message}", err=True)
    raise SystemExit(1)
