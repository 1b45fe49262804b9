"""Signatures in the UI: the project's Signing page (the "only signed images" toggle,
the Notation trust policy, trusted keys: members see them, project admins and
maintainers change them; CSRF; everything escaped), the signature badge on the
repository and artifact pages, and the repository page grouping an index's platform
manifests, signatures and SBOMs under it."""

from __future__ import annotations

import html
import re

import pytest

from tests.api.helpers import make_artifact, make_image, make_index, push_manifest
from tests.auth.conftest import Registry
from tests.mgmt.conftest import client_for
from tests.signatures import builders as b
from tests.signatures.conftest import push_cosign_tag
from tests.ui.conftest import browser_for
from tests.ui.test_project import flash

SIGNING = "/projects/acme/signing"


def test_members_see_keys_and_only_some_may_change(registry: Registry) -> None:
    admin = browser_for(registry, "projectadmin")
    admin.get(SIGNING)
    pem = b.p256().public_pem
    page = admin.post(f"{SIGNING}/keys", {"key_name": "release", "pem": pem}).text
    assert flash(page) == "Key release is trusted now."
    assert "ecdsa-p256" in page
    guest = browser_for(registry, "guest").get(SIGNING)
    assert guest.status_code == 200
    assert "release" in guest.text
    assert "Trust a key" not in guest.text
    assert "signing/keys/remove" not in guest.text
    assert 'name="require_signed"' not in guest.text
    maintainer = browser_for(registry, "maintainer")
    page = maintainer.get(SIGNING).text
    assert "Trust a key" in page
    assert 'name="require_signed"' not in page  # the policy is the project admins'
    page = maintainer.post(f"{SIGNING}/keys/remove", {"key_name": "release"}).text
    assert flash(page) == "Key release is no longer trusted."
    anonymous = registry.as_caller({}).get(SIGNING, follow_redirects=False)
    assert anonymous.status_code == 303
    assert anonymous.headers["location"].startswith("/login?next=")
    assert browser_for(registry, "outsider").get(SIGNING).status_code == 404
    assert browser_for(registry, "limitedguest").get(SIGNING).status_code == 403


def test_policy_toggle_and_trust_policy(registry: Registry) -> None:
    admin = browser_for(registry, "projectadmin")
    admin.get(SIGNING)
    page = admin.post(
        f"{SIGNING}/policy",
        {
            "require_signed": "on",
            "notation_level": "permissive",
            "identities": "x509.subject: O=Acme, CN=release\n\n",
        },
    ).text
    assert flash(page) == "Pull policy saved."
    assert 'name="require_signed" checked' in page
    stored = client_for(registry, "admin").get("/api/v1/projects/acme/pull-policy").json()
    assert stored == {
        "require_signed": True,
        "notation_level": "permissive",
        "notation_identities": ["x509.subject: O=Acme, CN=release"],
    }
    page = admin.post(f"{SIGNING}/policy", {"notation_level": "strict", "identities": "junk"}).text
    assert flash(page).startswith("Could not save the policy:")
    page = admin.post(f"{SIGNING}/policy", {"notation_level": "strict", "identities": ""}).text
    assert flash(page) == "Pull policy saved."
    assert 'name="require_signed" checked' not in page


def test_forms_need_the_csrf_token(registry: Registry) -> None:
    admin = browser_for(registry, "projectadmin")
    admin.get(SIGNING)
    pem = b.p256().public_pem
    for token in ({}, {"csrf": "forged"}):
        response = admin.client.post(
            f"{SIGNING}/keys", data={**token, "key_name": "sneaky", "pem": pem}
        )
        assert response.status_code == 403
    assert client_for(registry, "admin").get("/api/v1/projects/acme/trusted-keys").json() == []


