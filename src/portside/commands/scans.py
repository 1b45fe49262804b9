"""`portside scan …`, `portside scanner …` and `portside project policy …`: scanning
from the command line, the registered scanners, and projects' vulnerability settings."""

from __future__ import annotations

import json
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from portside import readonly
from portside.commands.common import (
    CLI,
    CONFIG_OPTION,
    DATA_DIR_OPTION,
    context_from,
    echo_table,
    reports_errors,
)
from portside.commands.jobs import _echo

SEVERITIES = ("none", "unknown", "negligible", "low", "medium", "high", "critical")


def split_image(image: str) -> tuple[str, str]:
    """`repo:tag`, `repo@sha256:...` or `repo` (tag `latest`) -> (repository, reference)."""
    if "@" in image:
        repository, _, reference = image.partition("@")
    else:
        slash = image.rfind("/")
        colon = image.rfind(":")
        if colon > slash:
            repository, reference = image[:colon], image[colon + 1 :]
        else:
            repository, reference = image, "latest"
    if not repository or not reference:
        raise click.BadParameter(f"{image!r} is not REPOSITORY[:TAG] or REPOSITORY@DIGEST")
    return repository, reference


class _ImageFirst(click.Group):
    """`portside scan IMAGE` runs the hidden `image` command; `portside scan results
    IMAGE` and the other subcommands work as usual."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["image", *args]
        return super().parse_args(ctx, args)


@click.group(cls=_ImageFirst)
def scan() -> None:
    """Scan images for vulnerabilities: `portside scan IMAGE [--wait]`, and
    `portside scan results IMAGE [--json]`."""


def _digest(ctx: Any, repository: str, reference: str) -> str:
    from portside.errors import RegistryError

    try:
        return str(ctx.manifests.get(repository, reference, pulled_by=None).digest)
    except RegistryError:
        click.echo(f"error: no artifact {reference!r} in {repository!r}", err=True)
        sys.exit(1)


@scan.command("image", hidden=True)
@click.argument("image")
@click.option("--wait", is_flag=True, help="Run the scan now, in this process, and show results.")
@click.option("--scanner", "scanner_name", help="A registered scanner (default: the default one).")
@click.option("--sbom/--no-sbom", default=None, help="Attach SBOMs (default: project setting).")
@CONFIG_OPTION
@DATA_DIR_OPTION
def scan_image(
    *,
    image: str,
    wait: bool,
    scanner_name: str | None,
    sbom: bool | None,
    config_file: Path | None,
    data_dir: Path | None,
) -> None:
    """Queue a vulnerability scan of IMAGE (REPOSITORY[:TAG] or REPOSITORY@DIGEST)."""
    from portside.jobs.runner import Worker
    from portside.jobs.scan import request_scan
    from portside.jobs.store import Jobs
    from portside.scans.service import NoScanner, NotScannable, images_of

    repository, reference = split_image(image)
    with context_from(config_file, data_dir) as ctx:
        if ctx.settings.registry.read_only:
            click.echo(f"error: no scan: {readonly.MESSAGE}", err=True)
            sys.exit(2)
        digest = _digest(ctx, repository, reference)
        try:
            images_of(ctx.db, repository, digest)
            if sbom is None:
                sbom = _project_sbom(ctx, repository)
            with ctx.db.write() as conn:
                scan_id, job_id = request_scan(
                    ctx.db,
                    ctx.scans,
                    conn,
                    repository,
                    digest,
                    scanner=scanner_name,
                    requested_by=CLI.name,
                    sbom=sbom,
                )
        except (NoScanner, NotScannable) as error:
            click.echo(f"error: {error}", err=True)
            sys.exit(1)
        click.echo(f"scan {scan_id} of {repository}@{digest} queued (job {job_id})")
        if not wait:
            return
        jobs = Jobs(ctx.db)
        worker = Worker(ctx, echo=_echo)
        if jobs.claim(job_id, worker.name):
            record = jobs.get(job_id)
            assert record is not None
            worker.run(record)
        else:  # a server's worker took it: wait for it
            while (record := jobs.get(job_id)) is not None and record.status in (
                "queued",
                "running",
            ):
                time.sleep(1)
        done = ctx.scans.store.get(scan_id)
        assert done is not None
        _print_summary(done)
        if done.status != "succeeded":
            sys.exit(1)


def _project_sbom(ctx: Any, repository: str) -> bool:
    from portside.auth.errors import Missing
    from portside.scans.settings import ScanSettingsStore

    try:
        return ScanSettingsStore(ctx.db).get(repository.split("/", 1)[0]).generate_sbom
    except Missing:
        return False


def _print_summary(done: Any) -> None:
    counts = ", ".join(f"{n} {name}" for name, n in done.summary.items() if n)
    line = f"{done.repository}@{done.digest}: {done.status}"
    if done.status == "failed":
        line += f": {done.reason}"
    else:
        line += f" ({counts or 'no findings'}; {done.fixable} fixable)"
    click.echo(line)
    for platform in done.platforms:
        shown = ", ".join(f"{n} {name}" for name, n in platform.summary.items() if n)
        click.echo(
            f"  {platform.platform or platform.digest}: {platform.status} ({shown or 'none'})"
        )


@scan.command("results")
@click.argument("image")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--severity", type=click.Choice(SEVERITIES), help="At least this severe.")
@click.option("--package", help="Package name contains.")
@click.option("--fixable/--unfixable", default=None, help="Only with / without a fix.")
@CONFIG_OPTION
@DATA_DIR_OPTION
def scan_results(
    *,
    image: str,
    as_json: bool,
    severity: str | None,
    package: str | None,
    fixable: bool | None,
    config_file: Path | None,
    data_dir: Path | None,
) -> None:
    """The latest scan of IMAGE and its findings, worst first."""
    from portside.scanning.model import Severity

    repository, reference = split_image(image)
    with context_from(config_file, data_dir) as ctx:
        digest = _digest(ctx, repository, reference)
        done = ctx.scans.store.latest(repository, digest)
        if done is None:
            click.echo(f"error: {repository}@{digest} has not been scanned", err=True)
            sys.exit(1)
        found = ctx.scans.store.findings(
            done,
            severity=Severity.parse(severity) if severity else None,
            package=package,
            fixable=fixable,
        )
    if as_json:
        click.echo(
            json.dumps(
                {
                    "scan_id": done.id,
                    "artifact": f"{done.repository}@{done.digest}",
                    "status": done.status,
                    "reason": done.reason,
                    "scanner": done.scanner,
                    "db_generation": done.db_generation,
                    "counts": done.summary,
                    "findings": [
                        {
                            "vulnerability_id": f.vulnerability_id,
                            "severity": f.severity.name.lower(),
                            "package": f.package_name,
                            "version": f.package_version,
                            "fixed_version": f.fixed_version,
                            "platform": f.platform,
                        }
                        for f in found
                    ],
                },
                indent=2,
            )
        )
        return
    _print_summary(done)
    rows = [
        [
            f.severity.name.lower(),
            f.vulnerability_id,
            f.package_name,
            f.package_version,
            f.fixed_version,
            f.platform,
        ]
        for f in found
    ]
    if rows:
        echo_table(rows, ["SEVERITY", "ID", "PACKAGE", "VERSION", "FIXED IN", "PLATFORM"])


# --- scanners ---------------------------------------------------------------------------


@click.group()
def scanner() -> None:
    """External scanners speaking Harbor's Pluggable Scanner API (e.g. Trivy's adapter)."""


@scanner.command("list")
@CONFIG_OPTION
@DATA_DIR_OPTION
def scanner_list(config_file: Path | None, data_dir: Path | None) -> None:
    with context_from(config_file, data_dir) as ctx:
        rows = [
            [
                r.name,
                r.url,
                r.auth or "-",
                "yes" if r.enabled else "no",
                "yes" if r.is_default else "",
            ]
            for r in ctx.scans.registry.list()
        ]
    echo_table(rows, ["NAME", "URL", "AUTH", "ENABLED", "DEFAULT"])


@scanner.command("add")
@click.argument("name")
@click.argument("url")
@click.option(
    "--auth",
    type=click.Choice(["", "Basic", "Bearer", "X-ScannerAdapter-API-Key"]),
    default="",
    help="How to authenticate to the adapter.",
)
@click.option("--credential-stdin", is_flag=True, help="Read the credential from stdin.")
@click.option("--default", "is_default", is_flag=True, help="Make it the default scanner.")
@click.option("--description")
@CONFIG_OPTION
@DATA_DIR_OPTION
@reports_errors
def scanner_add(
    *,
    name: str,
    url: str,
    auth: str,
    credential_stdin: bool,
    is_default: bool,
    description: str | None,
    config_file: Path | None,
    data_dir: Path | None,
) -> None:
    """Register the adapter at URL as NAME."""
    from portside.commands.common import read_secret

    credential = read_secret("Credential: ") if credential_stdin else None
    with context_from(config_file, data_dir) as ctx:
        ctx.scans.registry.add(
            name,
            url,
            auth=auth,
            access_credential=credential,
            description=description,
            is_default=is_default,
            created_by=CLI.name,
        )
    click.echo(f"scanner {name} registered")


@scanner.command("set")
@click.argument("name")
@click.option("--enable/--disable", default=None)
@click.option("--default", "is_default", is_flag=True, default=None, help="Make it the default.")
@click.option("--url")
@CONFIG_OPTION
@DATA_DIR_OPTION
@reports_errors
def scanner_set(
    *,
    name: str,
    enable: bool | None,
    is_default: bool | None,
    url: str | None,
    config_file: Path | None,
    data_dir: Path | None,
) -> None:
    """Enable, disable, make default or move a scanner."""
    with context_from(config_file, data_dir) as ctx:
        ctx.scans.registry.update(name, enabled=enable, is_default=is_default, url=url)
    click.echo(f"scanner {name} updated")


@scanner.command("remove")
@click.argument("name")
@CONFIG_OPTION
@DATA_DIR_OPTION
@reports_errors
def scanner_remove(name: str, config_file: Path | None, data_dir: Path | None) -> None:
    with context_from(config_file, data_dir) as ctx:
        ctx.scans.registry.remove(name)
    click.echo(f"scanner {name} removed")


@scanner.command("ping")
@click.argument("name")
@CONFIG_OPTION
@DATA_DIR_OPTION
@reports_errors
def scanner_ping(name: str, config_file: Path | None, data_dir: Path | None) -> None:
    """Ask the scanner's metadata (checks the registration works)."""
    from portside.scans.scanner import ScanFailed
    from portside.scans.service import NoScanner

    with context_from(config_file, data_dir) as ctx:
        try:
            info = ctx.scans.scanner(name).info()
        except (NoScanner, ScanFailed) as error:
            click.echo(f"error: {error}", err=True)
            sys.exit(1)
    click.echo(f"{info.name} {info.version} ({info.vendor})")


