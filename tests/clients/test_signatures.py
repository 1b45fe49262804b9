"""Real clients against the "only signed images" pull policy.

skopeo pushes two images and the cosign signature of one of them (the signature image
in cosign's tag scheme, `sha256-<hex>.sig`, built with `cryptography`; no cosign binary
here); the project trusts the signing key and requires signatures. skopeo then pulls the
signed image and its `.sig` artifact, and is refused the unsigned one with the policy's
message. docker and podman variants check the same refusal as they report it.

The module starts its own (open) Portside on a fresh database; the project, its trusted
key and its policy are made through the services the CLI uses, as an operator would with
`portside project key add` and `portside project policy set --require-signed`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from portside.auth.projects import Projects
from portside.signatures.keys import PolicySettings, TrustedKeys
from tests.durability.server import ServerProcess
from tests.signatures import builders as b

from .conftest import containers_config, own_portside, storage_tool
from .images import Image, build_image, write_layout
from .test_docker import docker  # noqa: F401 (the fixture: a private dockerd)
from .tooling import OCI_INDEX, CommandError, ContainersStorageTool, Docker, Skopeo, require_binary

pytestmark = pytest.mark.clients

REFUSAL = "pull refused by project policy 'only signed images'"


@dataclass
class SignedWorld:
    server: ServerProcess
    host: str
    signed: Image
    unsigned: Image
    skopeo: Skopeo
    scratch: Path

    def ref(self, reference: str) -> str:
        return f"{self.host}/signed/app:{reference}"


def _layout_of(path: Path, manifest: bytes, blobs: list[bytes], ref: str) -> Path:
    """An OCI image layout holding one manifest (the cosign signature image) as `ref`."""
    for blob in [*blobs, manifest]:
        digest = b.sha256(blob)
        target = path / "blobs" / "sha256" / digest.split(":")[1]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(blob)
    (path / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    descriptor = {
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": b.sha256(manifest),
        "size": len(manifest),
        "annotations": {"org.opencontainers.image.ref.name": ref},
    }
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [descriptor]}
    (path / "index.json").write_text(json.dumps(index))
    return path


@pytest.fixture(scope="module")
def signed_world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SignedWorld]:
    root = tmp_path_factory.mktemp("signed-server")
    skopeo_binary = require_binary("skopeo")
    with own_portside(request, root, "signatures") as (process, db):
        host = f"127.0.0.1:{process.port}"
        (root / "conf").mkdir()
        skopeo = Skopeo(skopeo_binary, containers_config(root / "conf", insecure=host))
        signed, unsigned = build_image("signed image"), build_image("unsigned image")
        Projects(db).create("signed", creator="tests")
        key = b.p256()
        TrustedKeys(db).add("signed", "release", key.public_pem)
        layout = write_layout(root / "images", {"good": signed, "bad": unsigned})
        skopeo.push_layout(layout, "good", f"{host}/signed/app:good")
        skopeo.push_layout(layout, "bad", f"{host}/signed/app:bad")
        # cosign sign: the signature image, pushed under its tag by skopeo.
        layers = [b.cosign_layer(key, signed.digest)]
        tag = b.sig_tag(signed.digest)
        sig_layout = _layout_of(
            root / "signature", b.cosign_manifest(layers), b.cosign_blobs(layers), tag
        )
        skopeo.push_layout(sig_layout, tag, f"{host}/signed/app:{tag}")
        PolicySettings(db).update("signed", require_signed=True)
        yield SignedWorld(process, host, signed, unsigned, skopeo, root / "pulled")


def _pull(world: SignedWorld, reference: str, name: str) -> None:
    world.scratch.mkdir(exist_ok=True)
    world.skopeo.pull_layout(world.ref(reference), world.scratch / name, name)


def test_skopeo_pulls_the_signed_image_and_its_signature(signed_world: SignedWorld) -> None:
    _pull(signed_world, "good", "good")
    _pull(signed_world, b.sig_tag(signed_world.signed.digest), "sig")
    pulled = json.loads((signed_world.scratch / "good" / "index.json").read_text())
    assert signed_world.signed.digest in {m["digest"] for m in pulled["manifests"]}


def test_skopeo_is_refused_the_unsigned_image_with_the_policy(signed_world: SignedWorld) -> None:
    with pytest.raises(CommandError) as refused:
        _pull(signed_world, "bad", "bad")
    message = str(refused.value)
    assert REFUSAL in message, message
    assert "the artifact has no signature" in message, message
    # Inspecting without the manifest body is allowed (HEAD); the content is not.
    digest = signed_world.skopeo(
        "inspect", "--tls-verify=false", "--format", "{{.Digest}}",
        f"docker://{signed_world.ref('good')}",
    ).stdout.strip()  # fmt: skip
    assert digest == signed_world.signed.digest


# Written but not run in this session (they start dockerd / use podman's store, which
# collide when several test runs share the machine).
def test_podman_pull_refused_with_the_policy(
    signed_world: SignedWorld, tmp_path_factory: pytest.TempPathFactory
) -> None:
    env = dict(signed_world.skopeo.env)
    podman: ContainersStorageTool = storage_tool("podman", tmp_path_factory, env)
    podman("pull", "--quiet", "--tls-verify=false", signed_world.ref("good"))
    result = podman("pull", "--quiet", "--tls-verify=false", signed_world.ref("bad"), check=False)
    assert result.returncode != 0
    assert REFUSAL in result.stderr, result.stderr


def test_docker_pull_refused_with_the_policy(
    signed_world: SignedWorld,
    docker: Docker,  # noqa: F811 (the imported fixture)
) -> None:
    docker("pull", "--quiet", signed_world.ref("good"))
    result = docker("pull", signed_world.ref("bad"), check=False)
    assert result.returncode != 0
    assert REFUSAL in result.stderr, result.stderr
