"""`portside usage [PROJECT]`: storage used per project (and per repository) against
quotas, unique and shared bytes, and what the registry stores (definitions in
content.usage)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from portside.auth.errors import Missing
from portside.auth.projects import Projects
from portside.commands.common import (
    CONFIG_OPTION,
    DATA_DIR_OPTION,
    echo_table,
    format_size,
    reports_errors,
    services,
)
from portside.content.usage import ProjectUsage, RegistryUsage, RepositoryUsage, UsageReports

_PROJECT_HEADER = ["PROJECT", "QUOTA", "USED", "USE%", "UNIQUE", "SHARED", "REPOSITORIES"]
_REPOSITORY_HEADER = ["REPOSITORY", "USED", "UNIQUE", "SHARED"]


@click.command()
@click.argument("project", required=False)
@click.option("--repositories", is_flag=True, help="Also each repository's usage.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (the management API's fields).")
@CONFIG_OPTION
@DATA_DIR_OPTION
@reports_errors
def usage(
    project: str | None,
    repositories: bool,
    as_json: bool,
    config_file: Path | None,
    data_dir: Path | None,
) -> None:
    """Storage used by PROJECT (default: every project, and the registry's totals).

    USED counts each blob once per project plus its manifests (what quotas check);
    UNIQUE is what deleting the project or repository would free; SHARED is linked
    from elsewhere too.
    """
    with services(config_file, data_dir) as svc:
        reports = UsageReports(svc.projects.db)
        if project is not None:
            found = reports.project(project, repositories=repositories)
            if not found.repository_count and not _exists(svc.projects, project):
                raise Missing(f"no project {project!r}")
            _print_project(found, as_json)
            return
        registry = reports.registry()
        details = (
            [reports.project(p.name, repositories=True) for p in registry.projects]
            if repositories
            else None
        )
    _print_registry(registry, details, as_json)


def _exists(projects: Projects, project: str) -> bool:
    try:
        projects.get(project)
    except Missing:
        return False
    return True


def _print_project(found: ProjectUsage, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(project_json(found), indent=2))
        return
    echo_table([_project_row(found)], _PROJECT_HEADER)
    if found.repositories is not None:
        click.echo()
        _repository_table(found.repositories)


def _print_registry(
    registry: RegistryUsage, details: list[ProjectUsage] | None, as_json: bool
) -> None:
    projects = details if details is not None else list(registry.projects)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "stored_bytes": registry.stored,
                    "blob_bytes": registry.blob_bytes,
                    "manifest_bytes": registry.manifest_bytes,
                    "unreferenced_bytes": registry.unreferenced_bytes,
                    "projects_used_bytes": registry.projects_used,
                    "projects": [project_json(p) for p in projects],
                },
                indent=2,
            )
        )
        return
    echo_table([_project_row(p) for p in registry.projects], _PROJECT_HEADER)
    click.echo()
    click.echo(
        f"stored: {format_size(registry.stored)} (blobs {format_size(registry.blob_bytes)}, "
        f"manifests {format_size(registry.manifest_bytes)}); projects use "
        f"{format_size(registry.projects_used)} together, each blob counted once per project"
    )
    click.echo(
        f"unreferenced: {format_size(registry.unreferenced_bytes)} "
        "(blobs no repository links; `portside gc` deletes them)"
    )
    if details is not None:
        for project in details:
            if project.repositories:
                click.echo()
                click.echo(f"project {project.name}:")
                _repository_table(project.repositories)


def _project_row(found: ProjectUsage) -> list[Any]:
    percent = None
    if found.quota is not None:
        percent = f"{100 * found.used / found.quota:.0f}%" if found.quota else "-"
    return [
        found.name,
        format_size(found.quota),
        format_size(found.used),
        percent,
        format_size(found.unique),
        format_size(found.shared),
        found.repository_count,
    ]


def _repository_table(repositories: tuple[RepositoryUsage, ...]) -> None:
    echo_table(
        [
            [r.name, format_size(r.used), format_size(r.unique), format_size(r.shared)]
            for r in repositories
        ],
        _REPOSITORY_HEADER,
    )


def project_json(found: ProjectUsage) -> dict[str, Any]:
    """The fields of the management API's ProjectUsageOut."""
    body: dict[str, Any] = {
        "name": found.name,
        "quota_bytes": found.quota,
        "used_bytes": found.used,
        "unique_bytes": found.unique,
        "shared_bytes": found.shared,
        "manifest_bytes": found.manifest_bytes,
        "repository_count": found.repository_count,
    }
    if found.repositories is not None:
        body["repositories"] = [
            {
                "name": r.name,
                "used_bytes": r.used,
                "unique_bytes": r.unique,
                "shared_bytes": r.shared,
                "manifest_bytes": r.manifest_bytes,
            }
            for r in found.repositories
        ]
    return body
