"""`portside project key …`, `portside project policy …` and `portside signatures IMAGE`:
a project's trusted signing keys, its pull policy, and an artifact's signatures with their
verdicts."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TextIO

import click

from portside.commands.common import (
    CLI,
    CONFIG_OPTION,
    DATA_DIR_OPTION,
    echo_table,
    migrated_settings,
    reports_errors,
)
from portside.content.hotpath import HotQueries
from portside.content.manifests import ManifestService
from portside.errors import RegistryError
from portside.metadata.db import Database
from portside.metadata.engine import make_engine
from portside.signatures.keys import LEVELS, PolicySettings, TrustedKeys
from portside.signatures.service import SignatureService
from portside.storage.factory import open_storage


def _database(config_file: Path | None, data_dir: Path | None) -> Database:
    return Database(make_engine(migrated_settings(config_file, data_dir).database_url))


@click.group()
def key() -> None:
    """Keys the project trusts to sign its artifacts (cosign public keys, Notation
    certificates)."""


@key.command("add")
@click.argument("project")
@click.argument("name")
@click.argument("pem_file", type=click.File("r"))
@CONFIG_OPTION
@DATA_DIR_OPTION
@reports_errors
def key_add(
    project: str,
    name: str,
    pem_file: TextIO,
    config_file: Path | None,
    data_dir: Path | None,
) -> None:
    """Trust PEM_FILE (a cosign.pub or a Notation CA/signing certificate; - for stdin)."""
    db = _database(config_file, data_dir)
    try:
        added = TrustedKeys(db).add(project, name, pem_file.read(), actor=CLI)
    finally:
        db.engine.dispose()
    click.echo(f"project {project} trusts {added.kind} key {added.name} ({added.algorithm})")
    click.echo(f"fingerprint sha256:{added.fingerprint}")


@key.command("list")
@click.argument("project")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@CONFIG_OPTION
@DATA_DIR_OPTION
@reports_errors
def key_list(project: str, as_json: bool, config_file: Path | None, data_dir: Path | None) -> None:
    """List the project's trusted keys."""
    db = _database(config_file, data_dir)
    try:
        keys = TrustedKeys(db).list(project)
    finally:
        db.engine.dispose()
    if as_json:
        click.echo(
            json.dumps(
                [
                    {
                        "name": k.name,
                        "kind": k.kind,
                        "algorithm": k.algorithm,
                        "fingerprint": k.fingerprint,
                        "subject": k.subject,
                    }
                    for k in keys
                ],
                indent=2,
            )
        )
        return
    echo_table(
        [[k.name, k.kind, k.algorithm, k.fingerprint[:16], k.subject] for k in keys],
        ["NAME", "KIND", "ALGORITHM", "FINGERPRINT", "SUBJECT"],
    )


@key.command("remove")
@click.argument("project")
@click.argument("name")
@CONFIG_OPTION
@DATA_DIR_OPTION
@reports_errors
def key_remove(project: str, name: str, config_file: Path | None, data_dir: Path | None) -> None:
    """Stop trusting a key (signatures it verified no longer count)."""
    db = _database(config_file, data_dir)
    try:
        TrustedKeys(db).remove(project, name, actor=CLI)
    finally:
        db.engine.dispose()
    click.echo(f"project {project} no longer trusts key {name}")


@click.group()
def policy() -> None:
    """Pull policies: what an artifact needs before a manifest GET serves it."""


@policy.command("set")
@click.argument("project")
@click.option(
    "--require-signed/--no-require-signed",
    default=None,
    help="Only serve artifacts with a signature verified by a trusted key.",
)
@click.option(
    "--notation-level", type=click.Choice(LEVELS), help="Notation signature verification level."
)
@click.option(
    "--notation-identity",
    "identities",
    multiple=True,
    help="A trusted signer ('x509.subject: C=US, O=Acme, CN=release' or '*'); repeat.",
)
@CONFIG_OPTION
@DATA_DIR_OPTION
@reports_errors
def policy_set(  # noqa: PLR0917 (click passes every option positionally by name)
    project: str,
    require_signed: bool | None,
    notation_level: str | None,
    identities: tuple[str, ...],
    config_file: Path | None,
    data_dir: Path | None,
) -> None:
    """Change the project's pull policy."""
    db = _database(config_file, data_dir)
    try:
        updated = PolicySettings(db).update(
            project,
            require_signed=require_signed,
            notation_level=notation_level,
            notation_identities=list(identities) if identities else None,
            actor=CLI,
        )
    finally:
        db.engine.dispose()
    _show(project, updated.require_signed, updated.notation_level, updated.notation_identities)


@policy.command("show")
@click.argument("project")
@CONFIG_OPTION
@DATA_DIR_OPTION
@reports_errors
def policy_show(project: str, config_file: Path | None, data_dir: Path | None) -> None:
    """Print the project's pull policy."""
    db = _database(config_file, data_dir)
    try:
        current = PolicySettings(db).get(project)
    finally:
        db.engine.dispose()
    _show(project, current.require_signed, current.notation_level, current.notation_identities)


def _show(project: str, signed: bool, level: str, identities: tuple[str, ...]) -> None:
    click.echo(f"project {project}")
    click.echo(f"  require signed:     {'yes' if signed else 'no'}")
    click.echo(f"  notation level:     {level}")
    click.echo(f"  notation identities: {', '.join(identities)}")


@click.command("signatures")
@click.argument("image")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@CONFIG_OPTION
@DATA_DIR_OPTION
@reports_errors
def signatures(image: str, as_json: bool, config_file: Path | None, data_dir: Path | None) -> None:
    """The signatures of IMAGE (repo:tag or repo@digest) and whether trusted keys verify
    them. Exits 1 when none is verified."""
    repo, reference = _split(image)
    settings = migrated_settings(config_file, data_dir)
    db = Database(make_engine(settings.database_url))
    hot = HotQueries(db.engine)
    try:
        try:
            digest = (
                ManifestService(db, hot, settings.registry.manifest_max_bytes)
                .lookup(repo, reference)
                .digest
            )
        except RegistryError:
            click.echo(f"error: no artifact {image}", err=True)
            sys.exit(1)
        reports = SignatureService(db, open_storage(settings)).reports(repo, [digest])[digest]
    finally:
        hot.close()
        db.engine.dispose()
    if as_json:
        click.echo(
            json.dumps(
                {
                    "digest": digest,
                    "signatures": [
                        {
                            "signature_digest": r.signature_digest,
                            "layer": r.layer,
                            "format": r.format,
                            "via": r.via,
                            "signer": r.signer,
                            "verified": r.verified,
                            "verified_by": r.verified_by,
                            "verdicts": [
                                {"key": v.key, "verified": v.verified, "reason": v.reason}
                                for v in r.verdicts
                            ],
                        }
                        for r in reports
                    ],
                },
                indent=2,
            )
        )
    else:
        click.echo(f"{repo}@{digest}")
        if not reports:
            click.echo("  no signatures")
        for r in reports:
            state = f"verified by {r.verified_by}" if r.verified else "not verified"
            click.echo(f"  {r.format} ({r.via}) {r.signature_digest} #{r.layer}: {state}")
            for v in r.verdicts:
                click.echo(f"    {v.key or '-'}: {v.reason}")
    if not any(r.verified for r in reports):
        sys.exit(1)


def _split(image: str) -> tuple[str, str]:
    if "@" in image:
        repo, _, reference = image.partition("@")
        return repo, reference
    repo, sep, tag = image.rpartition(":")
    if not sep or "/" in tag:
        return image, "latest"
    return repo, tag
