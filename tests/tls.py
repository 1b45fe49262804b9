"""A throwaway test CA and a server certificate for 127.0.0.1 / localhost, made with
`cryptography` (no openssl command, no network).

    pki = make_test_pki(tmp_path / "pki")   # ca.crt, server.crt, server.key

Clients trust `pki.ca_certificate`; `portside serve` gets `tls.certificate` =
`pki.certificate` and `tls.key` = `pki.key`.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = datetime.timedelta(days=7)


@dataclass(frozen=True)
class TestPki:
    """Paths of the files `make_test_pki` wrote (all PEM)."""

    __test__: ClassVar[bool] = False  # not a pytest test class despite the name

    directory: Path
    ca_certificate: Path  # ca.crt: the self-signed CA, for clients to trust
    certificate: Path  # server.crt: the server certificate, signed by the CA
    key: Path  # server.key: its private key, PKCS#8, unencrypted


def new_private_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def write_private_key(path: Path, key: ec.EllipticCurvePrivateKey | None = None) -> Path:
    """Write `key` (default: a fresh one) as unencrypted PKCS#8 PEM."""
    key = key or new_private_key()
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Portside tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _key_usage(*, signing: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not signing,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=signing,
        crl_sign=signing,
        encipher_only=False,
        decipher_only=False,
    )


def make_test_pki(directory: Path) -> TestPki:
    """Create `directory` with ca.crt, server.crt (SAN IP 127.0.0.1, DNS localhost) and
    server.key. The certificates are valid from an hour ago for a week."""
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    start, end = now - datetime.timedelta(hours=1), now + VALIDITY

    ca_key = new_private_key()
    ca_name = _name("Portside test CA")
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(signing=True), critical=True)
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    server_key = new_private_key()
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(signing=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    x509.DNSName("localhost"),
                ]
            ),
            critical=False,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(server_key.public_key()), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )

    pki = TestPki(
        directory=directory,
        ca_certificate=directory / "ca.crt",
        certificate=directory / "server.crt",
        key=directory / "server.key",
    )
    pki.ca_certificate.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    pki.certificate.write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    write_private_key(pki.key, server_key)
    return pki
