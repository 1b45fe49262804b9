"""The repository listing grouped as Harbor shows it (?grouped=true): an index's platform
manifests, signatures (cosign tags and referrers), SBOMs and other referrers under the
artifact they belong to, not as untagged artifacts of their own; paginated, with a
fixed number of queries per page."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event
from starlette.testclient import TestClient

from portside.app import PortsideApp
from tests.api.helpers import make_artifact, make_image, make_index, push_manifest
from tests.signatures import builders as b
from tests.signatures.conftest import image, push_cosign_tag, push_notation, trust

REPO = "acme/app"
LIST = f"/api/v1/repositories/{REPO}/-/artifacts"


@pytest.fixture
def acme(app: PortsideApp) -> PortsideApp:
    app.ctx.auth.projects.create("acme", public=True)  # the API shows it without signing in
    return app


def grouped(client: TestClient, **params: Any) -> list[dict[str, Any]]:
    response = client.get(LIST, params={"grouped": "true", **params})
    assert response.status_code == 200, response.text
    body = response.json()
    assert isinstance(body, list)
    return body


@contextmanager
def counted(app: PortsideApp) -> Iterator[list[str]]:
    statements: list[str] = []

    def note(*args: Any) -> None:
        statements.append(str(args[2]))

    engine = app.ctx.db.engine
    event.listen(engine, "before_cursor_execute", note)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", note)


def test_attached_artifacts_are_shown_under_their_artifact(
    acme: PortsideApp, client: TestClient
) -> None:
    key = b.p256()
    trust(acme, "release", key.public_pem)
    children = [make_image(client, REPO, seed=f"platform {n}") for n in range(2)]
    for child in children:
        push_manifest(client, REPO, child.digest, child)
    index = make_index(children)
    push_manifest(client, REPO, "multi", index)
    signature = push_cosign_tag(client, REPO, index.digest, [b.cosign_layer(key, index.digest)])
    sbom = make_artifact(client, REPO, index)
    push_manifest(client, REPO, sbom.digest, sbom)
    ca = b.make_ca()
    leaf = b.make_leaf(ca)
    notation = push_notation(
        client, REPO, index, b.jws_envelope(leaf, [leaf, ca], index.descriptor())
    )
    plain = image(client, tag="plain")
    loose = make_image(client, REPO, seed="untagged on its own")
    push_manifest(client, REPO, loose.digest, loose)

    listed = grouped(client)
    assert {a["digest"] for a in listed} == {index.digest, plain.digest, loose.digest}
    top = {a["digest"]: a for a in listed}
    under = top[index.digest]["attached"]
    assert [(x["relation"], x["digest"]) for x in under[:3]] == [
        ("child", children[0].digest),
        ("child", children[1].digest),
        ("tag", signature),
    ]
    assert {(x["relation"], x["digest"]) for x in under[3:]} == {
        ("referrer", sbom.digest),
        ("referrer", notation),
    }
    assert top[index.digest]["signature"] == {
        "status": "verified",
        "verified_by": "release",
        "count": 2,
    }
    assert top[plain.digest]["signature"]["status"] == "none"
    assert top[plain.digest]["attached"] == []
    # Paginated over the top-level artifacts only.
    response = client.get(LIST, params={"grouped": "true", "page_size": 1})
    assert len(response.json()) == 1
    assert response.headers["x-total-count"] == "3"
    # Without grouping, everything is listed on its own as before.
    assert len(client.get(LIST, params={"page_size": 100}).json()) == 8


def test_a_tagged_platform_manifest_stays_on_its_own(acme: PortsideApp, client: TestClient) -> None:
    child = make_image(client, REPO, seed="tagged child")
    push_manifest(client, REPO, "child", child)
    index = make_index([child])
    push_manifest(client, REPO, "multi", index)
    listed = {a["digest"]: a for a in grouped(client)}
    assert set(listed) == {index.digest, child.digest}
    assert [x["digest"] for x in listed[index.digest]["attached"]] == [child.digest]


def test_queries_do_not_grow_with_the_page(acme: PortsideApp, client: TestClient) -> None:
    key = b.p256()
    trust(acme, "release", key.public_pem)

    def signed_index(n: int) -> None:
        kids = [make_image(client, REPO, seed=f"{n} platform {k}") for k in range(2)]
        for kid in kids:
            push_manifest(client, REPO, kid.digest, kid)
        index = make_index(kids)
        push_manifest(client, REPO, f"v{n}", index)
        push_cosign_tag(client, REPO, index.digest, [b.cosign_layer(key, index.digest)])

    signed_index(0)
    grouped(client)  # verifies what is new
    with counted(acme) as one:
        assert len(grouped(client)) == 1
    for n in range(1, 5):
        signed_index(n)
    grouped(client)
    with counted(acme) as five:
        assert len(grouped(client)) == 5
    assert len(five) == len(one), (len(one), len(five))


def test_signatures_of_platform_manifests_come_with_their_index(
    acme: PortsideApp, client: TestClient
) -> None:
    """`cosign sign --recursive` also signs each platform manifest: those signatures are
    listed under the index too, not lost between the levels."""
    key = b.p256()
    trust(acme, "release", key.public_pem)
    children = [make_image(client, REPO, seed=f"recursive {n}") for n in range(2)]
    for child in children:
        push_manifest(client, REPO, child.digest, child)
    index = make_index(children)
    push_manifest(client, REPO, "multi", index)
    child_signature = push_cosign_tag(
        client, REPO, children[0].digest, [b.cosign_layer(key, children[0].digest)]
    )
    (listed,) = grouped(client)
    attached = {x["digest"]: x for x in listed["attached"]}
    assert attached[child_signature]["relation"] == "tag"
    assert attached[children[0].digest]["signature"]["status"] == "verified"
    assert attached[children[1].digest]["signature"]["status"] == "none"
