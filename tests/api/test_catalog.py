"""GET /v2/_catalog: repositories with content, sorted, with n/last pagination."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from tests.api.helpers import assert_error, push_blob, push_image

NAMES = ["b/app", "a", "a-b", "a.b", "a/c", "a_b", "ab", "c/d/e"]


def test_catalog_empty(client: TestClient) -> None:
    response = client.get("/v2/_catalog")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {"repositories": []}


def test_catalog_sorted(client: TestClient) -> None:
    for name in NAMES:
        push_image(client, name, "v1")
    response = client.get("/v2/_catalog")
    assert response.json() == {"repositories": sorted(NAMES)}
    assert "link" not in response.headers


def test_catalog_skips_repositories_without_manifests(client: TestClient) -> None:
    push_image(client, "with/manifest", "v1")
    push_blob(client, "only/blobs", b"blob")
    client.post("/v2/only/uploads/blobs/uploads/")
    assert client.get("/v2/_catalog").json()["repositories"] == ["with/manifest"]


def test_catalog_pagination(client: TestClient) -> None:
    for name in ("a", "b", "c"):
        push_image(client, name, "v1")
    response = client.get("/v2/_catalog?n=2")
    assert response.json() == {"repositories": ["a", "b"]}
    assert response.headers["link"] == '</v2/_catalog?n=2&last=b>; rel="next"'
    response = client.get("/v2/_catalog?n=2&last=b")
    assert response.json() == {"repositories": ["c"]}
    assert "link" not in response.headers


def test_catalog_pagination_walk(client: TestClient) -> None:
    for name in NAMES:
        push_image(client, name, "v1")
    seen: list[str] = []
    url = "/v2/_catalog?n=3"
    for _ in range(10):
        response = client.get(url)
        assert response.status_code == 200
        seen.extend(response.json()["repositories"])
        link = response.headers.get("link")
        if not link:
            break
        url = link[link.index("<") + 1 : link.index(">")]
    assert seen == sorted(NAMES)


def test_catalog_n_zero(client: TestClient) -> None:
    push_image(client, "a", "v1")
    response = client.get("/v2/_catalog?n=0")
    assert response.status_code == 200
    assert response.json() == {"repositories": []}
    assert "link" not in response.headers


def test_catalog_last(client: TestClient) -> None:
    for name in ("a", "b", "c"):
        push_image(client, name, "v1")
    assert client.get("/v2/_catalog?last=a").json()["repositories"] == ["b", "c"]


@pytest.mark.parametrize("n", ["-1", "x", "%C2%B2", "2.0"])
def test_catalog_invalid_n(client: TestClient, n: str) -> None:
    assert_error(client.get(f"/v2/_catalog?n={n}"), 400)


def test_catalog_rejects_other_methods(client: TestClient) -> None:
    assert_error(client.post("/v2/_catalog"), 405, "UNSUPPORTED")
