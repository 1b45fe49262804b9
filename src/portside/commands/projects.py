"""`portside project …`: projects, their visibility and quota, and their members."""

from __future__ import annotations

import json
from pathlib import Path

import click

from portside.auth.roles import Role
from portside.commands import proxy
from portside.commands.common import (
    CLI,
    CONFIG_OPTION,
    DATA_DIR_OPTION,
    echo_table,
    format_size,
    parse_size,
    reports_errors,
    services,
)

ROLE = click.Choice([r.value for r in Role])


@click.group()
def project() -> None:
    """Projects: the first path component of repository names."""


@project.command("create")
@click.argument("name")
@click.option("--public", is_flag=True, help="Anyone may pull, without signing in.")
@click.option("--quota", help="Storage quota, e.g. 10GiB (see `portside usage`).")
@click.option(
    "--proxy-endpoint",
    metavar="ENDPOINT",
    help="Make it a proxy cache of this registry endpoint (see `portside endpoint`).",
)
@click.option(
    "--tag-ttl",
    type=click.IntRange(min=0),
    help="Proxy cache: seconds a cached tag is served before the upstream is asked again "
    "(default: proxy.tag_ttl_seconds).",
)
@click.option("--cache-limit", help="Proxy cache: evict least-recently-pulled past this size.")
@CONFIG_OPTION
@DATA_DIR_OPTION
@reports_errors
def project_create(
    *,
    name: str,
    public: bool,
    quota: str | None,
    proxy_endpoint: str | None,
    tag_ttl: int | None,
    cache_limit: str | None,
    config_file: Path | None,
    data_dir: Path | None,
) -> None:
    """Create a project (private unless --public), or a proxy-cache project."""
    quota_bytes = parse_size(quota) if quota else None
    limit = parse_size(cache_limit) if cache_limit else None
    if proxy_endpoint is None and (tag_ttl is not None or limit is not None):
        raise click.UsageError("--tag-ttl and --cache-limit need --proxy-endpoint")
    if proxy_endpoint is not None:
        proxy.check_endpoint(config_file, data_dir, proxy_endpoint)
    with services(config_file, data_dir) as svc:
        created = svc.projects.create(
            name, public=public, quota_bytes=quota_bytes, creator=CLI.name, actor=CLI
        )
        if proxy_endpoint is not None:
            try:
                proxy.bind(
                    config_file,
                    data_dir,
                    name,
                    proxy_endpoint,
                    tag_ttl=tag_ttl,
                    cache_limit=limit,
                )
            except BaseException:
                svc.projects.delete(name, actor=CLI)
                raise
    kind = "public" if created.public else "private"
    if proxy_endpoint is not None:
        kind += f" proxy-cache (of {proxy_endpoint})"
    click.echo(f"created {kind} project {created.name}")


@project.command("cache")
@click.argument("name")
@click.option("--tag-ttl", type=click.IntRange(min=0), help="Change the tag re-check time.")
@click.option("--cache-limit", help="Change the size limit, e.g. 50GiB.")
@click.option("--no-limit", is_flag=True, help="Remove the size limit.")
@CONFIG_OPTION
@DATA_DIR_OPTION
@reports_errors
def project_cache(
    *,
    name: str,
    tag_ttl: int | None,
    cache_limit: str | None,
    no_limit: bool,
    config_file: Path | None,
    data_dir: Path | None,
) -> None:
    """A proxy-cache project's cache: size, artifacts, pulls (and its settings)."""
    limit = parse_size(cache_limit) if cache_limit else None
    if tag_ttl is not None or limit is not None or no_limit:
        proxy.update(
            config_file, data_dir, name, tag_ttl=tag_ttl, cache_limit=limit, no_limit=no_limit
        )
    proxy.show_cache(config_file, data_dir, name)


