"""Online garbage collection: what goes, what stays, dry run = run, and pushes racing
sweeps never leave a committed manifest without its blobs."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

from starlette.testclient import TestClient

from portside.app import PortsideApp
from portside.config import Settings
from portside.content.gc import GarbageCollector, Plan
from portside.fsck import run_fsck
from portside.storage import paths
from tests.api.helpers import (
    Manifest,
    make_artifact,
    make_image,
    make_index,
    push_blob,
    push_image,
    push_manifest,
    sha256,
)

NOW = timedelta(0)


def is_empty(plan: Plan) -> bool:
    return not (plan.manifests or plan.links or plan.blobs)


def collector(app: PortsideApp) -> GarbageCollector:
    return GarbageCollector(app.ctx.db, app.ctx.storage)


def blob_stored(app: PortsideApp, digest: str) -> bool:
    from portside.digest import Digest

    return app.ctx.storage.exists(paths.blob_path(Digest.parse(digest)))


def blob_digests(manifest: Manifest) -> list[str]:
    document = json.loads(manifest.body)
    return [document["config"]["digest"], *(layer["digest"] for layer in document["layers"])]


def test_unreferenced_blob_goes_and_dry_run_says_exactly_what(
    app: PortsideApp, client: TestClient
) -> None:
    kept = push_image(client, "team/app", "v1")
    orphan = b"uploaded but never used by a manifest" * 10
    orphan_digest = push_blob(client, "team/app", orphan)
    plan = collector(app).plan(NOW)
    assert [b.digest for b in plan.blobs] == [orphan_digest]
    assert plan.bytes == len(orphan)
    assert [(link.repository, link.digest) for link in plan.links] == [("team/app", orphan_digest)]
    assert blob_stored(app, orphan_digest)  # planning deletes nothing
    result = collector(app).run(plan)
    assert (result.blobs, result.links, result.bytes, result.skipped) == (1, 1, len(orphan), 0)
    assert not blob_stored(app, orphan_digest)
    assert client.head(f"/v2/team/app/blobs/{orphan_digest}").status_code == 404
    for digest in blob_digests(kept):
        assert client.head(f"/v2/team/app/blobs/{digest}").status_code == 200
    assert client.get("/v2/team/app/manifests/v1").status_code == 200
    assert is_empty(collector(app).plan(NOW))


def test_grace_period_keeps_recent_uploads(app: PortsideApp, client: TestClient) -> None:
    digest = push_blob(client, "team/app", b"just uploaded, manifest still to come")
    assert is_empty(collector(app).plan(timedelta(hours=2)))
    assert [b.digest for b in collector(app).plan(NOW).blobs] == [digest]


def test_shared_blob_survives_while_another_repository_uses_it(
    app: PortsideApp, client: TestClient
) -> None:
    layer = b"a layer two repositories share"
    first = push_image(client, "team/one", "v1", layers=[layer])
    push_image(client, "team/two", "v1", layers=[layer])
    assert client.delete(f"/v2/team/one/manifests/{first.digest}").status_code == 202
    plan = collector(app).plan(NOW)
    assert sha256(layer) in {link.digest for link in plan.links if link.repository == "team/one"}
    assert sha256(layer) not in {b.digest for b in plan.blobs}
    collector(app).run(plan)
    assert client.head(f"/v2/team/two/blobs/{sha256(layer)}").status_code == 200
    assert client.head(f"/v2/team/one/blobs/{sha256(layer)}").status_code == 404
    # The other image's config blob (only team/one's) is gone for good.
    config = blob_digests(first)[0]
    assert not blob_stored(app, config)


def test_untagged_manifests_only_when_asked_and_never_what_a_kept_one_needs(
    app: PortsideApp, client: TestClient
) -> None:
    untagged = push_image(client, "team/app", None, seed="old build")
    amd, arm = (make_image(client, "team/app", seed=s) for s in ("amd", "arm"))
    push_manifest(client, "team/app", amd.digest, amd)
    push_manifest(client, "team/app", arm.digest, arm)
    index = make_index([amd, arm])
    push_manifest(client, "team/app", "multi", index)
    tagged = push_image(client, "team/app", "v1")
    signature = make_artifact(client, "team/app", tagged, payload=b"signature of v1")
    push_manifest(client, "team/app", signature.digest, signature)
    orphan_sbom = make_artifact(client, "team/app", untagged, payload=b"sbom of old build")
    push_manifest(client, "team/app", orphan_sbom.digest, orphan_sbom)

    assert collector(app).plan(NOW).manifests == []
    plan = collector(app).plan(NOW, delete_untagged=True)
    assert {m.digest for m in plan.manifests} == {untagged.digest, orphan_sbom.digest}
    dry_bytes = plan.bytes
    result = collector(app).run(plan)
    assert result.bytes == dry_bytes > 0
    for gone in (untagged, orphan_sbom):
        assert client.get(f"/v2/team/app/manifests/{gone.digest}").status_code == 404
    for kept in (amd, arm, index, tagged, signature):
        assert client.get(f"/v2/team/app/manifests/{kept.digest}").status_code == 200
    for digest in blob_digests(amd) + blob_digests(tagged):
        assert client.head(f"/v2/team/app/blobs/{digest}").status_code == 200


def test_dry_run_bytes_equal_freed_bytes(app: PortsideApp, client: TestClient) -> None:
    for number in range(5):
        manifest = push_image(client, f"team/r{number}", "v1", layers=[b"shared", b"%d" % number])
        client.delete(f"/v2/team/r{number}/manifests/{manifest.digest}")
    plan = collector(app).plan(NOW)
    expected = len(b"shared") + sum(len(b"%d" % n) for n in range(5))
    configs = {d for b in plan.blobs for d in [b.digest]}
    assert len(configs) == 5 + 1 + 5  # five configs, the shared layer once, five layers
    assert plan.bytes == collector(app).run(plan).bytes
    assert plan.bytes >= expected


def test_pushes_racing_sweeps_never_commit_a_manifest_without_its_blobs(
    app: PortsideApp, client: TestClient, settings: Settings
) -> None:
    """Grace period zero, GC in a loop, pushes in a loop that reuse layers (so sweeps
    keep deleting what a push is about to reference): every acknowledged manifest must
    stay complete; a refused one fails cleanly with MANIFEST_BLOB_UNKNOWN."""
    stop = threading.Event()
    sweeps = 0
    errors: list[BaseException] = []

    def sweep() -> None:
        nonlocal sweeps
        gc = collector(app)
        try:
            while not stop.wait(0.05):
                gc.run(gc.plan(NOW))
                sweeps += 1
        except BaseException as error:
            errors.append(error)

    thread = threading.Thread(target=sweep)
    thread.start()
    acknowledged: list[tuple[str, Manifest]] = []
    refused = 0
    try:
        for number in range(40):
            repo = f"race/r{number % 3}"
            layers = [b"common base layer", b"build %d" % (number % 4)]
            for _attempt in range(30):  # as a client would: upload again, PUT again
                manifest = make_image(client, repo, seed=f"s{number % 5}", layers=layers)
                response = client.put(
                    f"/v2/{repo}/manifests/t{number}",
                    content=manifest.body,
                    headers={"content-type": manifest.media_type},
                )
                if response.status_code == 201:
                    acknowledged.append((repo, manifest))
                    break
                assert response.status_code == 400, response.text
                assert response.json()["errors"][0]["code"] == "MANIFEST_BLOB_UNKNOWN"
                refused += 1
    finally:
        stop.set()
        thread.join(60)
    assert not errors, errors
    assert sweeps > 0
    assert acknowledged
    for repo, manifest in acknowledged:
        for digest in blob_digests(manifest):
            response = client.get(f"/v2/{repo}/blobs/{digest}")
            assert response.status_code == 200, (repo, digest)
            assert sha256(response.content) == digest
    report = run_fsck(settings)
    assert report.problems == [], report.problems


def test_untagged_manifest_pushed_again_after_the_plan_stays(
    app: PortsideApp, client: TestClient
) -> None:
    """The run re-checks pushed_at: a manifest pushed again (by digest) between plan and
    run is in use again, even with a zero grace period."""
    image = push_image(client, "team/app", None)
    plan = collector(app).plan(NOW, delete_untagged=True)
    assert [m.digest for m in plan.manifests] == [image.digest]
    push_manifest(client, "team/app", image.digest, image)
    result = collector(app).run(plan)
    assert (result.manifests, result.skipped) == (0, 1 + len(plan.links) + len(plan.blobs))
    assert client.get(f"/v2/team/app/manifests/{image.digest}").status_code == 200
    for digest in blob_digests(image):
        assert client.head(f"/v2/team/app/blobs/{digest}").status_code == 200
