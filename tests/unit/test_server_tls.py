"""`portside serve` with tls: granian's TLS flags, and the certificate/key checks before exec."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from portside.config import ConfigError, Settings, load_settings
from portside.server import check_tls_files, granian_command
from tests.tls import TestPki, make_test_pki, new_private_key, write_private_key


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("PORTSIDE_") and name != "PORTSIDE_TEST_DATABASE_URL":
            monkeypatch.delenv(name)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return make_test_pki(tmp_path_factory.mktemp("pki"))


def tls_settings(certificate: Path, key: Path) -> Settings:
    return load_settings(tls={"certificate": certificate, "key": key})


def flag(argv: list[str], name: str) -> str | None:
    return argv[argv.index(name) + 1] if name in argv else None


def test_no_tls_flags_without_tls() -> None:
    argv = granian_command(load_settings(), workers=2)
    assert not [arg for arg in argv if arg.startswith("--ssl")]
    assert argv[-1] == "portside.app:worker_app"


def test_tls_flags_with_absolute_paths(pki: TestPki, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(pki.directory)
    argv = granian_command(tls_settings(Path("server.crt"), Path("server.key")), workers=1)
    assert flag(argv, "--ssl-certificate") == str(pki.certificate)
    assert flag(argv, "--ssl-keyfile") == str(pki.key)
    assert argv[-1] == "portside.app:worker_app"


def test_valid_files_pass(pki: TestPki) -> None:
    check_tls_files(tls_settings(pki.certificate, pki.key))
    check_tls_files(load_settings())  # no tls: nothing to check


def test_certificate_chain_is_accepted(pki: TestPki, tmp_path: Path) -> None:
    chain = tmp_path / "chain.crt"
    chain.write_bytes(pki.certificate.read_bytes() + pki.ca_certificate.read_bytes())
    check_tls_files(tls_settings(chain, pki.key))


def test_missing_certificate(pki: TestPki, tmp_path: Path) -> None:
    missing = tmp_path / "nope.crt"
    with pytest.raises(ConfigError, match=r"^tls\.certificate: cannot read .*nope\.crt"):
        check_tls_files(tls_settings(missing, pki.key))


def test_certificate_not_pem(pki: TestPki, tmp_path: Path) -> None:
    der = tmp_path / "server.der"
    der.write_bytes(b"\x30\x82\x01\x00 not pem")
    with pytest.raises(ConfigError, match=r"^tls\.certificate: .* is not a PEM certificate"):
        check_tls_files(tls_settings(der, pki.key))
    # The key where the certificate belongs.
    with pytest.raises(ConfigError, match=r"^tls\.certificate: .* is not a PEM certificate"):
        check_tls_files(tls_settings(pki.key, pki.key))


def test_missing_key(pki: TestPki, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^tls\.key: cannot read .*nope\.key"):
        check_tls_files(tls_settings(pki.certificate, tmp_path / "nope.key"))


def test_key_not_pem(pki: TestPki) -> None:
    with pytest.raises(ConfigError, match=r"^tls\.key: .* is not a PEM private key"):
        check_tls_files(tls_settings(pki.certificate, pki.certificate))


def test_encrypted_key(pki: TestPki, tmp_path: Path) -> None:
    encrypted = tmp_path / "encrypted.key"
    encrypted.write_bytes(
        new_private_key().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        )
    )
    with pytest.raises(ConfigError, match=r"^tls\.key: .* is encrypted"):
        check_tls_files(tls_settings(pki.certificate, encrypted))


def test_key_of_another_certificate(pki: TestPki, tmp_path: Path) -> None:
    other = write_private_key(tmp_path / "other.key")
    with pytest.raises(ConfigError, match=r"^tls\.key: .* does not match the public key"):
        check_tls_files(tls_settings(pki.certificate, other))
