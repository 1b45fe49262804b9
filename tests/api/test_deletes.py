"""DELETE /v2/<name>/manifests/<reference>: untag by tag, remove by digest, conflicts."""

from __future__ import annotations

from starlette.testclient import TestClient

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
    # After the index is gone, the child may be deleted.
    assert client.delete(f"/v2/{REPO}/manifests/{index.digest}").status_code == 202
    assert client.delete(f"/v2/{REPO}/manifests/{child.digest}").status_code == 202


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


def test_delete_subject_leaves_referrers_listable(client: TestClient) -> None:
    subject = push_image(client, REPO, "v1")
    artifact = make_artifact(client, REPO, subject)
    push_manifest(client, REPO, artifact.digest, artifact)
    assert client.delete(f"/v2/{REPO}/manifests/{subject.digest}").status_code == 202
    response = client.get(f"/v2/{REPO}/referrers/{subject.digest}")
    assert response.status_code == 200
    assert [d["digest"] for d in response.json()["manifests"]] == [artifact.digest]


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