# --- project policy ----------------------------------------------------------------------


@click.group()
def vulnerability() -> None:
    """A project's vulnerability settings: scan on push, SBOMs, the "prevent vulnerable
    images" pull policy and its CVE allowlist (`portside project policy vulnerability`)."""


@vulnerability.command("show")
@click.argument("project_name", metavar="PROJECT")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@CONFIG_OPTION
@DATA_DIR_OPTION
@reports_errors
def policy_show(
    project_name: str, as_json: bool, config_file: Path | None, data_dir: Path | None
) -> None:
    from portside.scans.settings import ScanSettingsStore

    with context_from(config_file, data_dir) as ctx:
        store = ScanSettingsStore(ctx.db)
        found = store.get(project_name)
        allowlist = store.allowlist(project_name)
    shown = {
        "project": project_name,
        "auto_scan": found.auto_scan,
        "generate_sbom": found.generate_sbom,
        "prevent_vulnerable": found.prevent_vulnerable,
        "severity": found.severity.name.lower(),
        "reuse_system_allowlist": found.reuse_system_allowlist,
        "allowlist": list(allowlist.items),
        "allowlist_expires_at": allowlist.expires_at.isoformat() if allowlist.expires_at else None,
    }
    if as_json:
        click.echo(json.dumps(shown, indent=2))
        return
    for key, value in shown.items():
        click.echo(f"{key}: {value}")


