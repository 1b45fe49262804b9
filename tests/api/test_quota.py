"""Per-project storage quotas on /v2: a push that would exceed the quota is refused with
DENIED at blob upload (monolithic, chunked), mount or manifest PUT, and leaves nothing
behind; reaching the quota exactly is allowed; content the project holds already can be
pushed again even over quota; concurrent pushes cannot exceed it together."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select
from starlette.testclient import TestClient

from portside.app import PortsideApp, create_app
from portside.config import Settings
from portside.content import quota
from portside.content.usage import UsageReports, project_used
from portside.digest import Digest
from portside.events import outbox
from portside.metadata import schema as s
from portside.storage import paths
from tests.api.helpers import (
    EMPTY_SHA256,
    assert_error,
    error_message,
    make_image,
    push_blob,
    push_manifest,
    put_manifest,
    sha256,
    start_upload,
    with_query,
)


def set_quota(app: PortsideApp, project: str, quota_bytes: int | None) -> None:
    projects = app.ctx.auth.projects
    if project in {p.name for p in projects.find()}:
        projects.update(project, quota_bytes=quota_bytes, clear_quota=quota_bytes is None)
    else:
        projects.create(project, quota_bytes=quota_bytes)


def used(app: PortsideApp, project: str) -> int:
    return UsageReports(app.ctx.db).project(project).used


def blob(size: int, seed: str) -> bytes:
    data = (seed.encode() * (size // max(len(seed), 1) + 1))[:size]
    assert len(data) == size
    return data


def linked(app: PortsideApp, digest: str) -> list[str]:
    """The repositories linking the blob."""
    with app.ctx.db.read() as conn:
        return sorted(
            conn.execute(
                select(s.repositories.c.name)
                .join(s.repository_blobs, s.repository_blobs.c.repository_id == s.repositories.c.id)
                .where(s.repository_blobs.c.digest == digest)
            ).scalars()
        )


def assert_nothing_left(app: PortsideApp, digest: str) -> None:
    """No blob row, no link, no blob file, no upload row, no upload data."""
    with app.ctx.db.read() as conn:
        assert conn.execute(select(s.blobs).where(s.blobs.c.digest == digest)).first() is None
        assert linked(app, digest) == []
        assert conn.execute(select(func.count()).select_from(s.uploads)).scalar_one() == 0
    root = app.ctx.settings.storage_root
    assert not (root / paths.blob_path(Digest.parse(digest))).exists()
    uploads = root / paths.UPLOADS
    assert not uploads.exists() or list(uploads.iterdir()) == []


def refusals(app: PortsideApp) -> list[tuple[str, str, int]]:
    """(kind, resource, requested bytes) of each quota.exceeded event, oldest first."""
    return [
        (e.data["kind"], e.resource, e.data["requested_bytes"])
        for e in outbox.recent(app.ctx.db, limit=1000)
        if e.type == outbox.QUOTA_EXCEEDED
    ]


def amount(size: int) -> str:
    """How the message spells a size (the tests stay under 1 MiB)."""
    assert size < 1024 * 1024
    return f"{size} bytes" if size < 1024 else f"{size / 1024:.1f} KiB ({size} bytes)"


def assert_quota_error(response: Any, project: str, would_use: int, limit: int) -> None:
    assert_error(response, 403, "DENIED")
    assert error_message(response) == (
        f"quota exceeded: project {project!r} would use {amount(would_use)}; "
        f"its quota is {amount(limit)}"
    )
    detail = response.json()["errors"][0]["detail"]
    assert detail["project"] == project
    assert detail["quota_bytes"] == limit
    assert detail["used_bytes"] + detail["requested_bytes"] == would_use


# -- blob uploads ------------------------------------------------------------------------------


def test_monolithic_upload_over_quota_leaves_nothing(app: PortsideApp, client: TestClient) -> None:
    set_quota(app, "team", 100)
    push_blob(client, "team/app", blob(60, "first"))
    refused = blob(41, "second")
    digest = sha256(refused)
    response = client.post(f"/v2/team/app/blobs/uploads/?digest={digest}", content=refused)
    assert_quota_error(response, "team", 101, 100)
    assert_nothing_left(app, digest)
    assert client.head(f"/v2/team/app/blobs/{digest}").status_code == 404
    assert refusals(app) == [("blob", f"team/app@{digest}", 41)]
    # Exactly reaching the quota is allowed.
    push_blob(client, "team/app", blob(40, "third"))
    assert used(app, "team") == 100


@pytest.mark.parametrize("last_chunk_in_put", [False, True])
def test_chunked_upload_over_quota_is_refused_at_the_final_put(
    app: PortsideApp, client: TestClient, last_chunk_in_put: bool
) -> None:
    set_quota(app, "team", 1000)
    data = blob(1001, "chunked")
    digest = sha256(data)
    location = start_upload(client, "team/app")
    first, rest = data[:600], data[600:]
    response = client.patch(
        location, content=first, headers={"content-range": f"0-{len(first) - 1}"}
    )
    assert response.status_code == 202, response.text
    location = response.headers["location"]
    if last_chunk_in_put:
        response = client.put(
            with_query(location, f"digest={digest}"),
            content=rest,
            headers={"content-range": f"600-{len(data) - 1}"},
        )
    else:
        response = client.patch(
            location, content=rest, headers={"content-range": f"600-{len(data) - 1}"}
        )
        assert response.status_code == 202, response.text
        response = client.put(with_query(response.headers["location"], f"digest={digest}"))
    assert_quota_error(response, "team", 1001, 1000)
    assert_nothing_left(app, digest)
    assert_error(client.get(location), 404, "BLOB_UPLOAD_UNKNOWN")
    assert refusals(app) == [("blob", f"team/app@{digest}", 1001)]
    # The same bytes fit once the quota allows them.
    set_quota(app, "team", 1001)
    push_blob(client, "team/app", data)
    assert used(app, "team") == 1001


def test_blob_stored_for_another_project_counts_for_this_one(
    app: PortsideApp, client: TestClient
) -> None:
    """Blobs are stored once, but each project that links one is charged for it."""
    set_quota(app, "team", 100)
    elsewhere = blob(80, "elsewhere")
    digest = push_blob(client, "free/app", elsewhere)
    push_blob(client, "team/app", blob(30, "own"))
    response = client.post(f"/v2/team/app/blobs/uploads/?digest={digest}", content=elsewhere)
    assert_quota_error(response, "team", 110, 100)
    assert linked(app, digest) == ["free/app"]  # the other project's blob is untouched
    assert client.get(f"/v2/free/app/blobs/{digest}").content == elsewhere
    assert client.head(f"/v2/team/app/blobs/{digest}").status_code == 404


# -- mounts ----------------------------------------------------------------------------------


def test_mount_over_quota_is_refused(app: PortsideApp, client: TestClient) -> None:
    set_quota(app, "team", 100)
    push_blob(client, "team/app", blob(60, "mine"))
    digest = push_blob(client, "free/src", blob(50, "theirs"))
    response = client.post(f"/v2/team/app/blobs/uploads/?mount={digest}&from=free/src")
    assert_quota_error(response, "team", 110, 100)
    assert linked(app, digest) == ["free/src"]
    assert refusals(app) == [("mount", f"team/app@{digest}", 50)]
    with app.ctx.db.read() as conn:
        assert conn.execute(select(func.count()).select_from(s.uploads)).scalar_one() == 0
    # A blob that fits is mounted.
    small = push_blob(client, "free/src", blob(40, "small"))
    response = client.post(f"/v2/team/app/blobs/uploads/?mount={small}&from=free/src")
    assert response.status_code == 201, response.text
    assert used(app, "team") == 100


def test_mount_of_a_blob_the_project_holds_succeeds_over_quota(
    app: PortsideApp, client: TestClient
) -> None:
    set_quota(app, "team", 1000)
    digest = push_blob(client, "team/one", blob(500, "held"))
    set_quota(app, "team", 10)
    response = client.post(f"/v2/team/two/blobs/uploads/?mount={digest}&from=team/one")
    assert response.status_code == 201, response.text
    assert linked(app, digest) == ["team/one", "team/two"]
    assert used(app, "team") == 500


# -- manifests -------------------------------------------------------------------------------


def test_manifest_put_over_quota_stores_nothing(app: PortsideApp, client: TestClient) -> None:
    set_quota(app, "team", 10_000)
    config, layer = b'{"architecture":"amd64","os":"linux"}', blob(300, "layer")
    manifest = make_image(client, "team/app", config=config, layers=[layer])
    blobs = len(config) + len(layer)
    set_quota(app, "team", blobs + len(manifest.body) - 1)
    response = put_manifest(client, "team/app", "v1", manifest.body)
    assert_quota_error(response, "team", blobs + len(manifest.body), blobs + len(manifest.body) - 1)
    assert client.get("/v2/team/app/manifests/v1").status_code == 404
    assert client.get(f"/v2/team/app/manifests/{manifest.digest}").status_code == 404
    with app.ctx.db.read() as conn:
        assert conn.execute(select(func.count()).select_from(s.manifests)).scalar_one() == 0
        assert conn.execute(select(func.count()).select_from(s.tags)).scalar_one() == 0
    set_quota(app, "team", blobs + len(manifest.body))  # exactly enough
    push_manifest(client, "team/app", "v1", manifest)
    assert used(app, "team") == blobs + len(manifest.body)


def test_lowered_quota_keeps_content_and_admits_pushes_adding_nothing(
    app: PortsideApp, client: TestClient
) -> None:
    set_quota(app, "team", 100_000)
    config, layer = b'{"architecture":"amd64","os":"linux"}', blob(2000, "layer")
    manifest = make_image(client, "team/app", config=config, layers=[layer])
    push_manifest(client, "team/app", "v1", manifest)
    before = used(app, "team")
    set_quota(app, "team", 1)
    # Everything stays readable.
    assert client.get("/v2/team/app/manifests/v1").status_code == 200
    assert client.get(f"/v2/team/app/blobs/{sha256(layer)}").content == layer
    # Pushing what the project holds adds nothing and succeeds: the same blobs again,
    # into another repository too, the same manifest under another tag, an empty blob.
    push_blob(client, "team/app", layer)
    push_blob(client, "team/copy", layer)
    push_blob(client, "team/copy", config)
    push_manifest(client, "team/app", "v2", manifest)
    push_manifest(client, "team/app", "v1", manifest)
    push_blob(client, "team/app", b"")
    assert used(app, "team") == before
    # New bytes are refused: a new blob, and a manifest row in another repository.
    response = client.post(f"/v2/team/app/blobs/uploads/?digest={sha256(b'new')}", content=b"new")
    assert_quota_error(response, "team", before + 3, 1)
    response = put_manifest(client, "team/copy", "v1", manifest.body)
    assert_quota_error(response, "team", before + len(manifest.body), 1)
    assert used(app, "team") == before


def test_projects_without_a_quota_are_not_limited(app: PortsideApp, client: TestClient) -> None:
    set_quota(app, "limited", 0)
    set_quota(app, "free", None)
    data = blob(5000, "big")
    push_blob(client, "free/app", data)
    push_blob(client, "norow/app", data)  # repositories without a project row
    assert client.head(f"/v2/limited/app/blobs/{EMPTY_SHA256}").status_code == 404
    push_blob(client, "limited/app", b"")  # zero bytes fit in a zero quota
    response = client.post(f"/v2/limited/app/blobs/uploads/?digest={sha256(data)}", content=data)
    assert_quota_error(response, "limited", 5000, 0)
    assert linked(app, sha256(data)) == ["free/app", "norow/app"]


# -- concurrency -----------------------------------------------------------------------------


@pytest.fixture
def workers(settings: Settings) -> Iterator[list[TestClient]]:
    """Four apps on one database and storage, like four worker processes."""
    apps = [create_app(settings) for _ in range(4)]
    clients = [TestClient(a, base_url="http://registry.test") for a in apps]
    try:
        yield [c.__enter__() for c in clients]
    finally:
        for c in clients:
            c.__exit__(None, None, None)
        for a in apps:
            a.ctx.close()


def test_concurrent_pushes_cannot_exceed_the_quota_together(
    app: PortsideApp, workers: list[TestClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each push computes the usage, then waits a moment before linking: without the
    per-project lock, all four would see room for themselves."""
    set_quota(app, "team", 100)

    def slow_used(conn: Any, project: str) -> int:
        value = project_used(conn, project)
        time.sleep(0.3)
        return value

    monkeypatch.setattr(quota, "project_used", slow_used)
    barrier = threading.Barrier(len(workers))
    statuses: list[int] = []

    def push(number: int, client: TestClient) -> None:
        data = blob(40, f"worker {number}")
        barrier.wait()
        response = client.post(
            f"/v2/team/repo{number}/blobs/uploads/?digest={sha256(data)}", content=data
        )
        statuses.append(response.status_code)

    threads = [
        threading.Thread(target=push, args=(number, client))
        for number, client in enumerate(workers)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(statuses) == [201, 201, 403, 403]
    assert used(app, "team") == 80
