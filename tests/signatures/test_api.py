"""Signatures, trusted keys and the pull policy through the management API (auth on):
who may manage keys and policies, what the listing says, and the policy applying to
admins and robots alike on /v2."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from tests.api.helpers import OCI_MANIFEST, error_message
from tests.auth.conftest import Registry, basic, populated
from tests.mgmt.conftest import (
    API,
    DEVELOPER,
    GUEST,
    MAINTAINER,
    PROJECT_ADMIN,
    client_for,
)
from tests.mgmt.helpers import assert_error, json_list, json_object
from tests.signatures import builders as b
from tests.signatures.conftest import image, push_cosign_tag

KEYS = f"{API}/projects/acme/trusted-keys"
POLICY = f"{API}/projects/acme/pull-policy"


@pytest.fixture
def registry(tmp_path: Path, database_url: str) -> Iterator[Registry]:
    with populated(tmp_path, database_url) as built:
        yield built


def add_key(registry: Registry, user: str, name: str, pem: str) -> Any:
    return client_for(registry, user).post(KEYS, json={"name": name, "pem": pem})


@pytest.mark.parametrize(
    ("user", "status"),
    [("admin", 201), (PROJECT_ADMIN, 201), (MAINTAINER, 201), (DEVELOPER, 403), (GUEST, 403)],
)
def test_who_manages_trusted_keys(registry: Registry, user: str, status: int) -> None:
    response = add_key(registry, user, "release", b.p256().public_pem)
    assert response.status_code == status, response.text
    listed = json_list(client_for(registry, GUEST).get(KEYS))
    assert [k["name"] for k in listed] == (["release"] if status == 201 else [])
    if status == 201:
        removed = client_for(registry, user).delete(f"{KEYS}/release")
        assert removed.status_code == 204, removed.text
    assert client_for(registry, "outsider").get(KEYS).status_code == 404


def test_trusted_key_shapes(registry: Registry) -> None:
    ca = b.make_ca()
    created = json_object(add_key(registry, PROJECT_ADMIN, "ed", b.ed25519_key().public_pem), 201)
    assert (created["kind"], created["algorithm"]) == ("cosign", "ed25519")
    assert len(created["fingerprint"]) == 64
    cert = json_object(add_key(registry, PROJECT_ADMIN, "ca", ca.pem), 201)
    assert (cert["kind"], cert["algorithm"]) == ("notation", "x509")
    assert "CN=Acme Test Root" in cert["subject"]
    assert_error(add_key(registry, PROJECT_ADMIN, "ed", b.p256().public_pem), 409, "CONFLICT")
    assert_error(client_for(registry, PROJECT_ADMIN).delete(f"{KEYS}/nosuch"), 404, "NOT_FOUND")


@pytest.mark.parametrize(
    ("pem", "says"),
    [
        ("not a key", "expected a PEM public key"),
        ("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", "cannot be read"),
        ("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "private key"),
    ],
)
def test_bad_keys_are_refused_clearly(registry: Registry, pem: str, says: str) -> None:
    body = assert_error(add_key(registry, PROJECT_ADMIN, "bad", pem), 400, "INVALID")
    assert says in body["message"]


def test_p384_cosign_key_is_refused(registry: Registry) -> None:
    pem = b.CosignKey(ec.generate_private_key(ec.SECP384R1())).public_pem
    body = assert_error(add_key(registry, PROJECT_ADMIN, "p384", pem), 400, "INVALID")
    assert "P-256 or Ed25519" in body["message"]


def test_pull_policy_setting(registry: Registry) -> None:
    assert json_object(client_for(registry, GUEST).get(POLICY)) == {
        "require_signed": False,
        "notation_level": "strict",
        "notation_identities": ["*"],
    }
    refused = client_for(registry, MAINTAINER).patch(POLICY, json={"require_signed": True})
    assert_error(refused, 403, "FORBIDDEN")
    changed = client_for(registry, PROJECT_ADMIN).patch(
        POLICY,
        json={"require_signed": True, "notation_identities": ["x509.subject: O=Acme, CN=ci"]},
    )
    assert json_object(changed)["require_signed"] is True
    assert json_object(changed)["notation_identities"] == ["x509.subject: O=Acme, CN=ci"]
    bad = client_for(registry, PROJECT_ADMIN).patch(
        POLICY, json={"notation_identities": ["nonsense"]}
    )
    assert_error(bad, 400, "INVALID")
    bad_level = client_for(registry, PROJECT_ADMIN).patch(POLICY, json={"notation_level": "skip"})
    assert bad_level.status_code in (400, 422)


def test_signatures_listing_and_policy_for_admins_and_robots(registry: Registry) -> None:
    admin = client_for(registry, "admin")
    key = b.p256()
    add_key(registry, PROJECT_ADMIN, "release", key.public_pem)
    signed = image(admin, "acme/app", "signed")
    unsigned = image(admin, "acme/app", "unsigned")
    push_cosign_tag(admin, "acme/app", signed.digest, [b.cosign_layer(key, signed.digest)])
    client_for(registry, PROJECT_ADMIN).patch(POLICY, json={"require_signed": True})

    listed = json_list(admin.get(f"{API}/repositories/acme/app/-/artifacts/signed/signatures"))
    assert len(listed) == 1
    assert listed[0]["verified"] is True
    assert listed[0]["verified_by"] == "release"
    assert listed[0]["via"] == "tag"
    assert listed[0]["verdicts"] == [
        {"key": "release", "verified": True, "reason": "verified with cosign key 'release'"}
    ]
    none = admin.get(f"{API}/repositories/acme/app/-/artifacts/unsigned/signatures")
    assert json_list(none) == []
    hidden = client_for(registry, "outsider").get(
        f"{API}/repositories/acme/app/-/artifacts/signed/signatures"
    )
    assert_error(hidden, 404, "NOT_FOUND")

    created = json_object(
        client_for(registry, PROJECT_ADMIN).post(
            f"{API}/projects/acme/robots", json={"name": "ci", "permissions": ["pull"]}
        ),
        201,
    )
    robot = basic(created["name"], created["secret"])
    for headers in (basic("admin"), robot):
        caller = registry.as_caller(headers)
        accept = {"accept": OCI_MANIFEST}
        ok = caller.get("/v2/acme/app/manifests/signed", headers=accept)
        assert ok.status_code == 200, ok.text
        refused = caller.get("/v2/acme/app/manifests/unsigned", headers=accept)
        assert refused.status_code == 403, refused.text
        assert "only signed images" in error_message(refused)
        assert unsigned.digest not in ok.text
