"""Bearer-token verification: forged, expired, misaddressed and key-confused tokens are
refused (401 with error="invalid_token" on /v2); tokens from a configured external issuer
grant exactly their access claim; RS256 works for our own issuer.

Every forgery starts from a token that is accepted (`test_forged_baseline_is_accepted`)
and changes one thing, so each refusal is caused by that one thing.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2 as httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from portside.auth.tokens import TokenInvalid
from tests.api.helpers import push_image
from tests.auth.conftest import Registry, basic, bearer
from tests.auth.fixtures import b64url, claims_of, compact, populated, sign

REPO = "acme/app"
ACCESS = [{"type": "repository", "name": REPO, "actions": ["pull", "push"]}]


def public_pem(key: Any) -> bytes:
    pem: bytes = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem


def public_jwk(key: Any) -> dict[str, Any]:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        value = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
    else:
        value = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    assert isinstance(value, dict)
    return value


def hs256_keyed_with_public_key(claims: dict[str, Any], key: Any, kid: str | None = None) -> str:
    """HS256 keyed with the verifier's public key PEM (the RS/ES -> HS confusion attack);
    built by hand because PyJWT refuses to use a PEM key as an HMAC secret."""
    header: dict[str, Any] = {"alg": "HS256", "typ": "JWT"}
    if kid is not None:
        header["kid"] = kid
    signing_input = ".".join(
        (b64url(json.dumps(header).encode()), b64url(json.dumps(claims).encode()))
    )
    mac = hmac.new(public_pem(key), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(mac)}"


@dataclass
class Forge:
    """Builds tokens for the registry's own issuer, signed with its real key unless told."""

    registry: Registry

    @property
    def key(self) -> Any:
        return self.registry.auth.issuer.key.private_key

    @property
    def kid(self) -> str:
        return self.registry.auth.issuer.key.kid

    def claims(self, **changes: Any) -> dict[str, Any]:
        """Valid claims for `admin` on acme/app; a change to None removes the claim."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": "portside",
            "sub": "admin",
            "aud": "portside",
            "exp": now + 120,
            "nbf": now - 1,
            "iat": now,
            "jti": "forged",
            "access": ACCESS,
        }
        claims.update(changes)
        return {k: v for k, v in claims.items() if v is not None}

    def sign(self, claims: dict[str, Any], key: Any = None, **headers: Any) -> str:
        return sign(claims, key or self.key, "ES256", {"kid": self.kid, **headers})


@pytest.fixture
def forge(registry: Registry) -> Forge:
    push_image(registry.as_caller(basic("admin")), REPO, "v1")
    return Forge(registry)


def pull(registry: Registry, token: str) -> httpx.Response:
    return registry.get(f"/v2/{REPO}/manifests/v1", headers=bearer(token))


def assert_invalid_token(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.json()["errors"][0]["code"] == "UNAUTHORIZED"
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer "), challenge
    assert 'error="invalid_token"' in challenge, challenge


def _tampered(forge: Forge) -> str:
    """A real token for the guest (pull only) whose payload now also grants push."""
    token = forge.registry.token(f"repository:{REPO}:pull", user="guest")
    header, _payload, signature = token.split(".")
    claims = claims_of(token)
    assert claims["access"] == [{"type": "repository", "name": REPO, "actions": ["pull"]}]
    claims["access"] = ACCESS
    return f"{header}.{b64url(json.dumps(claims).encode())}.{signature}"


def _other_key_same_kid(forge: Forge) -> str:
    return forge.sign(forge.claims(), key=ec.generate_private_key(ec.SECP256R1()))


def _jwk_of_attacker(forge: Forge) -> str:
    attacker = ec.generate_private_key(ec.SECP256R1())
    return forge.sign(forge.claims(), key=attacker, jwk=public_jwk(attacker))


FORGERIES: dict[str, Callable[[Forge], str]] = {
    "alg-none": lambda f: compact({"alg": "none", "typ": "JWT"}, f.claims(), b""),
    "alg-none-with-kid": lambda f: compact({"alg": "none", "kid": f.kid}, f.claims(), b""),
    "alg-None-capitalised": lambda f: compact({"alg": "None"}, f.claims(), b""),
    "hs256-keyed-with-public-key": lambda f: hs256_keyed_with_public_key(f.claims(), f.key, f.kid),
    "embedded-jwk-real-key": lambda f: f.sign(f.claims(), jwk=public_jwk(f.key)),
    "embedded-jwk-attacker-key": _jwk_of_attacker,
    "jku-header": lambda f: f.sign(f.claims(), jku="https://attacker.invalid/keys.json"),
    "x5c-header": lambda f: f.sign(f.claims(), x5c=["MIIBdummy"]),
    "x5u-header": lambda f: f.sign(f.claims(), x5u="https://attacker.invalid/cert.pem"),
    "crit-header": lambda f: f.sign(f.claims(), crit=["exp"]),
    "expired-long-ago": lambda f: f.sign(
        f.claims(exp=int(time.time()) - 3600, iat=int(time.time()) - 4000, nbf=None)
    ),
    "expired-beyond-leeway": lambda f: f.sign(
        f.claims(exp=int(time.time()) - 11, iat=int(time.time()) - 300, nbf=None)
    ),
    "nbf-in-future": lambda f: f.sign(f.claims(nbf=int(time.time()) + 60)),
    "iat-in-future": lambda f: f.sign(f.claims(iat=int(time.time()) + 60, nbf=None)),
    "wrong-iss": lambda f: f.sign(f.claims(iss="someone-else")),
    "iss-missing": lambda f: f.sign(f.claims(iss=None)),
    "wrong-aud": lambda f: f.sign(f.claims(aud="another-registry")),
    "aud-missing": lambda f: f.sign(f.claims(aud=None)),
    "exp-missing": lambda f: f.sign(f.claims(exp=None)),
    "iat-missing": lambda f: f.sign(f.claims(iat=None)),
    "tampered-payload": _tampered,
    "other-key-same-kid": _other_key_same_kid,
    "unknown-kid": lambda f: f.sign(f.claims(), kid="0" * 32),
    "signature-stripped": lambda f: f.sign(f.claims()).rsplit(".", 1)[0] + ".",
    "not-a-jwt": lambda f: "not-a-jwt",
    "access-not-a-list": lambda f: f.sign(f.claims(access={"type": "repository"})),
}


def test_forged_baseline_is_accepted(forge: Forge) -> None:
    """The forgery kit makes tokens the registry accepts when nothing is wrong with them
    (so every refusal below is caused by the one thing each forgery changes)."""
    token = forge.sign(forge.claims())
    assert pull(forge.registry, token).status_code == 200
    no_access = pull(forge.registry, forge.sign(forge.claims(sub="guest", access=[])))
    assert no_access.status_code == 401
    assert 'error="insufficient_scope"' in no_access.headers["www-authenticate"]


def test_expiry_within_leeway_is_accepted(forge: Forge) -> None:
    now = int(time.time())
    token = forge.sign(forge.claims(exp=now - 3, iat=now - 300, nbf=None))
    assert pull(forge.registry, token).status_code == 200


@pytest.mark.parametrize("name", sorted(FORGERIES))
def test_forged_token_is_refused(forge: Forge, name: str) -> None:
    token = FORGERIES[name](forge)
    with pytest.raises(TokenInvalid):
        forge.registry.auth.verifier.verify(token)
    assert_invalid_token(pull(forge.registry, token))
    assert_invalid_token(forge.registry.get("/v2/", headers=bearer(token)))


@pytest.mark.parametrize("iss", [["portside"], {"a": 1}])
def test_token_with_non_string_issuer_is_refused(forge: Forge, iss: Any) -> None:
    token = forge.sign(forge.claims(iss=iss))
    with pytest.raises(TokenInvalid):
        forge.registry.auth.verifier.verify(token)


def test_token_with_non_string_issuer_gets_401_on_v2(forge: Forge) -> None:
    assert_invalid_token(pull(forge.registry, forge.sign(forge.claims(iss=["portside"]))))


def test_refused_token_is_not_cached_as_valid(forge: Forge) -> None:
    """A refusal does not poison the cache, and a token valid once is not later trusted
    after tampering with it."""
    good = forge.sign(forge.claims())
    assert pull(forge.registry, good).status_code == 200
    header, payload, signature = good.split(".")
    bad = f"{header}.{payload}.{signature[:-4]}AAAA"
    assert bad != good
    assert_invalid_token(pull(forge.registry, bad))
    assert pull(forge.registry, good).status_code == 200


# --- an external issuer -------------------------------------------------------------

EXT_ISSUER = "https://auth.example.test"
EXT_AUDIENCE = "portside-ext"


@dataclass
class External:
    registry: Registry
    key: rsa.RSAPrivateKey

    def claims(self, **changes: Any) -> dict[str, Any]:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": EXT_ISSUER,
            "aud": EXT_AUDIENCE,
            "sub": "ci-pipeline",
            "exp": now + 120,
            "iat": now,
            "access": [{"type": "repository", "name": REPO, "actions": ["pull"]}],
        }
        claims.update(changes)
        return {k: v for k, v in claims.items() if v is not None}


@pytest.fixture
def external(tmp_path: Path, database_url: str) -> Iterator[External]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem_file = tmp_path / "external-issuer.pem"
    pem_file.write_bytes(public_pem(key))
    settings = {
        "external_issuer": {
            "issuer": EXT_ISSUER,
            "audience": EXT_AUDIENCE,
            "public_key_file": str(pem_file),
            "algorithm": "RS256",
        }
    }
    with populated(tmp_path, database_url, auth=settings) as registry:
        push_image(registry.as_caller(basic("admin")), REPO, "v1")
        push_image(registry.as_caller(basic("admin")), "pub/base", "v1")
        yield External(registry, key)


def test_external_token_grants_exactly_its_access_claim(external: External) -> None:
    registry = external.registry
    token = sign(external.claims(), external.key, "RS256")
    verified = registry.auth.verifier.verify(token)
    assert verified.external
    assert verified.subject == "ci-pipeline"
    assert verified.grants == {("repository", REPO): frozenset({"pull"})}

    caller = registry.as_caller(bearer(token))
    assert caller.get("/v2/").status_code == 200
    assert caller.get(f"/v2/{REPO}/manifests/v1").status_code == 200
    assert caller.head(f"/v2/{REPO}/manifests/v1").status_code == 200
    push = caller.post(f"/v2/{REPO}/blobs/uploads/")
    assert push.status_code == 403, push.text
    assert push.json()["errors"][0]["code"] == "DENIED"
    assert caller.delete(f"/v2/{REPO}/manifests/v1").status_code == 403
    # Not in the claim: neither another private repository, nor a public one, nor the
    # catalog, whatever the subject's name would mean locally.
    for path in ("/v2/acme/other/tags/list", "/v2/pub/base/tags/list", "/v2/_catalog"):
        response = caller.get(path)
        assert response.status_code == 401, (path, response.text)
        assert 'error="insufficient_scope"' in response.headers["www-authenticate"]


def test_external_token_subject_gets_no_local_rights(external: External) -> None:
    """An external token whose `sub` names the local admin is still limited to its claim."""
    token = sign(external.claims(sub="admin", access=[]), external.key, "RS256")
    response = external.registry.get(f"/v2/{REPO}/manifests/v1", headers=bearer(token))
    assert response.status_code == 401


def test_external_token_with_wildcard_actions_may_push(external: External) -> None:
    access = [{"type": "repository", "name": "acme/built", "actions": ["*"]}]
    token = sign(external.claims(access=access), external.key, "RS256")
    manifest = push_image(external.registry.as_caller(bearer(token)), "acme/built", "v1")
    response = external.registry.get(
        f"/v2/acme/built/manifests/{manifest.digest}", headers=basic("guest")
    )
    assert response.status_code == 200


def test_external_token_with_other_algorithm_is_refused(external: External) -> None:
    """RS256 is pinned for the external issuer: an ES256 token (signed with some EC key),
    an HS256 token keyed with the issuer's public key, and an RS256 token from another
    RSA key are all refused."""
    registry = external.registry
    es256 = sign(external.claims(), ec.generate_private_key(ec.SECP256R1()), "ES256")
    with pytest.raises(TokenInvalid, match="algorithm"):
        registry.auth.verifier.verify(es256)
    hs256 = hs256_keyed_with_public_key(external.claims(), external.key)
    other_rsa = sign(
        external.claims(), rsa.generate_private_key(public_exponent=65537, key_size=2048), "RS256"
    )
    for token in (es256, hs256, other_rsa):
        with pytest.raises(TokenInvalid):
            registry.auth.verifier.verify(token)
        assert_invalid_token(registry.get(f"/v2/{REPO}/manifests/v1", headers=bearer(token)))


def test_external_token_checks_its_own_audience(external: External) -> None:
    """The external issuer's tokens must be addressed to its configured audience (ours,
    `portside`, is not enough), and expire like ours."""
    registry = external.registry
    now = int(time.time())
    for claims in (
        external.claims(aud="portside"),
        external.claims(exp=now - 60, iat=now - 400),
        external.claims(iss="https://auth.example.test/other"),
    ):
        token = sign(claims, external.key, "RS256")
        assert_invalid_token(registry.get(f"/v2/{REPO}/manifests/v1", headers=bearer(token)))


# --- RS256 for our own issuer ---------------------------------------------------------


def test_rs256_issuer_works_end_to_end(tmp_path: Path, database_url: str) -> None:
    with populated(tmp_path, database_url, auth={"token": {"algorithm": "RS256"}}) as registry:
        assert isinstance(registry.auth.issuer.key.private_key, rsa.RSAPrivateKey)
        token = registry.token(f"repository:{REPO}:pull,push", user="developer")
        assert jwt.get_unverified_header(token)["alg"] == "RS256"
        manifest = push_image(registry.as_caller(bearer(token)), REPO, "v1")
        response = registry.get(f"/v2/{REPO}/manifests/v1", headers=bearer(token))
        assert response.status_code == 200
        assert response.headers["docker-content-digest"] == manifest.digest

        # ES256 is not accepted from our issuer now, and neither is the RS->HS confusion.
        forge = Forge(registry)
        es256 = sign(
            forge.claims(), ec.generate_private_key(ec.SECP256R1()), "ES256", {"kid": forge.kid}
        )
        hs256 = hs256_keyed_with_public_key(forge.claims(), forge.key, forge.kid)
        for bad in (es256, hs256):
            assert_invalid_token(registry.get(f"/v2/{REPO}/manifests/v1", headers=bearer(bad)))
        # ...while an RS256 token signed with the stored key is.
        good = sign(forge.claims(), forge.key, "RS256", {"kid": forge.kid})
        assert registry.get(f"/v2/{REPO}/manifests/v1", headers=bearer(good)).status_code == 200
