"""GET /v2/<name>/tags/list: lexical order, n/last pagination, Link header."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from tests.api.helpers import (
    Manifest,
    assert_error,
    make_image,
    push_blob,
    push_image,
    push_manifest,
)

REPO = "acme/app"


def push_tags(client: TestClient, repo: str, tags: list[str]) -> Manifest:
    manifest = make_image(client, repo)
    for tag in tags:
        push_manifest(client, repo, tag, manifest)
    return manifest


def test_tags_sorted(client: TestClient) -> None:
    push_tags(client, REPO, ["c", "a", "b"])
    response = client.get(f"/v2/{REPO}/tags/list")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {"name": REPO, "tags": ["a", "b", "c"]}
    assert "link" not in response.headers


def test_tags_in_lexical_byte_order(client: TestClient) -> None:
    """The spec says lexical order; compare with code-point order, which does not fold case
    or skip punctuation the way a locale collation might."""
    tags = ["b", "B", "a", "A", "_x", "1.0", "10", "2", "v1.0", "v1-0", "v1_0", "v10", "Z9", "z"]
    push_tags(client, REPO, tags)
    assert client.get(f"/v2/{REPO}/tags/list").json()["tags"] == sorted(tags)


def test_tags_pagination_walk(client: TestClient) -> None:
    tags = ["a", "B", "c", "d", "e"]
    push_tags(client, REPO, tags)
    expected = sorted(tags)
    seen: list[str] = []
    url = f"/v2/{REPO}/tags/list?n=2"
    pages = 0
    while url:
        response = client.get(url)
        assert response.status_code == 200
        page = response.json()["tags"]
        assert len(page) <= 2
        seen.extend(page)
        pages += 1
        link = response.headers.get("link")
        url = link[link.index("<") + 1 : link.index(">")] if link else ""
        assert pages < 10
    assert seen == expected


def test_tags_pagination_link_header(client: TestClient) -> None:
    push_tags(client, REPO, ["a", "b", "c"])
    response = client.get(f"/v2/{REPO}/tags/list?n=2")
    assert response.json() == {"name": REPO, "tags": ["a", "b"]}
    assert response.headers["link"] == f'</v2/{REPO}/tags/list?n=2&last=b>; rel="next"'
    response = client.get(f"/v2/{REPO}/tags/list?n=2&last=b")
    assert response.json() == {"name": REPO, "tags": ["c"]}
    assert "link" not in response.headers


def test_tags_last_without_n(client: TestClient) -> None:
    push_tags(client, REPO, ["a", "b", "c"])
    assert client.get(f"/v2/{REPO}/tags/list?last=a").json()["tags"] == ["b", "c"]


def test_tags_last_not_a_tag(client: TestClient) -> None:
    push_tags(client, REPO, ["a", "c", "e"])
    assert client.get(f"/v2/{REPO}/tags/list?last=b").json()["tags"] == ["c", "e"]
    assert client.get(f"/v2/{REPO}/tags/list?last=z").json()["tags"] == []


def test_tags_n_larger_than_count(client: TestClient) -> None:
    push_tags(client, REPO, ["a", "b"])
    response = client.get(f"/v2/{REPO}/tags/list?n=100")
    assert response.json()["tags"] == ["a", "b"]
    assert "link" not in response.headers


def test_tags_n_zero(client: TestClient) -> None:
    push_tags(client, REPO, ["a", "b"])
    response = client.get(f"/v2/{REPO}/tags/list?n=0")
    assert response.status_code == 200
    assert response.json() == {"name": REPO, "tags": []}
    assert "link" not in response.headers


def test_tags_n_zero_unknown_repository(client: TestClient) -> None:
    assert_error(client.get("/v2/nobody/tags/list?n=0"), 404, "NAME_UNKNOWN")


@pytest.mark.parametrize("n", ["-1", "abc", "1.5", "%C2%B2", "%D9%A3", "1e2", " 1"])
def test_tags_invalid_n(client: TestClient, n: str) -> None:
    push_tags(client, REPO, ["a"])
    response = client.get(f"/v2/{REPO}/tags/list?n={n}")
    assert_error(response, 400)


def test_tags_unknown_repository(client: TestClient) -> None:
    assert_error(client.get("/v2/nobody/home/tags/list"), 404, "NAME_UNKNOWN")


def test_tags_repository_with_only_blobs(client: TestClient) -> None:
    push_blob(client, REPO, b"just a blob")
    assert_error(client.get(f"/v2/{REPO}/tags/list"), 404, "NAME_UNKNOWN")


def test_tags_repository_with_untagged_manifest(client: TestClient) -> None:
    push_image(client, REPO, None)
    response = client.get(f"/v2/{REPO}/tags/list")
    assert response.status_code == 200
    assert response.json() == {"name": REPO, "tags": []}


def test_tags_of_nested_repository(client: TestClient) -> None:
    push_tags(client, "a/b/c", ["x"])
    push_tags(client, "a/b", ["y"])
    assert client.get("/v2/a/b/c/tags/list").json() == {"name": "a/b/c", "tags": ["x"]}
    assert client.get("/v2/a/b/tags/list").json() == {"name": "a/b", "tags": ["y"]}


def test_tags_list_rejects_other_methods(client: TestClient) -> None:
    push_tags(client, REPO, ["a"])
    assert_error(client.delete(f"/v2/{REPO}/tags/list"), 405, "UNSUPPORTED")
