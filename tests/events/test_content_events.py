"""Content services raise their events through the real /v2 API: a push leaves exactly one
`artifact.pushed` and one `tag.moved`, a pull a batched `artifact.pulled`, a refused push
`quota.exceeded` and nothing else, and untagging `tag.deleted`."""

from __future__ import annotations

import time
from pathlib import Path

from sqlalchemy import func, select
from starlette.testclient import TestClient

from portside.app import PortsideApp, create_app
from portside.config import load_settings
from portside.content.usage import UsageReports
from portside.events import outbox
from portside.events.outbox import Event
from portside.metadata import schema as s
from tests.api.helpers import (
    OCI_CONFIG,
    OCI_MANIFEST,
    assert_error,
    make_image,
    push_image,
    put_manifest,
)

REPO = "team/app"


def of_type(app: PortsideApp, *types: str) -> list[Event]:
    return [e for e in outbox.recent(app.ctx.db, limit=1000) if e.type in types]


def test_a_push_raises_one_pushed_and_one_tag_moved(app: PortsideApp, client: TestClient) -> None:
    image = push_image(client, REPO, "v1")
    [pushed] = of_type(app, outbox.ARTIFACT_PUSHED)
    [moved] = of_type(app, outbox.TAG_MOVED)
    assert (pushed.actor, pushed.source) == ("anonymous", "testclient")
    assert (pushed.project, pushed.repository, pushed.resource) == (
        "team",
        REPO,
        f"{REPO}@{image.digest}",
    )
    assert pushed.data == {
        "digest": image.digest,
        "media_type": OCI_MANIFEST,
        "artifact_type": OCI_CONFIG,  # an image: its config's media type
        "size": image.size,
        "tag": "v1",
        "new": True,
    }
    assert moved.resource == f"{REPO}:v1"
    assert moved.data == {"tag": "v1", "digest": image.digest, "push": True}
    assert moved.id == pushed.id + 1  # in the push's transaction, one after the other


def test_moving_a_tag_names_the_previous_digest(app: PortsideApp, client: TestClient) -> None:
    first = push_image(client, REPO, "v1", seed="first")
    second = push_image(client, REPO, "v1", seed="second")
    moves = of_type(app, outbox.TAG_MOVED)
    assert [m.data.get("previous") for m in moves] == [None, first.digest]
    assert moves[-1].data["digest"] == second.digest
    # The same manifest pushed again: pushed (not new), and the tag did not move.
    put_manifest(client, REPO, "v1", second.body)
    pushes = of_type(app, outbox.ARTIFACT_PUSHED)
    assert [p.data["new"] for p in pushes] == [True, True, False]
    assert len(of_type(app, outbox.TAG_MOVED)) == 2


def test_a_push_by_digest_moves_no_tag(app: PortsideApp, client: TestClient) -> None:
    image = push_image(client, REPO, None)
    [pushed] = of_type(app, outbox.ARTIFACT_PUSHED)
    assert pushed.data["tag"] is None
    assert pushed.data["digest"] == image.digest
    assert of_type(app, outbox.TAG_MOVED) == []


def test_untagging_raises_tag_deleted(app: PortsideApp, client: TestClient) -> None:
    image = push_image(client, REPO, "v1")
    assert client.delete(f"/v2/{REPO}/manifests/v1").status_code == 202
    [deleted] = of_type(app, outbox.TAG_DELETED)
    assert (deleted.resource, deleted.data) == (
        f"{REPO}:v1",
        {"tag": "v1", "digest": image.digest},
    )
    assert of_type(app, outbox.ARTIFACT_DELETED) == []


def test_a_refused_untag_raises_nothing(app: PortsideApp, client: TestClient) -> None:
    push_image(client, REPO, "v1")
    assert_error(client.delete(f"/v2/{REPO}/manifests/v2"), 404, "MANIFEST_UNKNOWN")
    assert of_type(app, outbox.TAG_DELETED) == []


def test_pulls_are_written_in_batches(app: PortsideApp, client: TestClient) -> None:
    image = push_image(client, REPO, "v1")
    assert client.head(f"/v2/{REPO}/manifests/v1").status_code == 200  # not a pull
    for reference in ("v1", image.digest):
        assert client.get(f"/v2/{REPO}/manifests/{reference}").status_code == 200
    deadline = time.monotonic() + 10  # the buffer is written about once a second
    while not (pulls := of_type(app, outbox.ARTIFACT_PULLED)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [p.data for p in pulls] == [
        {"digest": image.digest, "reference": "v1", "count": 1},
        {"digest": image.digest, "reference": image.digest, "count": 1},
    ]
    assert {(p.resource, p.actor, p.source) for p in pulls} == {
        (f"{REPO}@{image.digest}", "anonymous", "testclient")
    }


def test_identical_pulls_in_one_batch_are_one_counted_event(
    app: PortsideApp, client: TestClient
) -> None:
    """A fleet pulling one tag costs one row per batch window, not one per request; the
    audit log says how many pulls the row stands for."""
    image = push_image(client, REPO, "v1")
    for _ in range(25):
        assert client.get(f"/v2/{REPO}/manifests/v1").status_code == 200
    assert client.get(f"/v2/{REPO}/manifests/{image.digest}").status_code == 200
    app.ctx.events.flush()
    pulls = of_type(app, outbox.ARTIFACT_PULLED)
    assert sorted((p.data["reference"], p.data["count"]) for p in pulls) == sorted(
        [("v1", 25), (image.digest, 1)]
    )
    entries, _ = app.ctx.audit.find(action="pull")
    assert sorted(str(e.detail) for e in entries) == sorted(
        [str({"reference": "v1", "count": 25}), "None"]
    )


def test_no_pull_events_when_pulls_are_not_recorded(tmp_path: Path, database_url: str) -> None:
    settings = load_settings(
        data_dir=tmp_path / "data",
        database={"url": database_url},
        log={"access": False, "level": "warning"},
        audit={"record_pulls": False},
    )
    app = create_app(settings)
    try:
        with TestClient(app, base_url="http://registry.test") as client:
            push_image(client, REPO, "v1")
            assert client.get(f"/v2/{REPO}/manifests/v1").status_code == 200
        app.ctx.events.flush()
        assert of_type(app, outbox.ARTIFACT_PULLED) == []
        assert len(of_type(app, outbox.ARTIFACT_PUSHED)) == 1
    finally:
        app.ctx.close()


def test_a_quota_refusal_leaves_quota_exceeded_and_no_manifest(
    app: PortsideApp, client: TestClient
) -> None:
    image = make_image(client, REPO)  # blobs pushed, manifest not yet
    used = UsageReports(app.ctx.db).project("team").used
    app.ctx.auth.projects.create("team", quota_bytes=used)
    assert_error(put_manifest(client, REPO, "v1", image.body), 403, "DENIED")
    with app.ctx.db.read() as conn:
        assert conn.execute(select(func.count()).select_from(s.manifests)).scalar_one() == 0
        assert conn.execute(select(func.count()).select_from(s.tags)).scalar_one() == 0
    [refused] = of_type(app, outbox.QUOTA_EXCEEDED)
    assert (refused.actor, refused.resource, refused.project) == (
        "anonymous",
        f"{REPO}@{image.digest}",
        "team",
    )
    assert refused.data == {
        "project": "team",
        "quota_bytes": used,
        "used_bytes": used,
        "requested_bytes": image.size,
        "digest": image.digest,
        "kind": "manifest",
        "tag": "v1",
    }
    assert of_type(app, outbox.ARTIFACT_PUSHED, outbox.TAG_MOVED) == []
