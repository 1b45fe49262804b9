"""The web UI's Cache tab of a proxy-cache project."""

from __future__ import annotations

from starlette.testclient import TestClient

from portside.app import PortsideApp
from tests.proxy.conftest import Upstreams, bind
from tests.proxy.upstreams import OCI_MANIFEST, push_image


def test_cache_tab_lists_what_is_cached(
    app: PortsideApp, client: TestClient, upstream: Upstreams
) -> None:
    with upstream.seed() as seed:
        image = push_image(seed, "team/app", "v1", [b"layer"])
    bind(app, upstream)
    pulled = client.get("/v2/hub/team/app/manifests/v1", headers={"accept": OCI_MANIFEST})
    assert pulled.status_code == 200
    page = client.get("/projects/hub")
    assert page.status_code == 200, page.text
    assert "/projects/hub/cache" in page.text
    cache = client.get("/projects/hub/cache")
    assert cache.status_code == 200, cache.text
    assert "A proxy cache of" in cache.text
    assert "hub/team/app" in cache.text
    assert image.digest[:19] in cache.text
    app.ctx.auth.projects.create("plain", public=True)
    assert "/projects/plain/cache" not in client.get("/projects/plain").text
    assert client.get("/projects/plain/cache").status_code == 404
