"""GET /v2/<name>/referrers/<digest> (OCI distribution spec 1.1)."""

from __future__ import annotations

from starlette.testclient import TestClient

from tests.api.helpers import (
    OCI_CONFIG,
    OCI_INDEX,
    OCI_MANIFEST,
    Manifest,
    assert_error,
    make_artifact,
    make_index,
    push_image,
    push_manifest,
    sha256,
)

REPO = "acme/app"
SBOM = "application/vnd.example.sbom.v1"
SIG = "application/vnd.example.signature.v1"


def referrers(
    client: TestClient, subject: str, query: str = "", repo: str = REPO
) -> list[dict[str, object]]:
    response = client.get(f"/v2/{repo}/referrers/{subject}{query}")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == OCI_INDEX
    body = response.json()
    assert body["schemaVersion"] == 2
    assert body["mediaType"] == OCI_INDEX
    manifests = body["manifests"]
    assert isinstance(manifests, list)
    return manifests


def test_no_referrers_is_an_empty_index(client: TestClient) -> None:
    subject = push_image(client, REPO, "v1")
    response = client.get(f"/v2/{REPO}/referrers/{subject.digest}")
    assert response.status_code == 200
    assert response.headers["content-type"] == OCI_INDEX
    assert response.json() == {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}


def test_referrers_of_unknown_digest_is_an_empty_index(client: TestClient) -> None:
    push_image(client, REPO, "v1")
    assert referrers(client, sha256(b"nothing refers here")) == []


def test_referrers_listed_with_artifact_type_and_annotations(client: TestClient) -> None:
    subject = push_image(client, REPO, "v1")
    sbom = make_artifact(
        client, REPO, subject, artifact_type=SBOM, annotations={"org.example.k": "v"}
    )
    push_manifest(client, REPO, sbom.digest, sbom)
    found = referrers(client, subject.digest)
    assert found == [
        {
            "mediaType": OCI_MANIFEST,
            "digest": sbom.digest,
            "size": sbom.size,
            "artifactType": SBOM,
            "annotations": {"org.example.k": "v"},
        }
    ]


def test_several_referrers(client: TestClient) -> None:
    subject = push_image(client, REPO, "v1")
    sbom = make_artifact(client, REPO, subject, artifact_type=SBOM, payload=b"sbom")
    sig = make_artifact(client, REPO, subject, artifact_type=SIG, payload=b"sig")
    for artifact in (sbom, sig):
        push_manifest(client, REPO, artifact.digest, artifact)
    found = referrers(client, subject.digest)
    assert sorted(str(d["digest"]) for d in found) == sorted([sbom.digest, sig.digest])
    assert {str(d["digest"]): d["artifactType"] for d in found} == {
        sbom.digest: SBOM,
        sig.digest: SIG,
    }


def test_referrer_pushed_by_tag(client: TestClient) -> None:
    subject = push_image(client, REPO, "v1")
    sbom = make_artifact(client, REPO, subject)
    push_manifest(client, REPO, "sbom-tag", sbom)
    assert [d["digest"] for d in referrers(client, subject.digest)] == [sbom.digest]


def test_artifact_type_filter(client: TestClient) -> None:
    subject = push_image(client, REPO, "v1")
    sbom = make_artifact(client, REPO, subject, artifact_type=SBOM, payload=b"sbom")
    sig = make_artifact(client, REPO, subject, artifact_type=SIG, payload=b"sig")
    for artifact in (sbom, sig):
        push_manifest(client, REPO, artifact.digest, artifact)
    response = client.get(f"/v2/{REPO}/referrers/{subject.digest}", params={"artifactType": SIG})
    assert response.status_code == 200
    assert response.headers["oci-filters-applied"] == "artifactType"
    assert [d["digest"] for d in response.json()["manifests"]] == [sig.digest]
    response = client.get(
        f"/v2/{REPO}/referrers/{subject.digest}", params={"artifactType": "application/none"}
    )
    assert response.headers["oci-filters-applied"] == "artifactType"
    assert response.json()["manifests"] == []


def test_no_filter_no_filters_applied_header(client: TestClient) -> None:
    subject = push_image(client, REPO, "v1")
    response = client.get(f"/v2/{REPO}/referrers/{subject.digest}")
    assert "oci-filters-applied" not in response.headers


def test_config_media_type_is_artifact_type_when_none(client: TestClient) -> None:
    subject = push_image(client, REPO, "v1")
    artifact = make_artifact(
        client, REPO, subject, artifact_type=None, config_type="application/vnd.example.config"
    )
    push_manifest(client, REPO, artifact.digest, artifact)
    found = referrers(client, subject.digest)
    assert [d["artifactType"] for d in found] == ["application/vnd.example.config"]
    filtered = referrers(client, subject.digest, "?artifactType=application/vnd.example.config")
    assert [d["digest"] for d in filtered] == [artifact.digest]


def test_image_with_subject_uses_config_type(client: TestClient) -> None:
    subject = push_image(client, REPO, "v1")
    image = push_image(client, REPO, None, seed="derived", subject=subject.descriptor())
    found = referrers(client, subject.digest)
    assert found[0]["digest"] == image.digest
    assert found[0]["artifactType"] == OCI_CONFIG


def test_index_as_referrer(client: TestClient) -> None:
    subject = push_image(client, REPO, "v1")
    child = push_image(client, REPO, None, seed="child")
    index = make_index([child], subject=subject.descriptor(), artifactType=SIG)
    push_manifest(client, REPO, index.digest, index)
    found = referrers(client, subject.digest)
    assert found == [
        {"mediaType": OCI_INDEX, "digest": index.digest, "size": index.size, "artifactType": SIG}
    ]


def test_referrers_before_subject_exists(client: TestClient) -> None:
    ghost = Manifest(b'{"not yet": "pushed"}', OCI_MANIFEST)
    artifact = make_artifact(client, REPO, ghost)
    push_manifest(client, REPO, artifact.digest, artifact)
    assert [d["digest"] for d in referrers(client, ghost.digest)] == [artifact.digest]


def test_referrers_are_per_repository(client: TestClient) -> None:
    subject = push_image(client, REPO, "v1")
    artifact = make_artifact(client, "other", subject)
    push_manifest(client, "other", artifact.digest, artifact)
    assert referrers(client, subject.digest) == []
    assert [d["digest"] for d in referrers(client, subject.digest, repo="other")] == [
        artifact.digest
    ]


def test_referrers_invalid_digest(client: TestClient) -> None:
    for digest in ("sha256:abc", "latest", "md5:d41d8cd98f00b204e9800998ecf8427e"):
        response = client.get(f"/v2/{REPO}/referrers/{digest}")
        assert_error(response, 400, "DIGEST_INVALID")


def test_referrers_rejects_other_methods(client: TestClient) -> None:
    subject = push_image(client, REPO, "v1")
    assert_error(client.delete(f"/v2/{REPO}/referrers/{subject.digest}"), 405, "UNSUPPORTED")
