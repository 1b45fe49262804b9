"""podman (private vfs store, plain HTTP) against the registry under test."""

from __future__ import annotations

import json
from typing import Any

import pytest

from .conftest import NO_MEDIA_TYPE_BY_DIGEST_BUG, Target, storage_tool
from .images import Image, ImageIndex, assert_registry_has_same_content
from .tooling import ContainersStorageTool, Skopeo

pytestmark = pytest.mark.clients

TLS = "--tls-verify=false"


@pytest.fixture(scope="module")
def podman(
    tmp_path_factory: pytest.TempPathFactory, containers_env: dict[str, str]
) -> ContainersStorageTool:
    return storage_tool("podman", tmp_path_factory, containers_env)


def inspect(podman: ContainersStorageTool, ref: str) -> dict[str, Any]:
    (info,) = json.loads(podman("image", "inspect", ref).stdout)
    assert isinstance(info, dict)
    return info


def assert_local_image(
    podman: ContainersStorageTool, ref: str, image: Image, digest: str | None = None
) -> None:
    """podman stored the built config and layers (and the given manifest digest)."""
    info = inspect(podman, ref)
    assert f"sha256:{info['Id']}" == image.config_digest
    assert info["RootFS"] == {"Type": "layers", "Layers": image.diff_ids}
    if digest is not None:
        assert info["Digest"] == digest


def clear(podman: ContainersStorageTool) -> None:
    podman("rmi", "--all", "--force")
    assert podman("images", "--quiet").stdout.strip() == ""


def push_and_check(podman: ContainersStorageTool, target: Target, image: Image, ref: str) -> str:
    """``podman push`` the local ``ref``; returns the pushed manifest digest."""
    podman("push", "--quiet", TLS, ref)
    repo, _, tag = ref.removeprefix(f"{target.host}/").rpartition(":")
    assert_registry_has_same_content(target.http, repo, tag, image)
    digest = target.http.manifest(repo, tag).digest
    assert digest is not None
    return digest


def test_push_pull_push_pull(podman: ContainersStorageTool, target: Target, image: Image) -> None:
    podman("pull", "--quiet", f"oci:{target.layout({'v1': image})}:v1")
    first = target.ref("v1")
    podman("tag", image.config_digest.removeprefix("sha256:"), first)
    first_digest = push_and_check(podman, target, image, first)
    clear(podman)

    podman("pull", "--quiet", TLS, first)
    assert_local_image(podman, first, image, first_digest)

    # Push the pulled image under a new name, then pull that back.
    second = target.ref("v2", repo=f"{target.repo}/renamed")
    podman("tag", first, second)
    second_digest = push_and_check(podman, target, image, second)
    clear(podman)

    podman("pull", "--quiet", TLS, second)
    assert_local_image(podman, second, image, second_digest)
    by_digest = target.ref(second_digest, repo=f"{target.repo}/renamed")
    podman("pull", "--quiet", TLS, by_digest)
    assert_local_image(podman, by_digest, image, second_digest)
    clear(podman)


def test_pull_exact_oci_image_and_index(
    podman: ContainersStorageTool,
    skopeo: Skopeo,
    target: Target,
    image: Image,
    image_index: ImageIndex,
) -> None:
    """Images pushed verbatim by skopeo, one of them without ``mediaType``."""
    bare = image.without_media_type()
    layout = target.layout({"bare": bare, "multi": image_index})
    skopeo.push_layout(layout, "bare", target.ref("bare"))
    skopeo.push_layout(layout, "multi", target.ref("multi"), "--all")

    podman("pull", "--quiet", TLS, target.ref("bare"))
    # No digest check: podman re-serializes a manifest without mediaType into
    # its store, so its own "Digest" differs from the pushed one (client quirk).
    assert_local_image(podman, target.ref("bare"), bare)

    multi = target.ref("multi")
    podman("pull", "--quiet", TLS, "--arch", "arm64", multi)
    assert_local_image(podman, multi, image_index.image_for("arm64"), image_index.digest)
    clear(podman)

    # podman checks the fetched manifest against the digest it asked for.
    target.server.xfail_on_distribution(NO_MEDIA_TYPE_BY_DIGEST_BUG)
    podman("pull", "--quiet", TLS, target.ref(bare.digest))
    assert_local_image(podman, target.ref(bare.digest), bare)
    clear(podman)
