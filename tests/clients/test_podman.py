"""podman (private vfs store, plain HTTP) against the registry under test."""

from __future__ import annotations

import json

import pytest

from .conftest import NO_MEDIA_TYPE_BY_DIGEST_BUG, LayoutWriter, RegistryServer, storage_tool
from .images import Image, ImageIndex, assert_registry_has_same_content
from .tooling import ContainersStorageTool, RegistryHTTP, Skopeo

pytestmark = pytest.mark.clients

TLS = "--tls-verify=false"


@pytest.fixture(scope="module")
def podman(
    tmp_path_factory: pytest.TempPathFactory, containers_env: dict[str, str]
) -> ContainersStorageTool:
    return storage_tool("podman", tmp_path_factory, containers_env)


def inspect(podman: ContainersStorageTool, ref: str) -> dict[str, object]:
    (info,) = json.loads(podman("image", "inspect", ref).stdout)
    assert isinstance(info, dict)
    return info


def assert_local_image(podman: ContainersStorageTool, ref: str, image: Image, digest: str) -> None:
    info = inspect(podman, ref)
    assert f"sha256:{info['Id']}" == image.config_digest
    assert info["Digest"] == digest
    assert info["RootFS"] == {"Type": "layers", "Layers": image.diff_ids}


def clear(podman: ContainersStorageTool) -> None:
    podman("rmi", "--all", "--force")
    assert podman("images", "--quiet").stdout.strip() == ""


def test_push_pull_push_pull(
    podman: ContainersStorageTool,
    registry: RegistryServer,
    registry_http: RegistryHTTP,
    repo: str,
    image: Image,
    oci_layout: LayoutWriter,
) -> None:
    layout = oci_layout({"v1": image})
    podman("pull", "--quiet", f"oci:{layout}:v1")

    first = registry.ref(repo, "v1")
    podman("push", "--quiet", TLS, image.config_digest.removeprefix("sha256:"), first)
    assert_registry_has_same_content(registry_http, repo, "v1", image)
    first_digest = registry_http.manifest(repo, "v1").digest
    assert first_digest is not None
    clear(podman)

    podman("pull", "--quiet", TLS, first)
    assert_local_image(podman, first, image, first_digest)

    # Push the pulled image under a new name, then pull that back.
    second_repo = f"{repo}/renamed"
    second = registry.ref(second_repo, "v2")
    podman("tag", first, second)
    podman("push", "--quiet", TLS, second)
    assert_registry_has_same_content(registry_http, second_repo, "v2", image)
    second_digest = registry_http.manifest(second_repo, "v2").digest
    assert second_digest is not None
    clear(podman)

    podman("pull", "--quiet", TLS, second)
    assert_local_image(podman, second, image, second_digest)
    podman("pull", "--quiet", TLS, f"{registry.host}/{second_repo}@{second_digest}")
    clear(podman)


def test_pull_exact_oci_image_and_index(
    podman: ContainersStorageTool,
    skopeo: Skopeo,
    registry: RegistryServer,
    repo: str,
    image: Image,
    image_index: ImageIndex,
    oci_layout: LayoutWriter,
) -> None:
    """Images pushed verbatim (also one without ``mediaType``) pull by digest."""
    bare = image.without_media_type()
    layout = oci_layout({"bare": bare, "multi": image_index})
    for ref, flags in (("bare", []), ("multi", ["--all"])):
        skopeo.push_layout(layout, ref, registry.ref(repo, ref), *flags)

    bare_tag = registry.ref(repo, "bare")
    podman("pull", "--quiet", TLS, bare_tag)
    info = inspect(podman, bare_tag)
    assert f"sha256:{info['Id']}" == bare.config_digest
    assert info["RootFS"] == {"Type": "layers", "Layers": bare.diff_ids}
    # (podman re-serializes a manifest without mediaType into its store, so
    # its own "Digest" differs from the pushed one: a client quirk.)

    arm = image_index.image_for("arm64")
    multi = registry.ref(repo, "multi")
    podman("pull", "--quiet", TLS, "--arch", "arm64", multi)
    info = inspect(podman, multi)
    assert f"sha256:{info['Id']}" == arm.config_digest
    assert info["Digest"] == image_index.digest
    clear(podman)

    # podman checks the fetched manifest against the digest it asked for.
    registry.xfail_on_distribution(NO_MEDIA_TYPE_BY_DIGEST_BUG)
    by_digest = registry.ref(repo, bare.digest)
    podman("pull", "--quiet", TLS, by_digest)
    assert f"sha256:{inspect(podman, by_digest)['Id']}" == bare.config_digest
    clear(podman)
