"""The "only signed images" pull policy on manifest GET (content.pull_policy), through
/v2, on SQLite (with the hot path's validated cache) and PostgreSQL (no cache)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select
from starlette.testclient import TestClient

from portside.app import PortsideApp, create_app
from portside.auth.identity import Identity
from portside.config import Settings
from portside.content.pull_policy import PullPolicy
from portside.metadata import schema as s
from portside.signatures.keys import TrustedKeys
from tests.api.helpers import (
    OCI_INDEX,
    OCI_MANIFEST,
    assert_error,
    error_message,
    make_artifact,
    make_image,
    make_index,
    push_manifest,
)
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
ACCEPT = {"accept": f"{OCI_MANIFEST}, {OCI_INDEX}"}
POLICY = "pull refused by project policy 'only signed images'"


@pytest.fixture
def acme(app: PortsideApp) -> PortsideApp:
    app.ctx.auth.projects.create("acme")
    app.ctx.auth.projects.create("open")
    return app


def get(client: TestClient, reference: str, repo: str = REPO) -> int:
    return client.get(f"/v2/{repo}/manifests/{reference}", headers=ACCEPT).status_code


def test_project_without_policy_is_unaffected(acme: PortsideApp, client: TestClient) -> None:
    target = image(client, "open/app")
    assert get(client, "v1", "open/app") == 200
    assert get(client, target.digest, "open/app") == 200
    stored = acme.ctx.manifests.lookup("open/app", "v1")
    assert stored.policed is False


def test_unsigned_image_is_refused_with_the_policy_message(
    acme: PortsideApp, client: TestClient
) -> None:
    trust(acme, "release", b.p256().public_pem)
    require_signed(acme)
    target = image(client)
    assert acme.ctx.manifests.lookup(REPO, "v1").policed is True
    for reference in ("v1", target.digest):
        response = client.get(f"/v2/{REPO}/manifests/{reference}", headers=ACCEPT)
        assert_error(response, 403, "DENIED")
        assert error_message(response).startswith(POLICY)
        assert "the artifact has no signature" in error_message(response)
    # HEAD is answered (as Harbor does): the policy is enforced on GET.
    assert client.head(f"/v2/{REPO}/manifests/v1", headers=ACCEPT).status_code == 200


def test_signed_image_pulls(acme: PortsideApp, client: TestClient) -> None:
    key = b.p256()
    trust(acme, "release", key.public_pem)
    require_signed(acme)
    target = image(client)
    assert get(client, "v1") == 403
    # A pull right after `cosign sign` is allowed: verified on first need.
    signature = push_cosign_tag(client, REPO, target.digest, [b.cosign_layer(key, target.digest)])
    assert get(client, "v1") == 200
    assert get(client, target.digest) == 200
    assert get(client, "v1") == 200  # from the cached decision on SQLite
    # The signature artifact itself stays pullable, by tag and digest.
    assert get(client, b.sig_tag(target.digest)) == 200
    assert get(client, signature) == 200


def test_untrusted_signature_is_refused_with_its_reason(
    acme: PortsideApp, client: TestClient
) -> None:
    trust(acme, "release", b.p256().public_pem)
    require_signed(acme)
    target = image(client)
    push_cosign_tag(client, REPO, target.digest, [b.cosign_layer(b.p256(), target.digest)])
    response = client.get(f"/v2/{REPO}/manifests/v1", headers=ACCEPT)
    assert_error(response, 403, "DENIED")
    assert "does not verify with key 'release'" in error_message(response)


def test_replayed_signature_does_not_open_the_pull(acme: PortsideApp, client: TestClient) -> None:
    key = b.ed25519_key()
    trust(acme, "release", key.public_pem)
    require_signed(acme)
    v1, v2 = image(client, tag="v1"), image(client, tag="v2")
    layer = b.cosign_layer(key, v1.digest)
    push_cosign_tag(client, REPO, v1.digest, [layer])
    push_cosign_tag(client, REPO, v2.digest, [layer])
    assert get(client, "v1") == 200
    assert get(client, "v2") == 403


def test_key_removed_closes_the_pull_again(acme: PortsideApp, client: TestClient) -> None:
    key = b.p256()
    trust(acme, "release", key.public_pem)
    require_signed(acme)
    target = image(client)
    push_cosign_referrer(client, REPO, target, [b.cosign_layer(key, target.digest)])
    assert get(client, "v1") == 200
    TrustedKeys(acme.ctx.db).remove("acme", "release")
    assert get(client, "v1") == 403
    require_signed(acme, False)
    assert get(client, "v1") == 200


def test_notation_signed_image_pulls(acme: PortsideApp, client: TestClient) -> None:
    ca = b.make_ca()
    trust(acme, "acme-ca", ca.pem)
    require_signed(acme)
    target = image(client)
    leaf = b.make_leaf(ca)
    signature = push_notation(
        client, REPO, target, b.jws_envelope(leaf, [leaf, ca], target.descriptor())
    )
    assert get(client, "v1") == 200
    assert get(client, signature) == 200


def test_referrers_stay_pullable(acme: PortsideApp, client: TestClient) -> None:
    """An SBOM (any referrer) of an unsigned image is still served."""
    trust(acme, "release", b.p256().public_pem)
    require_signed(acme)
    target = image(client)
    sbom = make_artifact(client, REPO, target)
    push_manifest(client, REPO, sbom.digest, sbom)
    assert get(client, "v1") == 403
    assert get(client, sbom.digest) == 200


def test_signed_index_opens_its_platform_manifests(acme: PortsideApp, client: TestClient) -> None:
    key = b.p256()
    trust(acme, "release", key.public_pem)
    require_signed(acme)
    children = [make_image(client, REPO, seed=f"platform {n}") for n in range(2)]
    for child in children:
        push_manifest(client, REPO, child.digest, child)
    index = make_index(children)
    push_manifest(client, REPO, "multi", index)
    assert get(client, children[0].digest) == 403
    push_cosign_tag(client, REPO, index.digest, [b.cosign_layer(key, index.digest)])
    assert get(client, "multi") == 200
    assert get(client, children[0].digest) == 200
    assert get(client, children[1].digest) == 200


def test_exempt_identities_hook() -> None:
    """Scanner and replication identities (when they exist) skip the policy; users,
    robots and administrators do not."""
    assert PullPolicy.exempt(Identity("scanner", "scanner"))  # type: ignore[arg-type]
    assert PullPolicy.exempt(Identity("replication", "r"))  # type: ignore[arg-type]
    assert not PullPolicy.exempt(Identity("user", "admin", is_admin=True))
    assert not PullPolicy.exempt(Identity("robot", "robot$acme+ci"))
    assert not PullPolicy.exempt(None)


def test_decision_is_cached_on_sqlite(
    acme: PortsideApp, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Verification runs once; later GETs are answered from the validated cache (SQLite)
    without deciding again, until something commits."""
    if not acme.ctx.hot.cache_enabled:
        pytest.skip("PostgreSQL: nothing is cached, every policed GET decides")
    key = b.p256()
    trust(acme, "release", key.public_pem)
    require_signed(acme)
    target = image(client)
    push_cosign_tag(client, REPO, target.digest, [b.cosign_layer(key, target.digest)])
    assert get(client, target.digest) == 200  # verifies and stores the verdict
    decided: list[str] = []
    policy = acme.ctx.pull_policy
    original = policy.decide

    def counting(*args: Any) -> str:
        decided.append(args[0])
        return original(*args)

    monkeypatch.setattr(policy, "decide", counting)
    for _ in range(20):
        assert get(client, target.digest) == 200
    assert len(decided) <= 2, decided  # a pull-time or audit write may empty the cache once