@vulnerability.command("set")
@click.argument("project_name", metavar="PROJECT")
@click.option("--auto-scan/--no-auto-scan", default=None, help="Scan every image pushed.")
@click.option("--sbom/--no-sbom", default=None, help="Attach SBOMs after built-in scans.")
@click.option(
    "--prevent-vulnerable/--allow-vulnerable",
    default=None,
    help="Refuse pulls of unscanned artifacts or ones with findings at or above --severity.",
)
@click.option("--severity", type=click.Choice(SEVERITIES[1:]), help="The policy's threshold.")
@click.option(
    "--system-allowlist/--project-allowlist",
    "reuse_system",
    default=None,
    help="Which CVE allowlist the policy uses.",
)
@CONFIG_OPTION
@DATA_DIR_OPTION
@reports_errors
def policy_set(
    *,
    project_name: str,
    auto_scan: bool | None,
    sbom: bool | None,
    prevent_vulnerable: bool | None,
    severity: str | None,
    reuse_system: bool | None,
    config_file: Path | None,
    data_dir: Path | None,
) -> None:
    """Change some of a project's vulnerability settings (the others stay)."""
    from dataclasses import replace

    from portside.scanning.model import Severity
    from portside.scans.settings import ScanSettingsStore

    with context_from(config_file, data_dir) as ctx:
        store = ScanSettingsStore(ctx.db)
        current = store.get(project_name)
        changes: dict[str, Any] = {
            "auto_scan": auto_scan,
            "generate_sbom": sbom,
            "prevent_vulnerable": prevent_vulnerable,
            "severity": Severity.parse(severity) if severity else None,
            "reuse_system_allowlist": reuse_system,
        }
        store.save(
            project_name,
            replace(current, **{k: v for k, v in changes.items() if v is not None}),
            CLI,
        )
    click.echo(f"project {project_name}: vulnerability settings saved")


@vulnerability.command("allowlist")
@click.argument("project_name", metavar="PROJECT")
@click.argument("ids", nargs=-1)
@click.option(
    "--expires-at", type=click.DateTime(), help="UTC time after which it no longer applies."
)
@click.option(
    "--system", is_flag=True, help="Set the system allowlist (PROJECT is ignored: use -)."
)
@CONFIG_OPTION
@DATA_DIR_OPTION
@reports_errors
def policy_allowlist(
    *,
    project_name: str,
    ids: tuple[str, ...],
    expires_at: datetime | None,
    system: bool,
    config_file: Path | None,
    data_dir: Path | None,
) -> None:
    """Replace the project's (or with --system, the system's) CVE allowlist with IDS."""
    from datetime import UTC

    from portside.scans.settings import ScanSettingsStore

    expiry = expires_at.replace(tzinfo=UTC) if expires_at else None
    with context_from(config_file, data_dir) as ctx:
        saved = ScanSettingsStore(ctx.db).save_allowlist(
            None if system else project_name, list(ids), expiry, CLI
        )
    where = "system" if system else f"project {project_name}"
    click.echo(f"{where} allowlist: {len(saved.items)} ids")
