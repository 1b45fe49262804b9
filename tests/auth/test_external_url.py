"""external_url: the token realm, Location and Link use it; the request's Host and
X-Forwarded-* headers never change them."""

from __future__ import annotations

from pathlib import Path

from starlette.testclient import TestClient

from tests.api.helpers import push_image
from tests.auth.conftest import PASSWORD, basic, build_registry

EXTERNAL = "https://registry.example.com"
SPOOF = {"Host": "evil.example", "X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "http"}


def test_realm_and_locations_come_from_external_url(tmp_path: Path, database_url: str) -> None:
    app = build_registry(tmp_path, database_url, external_url=EXTERNAL + "/")
    app.ctx.auth.accounts.create_user("admin", PASSWORD, admin=True)
    client = TestClient(app, base_url="http://registry.test", headers=basic("admin"))
    challenge = client.get("/v2/", headers={**SPOOF, "Authorization": ""})
    assert challenge.status_code == 401
    assert f'realm="{EXTERNAL}/auth/token"' in challenge.headers["www-authenticate"]
    started = client.post("/v2/acme/app/blobs/uploads/", headers=SPOOF)
    assert started.status_code == 403  # project acme does not exist yet
    app.ctx.auth.projects.create("acme")
    started = client.post("/v2/acme/app/blobs/uploads/", headers=SPOOF)
    assert started.status_code == 202
    assert started.headers["location"].startswith(f"{EXTERNAL}/v2/acme/app/blobs/uploads/")
    push_image(client, "acme/app", "v1")
    push_image(client, "acme/app", "v2")
    page = client.get("/v2/acme/app/tags/list?n=1", headers=SPOOF)
    assert page.headers["link"] == f'<{EXTERNAL}/v2/acme/app/tags/list?n=1&last=v1>; rel="next"'
    app.ctx.close()


def test_without_external_url_locations_are_paths(tmp_path: Path, database_url: str) -> None:
    app = build_registry(tmp_path, database_url)
    client = TestClient(app, base_url="http://registry.test")
    started = client.post("/v2/team/app/blobs/uploads/", headers=SPOOF)
    assert started.status_code == 202
    assert started.headers["location"].startswith("/v2/team/app/blobs/uploads/")
    app.ctx.close()
