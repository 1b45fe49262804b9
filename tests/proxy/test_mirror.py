"""Mirror mode: pulls of repositories of no project go through the configured upstreams
(in order) and are cached in the mirror's project, as docker's `registry-mirrors` and
containerd's mirrors expect (docker sends Docker Hub names: `library/alpine`)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from portside.app import PortsideApp, create_app
from portside.auth.projects import Projects
from portside.config import load_settings
from portside.metadata.db import Database
from portside.metadata.engine import make_engine
from portside.proxy.bindings import check_mirror
from tests.durability.server import PORTSIDE, free_port, portside_env
from tests.proxy.conftest import Factory, Upstreams, remote_upstream
from tests.proxy.upstreams import OCI_MANIFEST, push_image
from tests.remote.peers import distribution

ACCEPT = {"accept": OCI_MANIFEST}


@pytest.fixture
def mirror_app(tmp_path: Path, database_url: str) -> Iterator[PortsideApp]:
    settings = load_settings(
        data_dir=tmp_path / "data",
        database={"url": database_url},
        log={"access": False, "level": "warning"},
        proxy={"mirror": {"project": "mirror", "endpoints": ["first", "second"]}},
    )
    app = create_app(settings)
    app.ctx.auth.projects.create("mirror", public=True)
    app.ctx.auth.projects.create("local", public=True)
    yield app
    app.ctx.close()


def test_mirror_serves_library_images_through_upstreams_in_order(
    mirror_app: PortsideApp, upstream: Upstreams, tmp_path: Path
) -> None:
    with upstream.seed() as seed:
        alpine = push_image(seed, "library/alpine", "3.20", [b"alpine layer"])
    with distribution(tmp_path / "empty") as empty:
        # The first upstream has nothing: the second one serves.
        mirror_app.ctx.proxy.upstreams = Factory(
            {
                "first": remote_upstream(empty.url, "first"),
                "second": remote_upstream(upstream.counting.url, "second"),
            }
        )
        with TestClient(mirror_app, base_url="http://registry.test") as client:
            got = client.get("/v2/library/alpine/manifests/3.20", headers=ACCEPT)
            assert got.status_code == 200, got.text
            assert got.content == alpine.manifest
            for digest, data in alpine.blobs.items():
                blob = client.get(f"/v2/library/alpine/blobs/{digest}")
                assert blob.status_code == 200, blob.text
                assert blob.content == data
            # Cached in the mirror's project, under the same name.
            cached = client.get("/v2/mirror/library/alpine/manifests/3.20", headers=ACCEPT)
            assert cached.status_code == 200
            assert cached.content == alpine.manifest
            # A project of its own is never mirrored; writes are never mirrored.
            local = client.get("/v2/local/app/manifests/v1")
            assert local.status_code == 404
            pushed = client.post("/v2/library/alpine/blobs/uploads/")
            assert pushed.status_code == 202, pushed.text
            refused = client.post("/v2/mirror/library/alpine/blobs/uploads/")
            assert refused.status_code == 403
    assert upstream.counting.count("GET", "/v2/library/alpine/manifests/3.20") == 1


def test_serve_refuses_to_start_without_the_mirror_project(
    tmp_path: Path, database_url: str
) -> None:
    """A mirror whose project is missing would answer every mirrored pull with an error;
    `serve` says so at start, naming the key (it does not create the project: public or
    not is the administrator's choice)."""
    result = subprocess.run(
        [PORTSIDE, "serve", "--listen", f"127.0.0.1:{free_port()}",
         "--data-dir", str(tmp_path / "data")],
        env=portside_env(
            database_url,
            PORTSIDE_PROXY__MIRROR__PROJECT="mirror",
            PORTSIDE_PROXY__MIRROR__ENDPOINTS='["hub"]',
        ),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "proxy.mirror.project: there is no project 'mirror'" in result.stderr, result.stderr
    assert "portside project create mirror --public" in result.stderr
    settings = load_settings(
        data_dir=tmp_path / "data",
        database={"url": database_url},
        proxy={"mirror": {"project": "mirror", "endpoints": ["hub"]}},
    )
    engine = make_engine(database_url)
    try:
        db = Database(engine)
        Projects(db).create("mirror", public=True)
        check_mirror(db, settings.proxy)  # now it starts
    finally:
        engine.dispose()
