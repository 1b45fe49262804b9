"""Signature formats, read from the signature artifact's manifest and its layers (pure:
no database, no storage; the caller hands in the layer bytes).

cosign (the tag scheme and OCI 1.1 referrers): an image manifest, tagged
`sha256-<hex>.sig` beside the signed artifact or carrying it as `subject`, whose layers
are simple-signing payloads (`application/vnd.dev.cosign.simplesigning.v1+json`). Each
layer is one signature: the base64 signature is the layer descriptor's
`dev.cosignproject.cosign/signature` annotation, over the layer's exact bytes (ECDSA
over their SHA-256, Ed25519 over the bytes). The payload is JSON whose
`critical.image.docker-manifest-digest` names the signed manifest. Certificate, chain and
bundle annotations (keyless signing) only give the signer's identity for display;
Portside verifies against the project's trusted keys only.

Notation: a referrer whose artifactType (or, for the OCI 1.0 form, config media type) is
`application/vnd.cncf.notary.signature`, with one layer, the envelope. JWS
(`application/jose+json`, JSON serialization): `protected` (base64url JSON header with
alg, crit, cty `application/vnd.cncf.notary.payload.v1+json`, signing scheme and time,
optional expiry), `payload` (base64url JSON with `targetArtifact` {mediaType, digest,
size}), `signature`, and the unprotected `header.x5c` certificate chain (leaf first,
base64 DER). The signature is over ASCII(protected "." payload). COSE envelopes
(`application/cose`) are recognised and reported unsupported.

Sigstore bundles (cosign 3's default; a referrer with artifactType and one layer
`application/vnd.dev.sigstore.bundle.v0.3+json`): a bundle holding a DSSE envelope is
read as a cosign signature made with a key: the signature (the envelope's first) is over
DSSE's pre-authentication encoding of payloadType and payload, and the payload is an
in-toto statement whose subject digest names the signed manifest. Bundles holding a
message signature are reported unsupported; keyless verification (certificate, Rekor
entries) is not done.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509

COSIGN_PAYLOAD = "application/vnd.dev.cosign.simplesigning.v1+json"
COSIGN_SIGNATURE = "dev.cosignproject.cosign/signature"
COSIGN_CERTIFICATE = "dev.sigstore.cosign/certificate"
COSIGN_CHAIN = "dev.sigstore.cosign/chain"
COSIGN_BUNDLE = "dev.sigstore.cosign/bundle"
COSIGN_ARTIFACT_TYPE = "application/vnd.dev.cosign.artifact.sig.v1+json"
NOTATION_ARTIFACT_TYPE = "application/vnd.cncf.notary.signature"
NOTATION_PAYLOAD = "application/vnd.cncf.notary.payload.v1+json"
JWS = "application/jose+json"
COSE = "application/cose"
SIGSTORE_BUNDLE = "application/vnd.dev.sigstore.bundle.v0.3+json"

# cosign's tag for the signatures of `sha256:<hex>`.
SIG_TAG = re.compile(r"^sha256-([0-9a-f]{64})\.sig$")

# Layers bigger than this are not signature payloads or envelopes: never read them.
MAX_LAYER_BYTES = 256 * 1024
# Signatures read from one signature manifest (cosign appends one layer per signing);
# a manifest with more is judged on its first ones only, bounding the work a push causes.
MAX_SIGNATURES = 64


def sig_tag(digest: str) -> str | None:
    """cosign's signature tag for an artifact digest (None for non-sha256 digests)."""
    algorithm, _, hex_part = digest.partition(":")
    return f"sha256-{hex_part}.sig" if algorithm == "sha256" else None


def tagged_digest(tag: str) -> str | None:
    """The artifact digest a cosign signature tag names, if it is one."""
    found = SIG_TAG.match(tag)
    return f"sha256:{found.group(1)}" if found else None


@dataclass(frozen=True, slots=True)
class Layer:
    """A layer of the signature manifest that may hold a signature."""

    index: int
    media_type: str
    digest: str
    size: int
    annotations: dict[str, str]


@dataclass(frozen=True, slots=True)
class Envelope:
    """One signature read from a signature artifact, ready to verify.

    `problem` is set when it could not be read; it then verifies with no key."""

    format: str  # "cosign" or "notation"
    layer: int
    signed_bytes: bytes = b""  # exactly what the signature covers
    signature: bytes = b""
    claimed_digest: str | None = None  # the manifest digest the payload names
    claimed_size: int | None = None  # Notation: targetArtifact.size
    claimed_media_type: str | None = None  # Notation: targetArtifact.mediaType
    algorithm: str | None = None  # Notation: the JWS alg
    certificates: list[bytes] = field(default_factory=list)  # DER, leaf first
    signing_time: str | None = None
    expiry: str | None = None
    signer: str | None = None  # cosign keyless: the certificate's identity, for display
    problem: str | None = None


def signature_layers(manifest: dict[str, Any]) -> tuple[str | None, list[Layer]]:
    """(format, the layers to read) of a manifest if it is a signature artifact, else
    (None, [])."""
    layers = manifest.get("layers")
    if not isinstance(layers, list):
        return None, []
    config = manifest.get("config")
    config_type = config.get("mediaType") if isinstance(config, dict) else None
    artifact_type = manifest.get("artifactType") or config_type
    found: list[Layer] = []
    for index, layer in enumerate(layers):
        if not isinstance(layer, dict):
            continue
        annotations = layer.get("annotations")
        found.append(
            Layer(
                index,
                str(layer.get("mediaType", "")),
                str(layer.get("digest", "")),
                _int(layer.get("size")),
                {str(k): str(v) for k, v in annotations.items()}
                if isinstance(annotations, dict)
                else {},
            )
        )
    if artifact_type == NOTATION_ARTIFACT_TYPE:
        return "notation", [x for x in found if x.media_type in (JWS, COSE)][:1]
    if artifact_type == SIGSTORE_BUNDLE:
        return "sigstore", [x for x in found if x.media_type == SIGSTORE_BUNDLE][:1]
    cosign = [x for x in found if x.media_type == COSIGN_PAYLOAD]
    if cosign:
        return "cosign", cosign[:MAX_SIGNATURES]
    return None, []


