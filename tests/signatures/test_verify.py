"""Verification of cosign and Notation signatures against a project's trusted keys: the
verdict and its reason per signature and key (SignatureService.reports), on SQLite and
PostgreSQL (the database fixture)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.x509.oid import ExtendedKeyUsageOID
from starlette.testclient import TestClient

from portside.app import PortsideApp
from portside.signatures import service
from portside.signatures.keys import TrustedKeys
from portside.signatures.service import SignatureReport
from tests.api.helpers import make_artifact, push_manifest
from tests.signatures import builders as b
from tests.signatures.conftest import (
    image,
    push_bundle,
    push_cosign_referrer,
    push_cosign_tag,
    push_notation,
    require_signed,
    trust,
)

REPO = "acme/app"


@pytest.fixture
def acme(app: PortsideApp) -> PortsideApp:
    app.ctx.auth.projects.create("acme")
    return app


def reports(app: PortsideApp, digest: str) -> list[SignatureReport]:
    return app.ctx.signatures.reports(REPO, [digest])[digest]


def only(app: PortsideApp, digest: str) -> SignatureReport:
    found = reports(app, digest)
    assert len(found) == 1, found
    return found[0]


@pytest.mark.parametrize("make_key", [b.p256, b.ed25519_key], ids=["p256", "ed25519"])
@pytest.mark.parametrize("form", ["tag", "referrer"])
def test_valid_cosign_signature_is_verified(
    acme: PortsideApp, client: TestClient, make_key: type, form: str
) -> None:
    key = make_key()
    trust(acme, "release", key.public_pem)
    target = image(client)
    layer = b.cosign_layer(key, target.digest)
    if form == "tag":
        signature = push_cosign_tag(client, REPO, target.digest, [layer])
    else:
        signature = push_cosign_referrer(client, REPO, target, [layer])
    report = only(acme, target.digest)
    assert (report.format, report.via, report.signature_digest) == ("cosign", form, signature)
    assert report.verified, report
    assert report.verified_by == "release"
    assert report.tag == (b.sig_tag(target.digest) if form == "tag" else None)


def test_forged_signature_is_refused(acme: PortsideApp, client: TestClient) -> None:
    key = b.p256()
    trust(acme, "release", key.public_pem)
    target = image(client)
    layer = b.cosign_layer(key, target.digest)
    push_cosign_tag(
        client, REPO, target.digest, [b.SignedLayer(layer.payload, b.flip(layer.signature))]
    )
    report = only(acme, target.digest)
    assert not report.verified
    assert report.verdicts[0].reason == "signature does not verify with key 'release'"


def test_forged_payload_is_refused(acme: PortsideApp, client: TestClient) -> None:
    """The payload changed after signing (one byte): the signature no longer covers it."""
    key = b.ed25519_key()
    trust(acme, "release", key.public_pem)
    target = image(client)
    layer = b.cosign_layer(key, target.digest)
    tampered = layer.payload.replace(b"cosign container", b"cosign Container")
    push_cosign_tag(client, REPO, target.digest, [b.SignedLayer(tampered, layer.signature)])
    assert not only(acme, target.digest).verified


def test_wrong_key_is_refused(acme: PortsideApp, client: TestClient) -> None:
    trust(acme, "release", b.p256().public_pem)
    target = image(client)
    push_cosign_tag(client, REPO, target.digest, [b.cosign_layer(b.p256(), target.digest)])
    report = only(acme, target.digest)
    assert not report.verified
    assert "does not verify with key 'release'" in report.verdicts[0].reason


def test_signature_replayed_onto_another_image_is_refused(
    acme: PortsideApp, client: TestClient
) -> None:
    """A valid signature of v1, copied as the signature of v2: the payload names v1."""
    key = b.p256()
    trust(acme, "release", key.public_pem)
    v1, v2 = image(client, tag="v1"), image(client, tag="v2")
    layer = b.cosign_layer(key, v1.digest)
    push_cosign_tag(client, REPO, v1.digest, [layer])
    push_cosign_tag(client, REPO, v2.digest, [layer])
    assert only(acme, v1.digest).verified
    replayed = only(acme, v2.digest)
    assert not replayed.verified
    assert "for another artifact" in replayed.verdicts[0].reason
    assert v1.digest in replayed.verdicts[0].reason


def test_one_verdict_per_signature_and_key(acme: PortsideApp, client: TestClient) -> None:
    """cosign appends signatures as layers; each is judged against every cosign key."""
    alice, bob = b.p256(), b.ed25519_key()
    trust(acme, "alice", alice.public_pem)
    trust(acme, "bob", bob.public_pem)
    target = image(client)
    push_cosign_tag(
        client,
        REPO,
        target.digest,
        [b.cosign_layer(alice, target.digest), b.cosign_layer(b.p256(), target.digest)],
    )
    found = reports(acme, target.digest)
    assert [r.layer for r in found] == [0, 1]
    assert [(v.key, v.verified) for v in found[0].verdicts] == [("alice", True), ("bob", False)]
    assert [v.verified for v in found[1].verdicts] == [False, False]


def test_no_keys_means_nothing_verified(acme: PortsideApp, client: TestClient) -> None:
    target = image(client)
    push_cosign_tag(client, REPO, target.digest, [b.cosign_layer(b.p256(), target.digest)])
    report = only(acme, target.digest)
    assert [(v.key, v.verified, v.reason) for v in report.verdicts] == [
        (None, False, "the project trusts no cosign keys")
    ]


def test_verdicts_follow_key_changes(acme: PortsideApp, client: TestClient) -> None:
    """Stored verdicts are recomputed when the keys change (keyset generation)."""
    key = b.p256()
    target = image(client)
    push_cosign_tag(client, REPO, target.digest, [b.cosign_layer(key, target.digest)])
    assert not only(acme, target.digest).verified
    trust(acme, "release", key.public_pem)
    assert only(acme, target.digest).verified
    TrustedKeys(acme.ctx.db).remove("acme", "release")
    assert not only(acme, target.digest).verified


def test_verification_is_stored_not_repeated(
    acme: PortsideApp, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = b.p256()
    trust(acme, "release", key.public_pem)
    target = image(client)
    push_cosign_tag(client, REPO, target.digest, [b.cosign_layer(key, target.digest)])
    assert only(acme, target.digest).verified

    def no_more(*args: object, **kwargs: object) -> None:
        raise AssertionError("verified again")

    monkeypatch.setattr(service, "verify", no_more)
    assert only(acme, target.digest).verified


# -- Notation -----------------------------------------------------------------------------


@pytest.fixture
def ca() -> b.Cert:
    return b.make_ca()


def test_notation_signature_chained_to_trusted_ca(
    acme: PortsideApp, client: TestClient, ca: b.Cert
) -> None:
    trust(acme, "acme-ca", ca.pem)
    target = image(client)
    leaf = b.make_leaf(ca)
    push_notation(client, REPO, target, b.jws_envelope(leaf, [leaf, ca], target.descriptor()))
    report = only(acme, target.digest)
    assert (report.format, report.via) == ("notation", "referrer")
    assert report.verified, report.verdicts
    assert report.verified_by == "acme-ca"
    assert "CN=release signer" in str(report.signer)


def test_notation_es256_leaf_alone_in_x5c(
    acme: PortsideApp, client: TestClient, ca: b.Cert
) -> None:
    """The chain may stop at the leaf when the trusted CA issued it."""
    trust(acme, "acme-ca", ca.pem)
    target = image(client)
    leaf = b.make_leaf(ca, elliptic=True)
    push_notation(client, REPO, target, b.jws_envelope(leaf, [leaf], target.descriptor()))
    assert only(acme, target.digest).verified


def test_notation_untrusted_root_is_refused(
    acme: PortsideApp, client: TestClient, ca: b.Cert
) -> None:
    trust(acme, "acme-ca", ca.pem)
    target = image(client)
    rogue = b.make_ca("Acme Test Root")  # the same name, another key
    leaf = b.make_leaf(rogue)
    push_notation(client, REPO, target, b.jws_envelope(leaf, [leaf, rogue], target.descriptor()))
    report = only(acme, target.digest)
    assert not report.verified
    assert "does not lead to the trusted certificate 'acme-ca'" in report.verdicts[0].reason


def test_notation_wrong_digest_is_refused(
    acme: PortsideApp, client: TestClient, ca: b.Cert
) -> None:
    trust(acme, "acme-ca", ca.pem)
    v1, v2 = image(client, tag="v1"), image(client, tag="v2")
    leaf = b.make_leaf(ca)
    # Signed for v1, attached to v2.
    push_notation(client, REPO, v2, b.jws_envelope(leaf, [leaf, ca], v1.descriptor()))
    report = only(acme, v2.digest)
    assert not report.verified
    assert "for another artifact" in report.verdicts[0].reason


def test_notation_forged_is_refused(acme: PortsideApp, client: TestClient, ca: b.Cert) -> None:
    trust(acme, "acme-ca", ca.pem)
    target = image(client)
    leaf = b.make_leaf(ca)
    envelope = b.jws_envelope(leaf, [leaf, ca], target.descriptor())
    document = json.loads(envelope)
    document["signature"] = ("A" if document["signature"][0] != "A" else "B") + document[
        "signature"
    ][1:]
    push_notation(client, REPO, target, json.dumps(document).encode())
    report = only(acme, target.digest)
    assert not report.verified
    assert "does not verify with the signing certificate" in report.verdicts[0].reason


def test_notation_expired_certificate_by_level(
    acme: PortsideApp, client: TestClient, ca: b.Cert
) -> None:
    """strict refuses an expired signing certificate; permissive verifies and says so;
    audit never counts."""
    trust(acme, "acme-ca", ca.pem)
    target = image(client)
    now = datetime.now(UTC)
    leaf = b.make_leaf(ca, not_before=now - timedelta(days=60), not_after=now - timedelta(days=1))
    push_notation(client, REPO, target, b.jws_envelope(leaf, [leaf, ca], target.descriptor()))
    strict = only(acme, target.digest)
    assert not strict.verified
    assert "is not valid now" in strict.verdicts[0].reason
    require_signed(acme, False, notation_level="permissive")
    permissive = only(acme, target.digest)
    assert permissive.verified
    assert "not enforced at this level" in permissive.verdicts[0].reason
    require_signed(acme, False, notation_level="audit")
    audit = only(acme, target.digest)
    assert not audit.verified
    assert "audit" in audit.verdicts[0].reason


def test_notation_expired_signature(acme: PortsideApp, client: TestClient, ca: b.Cert) -> None:
    trust(acme, "acme-ca", ca.pem)
    target = image(client)
    leaf = b.make_leaf(ca)
    expired = datetime.now(UTC) - timedelta(hours=1)
    envelope = b.jws_envelope(leaf, [leaf, ca], target.descriptor(), expiry=expired)
    push_notation(client, REPO, target, envelope)
    report = only(acme, target.digest)
    assert not report.verified
    assert "the signature expired" in report.verdicts[0].reason


def test_notation_trusted_identities(acme: PortsideApp, client: TestClient, ca: b.Cert) -> None:
    trust(acme, "acme-ca", ca.pem)
    target = image(client)
    leaf = b.make_leaf(ca, "release signer")
    push_notation(client, REPO, target, b.jws_envelope(leaf, [leaf, ca], target.descriptor()))
    require_signed(acme, False, notation_identities=["x509.subject: O=Acme, CN=someone else"])
    report = only(acme, target.digest)
    assert not report.verified
    assert "is not a trusted identity" in report.verdicts[0].reason
    require_signed(
        acme, False, notation_identities=["x509.subject: C=US, O=Acme, CN=release signer"]
    )
    assert only(acme, target.digest).verified


def test_cosign_key_does_not_vouch_for_notation(
    acme: PortsideApp, client: TestClient, ca: b.Cert
) -> None:
    trust(acme, "release", b.p256().public_pem)
    target = image(client)
    leaf = b.make_leaf(ca)
    push_notation(client, REPO, target, b.jws_envelope(leaf, [leaf, ca], target.descriptor()))
    report = only(acme, target.digest)
    assert [(v.key, v.verified, v.reason) for v in report.verdicts] == [
        (None, False, "the project trusts no notation keys")
    ]


def test_other_referrers_are_not_signatures(acme: PortsideApp, client: TestClient) -> None:
    target = image(client)
    sbom = make_artifact(client, REPO, target)
    push_manifest(client, REPO, sbom.digest, sbom)
    assert reports(acme, target.digest) == []


def test_malformed_signatures_get_a_reason_not_an_error(
    acme: PortsideApp, client: TestClient
) -> None:
    """Hostile or broken signature artifacts are judged unverified with a reason."""
    trust(acme, "release", b.p256().public_pem)
    trust(acme, "acme-ca", b.make_ca().pem)
    v1, v2 = image(client, tag="v1"), image(client, tag="v2")
    not_base64 = b.SignedLayer(b.simple_signing(v1.digest), "%%% not base64 %%%")
    no_claim = b.SignedLayer(b'{"critical": {}}', "AAAA")
    push_cosign_tag(client, REPO, v1.digest, [not_base64, no_claim])
    push_notation(client, REPO, v2, b"this is not JSON")
    first, second = reports(acme, v1.digest)
    assert first.verdicts[0].reason == "the signature annotation is not base64"
    assert "does not name a manifest digest" in second.verdicts[0].reason
    notation = only(acme, v2.digest)
    assert notation.verdicts[0].reason == "the JWS envelope is malformed"
    assert not any(r.verified for r in [first, second, notation])


def test_sigstore_bundle_with_dsse(acme: PortsideApp, client: TestClient) -> None:
    """cosign 3's bundle referrer (DSSE over an in-toto statement), with a key."""
    key = b.ed25519_key()
    trust(acme, "release", key.public_pem)
    v1, v2 = image(client, tag="v1"), image(client, tag="v2")
    push_bundle(client, REPO, v1, b.sigstore_bundle(key, v1.digest))
    report = only(acme, v1.digest)
    assert (report.format, report.via) == ("cosign", "referrer")
    assert report.verified, report.verdicts
    # Replayed: the same bundle attached to v2 names v1.
    push_bundle(client, REPO, v2, b.sigstore_bundle(key, v1.digest))
    assert "for another artifact" in only(acme, v2.digest).verdicts[0].reason
    # Message-signature bundles are reported, not verified.
    v3 = image(client, tag="v3")
    message = json.dumps({"mediaType": b.SIGSTORE_BUNDLE, "messageSignature": {}}).encode()
    push_bundle(client, REPO, v3, message)
    assert "not supported" in only(acme, v3.digest).verdicts[0].reason


def test_keyless_cosign_signature_names_its_signer(acme: PortsideApp, client: TestClient) -> None:
    """Keyless (Fulcio) signatures are shown with the certificate's identity but never
    verified: Portside trusts keys, not a Fulcio root."""
    trust(acme, "release", b.p256().public_pem)
    target = image(client)
    push_cosign_tag(client, REPO, target.digest, [b.keyless_layer(target.digest, "dev@acme.test")])
    report = only(acme, target.digest)
    assert not report.verified
    assert report.signer == "dev@acme.test"
    assert "keyless signature" in report.verdicts[0].reason


def test_notation_leaf_must_be_for_code_signing(
    acme: PortsideApp, client: TestClient, ca: b.Cert
) -> None:
    trust(acme, "acme-ca", ca.pem)
    target = image(client)
    leaf = b.make_leaf(ca, usage=ExtendedKeyUsageOID.SERVER_AUTH)
    push_notation(client, REPO, target, b.jws_envelope(leaf, [leaf, ca], target.descriptor()))
    report = only(acme, target.digest)
    assert not report.verified
    assert "not for code signing" in report.verdicts[0].reason
