"""Signatures built the way cosign and notation build them, with `cryptography` (no
cosign or notation binaries here): cosign simple-signing payloads signed with ECDSA P-256
or Ed25519 keys, stored as a `sha256-<hex>.sig` tag or as an OCI 1.1 referrer; Notation
JWS envelopes (JSON serialization, PS256/ES256) with an x5c chain from a test CA.

The documents follow the published formats: cosign's "simple signing" payload
(critical.identity/image/type) with the signature in the layer's
`dev.cosignproject.cosign/signature` annotation; Notation's signature manifest
(artifactType application/vnd.cncf.notary.signature, one application/jose+json layer)
whose protected header has cty application/vnd.cncf.notary.payload.v1+json and the
io.cncf.notary.signingScheme/signingTime headers named in crit.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.api.helpers import EMPTY_JSON, OCI_EMPTY, OCI_MANIFEST, canonical, descriptor, sha256

COSIGN_PAYLOAD = "application/vnd.dev.cosign.simplesigning.v1+json"
NOTATION = "application/vnd.cncf.notary.signature"
COSIGN_CONFIG = "application/vnd.oci.image.config.v1+json"


# -- cosign ----------------------------------------------------------------------------


@dataclass(frozen=True)
class CosignKey:
    private: Any

    @property
    def public_pem(self) -> str:
        return str(
            self.private.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )

    def sign(self, payload: bytes) -> str:
        if isinstance(self.private, ed25519.Ed25519PrivateKey):
            raw = self.private.sign(payload)
        else:
            raw = self.private.sign(payload, ec.ECDSA(hashes.SHA256()))
        return base64.b64encode(raw).decode()


def p256() -> CosignKey:
    return CosignKey(ec.generate_private_key(ec.SECP256R1()))


def ed25519_key() -> CosignKey:
    return CosignKey(ed25519.Ed25519PrivateKey.generate())


def simple_signing(digest: str, reference: str = "registry.test/acme/app") -> bytes:
    """cosign's payload for `digest` (its JSON, compact as cosign writes it)."""
    return json.dumps(
        {
            "critical": {
                "identity": {"docker-reference": reference},
                "image": {"docker-manifest-digest": digest},
                "type": "cosign container image signature",
            },
            "optional": None,
        },
        separators=(",", ":"),
    ).encode()


@dataclass(frozen=True)
class SignedLayer:
    payload: bytes
    signature: str  # base64

    def descriptor(self) -> dict[str, Any]:
        return descriptor(
            COSIGN_PAYLOAD,
            self.payload,
            annotations={"dev.cosignproject.cosign/signature": self.signature},
        )


def cosign_layer(key: CosignKey, digest: str) -> SignedLayer:
    payload = simple_signing(digest)
    return SignedLayer(payload, key.sign(payload))


def flip(signature: str) -> str:
    """The same signature with one bit flipped (a forgery)."""
    raw = bytearray(base64.b64decode(signature))
    raw[len(raw) // 2] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


def cosign_manifest(layers: list[SignedLayer], subject: dict[str, Any] | None = None) -> bytes:
    """The signature image cosign pushes (config: an image config; layers: payloads);
    with `subject`, the OCI 1.1 referrer form."""
    config = canonical({"architecture": "", "os": "", "config": {}, "rootfs": {"type": "layers"}})
    document: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(COSIGN_CONFIG, config),
        "layers": [layer.descriptor() for layer in layers],
    }
    if subject is not None:
        document["artifactType"] = "application/vnd.dev.cosign.artifact.sig.v1+json"
        document["subject"] = subject
    return canonical(document)


def cosign_blobs(layers: list[SignedLayer]) -> list[bytes]:
    config = canonical({"architecture": "", "os": "", "config": {}, "rootfs": {"type": "layers"}})
    return [config, *(layer.payload for layer in layers)]


def sig_tag(digest: str) -> str:
    return digest.replace(":", "-") + ".sig"


# -- Notation ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Cert:
    key: Any
    certificate: x509.Certificate

    @property
    def pem(self) -> str:
        return self.certificate.public_bytes(serialization.Encoding.PEM).decode()

    @property
    def der(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.DER)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "WA"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Acme"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def make_ca(common_name: str = "Acme Test Root", *, days: int = 365) -> Cert:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return Cert(key, certificate)


