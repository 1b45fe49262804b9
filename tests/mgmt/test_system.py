"""The management API as a whole: system info, the OpenAPI document, the error format for
unknown routes, wrong methods and invalid input, and that no malformed input gets a 5xx."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from portside.mgmt.sessions import COOKIE
from tests.api.helpers import raw_request
from tests.auth.conftest import Registry, basic
from tests.mgmt.conftest import API, BASE_URL, MakeRegistry, client_for, sign_in
from tests.mgmt.helpers import assert_error, detail_locations, errors_of, json_object

# Every route of the management API, as (method, path template). The OpenAPI document
# must list exactly these; a new route means a new line here and tests for it.
ROUTES = {
    ("get", "/api/v1/systeminfo"),
    ("get", "/api/v1/endpoints"),
    ("post", "/api/v1/endpoints"),
    ("get", "/api/v1/endpoints/{name}"),
    ("patch", "/api/v1/endpoints/{name}"),
    ("delete", "/api/v1/endpoints/{name}"),
    ("post", "/api/v1/endpoints/{name}/test"),
    ("get", "/api/v1/replication/rules"),
    ("post", "/api/v1/replication/rules"),
    ("get", "/api/v1/replication/rules/{name}"),
    ("patch", "/api/v1/replication/rules/{name}"),
    ("delete", "/api/v1/replication/rules/{name}"),
    ("post", "/api/v1/replication/rules/{name}/runs"),
    ("get", "/api/v1/replication/runs"),
    ("get", "/api/v1/replication/runs/{run_id}"),
    ("post", "/api/v1/sessions"),
    ("delete", "/api/v1/sessions/current"),
    ("get", "/api/v1/users"),
    ("post", "/api/v1/users"),
    ("get", "/api/v1/users/current"),
    ("put", "/api/v1/users/current/password"),
    ("get", "/api/v1/users/current/tokens"),
    ("post", "/api/v1/users/current/tokens"),
    ("delete", "/api/v1/users/current/tokens/{token_id}"),
    ("get", "/api/v1/users/{username}"),
    ("patch", "/api/v1/users/{username}"),
    ("delete", "/api/v1/users/{username}"),
    ("get", "/api/v1/projects"),
    ("post", "/api/v1/projects"),
    ("get", "/api/v1/projects/{name}"),
    ("patch", "/api/v1/projects/{name}"),
    ("delete", "/api/v1/projects/{name}"),
    ("get", "/api/v1/projects/{name}/proxy"),
    ("patch", "/api/v1/projects/{name}/proxy"),
    ("get", "/api/v1/projects/{name}/members"),
    ("get", "/api/v1/projects/{name}/usage"),
    ("get", "/api/v1/usage"),
    ("get", "/api/v1/vulndb"),
    ("put", "/api/v1/projects/{name}/members/{member:path}"),
    ("delete", "/api/v1/projects/{name}/members/{member:path}"),
    ("get", "/api/v1/projects/{name}/audit-logs"),
    ("get", "/api/v1/projects/{project}/immutability-rules"),
    ("post", "/api/v1/projects/{project}/immutability-rules"),
    ("patch", "/api/v1/projects/{project}/immutability-rules/{rule_id}"),
    ("delete", "/api/v1/projects/{project}/immutability-rules/{rule_id}"),
    ("get", "/api/v1/jobs"),
    ("post", "/api/v1/jobs"),
    ("get", "/api/v1/jobs/{job_id}"),
    ("get", "/api/v1/jobs/{job_id}/log"),
    ("post", "/api/v1/jobs/{job_id}/stop"),
    ("get", "/api/v1/schedules"),
    ("get", "/api/v1/schedules/{name}"),
    ("put", "/api/v1/schedules/{name}"),
    ("delete", "/api/v1/schedules/{name}"),
    ("get", "/api/v1/projects/{project}/retention"),
    ("put", "/api/v1/projects/{project}/retention"),
    ("post", "/api/v1/projects/{project}/retention/preview"),
    ("get", "/api/v1/projects/{project}/retention/runs"),
    ("post", "/api/v1/projects/{project}/retention/runs"),
    ("get", "/api/v1/projects/{project}/robots"),
    ("post", "/api/v1/projects/{project}/robots"),
    ("get", "/api/v1/robots"),
    ("post", "/api/v1/robots"),
    ("get", "/api/v1/robots/{name}"),
    ("patch", "/api/v1/robots/{name}"),
    ("delete", "/api/v1/robots/{name}"),
    ("post", "/api/v1/robots/{name}/secret"),
    ("get", "/api/v1/repositories"),
    ("get", "/api/v1/repositories/{name}"),
    ("delete", "/api/v1/repositories/{name}"),
    ("get", "/api/v1/repositories/{name}/-/artifacts"),
    ("get", "/api/v1/repositories/{name}/-/artifacts/{reference}"),
    ("delete", "/api/v1/repositories/{name}/-/artifacts/{reference}"),
    ("post", "/api/v1/repositories/{name}/-/artifacts/{reference}/tags"),
    ("delete", "/api/v1/repositories/{name}/-/tags/{tag}"),
    ("get", "/api/v1/audit-logs"),
    ("get", "/api/v1/projects/{project}/webhooks"),
    ("post", "/api/v1/projects/{project}/webhooks"),
    ("get", "/api/v1/projects/{project}/webhooks/{webhook_id}"),
    ("patch", "/api/v1/projects/{project}/webhooks/{webhook_id}"),
    ("delete", "/api/v1/projects/{project}/webhooks/{webhook_id}"),
    ("get", "/api/v1/projects/{project}/webhooks/{webhook_id}/deliveries"),
    ("post", "/api/v1/projects/{project}/webhooks/{webhook_id}/test"),
    ("post", "/api/v1/projects/{project}/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver"),
    ("get", "/api/v1/repositories/{name:path}/-/artifacts/{reference}/signatures"),
    ("get", "/api/v1/projects/{name}/trusted-keys"),
    ("post", "/api/v1/projects/{name}/trusted-keys"),
    ("delete", "/api/v1/projects/{name}/trusted-keys/{key}"),
    ("get", "/api/v1/projects/{name}/pull-policy"),
    ("patch", "/api/v1/projects/{name}/pull-policy"),
    ("post", "/api/v1/repositories/{name:path}/-/artifacts/{reference}/scan"),
    ("get", "/api/v1/repositories/{name:path}/-/artifacts/{reference}/scan"),
    ("get", "/api/v1/repositories/{name:path}/-/artifacts/{reference}/scan/findings"),
    ("get", "/api/v1/repositories/{name:path}/-/artifacts/{reference}/sboms"),
    ("get", "/api/v1/repositories/{name:path}/-/artifacts/{reference}/sboms/{sbom_digest}"),
    ("get", "/api/v1/projects/{project}/scan-settings"),
    ("put", "/api/v1/projects/{project}/scan-settings"),
    ("get", "/api/v1/projects/{project}/cve-allowlist"),
    ("put", "/api/v1/projects/{project}/cve-allowlist"),
    ("get", "/api/v1/system/cve-allowlist"),
    ("put", "/api/v1/system/cve-allowlist"),
    ("get", "/api/v1/scanners"),
    ("post", "/api/v1/scanners"),
    ("patch", "/api/v1/scanners/{scanner}"),
    ("delete", "/api/v1/scanners/{scanner}"),
    ("get", "/api/v1/scanners/{scanner}/metadata"),
}


# -- system info -------------------------------------------------------------------------


def test_system_info_is_public_and_describes_the_registry(registry: Registry) -> None:
    info = json_object(client_for(registry).get(f"{API}/systeminfo"))
    assert set(info) == {
        "version",
        "auth_enabled",
        "registry_url",
        "token_realm",
        "token_service",
        "ldap",
        "project_creation",
    }
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", info["version"]), info
    assert info["auth_enabled"] is True
    assert info["registry_url"] == "http://127.0.0.1:5000"  # from `listen`, never from Host
    assert info["token_realm"] == "http://127.0.0.1:5000/auth/token"
    assert info["token_service"] == "portside"
    assert info["ldap"] is False
    assert info["project_creation"] == "admins"


def test_system_info_follows_the_settings(make_registry: MakeRegistry) -> None:
    registry = make_registry(
        external_url="https://registry.example.com/", projects={"creation": "users"}
    )
    client = registry.as_caller({"Host": "attacker.example"})
    info = json_object(client.get(f"{API}/systeminfo"))
    assert info["registry_url"] == "https://registry.example.com"
    assert info["token_realm"] == "https://registry.example.com/auth/token"
    assert info["project_creation"] == "users"


def test_system_info_with_credentials_is_the_same(registry: Registry) -> None:
    anonymous = client_for(registry).get(f"{API}/systeminfo").json()
    assert client_for(registry, "admin").get(f"{API}/systeminfo").json() == anonymous


# -- the OpenAPI document ------------------------------------------------------------------


def test_openapi_document_lists_every_route(registry: Registry) -> None:
    document = json_object(client_for(registry).get(f"{API}/openapi.json"))
    assert document["openapi"].startswith("3.")
    assert document["info"]["title"] == "Portside management API"
    listed = {
        (method, path)
        for path, operations in document["paths"].items()
        for method in operations
        if method in {"get", "put", "post", "patch", "delete"}
    }
    # The document names a path parameter without its converter ({member}, not {member:path}).
    assert listed == {(m, re.sub(r":path}", "}", p)) for m, p in ROUTES}


def test_every_documented_route_is_routed(registry: Registry) -> None:
    """Each route answers from its handler (placeholders for the parameters, so mostly
    404s naming the missing thing or 400s for a missing body), never the router's own
    "Not Found" or "Method Not Allowed"."""
    admin = client_for(registry, "admin")
    for method, template in sorted(ROUTES):
        path = re.sub(r"\{\w+\}", "nothing-here", template)
        response = admin.request(method.upper(), path)
        assert response.status_code < 500, (method, path, response.text)
        if response.status_code in (404, 405):
            message = errors_of(response)[0]["message"]
            assert message not in ("Not Found", "Method Not Allowed"), (method, path)


def test_openapi_document_describes_bodies_and_errors(registry: Registry) -> None:
    document = json_object(client_for(registry).get(f"{API}/openapi.json"))
    create_user = document["paths"]["/api/v1/users"]["post"]
    assert "requestBody" in create_user
    schemas = document["components"]["schemas"]
    assert {"UserIn", "UserOut", "ProjectOut", "RobotSecretOut", "ArtifactDetail"} <= set(schemas)
    assert "secret" in schemas["RobotSecretOut"]["properties"]
    assert "secret" not in schemas["RobotOut"]["properties"]


def test_openapi_paths_are_distinct_up_to_parameter_names(registry: Registry) -> None:
    document = json_object(client_for(registry).get(f"{API}/openapi.json"))
    shapes: dict[str, list[str]] = {}
    for path in document["paths"]:
        shapes.setdefault(re.sub(r"\{[^}]*\}", "{}", path), []).append(path)
    assert {shape: paths for shape, paths in shapes.items() if len(paths) > 1} == {}


def test_no_interactive_docs_pages(registry: Registry) -> None:
    """Only the spec is served: the Swagger/ReDoc pages would load scripts from a CDN."""
    client = client_for(registry)
    for path in ("/docs", "/redoc", f"{API}/docs", f"{API}/redoc"):
        assert client.get(path).status_code == 404, path


# -- error format --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [f"{API}/nope", f"{API}/users/current/nope", f"{API}/projects/acme/nope", f"{API}/-/x"],
)
def test_unknown_route_is_404_in_the_error_format(registry: Registry, path: str) -> None:
    response = client_for(registry, "admin").get(path)
    assert_error(response, 404, "NOT_FOUND")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PUT", f"{API}/systeminfo"),
        ("DELETE", f"{API}/users"),
        ("POST", f"{API}/users/current"),
        ("GET", f"{API}/sessions"),
        ("PUT", f"{API}/audit-logs"),
        ("PATCH", f"{API}/repositories"),
    ],
)
def test_wrong_method_is_405_in_the_error_format(
    registry: Registry, method: str, path: str
) -> None:
    session = sign_in(registry, "admin")
    client = registry.as_caller(
        {"Cookie": f"{COOKIE}={session.cookie}", "X-CSRF-Token": session.csrf_token}
    )
    response = client.request(method, path)
    assert_error(response, 405, "METHOD_NOT_ALLOWED")


def test_405_names_the_allowed_methods(registry: Registry) -> None:
    response = client_for(registry, "admin").put(f"{API}/users")
    assert response.status_code == 405
    allowed = {m.strip() for m in response.headers.get("allow", "").split(",")}
    assert {"GET", "POST"} <= allowed


def test_validation_error_names_the_field(registry: Registry) -> None:
    admin = client_for(registry, "admin")
    missing = admin.post(f"{API}/users", json={"username": "newbie"})
    assert detail_locations(missing) == ["body.password"]
    wrong_type = admin.post(
        f"{API}/users", json={"username": "x", "password": 5, "admin": "perhaps"}
    )
    assert set(detail_locations(wrong_type)) == {"body.password", "body.admin"}
    assert detail_locations(admin.get(f"{API}/users", params={"page": 0})) == ["query.page"]
    assert detail_locations(admin.get(f"{API}/users", params={"page_size": 101})) == [
        "query.page_size"
    ]
    assert detail_locations(admin.get(f"{API}/audit-logs", params={"since": "yesterday"})) == [
        "query.since"
    ]
    bad_role = admin.put(f"{API}/projects/acme/members/outsider", json={"role": "owner"})
    assert detail_locations(bad_role) == ["body.role"]


def test_unknown_body_field_is_400(registry: Registry) -> None:
    admin = client_for(registry, "admin")
    for path, body in [
        (f"{API}/users", {"username": "someone", "password": "long-enough-pw", "root": True}),
        (f"{API}/projects", {"name": "team", "visibility": "public"}),
        (f"{API}/sessions", {"username": "admin", "password": "x", "remember": True}),
    ]:
        response = admin.post(path, json=body)
        assert len(detail_locations(response)) == 1, path
        assert detail_locations(response)[0].startswith("body."), path
    patch = admin.patch(f"{API}/users/outsider", json={"is_admin": True})
    assert detail_locations(patch) == ["body.is_admin"]
    assert registry.auth.accounts.get_user("outsider").is_admin is False


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b"{", "application/json"),
        (b"\xff\xfe{}", "application/json"),
        (b"[]", "application/json"),
        (b"null", "application/json"),
        (b'"text"', "application/json"),
        (b"username=a&password=b", "application/x-www-form-urlencoded"),
        (b"", "application/json"),
        (b'{"username": "a", "password": "b"}', "text/plain"),
        (b'{"username": "a", "password": "b", "username": "c"}', "application/json"),
    ],
)
def test_malformed_bodies_are_400(registry: Registry, content: bytes, content_type: str) -> None:
    admin = client_for(registry, "admin")
    response = admin.post(f"{API}/users", content=content, headers={"content-type": content_type})
    # 400 INVALID, never FastAPI's default 422 nor a 5xx
    assert_error(response, 400, "INVALID")


def test_unknown_route_and_bad_input_are_not_5xx_for_anonymous(registry: Registry) -> None:
    client = client_for(registry)
    for path in (f"{API}/users/%ff", f"{API}/projects/..", f"{API}/repositories/a//b"):
        response = client.get(path)
        assert 400 <= response.status_code < 500, (path, response.text)
        errors_of(response)


# -- no 5xx for malformed input --------------------------------------------------------------

FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,
    database=None,
)
# NUL is left out here: on PostgreSQL it is a known 5xx (test_nul_in_input_is_not_5xx).
_TEXT = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=12)
_WORDS = st.sampled_from(
    [
        "acme",
        "pub",
        "app",
        "acme/app",
        "-",
        "..",
        ".",
        "",
        "UPPER",
        "robot$acme+ci",
        "robot$",
        "sha256:" + "0" * 64,
        "sha256:",
        "a" * 300,
        "%2F",
        "%ff",
        "é",
        "latest",
        "current",
        "members",
        "artifacts",
        "tags",
    ]
)
_SEGMENT = st.one_of(_WORDS, _TEXT)
_GET_TEMPLATES = [
    "users/{}",
    "projects/{}",
    "projects/{}/members",
    "projects/{}/audit-logs",
    "projects/{}/robots",
    "robots/{}",
    "repositories/{}",
    "repositories/{}/-/artifacts",
    "repositories/{}/-/artifacts/{}",
    "repositories/acme/app/-/artifacts/{}",
    "{}",
    "{}/{}",
]
_QUERY_KEYS = st.sampled_from(
    ["page", "page_size", "q", "sort", "public", "project", "tag", "actor", "action", "since"]
)
_QUERY_VALUES = st.one_of(
    _TEXT,
    st.sampled_from(
        [
            "0",
            "-1",
            "1",
            "100",
            "101",
            "99999999999999999999999",
            "²",
            "-",
            "--name",
            "name",
            "-size",
            "pushed_at",
            "true",
            "maybe",
            "2024-01-01T00:00:00Z",
            "2024-13-45",
            "1e999",
            "%",
        ]
    ),
)
_RAW_QUERIES = st.sampled_from([b"%ff=%fe", b"page=%C2%B2", b"q", b"&&&", b"page=1&page=x"])


_PATHS = st.builds(
    lambda template, segments: f"{API}/" + template.format(*segments),
    st.sampled_from(_GET_TEMPLATES),
    st.lists(_SEGMENT, min_size=2, max_size=2),
)
_QUERIES = st.one_of(
    st.lists(st.tuples(_QUERY_KEYS, _QUERY_VALUES), max_size=3).map(
        lambda pairs: urlencode(pairs).encode()
    ),
    _RAW_QUERIES,
)


@FUZZ
@given(path=_PATHS, query=_QUERIES, as_admin=st.booleans())
def test_random_get_requests_never_5xx(
    registry: Registry, path: str, query: bytes, as_admin: bool
) -> None:
    headers = {"cookie": f"{COOKIE}={sign_in(registry, 'admin').cookie}"} if as_admin else {}
    try:
        response = raw_request(
            registry.app,
            "GET",
            path,
            query=query,
            headers=[(k.encode(), v.encode()) for k, v in headers.items()],
        )
    except Exception as error:  # the app re-raises after answering 500
        pytest.fail(f"GET {path!r}?{query!r} raised {error!r}")
    assert response.status < 500, (path, query, response.body[:300])
    if response.status >= 400:
        body = response.json()
        assert isinstance(body["errors"], list), body
        assert all(isinstance(e["code"], str) for e in body["errors"]), body


_NUL_CASES: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", f"{API}/users?q=%00", None),
    ("GET", f"{API}/users/a%00b", None),
    ("GET", f"{API}/projects?q=%00", None),
    ("GET", f"{API}/projects/a%00b", None),
    ("GET", f"{API}/robots/robot$a%00", None),
    ("GET", f"{API}/repositories?q=%00", None),
    ("GET", f"{API}/repositories?project=%00", None),
    ("GET", f"{API}/audit-logs?actor=%00", None),
    ("GET", f"{API}/projects/acme/audit-logs?action=%00", None),
    ("POST", f"{API}/users", {"username": "ok", "password": "long-enough", "email": "a\x00"}),
    ("PUT", f"{API}/projects/acme/members/a%00b", {"role": "guest"}),
    ("POST", f"{API}/sessions", {"username": "a\x00b", "password": "whatever"}),
]


@pytest.mark.parametrize(("method", "url", "body"), _NUL_CASES)
def test_nul_in_input_is_not_5xx(
    registry: Registry, method: str, url: str, body: dict[str, Any] | None
) -> None:
    client = TestClient(
        registry.app, base_url=BASE_URL, raise_server_exceptions=False, headers=_admin(registry)
    )
    response = client.request(method, url, json=body)
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        errors_of(response)


def test_nul_in_basic_username_is_401(registry: Registry) -> None:
    client = TestClient(
        registry.app, base_url=BASE_URL, raise_server_exceptions=False, headers=basic("a\x00b")
    )
    assert_error(client.get(f"{API}/users"), 401, "UNAUTHORIZED")


def _admin(registry: Registry) -> dict[str, str]:
    session = sign_in(registry, "admin")
    return {"Cookie": f"{COOKIE}={session.cookie}", "X-CSRF-Token": session.csrf_token}


def test_trailing_slash_never_redirects_to_the_request_host(registry: Registry) -> None:
    client = TestClient(
        registry.app,
        base_url=BASE_URL,
        headers={"Host": "evil.example", **_admin(registry)},
        follow_redirects=False,
    )
    response = client.get(f"{API}/users/")
    location = response.headers.get("location", "")
    assert "evil.example" not in location, (response.status_code, location)


def test_path_quoting_reaches_the_same_route(registry: Registry) -> None:
    """A repository name percent-encoded as one path segment (what OpenAPI clients send
    for a path parameter) is the same name."""
    admin = client_for(registry, "admin")
    plain = admin.get(f"{API}/repositories/acme/missing")
    quoted = admin.get(f"{API}/repositories/{quote('acme/missing', safe='')}")
    assert plain.status_code == quoted.status_code == 404
    assert plain.json() == quoted.json()
