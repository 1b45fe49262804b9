"""The keys a project trusts, and its Notation trust policy.

A trusted key is a cosign public key (PEM `PUBLIC KEY`: ECDSA P-256 or Ed25519) or a
Notation certificate (PEM `CERTIFICATE`: a CA or the signing certificate itself); the
kind follows from the PEM. The trust policy (project columns) holds the Notation
verification level and the trusted identities. Every change bumps the project's
`keyset_generation` in its transaction, which makes every stored verdict of the
project stale (signatures.service recomputes them when next needed), and raises
`project.key.added`, `project.key.removed` or `project.policy.updated` naming what
changed (never the key material's secrets: there are none, only public keys are
accepted).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from sqlalchemy import Connection, delete, select, update

from portside.auth.errors import Exists, Invalid, Missing
from portside.auth.projects import project_id
from portside.events import outbox
from portside.events.outbox import SYSTEM, Actor
from portside.metadata import schema as s
from portside.metadata.db import Database, utcnow

LEVELS = ("strict", "permissive", "audit")
MAX_PEM = 16 * 1024


@dataclass(frozen=True, slots=True)
class TrustedKey:
    id: int
    name: str
    kind: str  # "cosign" or "notation"
    algorithm: str
    fingerprint: str
    pem: str
    created_by: str = ""
    created_at: datetime | None = None
    subject: str | None = None  # certificates: their subject


@dataclass(frozen=True, slots=True)
class TrustPolicy:
    """A project's Notation trust policy: the verification level and trusted identities
    (`x509.subject` DNs; `*` trusts any subject the chain vouches for)."""

    level: str = "strict"
    identities: tuple[str, ...] = ("*",)

    def trusts(self, subject: x509.Name) -> bool:
        held = {(a.rfc4514_attribute_name.upper(), str(a.value)) for a in subject}
        for identity in self.identities:
            if identity == "*":
                return True
            wanted = parse_dn(identity)
            if wanted and wanted <= held:
                return True
        return False


def parse_dn(text: str) -> set[tuple[str, str]]:
    """`x509.subject: C=US, O=Acme, CN=signer` (the prefix optional) -> attribute pairs."""
    text = text.strip()
    if text.startswith("x509.subject:"):
        text = text[len("x509.subject:") :]
    pairs = set()
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if not sep or not key.strip() or not value.strip():
            return set()
        pairs.add((key.strip().upper(), value.strip()))
    return pairs


@dataclass(frozen=True, slots=True)
class ParsedKey:
    kind: str
    algorithm: str
    fingerprint: str
    subject: str | None


def parse_key(pem: str) -> ParsedKey:
    """What a PEM holds, or Invalid saying why it cannot be trusted."""
    if len(pem) > MAX_PEM:
        raise Invalid(f"the key is larger than {MAX_PEM} bytes")
    if "PRIVATE KEY" in pem:
        raise Invalid("that is a private key: give the public key (cosign.pub) instead")
    if "BEGIN CERTIFICATE" in pem:
        if pem.count("BEGIN CERTIFICATE") > 1:
            raise Invalid("give one certificate per trusted key")
        certificate = _certificate(pem)
        der = certificate.public_bytes(serialization.Encoding.DER)
        return ParsedKey(
            "notation",
            "x509",
            hashlib.sha256(der).hexdigest(),
            certificate.subject.rfc4514_string(),
        )
    if "BEGIN PUBLIC KEY" not in pem:
        raise Invalid("expected a PEM public key (cosign) or certificate (Notation)")
    public = _public_key(pem)
    if isinstance(public, ed25519.Ed25519PublicKey):
        algorithm = "ed25519"
    elif isinstance(public, ec.EllipticCurvePublicKey) and isinstance(public.curve, ec.SECP256R1):
        algorithm = "ecdsa-p256"
    else:
        raise Invalid("cosign keys must be ECDSA P-256 or Ed25519 public keys")
    der = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return ParsedKey("cosign", algorithm, hashlib.sha256(der).hexdigest(), None)


def _certificate(pem: str) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(pem.encode())
    except ValueError:
        raise Invalid("the certificate cannot be read (expected PEM)") from None


def _public_key(pem: str) -> Any:
    try:
        return serialization.load_pem_public_key(pem.encode())
    except (ValueError, TypeError):
        raise Invalid("the public key cannot be read (expected PEM)") from None


def load_public_key(pem: str) -> Any:
    return serialization.load_pem_public_key(pem.encode())


def load_certificate(pem: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem.encode())


_KEY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def check_key_name(name: str) -> str:
    name = name.strip()
    if not _KEY_NAME.match(name):
        raise Invalid(
            "key names are 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return name


_COLUMNS = (
    s.trusted_keys.c.id,
    s.trusted_keys.c.name,
    s.trusted_keys.c.kind,
    s.trusted_keys.c.algorithm,
    s.trusted_keys.c.fingerprint,
    s.trusted_keys.c.pem,
    s.trusted_keys.c.created_by,
    s.trusted_keys.c.created_at,
)


def _key(row: Any) -> TrustedKey:
    subject = None
    if row.kind == "notation":
        subject = load_certificate(row.pem).subject.rfc4514_string()
    return TrustedKey(
        int(row.id),
        row.name,
        row.kind,
        row.algorithm,
        row.fingerprint,
        row.pem,
        row.created_by,
        row.created_at,
        subject,
    )


def project_keys(conn: Connection, project: int) -> list[TrustedKey]:
    rows = conn.execute(
        select(*_COLUMNS)
        .where(s.trusted_keys.c.project_id == project)
        .order_by(s.trusted_keys.c.name)
    )
    return [_key(row) for row in rows]


def trust_policy(row: Any) -> TrustPolicy:
    """The trust policy from a projects row (notation_level, notation_identities)."""
    identities: tuple[str, ...] = ("*",)
    if row.notation_identities:
        identities = tuple(json.loads(row.notation_identities))
    return TrustPolicy(row.notation_level or "strict", identities)


def _bump(conn: Connection, project: int) -> None:
    p = s.projects
    conn.execute(
        update(p).where(p.c.id == project).values(keyset_generation=p.c.keyset_generation + 1)
    )


class TrustedKeys:
    def __init__(self, db: Database) -> None:
        self.db = db

    def list(self, project: str) -> list[TrustedKey]:
        with self.db.read() as conn:
            return project_keys(conn, project_id(conn, project))

    def add(self, project: str, name: str, pem: str, *, actor: Actor = SYSTEM) -> TrustedKey:
        name = check_key_name(name)
        parsed = parse_key(pem)
        k = s.trusted_keys
        with self.db.write() as conn:
            pid = project_id(conn, project)
            taken = conn.execute(
                select(k.c.id).where(k.c.project_id == pid, k.c.name == name)
            ).first()
            if taken:
                raise Exists(f"project {project!r} already trusts a key named {name!r}")
            conn.execute(
                k.insert().values(
                    project_id=pid,
                    name=name,
                    kind=parsed.kind,
                    algorithm=parsed.algorithm,
                    pem=pem.strip() + "\n",
                    fingerprint=parsed.fingerprint,
                    created_by=actor.name,
                    created_at=utcnow(),
                )
            )
            _bump(conn, pid)
            data = {"name": name, "kind": parsed.kind, "fingerprint": parsed.fingerprint}
            outbox.emit(
                conn, outbox.PROJECT_KEY_ADDED, actor, resource=project, project=project, data=data
            )
            added = [key for key in project_keys(conn, pid) if key.name == name]
        return added[0]

    def remove(self, project: str, name: str, *, actor: Actor = SYSTEM) -> None:
        k = s.trusted_keys
        with self.db.write() as conn:
            pid = project_id(conn, project)
            gone = conn.execute(delete(k).where(k.c.project_id == pid, k.c.name == name)).rowcount
            if not gone:
                raise Missing(f"project {project!r} has no trusted key {name!r}")
            _bump(conn, pid)
            outbox.emit(
                conn,
                outbox.PROJECT_KEY_REMOVED,
                actor,
                resource=project,
                project=project,
                data={"name": name},
            )


@dataclass(frozen=True, slots=True)
class PullPolicySettings:
    require_signed: bool
    notation_level: str
    notation_identities: tuple[str, ...]


class PolicySettings:
    """A project's pull-policy settings (the projects columns this part owns)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def get(self, project: str) -> PullPolicySettings:
        p = s.projects
        with self.db.read() as conn:
            row = conn.execute(
                select(p.c.require_signed, p.c.notation_level, p.c.notation_identities).where(
                    p.c.name == project
                )
            ).first()
        if row is None:
            raise Missing(f"no project {project!r}")
        policy = trust_policy(row)
        return PullPolicySettings(bool(row.require_signed), policy.level, policy.identities)

    def update(
        self,
        project: str,
        *,
        require_signed: bool | None = None,
        notation_level: str | None = None,
        notation_identities: list[str] | None = None,
        actor: Actor = SYSTEM,
    ) -> PullPolicySettings:
        values: dict[str, Any] = {}
        if require_signed is not None:
            values["require_signed"] = require_signed
        trust = False
        if notation_level is not None:
            if notation_level not in LEVELS:
                raise Invalid(f"notation_level must be one of: {', '.join(LEVELS)}")
            values["notation_level"] = notation_level
            trust = True
        if notation_identities is not None:
            identities = [i.strip() for i in notation_identities]
            for identity in identities:
                if identity != "*" and not parse_dn(identity):
                    raise Invalid(
                        f"trusted identity {identity[:100]!r} is not '*' or a subject DN "
                        "such as 'x509.subject: C=US, O=Acme, CN=release'"
                    )
            if not identities:
                raise Invalid("give at least one trusted identity ('*' trusts any)")
            values["notation_identities"] = json.dumps(identities)
            trust = True
        p = s.projects
        with self.db.write() as conn:
            pid = project_id(conn, project)
            if values:
                conn.execute(update(p).where(p.c.id == pid).values(**values))
            if trust:
                _bump(conn, pid)
            outbox.emit(
                conn,
                outbox.PROJECT_POLICY_UPDATED,
                actor,
                resource=project,
                project=project,
                data=values,
            )
        return self.get(project)