def make_leaf(
    ca: Cert,
    common_name: str = "release signer",
    *,
    elliptic: bool = False,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
    usage: Any = ExtendedKeyUsageOID.CODE_SIGNING,
) -> Cert:
    key: Any = (
        ec.generate_private_key(ec.SECP256R1())
        if elliptic
        else rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or now - timedelta(days=1))
        .not_valid_after(not_after or now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .sign(ca.key, hashes.SHA256())
    )
    return Cert(key, certificate)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jws_envelope(
    signer: Cert,
    chain: list[Cert],
    target: dict[str, Any],
    *,
    expiry: datetime | None = None,
) -> bytes:
    """A Notation JWS envelope over `target` (a descriptor), signed by `signer` (PS256
    for RSA keys, ES256 for P-256), x5c = `chain` (leaf first)."""
    elliptic = isinstance(signer.key, ec.EllipticCurvePrivateKey)
    header: dict[str, Any] = {
        "alg": "ES256" if elliptic else "PS256",
        "crit": ["io.cncf.notary.signingScheme"],
        "cty": "application/vnd.cncf.notary.payload.v1+json",
        "io.cncf.notary.signingScheme": "notary.x509",
        "io.cncf.notary.signingTime": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    if expiry is not None:
        header["io.cncf.notary.expiry"] = expiry.strftime("%Y-%m-%dT%H:%M:%SZ")
        header["crit"].append("io.cncf.notary.expiry")
    protected = _b64url(json.dumps(header).encode())
    payload = _b64url(json.dumps({"targetArtifact": target}).encode())
    signed = f"{protected}.{payload}".encode()
    if elliptic:
        r, s = decode_dss_signature(signer.key.sign(signed, ec.ECDSA(hashes.SHA256())))
        raw = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    else:
        raw = signer.key.sign(
            signed,
            padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32),
            hashes.SHA256(),
        )
    return json.dumps(
        {
            "payload": payload,
            "protected": protected,
            "header": {
                "x5c": [base64.b64encode(c.der).decode() for c in chain],
                "io.cncf.notary.signingAgent": "portside-tests/1.0",
            },
            "signature": _b64url(raw),
        }
    ).encode()


def notation_manifest(envelope: bytes, subject: dict[str, Any]) -> bytes:
    return canonical(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": NOTATION,
            "config": descriptor(OCI_EMPTY, EMPTY_JSON),
            "layers": [descriptor("application/jose+json", envelope)],
            "subject": subject,
            "annotations": {"io.cncf.notary.x509chain.thumbprint#S256": "[]"},
        }
    )


__all__ = ["sha256"]


# -- Sigstore bundle (cosign 3) ---------------------------------------------------------

SIGSTORE_BUNDLE = "application/vnd.dev.sigstore.bundle.v0.3+json"
IN_TOTO = "application/vnd.in-toto+json"


def sigstore_bundle(key: CosignKey, digest: str) -> bytes:
    """A bundle holding a DSSE envelope over an in-toto statement naming `digest`,
    signed with `key` over DSSE's pre-authentication encoding."""
    statement = json.dumps(
        {
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": "registry.test/acme/app", "digest": {"sha256": digest[7:]}}],
            "predicateType": "https://sigstore.dev/cosign/sign/v1",
            "predicate": {},
        }
    ).encode()
    pae = b"DSSEv1 %d %s %d %s" % (len(IN_TOTO), IN_TOTO.encode(), len(statement), statement)
    return json.dumps(
        {
            "mediaType": SIGSTORE_BUNDLE,
            "verificationMaterial": {"publicKey": {"hint": "test"}},
            "dsseEnvelope": {
                "payload": base64.b64encode(statement).decode(),
                "payloadType": IN_TOTO,
                "signatures": [{"sig": key.sign(pae), "keyid": ""}],
            },
        }
    ).encode()


def bundle_manifest(bundle: bytes, subject: dict[str, Any]) -> bytes:
    return canonical(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": SIGSTORE_BUNDLE,
            "config": descriptor(OCI_EMPTY, EMPTY_JSON),
            "layers": [descriptor(SIGSTORE_BUNDLE, bundle)],
            "subject": subject,
        }
    )


def keyless_layer(digest: str, email: str) -> SignedLayer:
    """A cosign keyless signature: an ephemeral key, and a (self-made, Fulcio-like)
    certificate naming the signer's e-mail in the layer's certificate annotation."""
    key = p256()
    now = datetime.now(UTC)
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "sigstore.dev")])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(name)
        .public_key(key.private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(minutes=10))
        .add_extension(x509.SubjectAlternativeName([x509.RFC822Name(email)]), critical=True)
        .sign(key.private, hashes.SHA256())
    )
    payload = simple_signing(digest)
    pem = certificate.public_bytes(serialization.Encoding.PEM).decode()
    return KeylessLayer(payload, key.sign(payload), pem)


@dataclass(frozen=True)
class KeylessLayer(SignedLayer):
    certificate: str = ""

    def descriptor(self) -> dict[str, Any]:
        found = super().descriptor()
        found["annotations"]["dev.sigstore.cosign/certificate"] = self.certificate
        return found