def is_signature_manifest(manifest: dict[str, Any]) -> bool:
    return signature_layers(manifest)[0] is not None


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else -1


def read_cosign(layer: Layer, payload: bytes) -> Envelope:
    """A cosign simple-signing layer and its bytes."""
    encoded = layer.annotations.get(COSIGN_SIGNATURE)
    if not encoded:
        return Envelope("cosign", layer.index, problem="the layer has no signature annotation")
    try:
        signature = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        return Envelope("cosign", layer.index, problem="the signature annotation is not base64")
    claimed = None
    try:
        document = json.loads(payload)
        image = document["critical"]["image"]
        claimed = image["docker-manifest-digest"]
        if not isinstance(claimed, str):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        return Envelope(
            "cosign",
            layer.index,
            signed_bytes=payload,
            signature=signature,
            problem="the payload does not name a manifest digest (critical.image)",
        )
    pem = layer.annotations.get(COSIGN_CERTIFICATE)
    return Envelope(
        "cosign",
        layer.index,
        signed_bytes=payload,
        signature=signature,
        claimed_digest=claimed,
        signer=_keyless_identity(pem) if pem else None,
    )


def _keyless_identity(pem: str) -> str:
    """Who a keyless (Fulcio) signing certificate names: its SAN e-mail or URI, else
    its subject."""
    try:
        certificate = x509.load_pem_x509_certificate(pem.encode())
    except ValueError:
        return "an unreadable certificate"
    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        found = names.get_values_for_type(x509.RFC822Name) + names.get_values_for_type(
            x509.UniformResourceIdentifier
        )
    except x509.ExtensionNotFound:
        found = []
    return found[0] if found else certificate.subject.rfc4514_string()


def read_bundle(layer: Layer, data: bytes) -> Envelope:
    """A Sigstore bundle v0.3 holding a DSSE envelope (judged with cosign keys)."""
    base = Envelope("cosign", layer.index)
    try:
        bundle = json.loads(data)
        if "dsseEnvelope" not in bundle:
            return _problem(base, "Sigstore bundles with a message signature are not supported")
        dsse = bundle["dsseEnvelope"]
        payload_type = dsse["payloadType"]
        payload = base64.b64decode(dsse["payload"], validate=True)
        signature = base64.b64decode(dsse["signatures"][0]["sig"], validate=True)
        statement = json.loads(payload)
        subject = statement["subject"][0]["digest"]["sha256"]
        if not isinstance(payload_type, str) or not isinstance(subject, str):
            raise TypeError
    except (ValueError, KeyError, TypeError, IndexError, AttributeError, binascii.Error):
        return _problem(base, "the Sigstore bundle's DSSE envelope is malformed")
    encoded_type = payload_type.encode()
    signed = b"DSSEv1 %d %s %d %s" % (len(encoded_type), encoded_type, len(payload), payload)
    return Envelope(
        "cosign", layer.index, signed_bytes=signed, signature=signature,
        claimed_digest=f"sha256:{subject}",
    )  # fmt: skip


def read_notation(layer: Layer, envelope: bytes) -> Envelope:
    """A Notation signature envelope (JWS JSON serialization)."""
    if layer.media_type == COSE:
        return Envelope("notation", layer.index, problem="COSE envelopes are not supported yet")
    try:
        document = json.loads(envelope)
        protected_text = document["protected"]
        payload_text = document["payload"]
        signature = _b64url(document["signature"])
        header = json.loads(_b64url(protected_text))
        payload = json.loads(_b64url(payload_text))
        unprotected = document.get("header") or {}
        chain = [base64.b64decode(c, validate=True) for c in unprotected.get("x5c") or []]
        if not isinstance(protected_text, str) or not isinstance(payload_text, str):
            raise TypeError
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error):
        return Envelope("notation", layer.index, problem="the JWS envelope is malformed")
    base = Envelope("notation", layer.index)
    if not isinstance(header, dict) or header.get("cty") != NOTATION_PAYLOAD:
        return _problem(base, f"the protected header's cty is not {NOTATION_PAYLOAD}")
    critical = header.get("crit")
    if not isinstance(critical, list) or any(name not in header for name in critical):
        return _problem(base, "the protected header's crit names missing headers")
    target = payload.get("targetArtifact") if isinstance(payload, dict) else None
    if not isinstance(target, dict) or not isinstance(target.get("digest"), str):
        return _problem(base, "the payload has no targetArtifact digest")
    if not chain:
        return _problem(base, "the envelope has no x5c certificate chain")
    return Envelope(
        "notation",
        layer.index,
        signed_bytes=f"{protected_text}.{payload_text}".encode("ascii"),
        signature=signature,
        claimed_digest=target["digest"],
        claimed_size=_int(target.get("size")),
        claimed_media_type=str(target.get("mediaType", "")),
        algorithm=str(header.get("alg", "")),
        certificates=chain,
        signing_time=_text(header.get("io.cncf.notary.signingTime")),
        expiry=_text(header.get("io.cncf.notary.expiry")),
    )


def _problem(envelope: Envelope, problem: str) -> Envelope:
    return Envelope(envelope.format, envelope.layer, problem=problem)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _b64url(text: Any) -> bytes:
    if not isinstance(text, str):
        raise TypeError
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
