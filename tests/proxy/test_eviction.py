"""Least-recently-pulled eviction of a proxy cache over its size limit, through the
eviction job (content.deletion deletes, garbage collection frees)."""

from __future__ import annotations

import os
from datetime import timedelta

from sqlalchemy import select, update
from starlette.testclient import TestClient

from portside.app import PortsideApp
from portside.digest import Digest
from portside.jobs.context import JobContext
from portside.jobs.kinds import kind
from portside.jobs.proxy import run_eviction
from portside.metadata import schema as s
from portside.metadata.db import utcnow
from portside.storage import paths
from tests.proxy.conftest import Upstreams, bind, wait_cached
from tests.proxy.upstreams import OCI_MANIFEST, push_image, sha256

ACCEPT = {"accept": OCI_MANIFEST}
LAYER = 200_000


def _job(app: PortsideApp, lines: list[str], **params: object) -> JobContext:
    return JobContext(
        job_id=1,
        kind="proxy-evict",
        params=kind("proxy-evict").params(dict(params)),
        project=None,
        created_by="test",
        services=app.ctx,
        _log=lambda level, message: lines.append(message),
        _progress=lambda done, total, message: None,
        _stop_requested=lambda: False,
    )


def _pulled(app: PortsideApp, repository: str, minutes_ago: int) -> None:
    """Say when the repository's artifacts were last pulled (and cached)."""
    when = utcnow() - timedelta(minutes=minutes_ago)
    r, m = s.repositories, s.manifests
    with app.ctx.db.write() as conn:
        repo_id = conn.execute(select(r.c.id).where(r.c.name == repository)).scalar_one()
        conn.execute(
            update(m)
            .where(m.c.repository_id == repo_id)
            .values(last_pulled_at=when, pushed_at=when)
        )


def test_eviction_removes_least_recently_pulled_until_under_the_limit(
    app: PortsideApp, client: TestClient, upstream: Upstreams
) -> None:
    images = {}
    with upstream.seed() as seed:
        for name in ("old", "middle", "new"):
            images[name] = push_image(seed, f"team/{name}", "v1", [os.urandom(LAYER)])
    # Room for two images, not three.
    bind(app, upstream, cache_limit_bytes=2 * LAYER + 50_000)
    for name, image in images.items():
        assert client.get(f"/v2/hub/team/{name}/manifests/v1", headers=ACCEPT).status_code == 200
        for digest in image.blobs:
            assert client.get(f"/v2/hub/team/{name}/blobs/{digest}").status_code == 200
        wait_cached(app, f"hub/team/{name}", image.blobs)
    _pulled(app, "hub/team/old", 300)
    _pulled(app, "hub/team/middle", 200)
    _pulled(app, "hub/team/new", 100)
    lines: list[str] = []
    dry = run_eviction(_job(app, lines, dry_run=True, protect_seconds=60))
    assert dry["evicted"] == {}
    assert any("would evict hub/team/old@" in line for line in lines), lines
    assert not any("team/middle@" in line for line in lines), lines

    status = app.ctx.proxy.store.status("hub")
    assert status.artifact_count == 3
    assert status.used_bytes > 3 * LAYER

    lines.clear()
    result = run_eviction(_job(app, lines, protect_seconds=60, grace_period_seconds=0))
    assert result["evicted"] == {"hub": 1}, lines
    assert result["freed_bytes"] >= LAYER
    old_layer = sha256(images["old"].layers[0])
    assert not app.ctx.storage.exists(paths.blob_path(Digest.parse(old_layer)))
    status = app.ctx.proxy.store.status("hub")
    assert status.artifact_count == 2
    assert status.used_bytes <= 2 * LAYER + 50_000
    assert {a.repository for a in status.artifacts} == {"hub/team/middle", "hub/team/new"}
    # The evicted image comes back from the upstream on its next pull.
    again = client.get("/v2/hub/team/old/manifests/v1", headers=ACCEPT)
    assert again.status_code == 200
    assert again.content == images["old"].manifest


def test_recently_pulled_artifacts_are_never_evicted(
    app: PortsideApp, client: TestClient, upstream: Upstreams
) -> None:
    with upstream.seed() as seed:
        image = push_image(seed, "team/app", "v1", [os.urandom(LAYER)])
    bind(app, upstream, cache_limit_bytes=1000)
    assert client.get("/v2/hub/team/app/manifests/v1", headers=ACCEPT).status_code == 200
    for digest in image.blobs:
        assert client.get(f"/v2/hub/team/app/blobs/{digest}").status_code == 200
    wait_cached(app, "hub/team/app", image.blobs)
    lines: list[str] = []
    result = run_eviction(_job(app, lines, protect_seconds=600, grace_period_seconds=0))
    assert result["evicted"] == {}
    assert app.ctx.proxy.store.status("hub").artifact_count == 1
