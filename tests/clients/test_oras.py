"""ORAS artifacts via the oras-py library against the registry under test.

oras-py cannot set ``artifactType``; ``ArtifactRegistry`` adds it to the
manifest just before upload. Subjects (referrers) are native to oras-py.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import oras.oci
import oras.provider
import pytest

from .conftest import RegistryServer, Target
from .images import sha256
from .tooling import OCI_INDEX, OCI_MANIFEST, RegistryHTTP

pytestmark = pytest.mark.clients

SBOM_TYPE = "application/vnd.example.portside.sbom.v1+json"
SIGNATURE_TYPE = "application/vnd.example.portside.signature.v1"
ARTIFACT_TYPE = "application/vnd.example.portside.bundle.v1"
DATA_MEDIA_TYPE = "application/vnd.example.portside.data.v1"


class ArtifactRegistry(oras.provider.Registry):  # type: ignore[misc]
    """oras-py's client, plus an ``artifactType`` on the pushed manifest."""

    artifact_type: str | None = None

    def upload_manifest(self, manifest: dict[str, Any], container: Any) -> Any:
        if self.artifact_type is not None:
            manifest["artifactType"] = self.artifact_type
        return super().upload_manifest(manifest, container)


def oras_client(registry: RegistryServer, artifact_type: str) -> ArtifactRegistry:
    client = ArtifactRegistry(hostname=registry.host, insecure=True)
    client.artifact_type = artifact_type
    return client


def push(
    registry: RegistryServer,
    artifact_type: str,
    target: str,
    files: list[Path],
    subject: oras.oci.Subject | None = None,
) -> None:
    client = oras_client(registry, artifact_type)
    response = client.push(
        target=target,
        files=[f"{path}:{DATA_MEDIA_TYPE}" for path in files],
        disable_path_validation=True,
        subject=subject,
        do_chunked=True,
        chunk_size=512 * 1024,
        quiet=True,
    )
    assert response.status_code == 201, response.text


def write_files(directory: Path, seed: str) -> dict[str, bytes]:
    directory.mkdir()
    rng = random.Random(seed)
    files = {
        "notes.txt": f"artifact for {seed}\n".encode(),
        "payload.bin": rng.randbytes(1536 * 1024),  # several chunks
    }
    for name, data in files.items():
        (directory / name).write_bytes(data)
    return files


def pushed_subject(http: RegistryHTTP, repo: str, tag: str) -> oras.oci.Subject:
    fetched = http.manifest(repo, tag)
    digest = sha256(fetched.body)
    assert fetched.digest in (None, digest)
    return oras.oci.Subject(mediaType=OCI_MANIFEST, digest=digest, size=len(fetched.body))


def test_push_pull_artifact(target: Target, session_nonce: str) -> None:
    registry, registry_http, repo, tmp_path = target.server, target.http, target.repo, target.tmp
    files = write_files(tmp_path / "in", f"{repo}#{session_nonce}")
    bundle = registry.ref(repo, "bundle")
    push(registry, ARTIFACT_TYPE, bundle, [tmp_path / "in" / name for name in files])

    manifest = registry_http.manifest(repo, "bundle").json()
    assert manifest["artifactType"] == ARTIFACT_TYPE
    assert [layer["mediaType"] for layer in manifest["layers"]] == [DATA_MEDIA_TYPE] * 2
    titles = [
        layer["annotations"]["org.opencontainers.image.title"] for layer in manifest["layers"]
    ]
    assert titles == list(files)
    assert registry_http.tags(repo) == ["bundle"]

    out = tmp_path / "out"
    pulled = oras_client(registry, ARTIFACT_TYPE).pull(target=bundle, outdir=str(out))
    assert sorted(Path(path).name for path in pulled) == sorted(files)
    for name, data in files.items():
        assert (out / name).read_bytes() == data


def test_referrers(target: Target, session_nonce: str) -> None:
    registry, registry_http, repo, tmp_path = target.server, target.http, target.repo, target.tmp
    files = write_files(tmp_path / "in", f"{repo}#{session_nonce}")
    paths = [tmp_path / "in" / name for name in files]
    push(registry, ARTIFACT_TYPE, registry.ref(repo, "subject"), paths)
    subject = pushed_subject(registry_http, repo, "subject")

    # Two referrers of different artifact types, pushed by tag.
    push(registry, SBOM_TYPE, registry.ref(repo, "sbom"), paths[:1], subject=subject)
    push(registry, SIGNATURE_TYPE, registry.ref(repo, "sig"), paths[1:], subject=subject)
    sbom = registry_http.manifest(repo, "sbom")
    sig = registry_http.manifest(repo, "sig")
    assert sbom.json()["subject"]["digest"] == subject.digest

    # The referrers themselves pull back intact.
    out = tmp_path / "out"
    oras_client(registry, SBOM_TYPE).pull(target=registry.ref(repo, "sbom"), outdir=str(out))
    assert (out / "notes.txt").read_bytes() == files["notes.txt"]

    if registry.is_distribution:
        pytest.skip("Distribution 2.8 has no referrers API (GET /v2/<name>/referrers/<digest>)")

    expected = {
        sha256(sbom.body): (SBOM_TYPE, len(sbom.body)),
        sha256(sig.body): (SIGNATURE_TYPE, len(sig.body)),
    }
    response = registry_http.referrers(repo, subject.digest)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].split(";")[0] == OCI_INDEX
    index = json.loads(response.content)
    assert index["schemaVersion"] == 2
    assert index["mediaType"] == OCI_INDEX
    found = {d["digest"]: (d["artifactType"], d["size"]) for d in index["manifests"]}
    assert found == expected
    assert {d["mediaType"] for d in index["manifests"]} == {OCI_MANIFEST}

    filtered = registry_http.referrers(repo, subject.digest, artifact_type=SBOM_TYPE)
    assert filtered.status_code == 200, filtered.text
    assert filtered.headers.get("oci-filters-applied") == "artifactType"
    assert [d["digest"] for d in json.loads(filtered.content)["manifests"]] == [sha256(sbom.body)]

    none = registry_http.referrers(repo, subject.digest, artifact_type="application/x-none")
    assert none.status_code == 200
    assert json.loads(none.content)["manifests"] == []

    # A digest nothing refers to has an empty (not missing) referrers list.
    unrelated = registry_http.referrers(repo, sha256(b"nothing refers to this"))
    assert unrelated.status_code == 200
    assert json.loads(unrelated.content)["manifests"] == []
