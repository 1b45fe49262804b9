"""The token-auth pair: Portside with authentication on, and Distribution configured for
token auth that trusts Portside's tokens — so both check the same ES256 JWT on every
request, as in a realistic `docker pull` of a private image.

Distribution's `auth.token` needs the signer's certificate (`rootcertbundle`) and matches
the token's `kid` in libtrust format, which Portside's key ids follow.
"""

from __future__ import annotations

import base64
import datetime
import http.client
import json
from pathlib import Path
from urllib.parse import urlencode

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from bench.client import Endpoint, RegistryError
from bench.servers import DISTRIBUTION_BIN, Server, start_command, start_distribution

ADMIN = "bench-admin"
PASSWORD = "bench-admin-password"
SERVICE = "portside"
ISSUER = "portside"


def make_signing_key(workdir: Path) -> tuple[Path, Path]:
    """A P-256 key for Portside to sign with, and a self-signed certificate of it."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "portside bench token signer")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    key_path, cert_path = workdir / "token-key.pem", workdir / "token-cert.pem"
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


def start_pair(
    workdir: Path, portside_cmd: str, portside_env: list[str], names: tuple[str, str]
) -> tuple[Server, Server]:
    """`portside_cmd` is the same command template as for the open server."""
    key_path, cert_path = make_signing_key(workdir)
    env = dict(item.split("=", 1) for item in portside_env)
    env.update(
        PORTSIDE_AUTH__TOKEN__KEY_FILE=str(key_path),
        PORTSIDE_AUTH__TOKEN__LIFETIME_SECONDS="3600",
        PORTSIDE_AUTH__INITIAL_ADMIN_USERNAME=ADMIN,
        PORTSIDE_AUTH__INITIAL_ADMIN_PASSWORD=PASSWORD,
        PORTSIDE_PROJECTS__AUTO_CREATE="true",
    )
    portside = start_command(names[0] + " token auth", workdir, portside_cmd, env)
    realm = f"{portside.endpoint.base_url}/auth/token"
    auth = (
        "auth:\n  token:\n"
        f"    realm: {realm}\n    service: {SERVICE}\n    issuer: {ISSUER}\n"
        f"    rootcertbundle: {cert_path}\n"
    )
    distribution = start_distribution(
        names[1] + " token auth", workdir, DISTRIBUTION_BIN, extra_config=auth
    )
    portside.name, distribution.name = names
    return portside, distribution


def token(issuer: Endpoint, scope: str) -> str:
    """A token from Portside's token endpoint for the bench admin (Basic credentials)."""
    basic = base64.b64encode(f"{ADMIN}:{PASSWORD}".encode()).decode()
    conn = issuer.connect()
    try:
        query = urlencode({"service": SERVICE, "scope": scope})
        conn.request("GET", f"/auth/token?{query}", headers={"Authorization": f"Basic {basic}"})
        response = conn.getresponse()
        body = response.read()
    except (OSError, http.client.HTTPException) as error:
        raise RegistryError(f"token request failed: {error}") from error
    finally:
        conn.close()
    if response.status != 200:
        raise RegistryError(f"token request: HTTP {response.status}: {body[:200]!r}")
    value = json.loads(body)["token"]
    assert isinstance(value, str)
    return value