def test_key_errors_and_names_are_escaped(registry: Registry) -> None:
    admin = browser_for(registry, "projectadmin")
    admin.get(SIGNING)
    page = admin.post(f"{SIGNING}/keys", {"key_name": "<b>x</b>", "pem": "<script>"}).text
    assert "<b>x</b>" not in page
    assert "key names are 1-64 letters" in flash(page)
    page = admin.post(f"{SIGNING}/keys", {"key_name": "x", "pem": "<script>"}).text
    assert "<script>" not in page
    assert "expected a PEM public key" in flash(page)
    # A certificate's subject comes from whoever made it: shown escaped.
    hostile = b.make_ca("<script>alert(1)</script>")
    page = admin.post(f"{SIGNING}/keys", {"key_name": "ca", "pem": hostile.pem}).text
    assert flash(page) == "Key ca is trusted now."
    assert "<script>alert" not in page
    assert "CN=\\&lt;script\\&gt;alert(1)" in page


@pytest.fixture
def signed_repository(registry: Registry) -> dict[str, str]:
    admin = client_for(registry, "admin")
    key = b.p256()
    client_for(registry, "projectadmin").post(
        "/api/v1/projects/acme/trusted-keys", json={"name": "release", "pem": key.public_pem}
    )
    children = [make_image(admin, "acme/app", seed=f"ui platform {n}") for n in range(2)]
    for child in children:
        push_manifest(admin, "acme/app", child.digest, child)
    index = make_index(children)
    push_manifest(admin, "acme/app", "multi", index)
    signature = push_cosign_tag(
        admin, "acme/app", index.digest, [b.cosign_layer(key, index.digest)]
    )
    sbom = make_artifact(admin, "acme/app", index)
    push_manifest(admin, "acme/app", sbom.digest, sbom)
    unsigned = make_image(admin, "acme/app", seed="ui unsigned")
    push_manifest(admin, "acme/app", "unsigned", unsigned)
    forged = make_image(admin, "acme/app", seed="ui forged")
    push_manifest(admin, "acme/app", "forged", forged)
    push_cosign_tag(admin, "acme/app", forged.digest, [b.cosign_layer(b.p256(), forged.digest)])
    return {
        "index": index.digest,
        "child": children[0].digest,
        "signature": signature,
        "sbom": sbom.digest,
        "unsigned": unsigned.digest,
        "forged": forged.digest,
    }


def _split(page: str) -> tuple[str, list[str]]:
    """The page without the attached tables, and those tables (one per artifact)."""
    blocks = re.findall(r'<details class="attached">.*?</details>', page, re.S)
    top = re.sub(r'<details class="attached">.*?</details>', "", page, flags=re.S)
    return top, blocks


def test_repository_page_groups_attached_artifacts(
    registry: Registry, signed_repository: dict[str, str]
) -> None:
    page = browser_for(registry, "guest").get("/repositories/acme/app").text
    top, blocks = _split(page)
    # The index, the unsigned and the forged image stand on their own ...
    for key in ("index", "unsigned", "forged"):
        assert signed_repository[key] in top, key
    # ... the platform manifests, the signature and the SBOM are under the index.
    (attached,) = [block for block in blocks if signed_repository["child"] in block]
    for key in ("child", "signature", "sbom"):
        assert signed_repository[key] not in top, key
        assert signed_repository[key] in attached, key
    assert "2 \N{MULTIPLICATION SIGN} Image" in html.unescape(attached)
    assert "1 \N{MULTIPLICATION SIGN} Cosign signature" in html.unescape(attached)
    assert "Platform manifest" in attached
    assert "cosign tag" in attached
    assert "verified · release" in top
    assert "unverified" in top  # the forged one
    assert '<span class="muted">none</span>' in top


def test_artifact_page_lists_signatures_with_verdicts(
    registry: Registry, signed_repository: dict[str, str]
) -> None:
    browser = browser_for(registry, "guest")
    page = browser.get(f"/repositories/acme/app/-/artifacts/{signed_repository['index']}").text
    assert "verified · release" in page
    assert "verified with cosign key &#39;release&#39;" in page
    page = browser.get(f"/repositories/acme/app/-/artifacts/{signed_repository['forged']}").text
    assert "unverified" in page
    assert "does not verify with key &#39;release&#39;" in page
    page = browser.get(f"/repositories/acme/app/-/artifacts/{signed_repository['unsigned']}").text
    assert "No signature." in page
