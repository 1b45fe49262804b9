"""buildah (private vfs store, plain HTTP) against the registry under test."""

from __future__ import annotations

import json

import pytest

from .conftest import Target, storage_tool
from .images import Image, assert_registry_has_same_content
from .tooling import ContainersStorageTool

pytestmark = pytest.mark.clients

TLS = "--tls-verify=false"
LABEL = "org.example.portside.committed"


@pytest.fixture(scope="module")
def buildah(
    tmp_path_factory: pytest.TempPathFactory, containers_env: dict[str, str]
) -> ContainersStorageTool:
    return storage_tool("buildah", tmp_path_factory, containers_env)


def clear(buildah: ContainersStorageTool) -> None:
    buildah("rm", "--all")
    buildah("rmi", "--all", "--force")


def test_from_commit_push(buildah: ContainersStorageTool, target: Target, image: Image) -> None:
    registry_http, repo = target.http, target.repo
    # Seed the registry with buildah itself.
    layout = target.layout({"v1": image})
    buildah("pull", "--quiet", f"oci:{layout}:v1")
    base = target.ref("base")
    buildah("push", "--quiet", TLS, image.config_digest.removeprefix("sha256:"), f"docker://{base}")
    assert_registry_has_same_content(registry_http, repo, "base", image)
    clear(buildah)

    # `buildah from` pulls from the registry (insecure via registries.conf).
    container = buildah("from", "--quiet", "--pull-always", base).stdout.strip()
    from_info = json.loads(buildah("inspect", "--type", "container", container).stdout)
    assert from_info["FromImageID"] == image.config_digest.removeprefix("sha256:")
    buildah("config", "--label", f"{LABEL}=yes", container)
    committed = target.ref("committed")
    buildah("commit", "--quiet", container, committed)
    buildah("push", "--quiet", TLS, committed)

    manifest = assert_registry_has_same_content(
        registry_http, repo, "committed", image, extra_layers_ok=True
    )
    config = json.loads(registry_http.blob(repo, manifest["config"]["digest"]))
    assert config["config"]["Labels"][LABEL] == "yes"
    assert config["config"]["Cmd"] == ["/bin/hello"]
    clear(buildah)

    # Pull the committed image back and compare with what the registry holds.
    buildah("pull", "--quiet", TLS, committed)
    info = json.loads(buildah("inspect", "--type", "image", committed).stdout)
    assert f"sha256:{info['FromImageID']}" == manifest["config"]["digest"]
    assert info["FromImageDigest"] == registry_http.manifest(repo, "committed").digest
    clear(buildah)
