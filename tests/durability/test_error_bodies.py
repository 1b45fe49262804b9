"""Every 4xx the /v2, /auth/token and /api/v1 surfaces answer, against a real `portside
serve` with authentication on: a JSON `{"errors": [...]}` body with a content type
(bodyless answers from granian itself, for heads past its ~400 KiB buffer or with over
100 header fields, are the exception the README names)."""

from __future__ import annotations

import base64
import hashlib
import subprocess
from collections.abc import Iterator

import httpx
import pytest

from tests.auth.matrix import PASSWORD
from tests.conftest import fresh_database
from tests.durability.server import PORTSIDE, ServerProcess, portside_env

pytestmark = pytest.mark.slow

ADMIN = {"authorization": "Basic " + base64.b64encode(f"admin:{PASSWORD}".encode()).decode()}
WRONG = {"authorization": "Basic " + base64.b64encode(b"admin:wrong-password").decode()}
REPO = "acme/app"
BLOB = b"a blob for the range test"
DIGEST = "sha256:" + hashlib.sha256(BLOB).hexdigest()
UNKNOWN = "sha256:" + "0" * 64
BIG_HEADER = {"x-padding": "a" * 20_000}
LONG = "a" * 9000
MANIFEST_LIMIT = 4096


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("error-bodies")
    with fresh_database(root) as url:
        data_dir = root / "data"
        created = subprocess.run(
            [PORTSIDE, "admin", "create", "admin", "--password-stdin", "--data-dir", str(data_dir)],
            input=PASSWORD + "\n",
            env=portside_env(url),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert created.returncode == 0, created.stderr
        started = ServerProcess(
            data_dir=data_dir,
            database_url=url,
            log_dir=root,
            env={"PORTSIDE_REGISTRY__MANIFEST_MAX_BYTES": str(MANIFEST_LIMIT)},
        ).start()
        try:
            with started.client() as client:
                assert client.post("/api/v1/projects", json={"name": "acme"}, headers=ADMIN)
                pushed = client.post(
                    f"/v2/{REPO}/blobs/uploads/?digest={DIGEST}", content=BLOB, headers=ADMIN
                )
                assert pushed.status_code == 201, pushed.text
            yield started
            assert started.internal_errors() == []
        finally:
            started.kill()


def _case(method: str, path: str, headers: dict[str, str] | None = None, **kw: object) -> object:
    return pytest.param(method, path, headers or {}, kw, id=f"{method} {path[:60]}")


CASES = [
    # /v2: routing, the guard, names, references, digests, uploads, pagination, limits
    _case("GET", "/v2/"),
    _case("GET", "/v2/", WRONG),
    _case("GET", "/v2/nowhere", ADMIN),
    _case("POST", "/v2/", ADMIN),
    _case("GET", "/v2/Bad_Name/tags/list", ADMIN),
    _case("GET", f"/v2/{REPO}/tags/list"),
    _case("GET", "/v2/acme/missing/tags/list", ADMIN),
    _case("GET", f"/v2/{REPO}/manifests/latest", ADMIN),
    _case("GET", f"/v2/{REPO}/manifests/.INVALID_MANIFEST_NAME", ADMIN),
    _case("GET", f"/v2/{REPO}/manifests/sha256:..%2F..%2Fetc", ADMIN),
    _case("PUT", f"/v2/{REPO}/manifests/-bad", ADMIN, content=b"{}"),
    _case("PUT", f"/v2/{REPO}/manifests/v1", ADMIN, content=b"{}"),
    _case("PUT", f"/v2/{REPO}/manifests/v1", ADMIN, content=b" " * (MANIFEST_LIMIT + 1)),
    _case("DELETE", f"/v2/{REPO}/manifests/sha256:123", ADMIN),
    _case("GET", f"/v2/{REPO}/blobs/sha256:123", ADMIN),
    _case("GET", f"/v2/{REPO}/blobs/..%2F..%2Fetc%2Fpasswd", ADMIN),
    _case("GET", f"/v2/{REPO}/blobs/{UNKNOWN}", ADMIN),
    _case("GET", f"/v2/{REPO}/blobs/{DIGEST}", {**ADMIN, "range": "bytes=1000-2000"}),
    _case("PATCH", f"/v2/{REPO}/blobs/{DIGEST}", ADMIN),
    _case("GET", f"/v2/{REPO}/blobs/uploads/nope", ADMIN),
    _case("PATCH", f"/v2/{REPO}/blobs/uploads/..%2F..%2Fx", ADMIN, content=b"x"),
    _case("PUT", f"/v2/{REPO}/blobs/uploads/..%2F..%2Fx?digest={UNKNOWN}", ADMIN),
    _case("DELETE", f"/v2/{REPO}/blobs/uploads/%2E%2E%2Fx", ADMIN),
    _case("POST", f"/v2/{REPO}/blobs/uploads/?digest={UNKNOWN}", ADMIN, content=b"nope"),
    _case("POST", f"/v2/{REPO}/blobs/uploads/?digest=sha256:12", ADMIN, content=b"x"),
    _case("GET", f"/v2/{REPO}/referrers/sha256:12", ADMIN),
    _case("GET", "/v2/_catalog?n=abc", ADMIN),
    _case("GET", "/v2/_catalog?n=-1", ADMIN),
    _case("GET", "/v2/_catalog?n=99999999999999999999999999", ADMIN),
    _case("GET", "/v2/_catalog?n=" + "9" * 5000, ADMIN),
    _case("GET", "/v2/_catalog?last=..%2F..", ADMIN),
    _case("GET", f"/v2/{REPO}/tags/list?n=1.5", ADMIN),
    _case("GET", f"/v2/{REPO}/tags/list?n=100000", ADMIN),
    _case("GET", f"/v2/{REPO}/tags/list?last=%2Fnot-a-tag", ADMIN),
    _case("GET", f"/v2/{LONG}/tags/list", ADMIN),
    _case("GET", f"/v2/_catalog?last={LONG}", ADMIN),
    _case("GET", "/v2/", {**ADMIN, **BIG_HEADER}),
    # /auth/token
    _case("GET", "/auth/token?service=elsewhere", ADMIN),
    _case("GET", "/auth/token", WRONG),
    _case("PUT", "/auth/token", ADMIN),
    _case("POST", "/auth/token", ADMIN, json={"grant_type": "password"}),
    _case("POST", "/auth/token", ADMIN, data={"grant_type": "refresh_token"}),
    _case("GET", f"/auth/token?scope={LONG}", ADMIN),
    _case("GET", "/auth/token", {**ADMIN, **BIG_HEADER}),
    # /api/v1
    _case("GET", "/api/v1/users"),
    _case("GET", "/api/v1/users", WRONG),
    _case("GET", "/api/v1/nowhere", ADMIN),
    _case("PUT", "/api/v1/projects", ADMIN),
    _case("GET", "/api/v1/projects/missing", ADMIN),
    _case("POST", "/api/v1/projects", ADMIN, json={"name": 5}),
    _case("POST", "/api/v1/projects", ADMIN, content=b"{not json", ct="application/json"),
    _case("POST", "/api/v1/projects", ADMIN, json={"name": "acme"}),
    _case("POST", "/api/v1/projects", ADMIN, content=b"x" * (1024 * 1024 + 10)),
    _case("GET", "/api/v1/projects?page=abc", ADMIN),
    _case("GET", "/api/v1/projects?page_size=100000", ADMIN),
    _case("GET", "/api/v1/projects?page=-1", ADMIN),
    _case("GET", f"/api/v1/projects?q={LONG}", ADMIN),
    _case("GET", "/api/v1/projects", {**ADMIN, **BIG_HEADER}),
]


@pytest.mark.parametrize(("method", "path", "headers", "kw"), CASES)
def test_every_4xx_has_a_json_error_body(
    server: ServerProcess, method: str, path: str, headers: dict[str, str], kw: dict[str, object]
) -> None:
    content_type = kw.pop("ct", None)
    if content_type is not None:
        headers = {**headers, "content-type": str(content_type)}
    with httpx.Client(timeout=30) as client:
        request = client.build_request(method, server.url + path, headers=headers, **kw)  # type: ignore[arg-type]
        response = client.send(request)
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:300])
    assert response.headers.get("content-type", "").startswith("application/json"), (
        response.status_code,
        response.headers,
        response.text[:300],
    )
    body = response.json()
    assert isinstance(body["errors"], list)
    assert body["errors"], body
    for entry in body["errors"]:
        assert isinstance(entry["code"], str)
        assert isinstance(entry["message"], str)


def test_the_cases_cover_every_4xx_status(server: ServerProcess) -> None:
    """414 and 431 are answered by the app, below granian's own limits."""
    with httpx.Client(base_url=server.url, timeout=30) as client:
        assert client.get(f"/v2/{LONG}/tags/list").status_code == 414
        assert client.get("/v2/", headers=BIG_HEADER).status_code == 431
        assert client.get("/healthz", headers=BIG_HEADER).json()["errors"][0]["code"] == (
            "HEADERS_TOO_LARGE"
        )
