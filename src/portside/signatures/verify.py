"""Checking one signature (formats.Envelope) against one trusted key (keys.TrustedKey).

A signature counts only if all of these hold:
- the signature verifies over the exact signed bytes with the key (cosign) or the leaf
  certificate's key (Notation);
- the payload names this exact manifest: cosign's critical.image.docker-manifest-digest,
  Notation's targetArtifact digest, and its size and media type when given. A valid
  signature made for another artifact and copied onto this one ("replayed") is refused;
- Notation only: the x5c chain links leaf to the trusted certificate (each certificate
  issued and signed by the next, ending at or issued by the trusted one), the leaf is a
  code-signing certificate (not a CA; digitalSignature and codeSigning where it
  restricts usage), its subject matches a trusted identity of the project's trust
  policy, every certificate is
  within its validity period now, and the signature's own expiry (if any) is not past.

Notation verification levels (the subset of notation's trust policy Portside
implements): `strict` enforces all of the above; `permissive` enforces integrity
(signature, target) and authenticity (chain, identity) and reports an expired
certificate or signature in the reason without failing; `audit` enforces only
integrity and records the rest, and its verdicts never count as verified (an audit
policy observes, it does not vouch for a pull). Not implemented: revocation (OCSP/CRL),
RFC 3161 timestamps (certificates are checked against the current time), COSE
envelopes, keyless (Fulcio/Rekor) cosign verification.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.x509.oid import ExtendedKeyUsageOID

from portside.signatures.formats import Envelope
from portside.signatures.keys import TrustedKey, TrustPolicy, load_certificate, load_public_key

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "256": hashes.SHA256,
    "384": hashes.SHA384,
    "512": hashes.SHA512,
}


@dataclass(frozen=True, slots=True)
class Target:
    """The artifact a signature must name."""

    digest: str
    size: int
    media_type: str


@dataclass(frozen=True, slots=True)
class Verdict:
    verified: bool
    reason: str
    signer: str | None = None


def verify(
    envelope: Envelope,
    key: TrustedKey,
    target: Target,
    policy: TrustPolicy,
    now: datetime | None = None,
) -> Verdict:
    if envelope.problem:
        return Verdict(False, envelope.problem)
    if envelope.format == "cosign":
        return _cosign(envelope, key, target)
    return _notation(envelope, key, target, policy, now or datetime.now(UTC))


def _cosign(envelope: Envelope, key: TrustedKey, target: Target) -> Verdict:
    public = load_public_key(key.pem)
    try:
        if isinstance(public, ed25519.Ed25519PublicKey):
            public.verify(envelope.signature, envelope.signed_bytes)
        elif isinstance(public, ec.EllipticCurvePublicKey):
            public.verify(envelope.signature, envelope.signed_bytes, ec.ECDSA(hashes.SHA256()))
        else:  # keys.parse_key admits no other kind
            return Verdict(False, f"key {key.name!r} is not a cosign key")
    except (InvalidSignature, ValueError):
        reason = f"signature does not verify with key {key.name!r}"
        if envelope.signer:
            reason += " (a keyless signature: only trusted keys are checked)"
        return Verdict(False, reason, envelope.signer)
    if envelope.claimed_digest != target.digest:
        return Verdict(
            False,
            f"signed with key {key.name!r} but for another artifact "
            f"({envelope.claimed_digest}): a signature replayed onto this one does not count",
            envelope.signer,
        )
    return Verdict(True, f"verified with cosign key {key.name!r}", envelope.signer)


def _notation(
    envelope: Envelope, key: TrustedKey, target: Target, policy: TrustPolicy, now: datetime
) -> Verdict:
    try:
        chain = [x509.load_der_x509_certificate(der) for der in envelope.certificates]
    except ValueError:
        return Verdict(False, "the x5c chain holds a certificate that cannot be read")
    leaf = chain[0]
    signer = leaf.subject.rfc4514_string()
    # Integrity: the signature over the signed bytes, and the payload naming this artifact.
    problem = _check_jws(envelope, leaf)
    if problem:
        return Verdict(False, problem, signer)
    problem = _check_target(envelope, target)
    if problem:
        return Verdict(False, problem, signer)
    enforced: list[str] = []
    logged: list[str] = []
    # Authenticity: chained to this trusted certificate, and a trusted identity.
    authenticity = _check_chain(chain, load_certificate(key.pem), key.name) or _check_leaf(leaf)
    if authenticity is None and not policy.trusts(leaf.subject):
        authenticity = f"signer {signer!r} is not a trusted identity of the trust policy"
    # Expiry: the certificates now, and the signature's own expiry.
    expiry = _check_validity(chain, now) or _check_expiry(envelope, now)
    level = policy.level
    if authenticity:
        (enforced if level in ("strict", "permissive") else logged).append(authenticity)
    if expiry:
        (enforced if level == "strict" else logged).append(expiry)
    if enforced:
        return Verdict(False, enforced[0], signer)
    if level == "audit":
        note = "; ".join(logged) or "authenticity checks passed"
        return Verdict(
            False,
            f"trust policy level is audit: integrity verified, nothing enforced ({note}); "
            "audit verdicts do not count as signed",
            signer,
        )
    reason = f"verified with Notation certificate {key.name!r} ({level})"
    if logged:
        reason += "; not enforced at this level: " + "; ".join(logged)
    return Verdict(True, reason, signer)


def _check_jws(envelope: Envelope, leaf: x509.Certificate) -> str | None:
    alg = envelope.algorithm or ""
    digest = _HASHES.get(alg[2:])
    if alg[:2] not in ("PS", "ES") or digest is None:
        return f"unsupported JWS algorithm {alg!r}"
    public = leaf.public_key()
    try:
        if alg.startswith("PS") and isinstance(public, rsa.RSAPublicKey):
            public.verify(
                envelope.signature,
                envelope.signed_bytes,
                padding.PSS(mgf=padding.MGF1(digest()), salt_length=padding.PSS.DIGEST_LENGTH),
                digest(),
            )
        elif alg.startswith("ES") and isinstance(public, ec.EllipticCurvePublicKey):
            half = len(envelope.signature) // 2
            if half == 0 or len(envelope.signature) % 2:
                return "the JWS signature has the wrong length"
            r = int.from_bytes(envelope.signature[:half], "big")
            s = int.from_bytes(envelope.signature[half:], "big")
            public.verify(encode_dss_signature(r, s), envelope.signed_bytes, ec.ECDSA(digest()))
        else:
            return f"the signing certificate's key does not match the JWS algorithm {alg}"
    except (InvalidSignature, UnsupportedAlgorithm, ValueError):
        return "the signature does not verify with the signing certificate's key"
    return None


def _check_target(envelope: Envelope, target: Target) -> str | None:
    if envelope.claimed_digest != target.digest:
        return (
            f"the signature is for another artifact ({envelope.claimed_digest}): "
            "a signature replayed onto this one does not count"
        )
    if envelope.claimed_size not in (None, -1) and envelope.claimed_size != target.size:
        return f"the signature's targetArtifact size {envelope.claimed_size} is not {target.size}"
    if envelope.claimed_media_type and envelope.claimed_media_type != target.media_type:
        return f"the signature's targetArtifact mediaType is not {target.media_type}"
    return None


def _check_chain(chain: list[x509.Certificate], trusted: x509.Certificate, name: str) -> str | None:
    """None if `chain` (leaf first) links to `trusted`, else why not."""
    for child, parent in itertools.pairwise(chain):
        if not _issued_by(child, parent):
            return "the x5c chain is broken (a certificate is not signed by the next one)"
    for certificate in chain:
        if certificate == trusted:
            return None
    if _issued_by(chain[-1], trusted):
        return None
    return f"the certificate chain does not lead to the trusted certificate {name!r}"


def _check_leaf(leaf: x509.Certificate) -> str | None:
    """The signing certificate must be one for signing code: not a CA, digitalSignature
    if it restricts key usage, codeSigning if it restricts extended key usage."""
    extensions = leaf.extensions
    try:
        if extensions.get_extension_for_class(x509.BasicConstraints).value.ca:
            return "the signing certificate is a CA certificate"
    except x509.ExtensionNotFound:
        pass
    try:
        if not extensions.get_extension_for_class(x509.KeyUsage).value.digital_signature:
            return "the signing certificate's key usage does not allow digital signatures"
    except x509.ExtensionNotFound:
        pass
    try:
        usages = extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return None
    if ExtendedKeyUsageOID.CODE_SIGNING not in usages:
        return "the signing certificate is not for code signing (extended key usage)"
    return None


def _issued_by(child: x509.Certificate, parent: x509.Certificate) -> bool:
    try:
        child.verify_directly_issued_by(parent)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def _check_validity(chain: list[x509.Certificate], now: datetime) -> str | None:
    for certificate in chain:
        if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
            subject = certificate.subject.rfc4514_string()
            return (
                f"certificate {subject!r} is not valid now (valid "
                f"{certificate.not_valid_before_utc:%Y-%m-%d} to "
                f"{certificate.not_valid_after_utc:%Y-%m-%d})"
            )
    return None


def _check_expiry(envelope: Envelope, now: datetime) -> str | None:
    if not envelope.expiry:
        return None
    try:
        expiry = datetime.fromisoformat(envelope.expiry.replace("Z", "+00:00"))
    except ValueError:
        return "the signature's expiry is not a date"
    if expiry.tzinfo is None:
        expiry = expiry.replace(tzinfo=UTC)
    return f"the signature expired at {envelope.expiry}" if expiry < now else None
