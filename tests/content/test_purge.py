"""Abandoned uploads are purged; live ones and fresh leftovers are kept."""

from __future__ import annotations

import os
import time
from datetime import timedelta

from starlette.testclient import TestClient

from portside.app import PortsideApp
from portside.content.purge import purge_uploads
from portside.metadata import schema as s
from portside.storage import paths


def _start(client: TestClient) -> str:
    response = client.post("/v2/acme/app/blobs/uploads/")
    assert response.status_code == 202
    return response.headers["docker-upload-uuid"]


def _age(app: PortsideApp, path: str) -> None:
    old = time.time() - 3 * 86400
    local = app.ctx.storage.local_path(path)
    assert local is not None
    os.utime(local, (old, old))


def test_purge_removes_only_expired_uploads_and_old_leftovers(
    client: TestClient, app: PortsideApp
) -> None:
    ctx = app.ctx
    live = _start(client)
    expired = _start(client)
    still_receiving = _start(client)  # old row, but a chunk arrived just now
    with ctx.db.write() as conn:
        conn.execute(
            s.uploads.update()
            .where(s.uploads.c.id.in_([expired, still_receiving]))
            .values(updated_at=s.uploads.c.updated_at - timedelta(hours=48))
        )
    ctx.storage.put(paths.upload_data_path("leftover-old"), b"x")
    ctx.storage.put(paths.upload_data_path("leftover-new"), b"x")
    _age(app, paths.upload_data_path("leftover-old"))
    _age(app, paths.upload_data_path(expired))

    result = purge_uploads(ctx.db, ctx.storage, timedelta(hours=24))

    assert (result.expired_uploads, result.orphan_directories) == (1, 1)
    assert client.get(f"/v2/acme/app/blobs/uploads/{live}").status_code == 204
    assert client.get(f"/v2/acme/app/blobs/uploads/{still_receiving}").status_code == 204
    assert client.get(f"/v2/acme/app/blobs/uploads/{expired}").status_code == 404
    assert not ctx.storage.exists(paths.upload_dir(expired))
    assert not ctx.storage.exists(paths.upload_dir("leftover-old"))
    assert ctx.storage.exists(paths.upload_dir("leftover-new"))
