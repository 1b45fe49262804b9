"""skopeo with a user's personal access token: `skopeo login --password-stdin` stores the
token as the password, pushes and pulls then go through the token endpoint with it, and
once the token is revoked the same stored credentials are refused.

Runs against the authenticated Portside of test_auth_clients.py (a module-scoped server
of its own here: `dev` is a developer in the private project `acme`). The token is
created and revoked through the management API, signed in with `dev`'s password.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import httpx
import pytest

from . import test_auth_clients as auth_clients
from .images import Layout, assert_layout_has_image, assert_registry_has_exact_image
from .test_auth_clients import PASSWORDS, TLS, Case, fatal_message
from .tooling import Skopeo, require_binary, run

pytestmark = pytest.mark.clients

# The authenticated server and its helpers (module-scoped: this module gets its own).
portside = auth_clients.portside
admin_http = auth_clients.admin_http
auth_env = auth_clients.auth_env
case = auth_clients.case

USER = "dev"
TOKENS = "/api/v1/users/current/tokens"


@pytest.fixture
def skopeo(auth_env: dict[str, str], tmp_path: Path) -> Skopeo:
    """skopeo with an auth file of its own, where `skopeo login` keeps credentials."""
    auth_file = tmp_path / "auth.json"
    auth_file.write_text('{"auths": {}}\n')
    return Skopeo(require_binary("skopeo"), auth_env | {"REGISTRY_AUTH_FILE": str(auth_file)})


def stored_credentials(skopeo: Skopeo, host: str) -> tuple[str, str]:
    auths = json.loads(Path(skopeo.env["REGISTRY_AUTH_FILE"]).read_text())["auths"]
    user, _, password = base64.b64decode(auths[host]["auth"]).decode().partition(":")
    return user, password


def test_skopeo_logs_in_with_a_personal_access_token(skopeo: Skopeo, case: Case) -> None:
    registry, repo = case.registry, case.repo("acme")
    password = (USER, PASSWORDS[USER])
    created = httpx.post(
        f"{registry.url}{TOKENS}", auth=password, json={"name": "skopeo"}, timeout=30
    )
    assert created.status_code == 201, created.text
    token_id, secret = created.json()["id"], created.json()["secret"]

    run([skopeo.binary, "login", TLS, "--username", USER, "--password-stdin", registry.host],
        env=skopeo.env, input=secret + "\n")  # fmt: skip
    assert stored_credentials(skopeo, registry.host) == (USER, secret)

    # No --creds: the stored token is what signs in.
    layout = case.layout("in")
    skopeo.push_layout(layout, "v1", case.ref("acme"))
    assert_registry_has_exact_image(case.admin, repo, "v1", case.image)
    pulled = skopeo.pull_layout(case.ref("acme"), case.tmp / "out", "pulled")
    assert_layout_has_image(Layout(pulled), case.image, "pulled")

    revoked = httpx.delete(f"{registry.url}{TOKENS}/{token_id}", auth=password, timeout=30)
    assert revoked.status_code == 204, revoked.text

    refused = skopeo(
        "copy", "--quiet", Skopeo.EXACT, "--dest-tls-verify=false",
        f"oci:{layout}:v1", f"docker://{case.ref('acme', 'v2')}", check=False,
    )  # fmt: skip
    assert "invalid username/password" in fatal_message(refused), refused.describe()
    assert case.admin.manifest_status(repo, "v2") == 404
    pull = skopeo(
        "copy", "--quiet", "--src-tls-verify=false", Skopeo.EXACT,
        f"docker://{case.ref('acme')}", f"oci:{case.tmp / 'refused'}:v1", check=False,
    )  # fmt: skip
    assert "invalid username/password" in fatal_message(pull), pull.describe()
    login = run(
        [skopeo.binary, "login", TLS, "--username", USER, "--password-stdin", registry.host],
        env=skopeo.env, input=secret + "\n", check=False,
    )  # fmt: skip
    assert login.returncode != 0, login.describe()
