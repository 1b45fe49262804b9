"""The key registry tokens are signed with: configured as a PEM file, or generated on first
start and kept in the metadata database so every replica signs and verifies alike."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from sqlalchemy import select

from portside.config import ConfigError, TokenSettings
from portside.metadata import schema as s
from portside.metadata.db import Database, utcnow

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


@dataclass(frozen=True)
class SigningKey:
    kid: str
    algorithm: str
    private_key: PrivateKey

    @property
    def public_key(self) -> Any:
        return self.private_key.public_key()


def _kid(key: PrivateKey) -> str:
    """The key id in libtrust's format (base32 of the first 240 bits of the SHA-256 of the
    DER public key, in groups of four): what Distribution's token auth matches `kid`
    against, so a Distribution can trust Portside-issued tokens (`rootcertbundle`)."""
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    encoded = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode().rstrip("=")
    return ":".join(encoded[i : i + 4] for i in range(0, len(encoded), 4))


def _generate(algorithm: str) -> PrivateKey:
    if algorithm == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=3072)


def _check_kind(key: Any, algorithm: str, where: str) -> PrivateKey:
    if algorithm == "ES256":
        if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1":
            return key
        raise ConfigError(f"{where}: ES256 needs a P-256 EC private key")
    if isinstance(key, rsa.RSAPrivateKey) and key.key_size >= 2048:
        return key
    raise ConfigError(f"{where}: RS256 needs an RSA private key of at least 2048 bits")


def _pem(key: PrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def load_key_file(path: Path, algorithm: str) -> SigningKey:
    where = "auth.token.key_file"
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ConfigError(f"{where}: cannot read {path}: {error.strerror}") from error
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as error:
        raise ConfigError(f"{where}: {path} is not an unencrypted PEM private key") from error
    checked = _check_kind(key, algorithm, where)
    return SigningKey(_kid(checked), algorithm, checked)


def load_signing_key(db: Database, settings: TokenSettings) -> SigningKey:
    """The configured key, else the stored one for the algorithm (created if missing).

    Concurrent first starts race benignly: each inserts its own key, and everyone then
    uses the oldest stored key for the algorithm.
    """
    if settings.key_file is not None:
        return load_key_file(settings.key_file, settings.algorithm)
    table = s.signing_keys
    query = (
        select(table.c.kid, table.c.private_pem)
        .where(table.c.algorithm == settings.algorithm)
        .order_by(table.c.created_at, table.c.kid)
        .limit(1)
    )
    with db.read() as conn:
        row = conn.execute(query).first()
    if row is None:
        key = _generate(settings.algorithm)
        with db.write() as conn:
            db.insert_ignore(
                conn,
                table,
                {
                    "kid": _kid(key),
                    "algorithm": settings.algorithm,
                    "private_pem": _pem(key),
                    "created_at": utcnow(),
                },
            )
            row = conn.execute(query).first()
    assert row is not None
    stored = serialization.load_pem_private_key(row.private_pem.encode(), password=None)
    checked = _check_kind(stored, settings.algorithm, "stored signing key")
    return SigningKey(row.kid, settings.algorithm, checked)


def load_public_key(path: Path, where: str) -> Any:
    """A PEM public key, or the key of a PEM certificate (external token issuers)."""
    from cryptography import x509

    try:
        data = path.read_bytes()
    except OSError as error:
        raise ConfigError(f"{where}: cannot read {path}: {error.strerror}") from error
    try:
        if b"CERTIFICATE" in data:
            return x509.load_pem_x509_certificate(data).public_key()
        return serialization.load_pem_public_key(data)
    except ValueError as error:
        raise ConfigError(f"{where}: {path} is not a PEM public key or certificate") from error
