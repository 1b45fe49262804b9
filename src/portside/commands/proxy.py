"""The proxy-cache parts of `portside project …`: binding a new project to a registry
endpoint, and showing or changing its cache (the commands are in commands.projects)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from portside.auth.errors import Missing
from portside.commands.common import CLI, echo_table, format_size, migrated_settings
from portside.endpoints.store import EndpointStore
from portside.metadata.db import Database
from portside.metadata.engine import make_engine
from portside.proxy.bindings import Binding, ProxyStore


@contextmanager
def proxy_store(
    config_file: Path | None, data_dir: Path | None
) -> Iterator[tuple[ProxyStore, EndpointStore]]:
    settings = migrated_settings(config_file, data_dir)
    db = Database(make_engine(settings.database_url))
    try:
        yield ProxyStore(db, settings.proxy), EndpointStore(db, settings)
    finally:
        db.engine.dispose()


def check_endpoint(config_file: Path | None, data_dir: Path | None, endpoint: str) -> None:
    with proxy_store(config_file, data_dir) as (_, endpoints):
        endpoints.get(endpoint)  # Missing names the endpoint


def bind(
    config_file: Path | None,
    data_dir: Path | None,
    name: str,
    endpoint: str,
    *,
    tag_ttl: int | None,
    cache_limit: int | None,
) -> Binding:
    with proxy_store(config_file, data_dir) as (store, _):
        return store.bind(
            name, endpoint, tag_ttl_seconds=tag_ttl, cache_limit_bytes=cache_limit, actor=CLI
        )


def show_cache(config_file: Path | None, data_dir: Path | None, name: str) -> None:
    with proxy_store(config_file, data_dir) as (store, _):
        if store.binding(name) is None:
            raise Missing(f"project {name!r} is not a proxy cache")
        status = store.status(name)
    binding = status.binding
    limit = "none" if binding.cache_limit_bytes is None else format_size(binding.cache_limit_bytes)
    last = status.last_pulled_at.isoformat() if status.last_pulled_at else "never"
    click.echo(
        f"{name}: proxy cache of {', '.join(binding.endpoints)}"
        f"{' (mirror)' if binding.mirror else ''}; tags re-checked after "
        f"{binding.tag_ttl_seconds} s; limit {limit}; uses {format_size(status.used_bytes)} "
        f"in {status.artifact_count} artifacts; {status.pulls} pulls; last pulled {last}"
    )
    if status.artifacts:
        echo_table(
            [
                [
                    a.repository,
                    ",".join(a.tags) or "-",
                    a.digest[:19],
                    format_size(a.size),
                    a.pulls,
                    a.last_pulled_at.isoformat() if a.last_pulled_at else "never",
                ]
                for a in status.artifacts
            ],
            ["REPOSITORY", "TAGS", "DIGEST", "MANIFEST", "PULLS", "LAST PULLED"],
        )


def update(
    config_file: Path | None,
    data_dir: Path | None,
    name: str,
    *,
    tag_ttl: int | None,
    cache_limit: int | None,
    no_limit: bool,
) -> Binding:
    with proxy_store(config_file, data_dir) as (store, _):
        return store.update(
            name,
            tag_ttl_seconds=tag_ttl,
            cache_limit_bytes=cache_limit,
            clear_limit=no_limit,
            actor=CLI,
        )
