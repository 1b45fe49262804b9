"""A registry (auth off) with project `acme`, and helpers pushing signed images."""

from __future__ import annotations

from typing import Any

from starlette.testclient import TestClient

from portside.app import PortsideApp
from portside.events.outbox import Actor
from portside.signatures.keys import PolicySettings, TrustedKeys
from tests.api.helpers import Manifest, push_blob, push_image, put_manifest, sha256
from tests.signatures import builders as b

ADMIN = Actor("admin")


def trust(app: PortsideApp, name: str, pem: str, project: str = "acme") -> None:
    TrustedKeys(app.ctx.db).add(project, name, pem, actor=ADMIN)


def require_signed(app: PortsideApp, on: bool = True, project: str = "acme", **kw: Any) -> None:
    PolicySettings(app.ctx.db).update(project, require_signed=on, actor=ADMIN, **kw)


def push_cosign_tag(client: TestClient, repo: str, target: str, layers: list[b.SignedLayer]) -> str:
    """cosign's tag scheme: the signature image tagged sha256-<hex>.sig; its digest."""
    for blob in b.cosign_blobs(layers):
        push_blob(client, repo, blob)
    body = b.cosign_manifest(layers)
    response = put_manifest(client, repo, b.sig_tag(target), body)
    assert response.status_code == 201, response.text
    return sha256(body)


def push_cosign_referrer(
    client: TestClient, repo: str, subject: Manifest, layers: list[b.SignedLayer]
) -> str:
    for blob in b.cosign_blobs(layers):
        push_blob(client, repo, blob)
    body = b.cosign_manifest(layers, subject=subject.descriptor())
    response = put_manifest(client, repo, sha256(body), body)
    assert response.status_code == 201, response.text
    return sha256(body)


def push_notation(client: TestClient, repo: str, subject: Manifest, envelope: bytes) -> str:
    push_blob(client, repo, b"{}")
    push_blob(client, repo, envelope)
    body = b.notation_manifest(envelope, subject.descriptor())
    response = put_manifest(client, repo, sha256(body), body)
    assert response.status_code == 201, response.text
    return sha256(body)


def image(client: TestClient, repo: str = "acme/app", tag: str = "v1") -> Manifest:
    return push_image(client, repo, tag, seed=f"{repo}:{tag}")


def push_bundle(client: TestClient, repo: str, subject: Manifest, bundle: bytes) -> str:
    push_blob(client, repo, b"{}")
    push_blob(client, repo, bundle)
    body = b.bundle_manifest(bundle, subject.descriptor())
    response = put_manifest(client, repo, sha256(body), body)
    assert response.status_code == 201, response.text
    return sha256(body)
