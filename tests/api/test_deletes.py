"""DELETE /v2/<name>/manifests/<reference>: untag by tag, remove by digest (with what only
that manifest kept: its referrers and unlisted children), conflicts, events."""

from __future__ import annotations

from starlette.testclient import TestClient

from portside.app import PortsideApp
from portside.events import outbox
from tests.api.helpers import (
    assert_error,
    make_artifact,
    make_index,
    push_image,
    push_manifest,
    sha256,
    tags_of,
)

REPO = "acme/app"


def test_delete_by_tag_only_untags(client: TestClient) -> None:
    manifest = push_image(client, REPO, "v1")
    push_manifest(client, REPO, "v2", manifest)
    response = client.delete(f"/v2/{REPO}/manifests/v1")
    assert response.status_code == 202, response.text
    assert_error(client.get(f"/v2/{REPO}/manifests/v1"), 404, "MANIFEST_UNKNOWN")
    assert client.get(f"/v2/{REPO}/manifests/{manifest.digest}").content == manifest.body
    assert client.get(f"/v2/{REPO}/manifests/v2").content == manifest.body
    assert tags_of(client, REPO) == ["v2"]


def test_delete_last_tag_keeps_manifest(client: TestClient) -> None:
    manifest = push_image(client, REPO, "v1")
    assert client.delete(f"/v2/{REPO}/manifests/v1").status_code == 202
    assert client.get(f"/v2/{REPO}/manifests/{manifest.digest}").status_code == 200
    assert tags_of(client, REPO) == []


def test_delete_by_digest_removes_manifest_and_tags(client: TestClient) -> None:
    manifest = push_image(client, REPO, "v1")
    push_manifest(client, REPO, "v2", manifest)
    other = push_image(client, REPO, "keep", seed="other")
    response = client.delete(f"/v2/{REPO}/manifests/{manifest.digest}")
    assert response.status_code == 202, response.text
    assert_error(client.get(f"/v2/{REPO}/manifests/{manifest.digest}"), 404, "MANIFEST_UNKNOWN")
    assert client.head(f"/v2/{REPO}/manifests/{manifest.digest}").status_code == 404
    assert_error(client.get(f"/v2/{REPO}/manifests/v1"), 404, "MANIFEST_UNKNOWN")
    assert_error(client.get(f"/v2/{REPO}/manifests/v2"), 404, "MANIFEST_UNKNOWN")
    assert tags_of(client, REPO) == ["keep"]
    assert client.get(f"/v2/{REPO}/manifests/keep").content == other.body


def test_delete_by_digest_twice(client: TestClient) -> None:
    manifest = push_image(client, REPO, "v1")
    assert client.delete(f"/v2/{REPO}/manifests/{manifest.digest}").status_code == 202
    assert_error(client.delete(f"/v2/{REPO}/manifests/{manifest.digest}"), 404, "MANIFEST_UNKNOWN")


def test_delete_only_affects_its_repository(client: TestClient) -> None:
    manifest = push_image(client, REPO, "v1")
    other = push_image(client, "other", "v1", seed=REPO + "v1")
    assert other.digest == manifest.digest
    assert client.delete(f"/v2/{REPO}/manifests/{manifest.digest}").status_code == 202
    assert client.get("/v2/other/manifests/v1").content == manifest.body


def test_delete_unknown_tag(client: TestClient) -> None:
    push_image(client, REPO, "v1")
    assert_error(client.delete(f"/v2/{REPO}/manifests/nope"), 404, "MANIFEST_UNKNOWN")


def test_delete_unknown_digest(client: TestClient) -> None:
    push_image(client, REPO, "v1")
    response = client.delete(f"/v2/{REPO}/manifests/{sha256(b'nothing')}")
    assert_error(response, 404, "MANIFEST_UNKNOWN")


def test_delete_in_unknown_repository(client: TestClient) -> None:
    response = client.delete(f"/v2/nobody/manifests/{sha256(b'nothing')}")
    assert response.status_code == 404
    codes = [e["code"] for e in response.json()["errors"]]
    assert set(codes) & {"MANIFEST_UNKNOWN", "NAME_UNKNOWN"}
    response = client.delete("/v2/nobody/manifests/latest")
    assert response.status_code == 404


def test_delete_invalid_reference(client: TestClient) -> None:
    assert_error(client.delete(f"/v2/{REPO}/manifests/sha256:zz"), 400, "DIGEST_INVALID")
    assert_error(client.delete(f"/v2/{REPO}/manifests/-bad"), 400, "TAG_INVALID")


def test_delete_child_of_index_conflicts(client: TestClient) -> None:
    child = push_image(client, REPO, None, seed="child")
    index = make_index([child])
    push_manifest(client, REPO, "multi", index)
    response = client.delete(f"/v2/{REPO}/manifests/{child.digest}")
    assert_error(response, 409)
    assert client.get(f"/v2/{REPO}/manifests/{child.digest}").status_code == 200
    # Deleting the index takes its untagged child along (content.deletion).
    assert client.delete(f"/v2/{REPO}/manifests/{index.digest}").status_code == 202
    assert_error(client.get(f"/v2/{REPO}/manifests/{child.digest}"), 404, "MANIFEST_UNKNOWN")


def test_delete_child_of_index_in_other_repository_is_allowed(client: TestClient) -> None:
    child = push_image(client, REPO, None, seed="child")
    other_child = push_image(client, "other", None, seed="child")
    assert other_child.digest == child.digest
    push_manifest(client, "other", "multi", make_index([other_child]))
    assert client.delete(f"/v2/{REPO}/manifests/{child.digest}").status_code == 202


