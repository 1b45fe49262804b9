"""A private OpenLDAP ``slapd`` for the LDAP tests.

``start_slapd(directory)`` writes everything into ``directory``: a ``slapd.conf``
(read with ``-f``; no cn=config tree, so nothing needs converting and it works the
same as root and as an ordinary user), a test CA and server certificate made with
``openssl``, and an mdb database for ``dc=example,dc=org`` that ``slapadd -n1``
seeds offline before the server starts. slapd then runs in the foreground
(``-d 0`` keeps it from detaching, so the ``Popen`` is the server itself) on
``ldap://127.0.0.1:PORT`` and ``ldaps://127.0.0.1:PORT2`` (free high ports; a
system slapd on 389 is neither used nor disturbed).

The directory:

* ``ou=people``: ``uid=alice`` (``alice-pw``, ``alice@example.org``),
  ``uid=bob`` (``bob-pw``), ``uid=carol`` (``carol-pw``);
* ``ou=groups``: groupOfNames ``developers`` (alice, bob) and
  ``registry-admins`` (carol);
* ``cn=reader,dc=example,dc=org`` / ``reader-pw``: the search account. The ACL
  lets it read everything but ``userPassword``; anonymous clients may only bind
  (``auth``) and see nothing, so a search that works proves the search bind.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import secrets
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from portside.config import LdapSettings

SLAPD = Path("/usr/sbin/slapd")
SLAPADD = Path("/usr/sbin/slapadd")
SCHEMA_DIR = Path("/etc/ldap/schema")
MODULE_DIR = Path("/usr/lib/ldap")
INSTALL_HINT = "install the test dependencies with scripts/test-deps (Debian: slapd, openssl)"

SUFFIX = "dc=example,dc=org"
PEOPLE_DN = f"ou=people,{SUFFIX}"
GROUPS_DN = f"ou=groups,{SUFFIX}"
ROOT_DN = f"cn=admin,{SUFFIX}"
READER_DN = f"cn=reader,{SUFFIX}"
READER_PASSWORD = "reader-pw"
# uid -> (password, mail)
PEOPLE: dict[str, tuple[str, str | None]] = {
    "alice": ("alice-pw", "alice@example.org"),
    "bob": ("bob-pw", None),
    "carol": ("carol-pw", None),
}
GROUPS: dict[str, tuple[str, ...]] = {
    "developers": ("alice", "bob"),
    "registry-admins": ("carol",),
}
STARTUP_TIMEOUT = 15.0


def user_dn(uid: str) -> str:
    return f"uid={uid},{PEOPLE_DN}"


def ssha(password: str) -> str:
    """``{SSHA}`` hash as slappasswd makes it (salted SHA-1; fine for a test directory)."""
    salt = secrets.token_bytes(8)
    digest = hashlib.sha1(password.encode() + salt).digest()  # noqa: S324 - LDAP {SSHA}
    return "{SSHA}" + base64.b64encode(digest + salt).decode()


def seed_ldif() -> str:
    entries = [
        f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example",
        f"dn: {READER_DN}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\n"
        f"cn: reader\nuserPassword: {ssha(READER_PASSWORD)}",
        f"dn: {PEOPLE_DN}\nobjectClass: organizationalUnit\nou: people",
        f"dn: {GROUPS_DN}\nobjectClass: organizationalUnit\nou: groups",
    ]
    for uid, (password, mail) in PEOPLE.items():
        entry = (
            f"dn: {user_dn(uid)}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {uid.title()}\n"
            f"sn: {uid.title()}\nuserPassword: {ssha(password)}"
        )
        entries.append(entry + (f"\nmail: {mail}" if mail else ""))
    for name, members in GROUPS.items():
        lines = [f"dn: cn={name},{GROUPS_DN}", "objectClass: groupOfNames", f"cn: {name}"]
        lines += [f"member: {user_dn(uid)}" for uid in members]
        entries.append("\n".join(lines))
    return "\n\n".join(entries) + "\n"


def slapd_conf(directory: Path, tls: TlsFiles) -> str:
    schemas = ("core", "cosine", "inetorgperson")
    return "\n".join(
        [
            *(f"include {SCHEMA_DIR / name}.schema" for name in schemas),
            f"modulepath {MODULE_DIR}",
            "moduleload back_mdb",
            f"pidfile {directory / 'slapd.pid'}",
            f"argsfile {directory / 'slapd.args'}",
            f"TLSCACertificateFile {tls.ca_file}",
            f"TLSCertificateFile {tls.cert_file}",
            f"TLSCertificateKeyFile {tls.key_file}",
            "database mdb",
            "maxsize 16777216",
            f"suffix {SUFFIX}",
            f"rootdn {ROOT_DN}",
            f"rootpw {secrets.token_hex(16)}",  # unused: the tests bind as cn=reader
            f"directory {directory / 'db'}",
            "access to attrs=userPassword by anonymous auth by * none",
            f'access to * by dn.exact="{READER_DN}" read by * none',
            "",
        ]
    )


@dataclass(frozen=True)
class TlsFiles:
    ca_file: Path
    cert_file: Path
    key_file: Path
    other_ca_file: Path  # a CA that did not sign the server certificate


def make_certificates(directory: Path) -> TlsFiles:
    """A CA and a server certificate for IP 127.0.0.1 only (so ``localhost`` mismatches)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail(f"openssl is not installed: {INSTALL_HINT}", pytrace=False)
    key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-noenc"]
    for ca in ("ca", "other-ca"):
        _run(
            [openssl, "req", "-x509", *key, "-keyout", directory / f"{ca}.key",
             "-out", directory / f"{ca}.crt", "-days", "2", "-subj", f"/CN=Portside test {ca}",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign"]
        )  # fmt: skip
    _run(
        [openssl, "req", *key, "-keyout", directory / "server.key",
         "-out", directory / "server.csr", "-subj", "/CN=127.0.0.1"]
    )  # fmt: skip
    extensions = directory / "server.ext"
    extensions.write_text("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    _run(
        [openssl, "x509", "-req", "-in", directory / "server.csr", "-days", "2",
         "-CA", directory / "ca.crt", "-CAkey", directory / "ca.key", "-CAcreateserial",
         "-extfile", extensions, "-out", directory / "server.crt"]
    )  # fmt: skip
    return TlsFiles(
        directory / "ca.crt", directory / "server.crt", directory / "server.key",
        directory / "other-ca.crt",
    )  # fmt: skip


@dataclass
class Slapd:
    """A running slapd; ``settings()`` gives the ``LdapSettings`` that reach it."""

    url: str
    ldaps_url: str
    tls: TlsFiles
    process: subprocess.Popen[bytes]
    log_file: Path
    base_dn: str = PEOPLE_DN
    groups_base_dn: str = GROUPS_DN
    bind_dn: str = READER_DN
    bind_password: str = READER_PASSWORD

    def settings(self, **overrides: Any) -> LdapSettings:
        """Settings for this server: search as cn=reader under ou=people, groups under
        ou=groups. ``groups={...}`` is merged into the group settings, not replacing them."""
        values: dict[str, Any] = {
            "url": self.url,
            "bind_dn": self.bind_dn,
            "bind_password": self.bind_password,
            "base_dn": self.base_dn,
            "timeout_seconds": 5.0,
        }
        groups = {"base_dn": self.groups_base_dn, **overrides.pop("groups", {})}
        return LdapSettings.model_validate({**values, **overrides, "groups": groups})

    def log_tail(self) -> str:
        return self.log_file.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def start_slapd(directory: Path) -> Slapd:
    for binary in (SLAPD, SLAPADD):
        if not binary.exists():
            pytest.fail(f"{binary} is not installed: {INSTALL_HINT}", pytrace=False)
    tls = make_certificates(directory)
    (directory / "db").mkdir()
    conf = directory / "slapd.conf"
    conf.write_text(slapd_conf(directory, tls))
    seed = directory / "seed.ldif"
    seed.write_text(seed_ldif())
    _run([SLAPADD, "-f", conf, "-n", "1", "-l", seed])
    log_file = directory / "slapd.log"
    port, tls_port = free_port(), free_port()
    url, ldaps_url = f"ldap://127.0.0.1:{port}", f"ldaps://127.0.0.1:{tls_port}"
    with log_file.open("wb") as log:
        process = subprocess.Popen(
            [SLAPD, "-f", conf, "-h", f"{url}/ {ldaps_url}/", "-d", "0"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = Slapd(url, ldaps_url, tls, process, log_file)
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while not (_listening(port) and _listening(tls_port)):
        if process.poll() is not None or time.monotonic() > deadline:
            server.stop()
            pytest.fail(
                f"slapd did not start (exit status {process.returncode}):\n{server.log_tail()}",
                pytrace=False,
            )
        time.sleep(0.05)
    return server


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _listening(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
        return True
    return False


def _run(argv: list[str | os.PathLike[str]]) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    if proc.returncode != 0:
        command = " ".join(map(str, argv))
        pytest.fail(
            f"$ {command}\nexit status {proc.returncode}\n{proc.stdout}{proc.stderr}",
            pytrace=False,
        )
