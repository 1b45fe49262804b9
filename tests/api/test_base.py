"""GET /v2/: the API version check every client does first."""

from __future__ import annotations

from starlette.testclient import TestClient

from tests.api.helpers import assert_error


def test_base_returns_200_with_api_version(client: TestClient) -> None:
    response = client.get("/v2/")
    assert response.status_code == 200
    assert response.headers["docker-distribution-api-version"] == "registry/2.0"
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {}


def test_base_without_trailing_slash(client: TestClient) -> None:
    response = client.get("/v2")
    assert response.status_code == 200
    assert response.headers["docker-distribution-api-version"] == "registry/2.0"


def test_base_head_has_no_body(client: TestClient) -> None:
    response = client.head("/v2/")
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["docker-distribution-api-version"] == "registry/2.0"


def test_base_rejects_other_methods(client: TestClient) -> None:
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        response = client.request(method, "/v2/")
        assert_error(response, 405, "UNSUPPORTED")


def test_api_version_header_on_v2_responses(client: TestClient) -> None:
    """Every /v2 response, success or error, carries the API version header."""
    for method, path in (
        ("GET", "/v2/_catalog"),
        ("GET", "/v2/missing/tags/list"),
        ("GET", "/v2/missing/manifests/latest"),
    ):
        response = client.request(method, path)
        assert response.headers.get("docker-distribution-api-version") == "registry/2.0", path


def test_api_version_header_on_routing_errors(client: TestClient) -> None:
    """Errors raised while routing (bad name, wrong method, unknown endpoint) are still
    /v2 responses and carry the header as well."""
    for method, path in (
        ("GET", "/v2/UPPER/tags/list"),
        ("POST", "/v2/acme/tags/list"),
        ("GET", "/v2/acme/nothing-here"),
    ):
        response = client.request(method, path)
        assert response.status_code >= 400
        assert response.headers.get("docker-distribution-api-version") == "registry/2.0", (
            method,
            path,
            response.status_code,
        )


def test_healthz(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
