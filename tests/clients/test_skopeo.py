"""skopeo (containers/image) against the registry under test."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import NO_MEDIA_TYPE_BY_DIGEST_BUG, LayoutWriter, RegistryServer
from .images import (
    Image,
    ImageIndex,
    Layout,
    assert_layout_has_image,
    assert_layout_has_index,
    assert_registry_has_exact_image,
    assert_registry_has_same_content,
    sha256,
)
from .tooling import DOCKER_CONFIG, DOCKER_LAYER_GZIP, DOCKER_MANIFEST, RegistryHTTP, Skopeo

pytestmark = pytest.mark.clients

PUSH = "--dest-tls-verify=false"
PULL = "--src-tls-verify=false"


def push_layout(skopeo: Skopeo, layout: Path, ref: str, dest: str, *flags: str) -> None:
    skopeo.push_layout(layout, ref, dest, *flags)


def pull_layout(skopeo: Skopeo, src: str, layout: Path, ref: str, *flags: str) -> Layout:
    return Layout(skopeo.pull_layout(src, layout, ref, *flags))


def test_copy_roundtrip(
    skopeo: Skopeo,
    registry: RegistryServer,
    registry_http: RegistryHTTP,
    repo: str,
    image: Image,
    oci_layout: LayoutWriter,
    tmp_path: Path,
) -> None:
    layout = oci_layout({"v1": image})
    push_layout(skopeo, layout, "v1", registry.ref(repo, "v1"))
    assert_registry_has_exact_image(registry_http, repo, "v1", image)
    assert_registry_has_exact_image(registry_http, repo, image.digest, image)

    pulled = pull_layout(skopeo, registry.ref(repo, "v1"), tmp_path / "pulled", "v1")
    assert_layout_has_image(pulled, image, "v1")

    by_digest = pull_layout(skopeo, registry.ref(repo, image.digest), tmp_path / "bydigest", "x")
    assert_layout_has_image(by_digest, image, "x")


def test_manifest_without_media_type_is_kept_verbatim(
    skopeo: Skopeo,
    registry: RegistryServer,
    registry_http: RegistryHTTP,
    repo: str,
    image: Image,
    oci_layout: LayoutWriter,
    tmp_path: Path,
) -> None:
    bare = image.without_media_type()
    assert b'"mediaType": "application/vnd.oci.image.manifest' not in bare.manifest
    layout = oci_layout({"bare": bare})
    push_layout(skopeo, layout, "bare", registry.ref(repo, "bare"))
    assert_registry_has_exact_image(registry_http, repo, "bare", bare)

    pulled = pull_layout(skopeo, registry.ref(repo, "bare"), tmp_path / "pulled", "bare")
    assert_layout_has_image(pulled, bare, "bare")

    registry.xfail_on_distribution(NO_MEDIA_TYPE_BY_DIGEST_BUG)
    assert_registry_has_exact_image(registry_http, repo, bare.digest, bare)
    by_digest = pull_layout(skopeo, registry.ref(repo, bare.digest), tmp_path / "bd", "bd")
    assert_layout_has_image(by_digest, bare, "bd")


def test_copy_all_multi_arch_index(
    skopeo: Skopeo,
    registry: RegistryServer,
    registry_http: RegistryHTTP,
    repo: str,
    image_index: ImageIndex,
    oci_layout: LayoutWriter,
    tmp_path: Path,
) -> None:
    layout = oci_layout({"multi": image_index})
    push_layout(skopeo, layout, "multi", registry.ref(repo, "multi"), "--all")

    fetched = registry_http.manifest(repo, "multi")
    assert fetched.body == image_index.index
    assert fetched.media_type.split(";")[0] == "application/vnd.oci.image.index.v1+json"
    for child in image_index.images:
        assert_registry_has_exact_image(registry_http, repo, child.digest, child)

    pulled = pull_layout(skopeo, registry.ref(repo, "multi"), tmp_path / "all", "multi", "--all")
    assert_layout_has_index(pulled, image_index, "multi")

    # Without --all, skopeo resolves the index to one platform.
    arm = image_index.image_for("arm64")
    single = pull_layout(
        skopeo,
        registry.ref(repo, "multi"),
        tmp_path / "arm",
        "arm",
        "--override-arch",
        "arm64",
    )
    assert_layout_has_image(single, arm, "arm")


def test_inspect_returns_pushed_bytes(
    skopeo: Skopeo,
    registry: RegistryServer,
    repo: str,
    image: Image,
    oci_layout: LayoutWriter,
) -> None:
    layout = oci_layout({"v1": image})
    push_layout(skopeo, layout, "v1", registry.ref(repo, "v1"))
    src = f"docker://{registry.ref(repo, 'v1')}"

    raw = skopeo("inspect", "--raw", "--tls-verify=false", src).stdout
    assert raw.encode() == image.manifest

    config = skopeo("inspect", "--config", "--raw", "--tls-verify=false", src).stdout
    assert config.encode() == image.config

    info = json.loads(skopeo("inspect", "--tls-verify=false", src).stdout)
    assert info["Digest"] == image.digest
    assert info["Layers"] == [layer.digest for layer in image.layers]
    assert info["Architecture"] == "amd64"
    assert info["Labels"] == {"org.example.portside.seed": image.seed}


def test_list_tags(
    skopeo: Skopeo,
    registry: RegistryServer,
    repo: str,
    image: Image,
    oci_layout: LayoutWriter,
) -> None:
    layout = oci_layout({"v1": image})
    tags = ["1.0", "1.0.1", "latest", "v1", "z_last"]
    for tag in tags:
        push_layout(skopeo, layout, "v1", registry.ref(repo, tag))
    out = skopeo("list-tags", "--tls-verify=false", f"docker://{registry.host}/{repo}").stdout
    listed = json.loads(out)
    assert listed["Repository"] == f"{registry.host}/{repo}"
    assert sorted(listed["Tags"]) == sorted(tags)


def test_delete(
    skopeo: Skopeo,
    registry: RegistryServer,
    registry_http: RegistryHTTP,
    repo: str,
    image: Image,
    oci_layout: LayoutWriter,
) -> None:
    doomed = image.without_media_type()
    layout = oci_layout({"keep": image, "gone": doomed})
    push_layout(skopeo, layout, "keep", registry.ref(repo, "keep"))
    push_layout(skopeo, layout, "gone", registry.ref(repo, "gone"))
    assert registry_http.tags(repo) == ["gone", "keep"]

    skopeo("delete", "--tls-verify=false", f"docker://{registry.ref(repo, 'gone')}")

    assert registry_http.manifest_status(repo, doomed.digest) == 404
    assert registry_http.manifest_status(repo, "gone") == 404
    assert registry_http.tags(repo) == ["keep"]
    assert_registry_has_exact_image(registry_http, repo, "keep", image)

    # Deleting by digest works as well.
    skopeo("delete", "--tls-verify=false", f"docker://{registry.ref(repo, image.digest)}")
    assert registry_http.manifest_status(repo, image.digest) == 404
    assert registry_http.manifest_status(repo, "keep") == 404


def test_sync_registry_to_dir_and_back(
    skopeo: Skopeo,
    registry: RegistryServer,
    registry_http: RegistryHTTP,
    repo: str,
    image: Image,
    oci_layout: LayoutWriter,
    tmp_path: Path,
) -> None:
    bare = image.without_media_type()
    layout = oci_layout({"a": image, "b": bare})
    push_layout(skopeo, layout, "a", registry.ref(repo, "a"))
    push_layout(skopeo, layout, "b", registry.ref(repo, "b"))

    out = tmp_path / "sync"
    out.mkdir()
    skopeo(
        "sync", "--src", "docker", "--dest", "dir", Skopeo.EXACT, PULL,
        f"{registry.host}/{repo}", out,
    )  # fmt: skip
    name = repo.rsplit("/", 1)[-1]
    for tag, built in (("a", image), ("b", bare)):
        synced = out / f"{name}:{tag}"
        assert (synced / "manifest.json").read_bytes() == built.manifest
        for digest, data in built.blobs().items():
            assert (synced / digest.removeprefix("sha256:")).read_bytes() == data

    # And from the directory into a new repository (sync appends the
    # source directory's name to the destination repository).
    prefix = f"{repo}-copy"
    skopeo(
        "sync",
        "--src",
        "dir",
        "--dest",
        "docker",
        Skopeo.EXACT,
        PUSH,
        str(out / f"{name}:a"),
        f"{registry.host}/{prefix}",
    )
    target = f"{prefix}/{name}"
    assert registry_http.tags(target) == ["a"]
    assert_registry_has_exact_image(registry_http, target, "a", image)


def test_push_docker_schema2(
    skopeo: Skopeo,
    registry: RegistryServer,
    registry_http: RegistryHTTP,
    repo: str,
    image: Image,
    oci_layout: LayoutWriter,
    tmp_path: Path,
) -> None:
    layout = oci_layout({"v1": image})
    push_layout(skopeo, layout, "v1", registry.ref(repo, "v2s2"), "--format", "v2s2")

    fetched = registry_http.manifest(repo, "v2s2")
    assert fetched.media_type.split(";")[0] == DOCKER_MANIFEST
    manifest = fetched.json()
    expected = json.loads(image.as_docker_schema2().manifest)
    assert manifest["mediaType"] == DOCKER_MANIFEST
    assert manifest["config"] == expected["config"]
    assert manifest["config"]["mediaType"] == DOCKER_CONFIG
    assert manifest["layers"] == expected["layers"]
    assert {layer["mediaType"] for layer in manifest["layers"]} == {DOCKER_LAYER_GZIP}
    assert_registry_has_same_content(registry_http, repo, "v2s2", image)

    # Pulling back as-is (dir: keeps the manifest) returns the stored bytes.
    out = tmp_path / "dir"
    skopeo("copy", "--quiet", Skopeo.EXACT, PULL, f"docker://{registry.ref(repo, 'v2s2')}",
           f"dir:{out}")  # fmt: skip
    assert (out / "manifest.json").read_bytes() == fetched.body
    assert fetched.digest in (None, sha256(fetched.body))
    assert (out / image.config_digest.removeprefix("sha256:")).read_bytes() == image.config