@project.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@CONFIG_OPTION
@DATA_DIR_OPTION
@reports_errors
def project_list(as_json: bool, config_file: Path | None, data_dir: Path | None) -> None:
    """List projects."""
    with services(config_file, data_dir) as svc:
        projects = svc.projects.find()
    if as_json:
        click.echo(
            json.dumps(
                [
                    {
                        "name": p.name,
                        "public": p.public,
                        "quota_bytes": p.quota_bytes,
                        "repositories": p.repository_count,
                        "created_at": p.created_at.isoformat(),
                    }
                    for p in projects
                ],
                indent=2,
            )
        )
        return
    echo_table(
        [
            [
                p.name,
                "public" if p.public else "private",
                p.repository_count,
                format_size(p.quota_bytes),
            ]
            for p in projects
        ],
        ["NAME", "VISIBILITY", "REPOSITORIES", "QUOTA"],
    )


@project.command("update")
@click.argument("name")
@click.option("--public/--private", default=None, help="Change visibility.")
@click.option("--quota", help="New quota, e.g. 10GiB; `none` removes it.")
@CONFIG_OPTION
@DATA_DIR_OPTION
@reports_errors
def project_update(
    name: str,
    public: bool | None,
    quota: str | None,
    config_file: Path | None,
    data_dir: Path | None,
) -> None:
    """Change a project's visibility or quota."""
    clear = quota is not None and quota.lower() == "none"
    quota_bytes = parse_size(quota) if quota and not clear else None
    with services(config_file, data_dir) as svc:
        svc.projects.update(
            name, public=public, quota_bytes=quota_bytes, clear_quota=clear, actor=CLI
        )
    click.echo(f"updated project {name}")


@project.command("delete")
@click.argument("name")
@CONFIG_OPTION
@DATA_DIR_OPTION
@reports_errors
def project_delete(name: str, config_file: Path | None, data_dir: Path | None) -> None:
    """Delete a project that has no repositories left."""
    with services(config_file, data_dir) as svc:
        svc.projects.delete(name, actor=CLI)
    click.echo(f"deleted project {name}")


@project.group()
def member() -> None:
    """Project members and their roles."""


@member.command("add")
@click.argument("project_name", metavar="PROJECT")
@click.argument("name", metavar="USER")
@click.argument("role", type=ROLE)
@click.option("--group", is_flag=True, help="USER is an LDAP group name.")
@CONFIG_OPTION
@DATA_DIR_OPTION
@reports_errors
def member_add(
    *,
    project_name: str,
    name: str,
    role: str,
    group: bool,
    config_file: Path | None,
    data_dir: Path | None,
) -> None:
    """Give a user (or LDAP group) a role in a project, or change it."""
    with services(config_file, data_dir) as svc:
        if group:
            svc.projects.set_group(project_name, name, Role(role), actor=CLI)
        else:
            svc.projects.set_member(project_name, name, Role(role), actor=CLI)
    click.echo(f"{'group ' if group else ''}{name} is {role} in {project_name}")


@member.command("remove")
@click.argument("project_name", metavar="PROJECT")
@click.argument("name", metavar="USER")
@click.option("--group", is_flag=True, help="USER is an LDAP group name.")
@CONFIG_OPTION
@DATA_DIR_OPTION
@reports_errors
def member_remove(
    project_name: str, name: str, group: bool, config_file: Path | None, data_dir: Path | None
) -> None:
    """Remove a user (or LDAP group) from a project."""
    with services(config_file, data_dir) as svc:
        svc.projects.remove_member(project_name, name, group=group, actor=CLI)
    click.echo(f"removed {name} from {project_name}")


@member.command("list")
@click.argument("project_name", metavar="PROJECT")
@CONFIG_OPTION
@DATA_DIR_OPTION
@reports_errors
def member_list(project_name: str, config_file: Path | None, data_dir: Path | None) -> None:
    """List a project's members."""
    with services(config_file, data_dir) as svc:
        members = svc.projects.members(project_name)
    echo_table([[m.name, m.kind, m.role.value] for m in members], ["NAME", "KIND", "ROLE"])
