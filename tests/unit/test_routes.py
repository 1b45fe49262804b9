"""routes.match: /v2 paths to route names and parameters."""

from __future__ import annotations

import pytest

from portside.api.routes import match

D = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    ("path", "route", "params"),
    [
        ("/v2/", "base", {}),
        ("/v2", "base", {}),
        ("/v2/_catalog", "catalog", {}),
        ("/v2/a/tags/list", "tags", {"name": "a"}),
        ("/v2/a/b/c/tags/list", "tags", {"name": "a/b/c"}),
        ("/v2/a/manifests/latest", "manifest", {"name": "a", "reference": "latest"}),
        (f"/v2/a/b/manifests/{D}", "manifest", {"name": "a/b", "reference": D}),
        (f"/v2/a/blobs/{D}", "blob", {"name": "a", "digest": D}),
        ("/v2/a/blobs/uploads/", "upload", {"name": "a", "id": ""}),
        ("/v2/a/blobs/uploads/abc-123", "upload", {"name": "a", "id": "abc-123"}),
        (f"/v2/a/referrers/{D}", "referrers", {"name": "a", "digest": D}),
        # Names made of route words.
        ("/v2/blobs/manifests/latest", "manifest", {"name": "blobs", "reference": "latest"}),
        ("/v2/manifests/manifests/x", "manifest", {"name": "manifests", "reference": "x"}),
        (f"/v2/a/manifests/b/blobs/{D}", "blob", {"name": "a/manifests/b", "digest": D}),
        ("/v2/a/manifests/tags/list", "tags", {"name": "a/manifests"}),
        ("/v2/a/tags/list/tags/list", "tags", {"name": "a/tags/list"}),
        ("/v2/x/blobs/uploads/blobs/uploads/", "upload", {"name": "x/blobs/uploads", "id": ""}),
        (
            "/v2/blobs/uploads/manifests/v1",
            "manifest",
            {"name": "blobs/uploads", "reference": "v1"},
        ),
        (f"/v2/a/referrers/b/referrers/{D}", "referrers", {"name": "a/referrers/b", "digest": D}),
        ("/v2/_catalog/tags/list", "tags", {"name": "_catalog"}),
        # A `/` in the parameter (granian decodes `%2F`): the shortest valid name before
        # the route word, so the route's handler refuses the parameter itself.
        ("/v2/a/manifests/a/b/c/d", "manifest", {"name": "a", "reference": "a/b/c/d"}),
        ("/v2/a/b/blobs/sha256:../../x", "blob", {"name": "a/b", "digest": "sha256:../../x"}),
        ("/v2/a/blobs/uploads/../../x", "upload", {"name": "a", "id": "../../x"}),
        ("/v2/a/blobs/uploads/x/", "upload", {"name": "a", "id": "x/"}),
        ("/v2/a/referrers/../x", "referrers", {"name": "a", "digest": "../x"}),
    ],
)
def test_match(path: str, route: str, params: dict[str, str]) -> None:
    found = match(path)
    assert found is not None, path
    assert found.route == route
    assert found.params == params


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/v1/",
        "/v2x",
        "/v2/a",
        "/v2/a/tags",
        "/v2/a/tags/list/",
        "/v2/a/manifests/",
        "/v2/a/blobs/",
        "/v2//tags/list",
        "/v2/_catalog/",
        "/v2/a/referrers/",
        "/v2/../blobs/a/b",  # no valid name before the route word
    ],
)
def test_no_match(path: str) -> None:
    assert match(path) is None, path


def test_blob_route_takes_uploads_without_slash_as_a_digest() -> None:
    """POST /blobs/uploads (no slash) is not the upload route; the handler then refuses it."""
    found = match("/v2/a/blobs/uploads")
    assert found is None or found.route == "blob"


@pytest.mark.parametrize("path", ["/v2/\n", "/v2\n", "/v2/_catalog\n", "/v2/a/tags/list\n"])
def test_trailing_newline_does_not_match_a_route(path: str) -> None:
    """`$` in a Python pattern also matches before a final newline; routes must not."""
    assert match(path) is None, (path, match(path))
