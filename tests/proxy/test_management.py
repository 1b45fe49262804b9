"""The management API of proxy-cache projects: creating one, its cache's state (size,
artifacts, last pulls, pull counts), changing its settings."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from portside.app import PortsideApp
from tests.proxy.conftest import Factory, Upstreams, remote_upstream, wait_cached
from tests.proxy.upstreams import OCI_MANIFEST, push_image

API = "/api/v1"
PASSWORD = "proxy-admin-passphrase"


@pytest.fixture
def admin(app: PortsideApp, client: TestClient) -> TestClient:
    """The client, signed in as a system administrator (Basic on every request); with a
    user, the registry is no longer open, so pulls of a public project are anonymous."""
    app.ctx.auth.accounts.create_user("root", PASSWORD, admin=True)
    client.auth = ("root", PASSWORD)
    return client


def test_create_a_proxy_project_and_read_its_cache(
    app: PortsideApp, admin: TestClient, upstream: Upstreams
) -> None:
    client = admin
    with upstream.seed() as seed:
        image = push_image(seed, "team/app", "v1", [b"a layer"])
    app.ctx.proxy.upstreams = Factory({"up": remote_upstream(upstream.counting.url)})
    unknown = client.post(f"{API}/projects", json={"name": "hub", "proxy": {"endpoint": "nope"}})
    assert unknown.status_code == 400, unknown.text
    assert "nope" in unknown.text
    assert client.get(f"{API}/projects/hub").status_code == 404
    created = client.post(
        f"{API}/projects",
        json={
            "name": "hub",
            "public": True,
            "proxy": {"endpoint": "up", "tag_ttl_seconds": 30, "cache_limit_bytes": 10_000},
        },
    )
    assert created.status_code == 201, created.text
    empty = client.get(f"{API}/projects/hub/proxy").json()
    assert empty["proxy"] is True
    assert empty["endpoints"] == ["up"]
    assert empty["tag_ttl_seconds"] == 30
    assert empty["artifact_count"] == 0
    for _ in range(3):
        got = client.get("/v2/hub/team/app/manifests/v1", headers={"accept": OCI_MANIFEST})
        assert got.status_code == 200
    for digest in image.blobs:
        assert client.get(f"/v2/hub/team/app/blobs/{digest}").status_code == 200
    wait_cached(app, "hub/team/app", image.blobs)
    app.ctx.events.flush()
    status = client.get(f"{API}/projects/hub/proxy").json()
    assert status["artifact_count"] == 1
    assert status["used_bytes"] >= sum(len(b) for b in image.blobs.values())
    assert status["pulls"] == 3
    (artifact,) = status["artifacts"]
    assert artifact["repository"] == "hub/team/app"
    assert artifact["digest"] == image.digest
    assert artifact["tags"] == ["v1"]
    assert artifact["pulls"] == 3
    assert artifact["last_pulled_at"] is not None
    patched = client.patch(f"{API}/projects/hub/proxy", json={"clear_limit": True})
    assert patched.status_code == 200, patched.text
    assert patched.json()["cache_limit_bytes"] is None
    bad = client.patch(f"{API}/projects/hub/proxy", json={"tag_ttl_seconds": -1})
    assert bad.status_code in (400, 422)
    # Anonymous clients pull a public proxy project; they may not push into it either way.
    anonymous = TestClient(app, base_url="http://registry.test")
    pulled = anonymous.get("/v2/hub/team/app/manifests/v1", headers={"accept": OCI_MANIFEST})
    assert pulled.status_code == 200
    assert anonymous.post("/v2/hub/team/app/blobs/uploads/").status_code == 401
    assert client.post("/v2/hub/team/app/blobs/uploads/").status_code == 403


def test_a_plain_project_is_no_proxy(app: PortsideApp, admin: TestClient) -> None:
    client = admin
    plain = client.post(f"{API}/projects", json={"name": "plain"})
    assert plain.status_code == 201
    assert client.get(f"{API}/projects/plain/proxy").json() == {
        "project": "plain",
        "proxy": False,
        "mirror": False,
        "endpoints": [],
        "tag_ttl_seconds": None,
        "cache_limit_bytes": None,
        "used_bytes": None,
        "artifact_count": None,
        "last_pulled_at": None,
        "pulls": None,
        "artifacts": [],
    }
    conflict = client.patch(f"{API}/projects/plain/proxy", json={"tag_ttl_seconds": 5})
    assert conflict.status_code == 409


def test_an_endpoint_a_proxy_project_uses_cannot_be_removed(
    app: PortsideApp, admin: TestClient, upstream: Upstreams
) -> None:
    from portside.auth.errors import Exists
    from portside.endpoints.store import EndpointStore
    from portside.events.outbox import SYSTEM

    settings = app.ctx.settings.model_copy(
        update={
            "endpoints": app.ctx.settings.endpoints.model_copy(
                update={"allow_private_targets": True}
            )
        }
    )
    store = EndpointStore(app.ctx.db, settings)
    store.create(name="up", kind="distribution", url=upstream.peer.url, actor=SYSTEM)
    app.ctx.proxy.upstreams = Factory({"up": remote_upstream(upstream.counting.url)})
    created = admin.post(f"{API}/projects", json={"name": "hub", "proxy": {"endpoint": "up"}})
    assert created.status_code == 201, created.text
    with pytest.raises(Exists, match="proxy-cache projects: hub"):
        store.delete("up", actor=SYSTEM)
    assert admin.delete(f"{API}/projects/hub").status_code == 204
    store.delete("up", actor=SYSTEM)