def test_sigstore_bundle_signed_image_pulls(acme: PortsideApp, client: TestClient) -> None:
    key = b.p256()
    trust(acme, "release", key.public_pem)
    require_signed(acme)
    target = image(client)
    assert get(client, "v1") == 403
    bundle = push_bundle(client, REPO, target, b.sigstore_bundle(key, target.digest))
    assert get(client, "v1") == 200
    assert get(client, bundle) == 200


def test_a_runnable_image_with_a_subject_is_still_policed(
    acme: PortsideApp, client: TestClient
) -> None:
    """Carrying a `subject` does not make an image with filesystem layers a referrer that
    escapes the policy."""
    trust(acme, "release", b.p256().public_pem)
    require_signed(acme)
    target = image(client)
    disguised = make_image(client, REPO, seed="disguised", subject=target.descriptor())
    push_manifest(client, REPO, disguised.digest, disguised)
    response = client.get(f"/v2/{REPO}/manifests/{disguised.digest}", headers=ACCEPT)
    assert_error(response, 403, "DENIED")


def test_read_only_mode_judges_without_storing(
    acme: PortsideApp, client: TestClient, settings: Settings
) -> None:
    """In read-only mode (portside.readonly) a policed pull still verifies the signature,
    for the request, and writes no verdict: nothing changes during a registry copy."""
    key = b.p256()
    trust(acme, "release", key.public_pem)
    require_signed(acme)
    target = image(client)
    push_cosign_tag(client, REPO, target.digest, [b.cosign_layer(key, target.digest)])
    frozen = settings.model_copy(
        update={"registry": settings.registry.model_copy(update={"read_only": True})}
    )
    app = create_app(frozen)
    try:
        with TestClient(app, base_url="http://registry.test") as reader:
            assert get(reader, "v1") == 200
            assert get(reader, "v1") == 200
    finally:
        app.ctx.close()
    with acme.ctx.db.read() as conn:
        stored = conn.execute(select(func.count()).select_from(s.signature_verdicts)).scalar()
    assert stored == 0
