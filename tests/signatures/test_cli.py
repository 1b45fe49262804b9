"""`portside project key …`, `portside project policy …` and `portside signatures` through
click's CliRunner, on the same database and storage as a running app."""

from __future__ import annotations

import json
import os
from pathlib import Path

from click.testing import CliRunner, Result
from starlette.testclient import TestClient

from portside.app import PortsideApp
from portside.cli import main
from portside.config import Settings
from tests.signatures import builders as b
from tests.signatures.conftest import image, push_cosign_tag


def run(settings: Settings, *args: str, input: str | None = None) -> Result:
    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("PORTSIDE_")}
    env["PORTSIDE_DATABASE__URL"] = settings.database_url
    result = CliRunner().invoke(
        main, [*args, "--data-dir", str(settings.data_dir)], input=input, env=env
    )
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def test_keys_policy_and_signatures(
    app: PortsideApp, client: TestClient, settings: Settings, tmp_path: Path
) -> None:
    app.ctx.auth.projects.create("acme")
    key = b.p256()
    pem = tmp_path / "cosign.pub"
    pem.write_text(key.public_pem)
    added = run(settings, "project", "key", "add", "acme", "release", str(pem))
    assert added.exit_code == 0, added.output
    assert "trusts cosign key release (ecdsa-p256)" in added.output
    listed = json.loads(run(settings, "project", "key", "list", "acme", "--json").stdout)
    assert [(k["name"], k["kind"]) for k in listed] == [("release", "cosign")]
    bad = run(settings, "project", "key", "add", "acme", "junk", "-", input="junk\n")
    assert bad.exit_code == 1
    assert "expected a PEM public key" in bad.output

    shown = run(settings, "project", "policy", "set", "acme", "--require-signed")
    assert shown.exit_code == 0, shown.output
    assert "require signed:     yes" in shown.output

    signed, unsigned = image(client, tag="v1"), image(client, tag="v2")
    push_cosign_tag(client, "acme/app", signed.digest, [b.cosign_layer(key, signed.digest)])
    good = run(settings, "signatures", "acme/app:v1")
    assert good.exit_code == 0, good.output
    assert "cosign (tag)" in good.output
    assert "verified by release" in good.output
    none = run(settings, "signatures", f"acme/app@{unsigned.digest}")
    assert none.exit_code == 1
    assert "no signatures" in none.output
    detail = json.loads(run(settings, "signatures", "acme/app:v1", "--json").stdout)
    assert detail["digest"] == signed.digest
    assert detail["signatures"][0]["verified_by"] == "release"

    removed = run(settings, "project", "key", "remove", "acme", "release")
    assert removed.exit_code == 0, removed.output
    assert run(settings, "signatures", "acme/app:v1").exit_code == 1
    off = run(settings, "project", "policy", "set", "acme", "--no-require-signed")
    assert "require signed:     no" in off.output
    assert run(settings, "project", "policy", "set", "nosuch", "--require-signed").exit_code == 1