def test_delete_index_keeps_children(client: TestClient) -> None:
    child = push_image(client, REPO, "child")
    index = make_index([child])
    push_manifest(client, REPO, "multi", index)
    assert client.delete(f"/v2/{REPO}/manifests/{index.digest}").status_code == 202
    assert client.get(f"/v2/{REPO}/manifests/child").status_code == 200


def test_delete_subject_deletes_its_referrers(client: TestClient) -> None:
    """As Harbor deletes an image's accessories: its signature, the SBOM and the SBOM's
    signature go with it, so none is left as an orphan of a vanished digest."""
    subject = push_image(client, REPO, "v1")
    signature = make_artifact(client, REPO, subject, payload=b"signature")
    sbom = make_artifact(client, REPO, subject, payload=b"sbom")
    sbom_signature = make_artifact(client, REPO, sbom, payload=b"signature of the sbom")
    for artifact in (signature, sbom, sbom_signature):
        push_manifest(client, REPO, artifact.digest, artifact)
    other = push_image(client, REPO, "v2", seed="other")
    other_signature = make_artifact(client, REPO, other, payload=b"signature of v2")
    push_manifest(client, REPO, other_signature.digest, other_signature)
    assert client.delete(f"/v2/{REPO}/manifests/{subject.digest}").status_code == 202
    for gone in (subject, signature, sbom, sbom_signature):
        assert client.get(f"/v2/{REPO}/manifests/{gone.digest}").status_code == 404
    assert client.get(f"/v2/{REPO}/referrers/{subject.digest}").json()["manifests"] == []
    listed = client.get(f"/v2/{REPO}/referrers/{other.digest}").json()["manifests"]
    assert [d["digest"] for d in listed] == [other_signature.digest]


def test_delete_subject_keeps_a_referrer_with_its_own_tag(client: TestClient) -> None:
    subject = push_image(client, REPO, "v1")
    named = make_artifact(client, REPO, subject, payload=b"a named attestation")
    push_manifest(client, REPO, "attestation", named)
    assert client.delete(f"/v2/{REPO}/manifests/{subject.digest}").status_code == 202
    assert client.get(f"/v2/{REPO}/manifests/attestation").content == named.body


def test_delete_index_takes_only_what_nothing_else_needs(client: TestClient) -> None:
    alone, tagged, shared = (
        push_image(client, REPO, None, seed=seed) for seed in ("alone", "tagged", "shared")
    )
    push_manifest(client, REPO, "amd64", tagged)
    index = make_index([alone, tagged, shared])
    push_manifest(client, REPO, "multi", index)
    push_manifest(client, REPO, "other", make_index([shared]))
    assert client.delete(f"/v2/{REPO}/manifests/{index.digest}").status_code == 202
    assert client.get(f"/v2/{REPO}/manifests/{alone.digest}").status_code == 404
    assert client.get(f"/v2/{REPO}/manifests/{tagged.digest}").status_code == 200
    assert client.get(f"/v2/{REPO}/manifests/{shared.digest}").status_code == 200


def test_delete_emits_events_for_the_manifest_its_tags_and_what_it_took_along(
    app: PortsideApp, client: TestClient
) -> None:
    subject = push_image(client, REPO, "v1")
    push_manifest(client, REPO, "stable", subject)
    signature = make_artifact(client, REPO, subject, payload=b"signature")
    push_manifest(client, REPO, signature.digest, signature)
    after = max((e.id for e in outbox.recent(app.ctx.db, limit=10_000)), default=0)
    assert client.delete(f"/v2/{REPO}/manifests/{subject.digest}").status_code == 202
    events = outbox.recent(app.ctx.db, after=after)
    assert [(e.type, e.resource) for e in events] == [
        ("tag.deleted", f"{REPO}:stable"),
        ("tag.deleted", f"{REPO}:v1"),
        ("artifact.deleted", f"{REPO}@{subject.digest}"),
        ("artifact.deleted", f"{REPO}@{signature.digest}"),
    ]
    assert events[2].data == {
        "digest": subject.digest,
        "media_type": subject.media_type,
        "tags": ["stable", "v1"],
        "by": "api",
    }
    assert events[3].data["along_with"] == subject.digest
    assert {(e.actor, e.repository, e.project) for e in events} == {("anonymous", REPO, "acme")}


def test_delete_referrer_removes_it_from_listing(client: TestClient) -> None:
    subject = push_image(client, REPO, "v1")
    artifact = make_artifact(client, REPO, subject)
    push_manifest(client, REPO, artifact.digest, artifact)
    assert client.delete(f"/v2/{REPO}/manifests/{artifact.digest}").status_code == 202
    assert client.get(f"/v2/{REPO}/referrers/{subject.digest}").json()["manifests"] == []


def test_deletes_disabled(no_delete_client: TestClient) -> None:
    client = no_delete_client
    manifest = push_image(client, REPO, "v1")
    for reference in ("v1", manifest.digest):
        response = client.delete(f"/v2/{REPO}/manifests/{reference}")
        assert_error(response, 405, "UNSUPPORTED")
    assert client.get(f"/v2/{REPO}/manifests/v1").content == manifest.body


def test_repush_after_delete(client: TestClient) -> None:
    manifest = push_image(client, REPO, "v1")
    assert client.delete(f"/v2/{REPO}/manifests/{manifest.digest}").status_code == 202
    push_manifest(client, REPO, "v1", manifest)
    assert client.get(f"/v2/{REPO}/manifests/v1").content == manifest.body
