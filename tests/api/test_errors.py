"""Names, routing, and the error contract: every error is the spec's JSON body, never a 5xx."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from tests.api.helpers import (
    assert_error,
    assert_raw_error,
    make_artifact,
    make_image,
    push_blob,
    push_manifest,
    raw_request,
    sha256,
    start_upload,
    tags_of,
    with_query,
)

INVALID_NAMES = [
    "UPPER",
    "acme/App",
    "a..b",
    "a._b",
    "a___b",
    "-a",
    "a-",
    "_a",
    ".a",
    "a.",
    "a//b",
    "/a",
    "a/",
    "a/-b",
    "a b",
    "a%20b",
    "caf%C3%A9",
    "a+b",
    "a:b",
    "a@b",
    "a" * 256,
    "/".join(["abcdefghij"] * 24),  # 263 characters
]


@pytest.mark.parametrize("name", INVALID_NAMES)
def test_invalid_name_everywhere(client: TestClient, name: str) -> None:
    digest = sha256(b"x")
    for method, path in (
        ("GET", f"/v2/{name}/tags/list"),
        ("GET", f"/v2/{name}/manifests/latest"),
        ("PUT", f"/v2/{name}/manifests/latest"),
        ("HEAD", f"/v2/{name}/blobs/{digest}"),
        ("GET", f"/v2/{name}/blobs/{digest}"),
        ("POST", f"/v2/{name}/blobs/uploads/"),
        ("POST", f"/v2/{name}/blobs/uploads/?digest={digest}"),
        ("GET", f"/v2/{name}/referrers/{digest}"),
    ):
        response = client.request(method, path, content=b"x" if method in ("PUT", "POST") else None)
        if method == "HEAD":
            assert response.status_code == 400, (method, path)
        else:
            assert_error(response, 400, "NAME_INVALID")


@pytest.mark.parametrize(
    "name",
    [
        "a",
        "0",
        "a/b/c",
        "a-b",
        "a--b",
        "a_b",
        "a__b",
        "a.b",
        "a.b-c_d__e/f",
        "x" * 255,
        "/".join(["abcdefgh"] * 28) + "/abc",  # 255 characters
    ],
)
def test_valid_names(client: TestClient, name: str) -> None:
    assert len(name) <= 255
    manifest = make_image(client, name)
    push_manifest(client, name, "v1", manifest)
    assert client.get(f"/v2/{name}/manifests/v1").content == manifest.body
    assert tags_of(client, name) == ["v1"]


ROUTE_WORD_NAMES = [
    "blobs",
    "manifests",
    "tags",
    "uploads",
    "referrers",
    "list",
    "v2",
    "catalog",
    "a/blobs/b",
    "a/manifests/b",
    "a/blobs/uploads",
    "a/tags/list",
    "blobs/uploads/manifests/tags/referrers/list",
    "manifests/latest",
]


@pytest.mark.parametrize("name", ROUTE_WORD_NAMES)
def test_names_containing_route_words(client: TestClient, name: str) -> None:
    """Names are matched against their own route suffix, so path words inside a name work."""
    # Chunked upload, then monolithic, then a manifest, a tag list, referrers, deletes.
    location = start_upload(client, name)
    assert f"/v2/{name}/blobs/uploads/" in location
    data = f"data for {name}".encode()
    response = client.patch(location, content=data)
    assert response.status_code == 202, response.text
    response = client.put(with_query(response.headers["location"], f"digest={sha256(data)}"))
    assert response.status_code == 201, response.text
    assert client.get(f"/v2/{name}/blobs/{sha256(data)}").content == data

    manifest = make_image(client, name)
    push_manifest(client, name, "latest", manifest)
    response = client.get(f"/v2/{name}/manifests/latest")
    assert response.status_code == 200
    assert response.content == manifest.body
    assert client.get(f"/v2/{name}/tags/list").json() == {"name": name, "tags": ["latest"]}
    artifact = make_artifact(client, name, manifest)
    push_manifest(client, name, artifact.digest, artifact)
    found = client.get(f"/v2/{name}/referrers/{manifest.digest}").json()["manifests"]
    assert [d["digest"] for d in found] == [artifact.digest]
    assert name in client.get("/v2/_catalog").json()["repositories"]
    assert client.delete(f"/v2/{name}/manifests/latest").status_code == 202
    assert client.delete(f"/v2/{name}/blobs/{sha256(data)}").status_code == 202


def test_similar_names_are_distinct_repositories(client: TestClient) -> None:
    digest = push_blob(client, "a/b", b"in a/b")
    assert client.get(f"/v2/a/b/blobs/{digest}").status_code == 200
    assert client.get(f"/v2/a/blobs/{digest}").status_code == 404
    assert client.get(f"/v2/a/b/c/blobs/{digest}").status_code == 404


@pytest.mark.parametrize(
    "path",
    [
        "/v2/acme",
        "/v2/acme/app",
        "/v2/acme/app/tags",
        "/v2/acme/app/tags/list/extra",
        "/v2/acme/app/manifests",
        "/v2/acme/app/manifests/",
        "/v2/acme/app/blobs/",
        "/v2/acme/app/referrers",
        "/v2/_catalog/x",
        "/v2/acme/app/unknown/thing",
        "/v2x",
        "/api/v2/projects",
        "/auth/other",
    ],
)
def test_unknown_paths_are_404_json(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert_error(response, 404)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v2/"),
        ("DELETE", "/v2/_catalog"),
        ("PUT", "/v2/acme/app/tags/list"),
        ("POST", "/v2/acme/app/manifests/latest"),
        ("PATCH", f"/v2/acme/app/blobs/{sha256(b'x')}"),
        ("PUT", f"/v2/acme/app/referrers/{sha256(b'x')}"),
        ("OPTIONS", "/v2/acme/app/manifests/latest"),
        ("TRACE", "/v2/"),
    ],
)
def test_wrong_method_is_405_unsupported(client: TestClient, method: str, path: str) -> None:
    response = client.request(method, path)
    assert_error(response, 405, "UNSUPPORTED")


def test_405_lists_allowed_methods(client: TestClient) -> None:
    response = client.post("/v2/acme/app/manifests/latest")
    allowed = {m.strip() for m in response.headers["allow"].split(",")}
    assert {"GET", "HEAD", "PUT", "DELETE"} <= allowed


def test_manifest_trailing_newline_in_tag_is_invalid(client: TestClient) -> None:
    manifest = make_image(client, "acme/app")
    response = raw_request(
        client.app,
        "PUT",
        "/v2/acme/app/manifests/latest\n",
        headers=[(b"content-type", b"application/vnd.oci.image.manifest.v1+json")],
        chunks=[manifest.body],
    )
    assert_raw_error(response, 400, "TAG_INVALID")


def test_error_body_shape(client: TestClient) -> None:
    response = client.get("/v2/acme/app/manifests/nope")
    body = response.json()
    assert set(body) == {"errors"}
    (entry,) = body["errors"]
    assert entry["code"] == "NAME_UNKNOWN" or entry["code"] == "MANIFEST_UNKNOWN"
    assert isinstance(entry["message"], str)
    assert entry["message"]
    assert set(entry) <= {"code", "message", "detail"}


# -- limits on the request head and pagination -----------------------------------------------


@pytest.mark.parametrize(
    "path", ["/v2/" + "a" * 9000 + "/tags/list", "/auth/token", "/api/v1/projects", "/healthz"]
)
def test_request_target_over_the_limit_is_414_json(client: TestClient, path: str) -> None:
    query = "" if "a" * 9000 in path else "q=" + "b" * 9000
    assert_error(client.get(path + ("?" + query if query else "")), 414, "URI_TOO_LONG")


@pytest.mark.parametrize("path", ["/v2/", "/auth/token", "/api/v1/projects", "/healthz"])
def test_request_headers_over_the_limit_are_431_json(client: TestClient, path: str) -> None:
    headers = {f"x-pad-{i}": "p" * 1000 for i in range(17)}
    assert_error(client.get(path, headers=headers), 431, "HEADERS_TOO_LARGE")


def test_request_head_just_under_the_limits_is_served(client: TestClient) -> None:
    headers = {f"x-pad-{i}": "p" * 1000 for i in range(14)}
    assert client.get("/v2/", headers=headers).status_code == 200
    assert client.get("/v2/_catalog?last=" + "a" * 200 + "&x=" + "b" * 7000).status_code == 200


@pytest.mark.parametrize("path", ["/v2/_catalog", "/v2/acme/app/tags/list"])
@pytest.mark.parametrize(
    "query", ["n=abc", "n=-1", "n=10001", "n=" + "9" * 5000, "n=1&last=..%2Fx", "last=%00"]
)
def test_bad_pagination_is_pagination_number_invalid(
    client: TestClient, path: str, query: str
) -> None:
    push_manifest(client, "acme/app", "v1", make_image(client, "acme/app"))
    assert_error(client.get(f"{path}?{query}"), 400, "PAGINATION_NUMBER_INVALID")
