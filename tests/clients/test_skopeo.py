"""skopeo (containers/image) against the registry under test."""

from __future__ import annotations

import json

import pytest

from .conftest import NO_MEDIA_TYPE_BY_DIGEST_BUG, Target
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
from .tooling import DOCKER_CONFIG, DOCKER_LAYER_GZIP, DOCKER_MANIFEST, OCI_INDEX, Skopeo

pytestmark = pytest.mark.clients


def pull(skopeo: Skopeo, target: Target, src: str, name: str, *flags: str) -> Layout:
    """Copy ``src`` from the registry into a new layout under the ref ``name``."""
    return Layout(skopeo.pull_layout(src, target.scratch(name), name, *flags))


def test_copy_roundtrip(skopeo: Skopeo, target: Target, image: Image) -> None:
    skopeo.push_layout(target.layout({"v1": image}), "v1", target.ref("v1"))
    assert_registry_has_exact_image(target.http, target.repo, "v1", image)
    assert_registry_has_exact_image(target.http, target.repo, image.digest, image)

    assert_layout_has_image(pull(skopeo, target, target.ref("v1"), "tag"), image, "tag")
    by_digest = pull(skopeo, target, target.ref(image.digest), "digest")
    assert_layout_has_image(by_digest, image, "digest")


def test_manifest_without_media_type_is_kept_verbatim(
    skopeo: Skopeo, target: Target, image: Image
) -> None:
    bare = image.without_media_type()
    assert b'"mediaType": "application/vnd.oci.image.manifest' not in bare.manifest
    skopeo.push_layout(target.layout({"bare": bare}), "bare", target.ref("bare"))
    assert_registry_has_exact_image(target.http, target.repo, "bare", bare)
    assert_layout_has_image(pull(skopeo, target, target.ref("bare"), "tag"), bare, "tag")

    target.server.xfail_on_distribution(NO_MEDIA_TYPE_BY_DIGEST_BUG)
    assert_registry_has_exact_image(target.http, target.repo, bare.digest, bare)
    by_digest = pull(skopeo, target, target.ref(bare.digest), "digest")
    assert_layout_has_image(by_digest, bare, "digest")


def test_copy_all_multi_arch_index(skopeo: Skopeo, target: Target, image_index: ImageIndex) -> None:
    layout = target.layout({"multi": image_index})
    skopeo.push_layout(layout, "multi", target.ref("multi"), "--all")

    fetched = target.http.manifest(target.repo, "multi")
    assert fetched.body == image_index.index
    assert fetched.media_type.split(";")[0] == OCI_INDEX
    assert fetched.digest in (None, image_index.digest)
    for child in image_index.images:
        assert_registry_has_exact_image(target.http, target.repo, child.digest, child)

    pulled = pull(skopeo, target, target.ref("multi"), "all", "--all")
    assert_layout_has_index(pulled, image_index, "all")

    # Without --all, skopeo resolves the index to one platform.
    arm = pull(skopeo, target, target.ref("multi"), "arm", "--override-arch", "arm64")
    assert_layout_has_image(arm, image_index.image_for("arm64"), "arm")


def test_inspect_returns_pushed_bytes(skopeo: Skopeo, target: Target, image: Image) -> None:
    skopeo.push_layout(target.layout({"v1": image}), "v1", target.ref("v1"))
    src = f"docker://{target.ref('v1')}"

    raw = skopeo("inspect", "--raw", "--tls-verify=false", src).stdout_bytes
    assert raw == image.manifest

    config = skopeo("inspect", "--config", "--raw", "--tls-verify=false", src).stdout_bytes
    assert config == image.config

    info = json.loads(skopeo("inspect", "--tls-verify=false", src).stdout)
    assert info["Digest"] == image.digest
    assert info["Layers"] == [layer.digest for layer in image.layers]
    assert info["Architecture"] == "amd64"
    assert info["Labels"] == {"org.example.portside.seed": image.seed}


def test_list_tags(skopeo: Skopeo, target: Target, image: Image) -> None:
    layout = target.layout({"v1": image})
    tags = ["1.0", "1.0.1", "latest", "v1", "z_last"]
    for tag in tags:
        skopeo.push_layout(layout, "v1", target.ref(tag))
    out = skopeo("list-tags", "--tls-verify=false", f"docker://{target.host}/{target.repo}")
    listed = json.loads(out.stdout)
    assert listed["Repository"] == f"{target.host}/{target.repo}"
    assert sorted(listed["Tags"]) == sorted(tags)


def test_delete(skopeo: Skopeo, target: Target, image: Image) -> None:
    doomed = image.without_media_type()
    layout = target.layout({"keep": image, "gone": doomed})
    skopeo.push_layout(layout, "keep", target.ref("keep"))
    skopeo.push_layout(layout, "gone", target.ref("gone"))
    http, repo = target.http, target.repo
    assert http.tags(repo) == ["gone", "keep"]

    skopeo("delete", "--tls-verify=false", f"docker://{target.ref('gone')}")
    assert http.manifest_status(repo, doomed.digest) == 404
    assert http.manifest_status(repo, "gone") == 404
    assert http.tags(repo) == ["keep"]
    assert_registry_has_exact_image(http, repo, "keep", image)

    # Deleting by digest works as well, and removes the tags pointing at it.
    skopeo("delete", "--tls-verify=false", f"docker://{target.ref(image.digest)}")
    assert http.manifest_status(repo, image.digest) == 404
    assert http.manifest_status(repo, "keep") == 404


def test_sync_registry_to_dir_and_back(skopeo: Skopeo, target: Target, image: Image) -> None:
    bare = image.without_media_type()
    layout = target.layout({"a": image, "b": bare})
    skopeo.push_layout(layout, "a", target.ref("a"))
    skopeo.push_layout(layout, "b", target.ref("b"))

    out = target.scratch("sync")
    out.mkdir()
    skopeo(
        "sync", "--src", "docker", "--dest", "dir", Skopeo.EXACT, "--src-tls-verify=false",
        f"{target.host}/{target.repo}", out,
    )  # fmt: skip
    name = target.repo.rsplit("/", 1)[-1]
    for tag, built in (("a", image), ("b", bare)):
        synced = out / f"{name}:{tag}"
        assert (synced / "manifest.json").read_bytes() == built.manifest
        for digest, data in built.blobs().items():
            assert (synced / digest.removeprefix("sha256:")).read_bytes() == data

    # And from the directory into a new repository (sync appends the source
    # directory's name to the destination repository).
    prefix = f"{target.repo}-copy"
    skopeo(
        "sync", "--src", "dir", "--dest", "docker", Skopeo.EXACT, "--dest-tls-verify=false",
        out / f"{name}:a", f"{target.host}/{prefix}",
    )  # fmt: skip
    copy = f"{prefix}/{name}"
    assert target.http.tags(copy) == ["a"]
    assert_registry_has_exact_image(target.http, copy, "a", image)


def test_push_docker_schema2(skopeo: Skopeo, target: Target, image: Image) -> None:
    layout = target.layout({"v1": image})
    skopeo.push_layout(layout, "v1", target.ref("v2s2"), "--format", "v2s2")

    fetched = target.http.manifest(target.repo, "v2s2")
    assert fetched.media_type.split(";")[0] == DOCKER_MANIFEST
    manifest = fetched.json()
    expected = json.loads(image.as_docker_schema2().manifest)
    assert manifest["mediaType"] == DOCKER_MANIFEST
    assert manifest["config"] == expected["config"]
    assert manifest["config"]["mediaType"] == DOCKER_CONFIG
    assert manifest["layers"] == expected["layers"]
    assert {layer["mediaType"] for layer in manifest["layers"]} == {DOCKER_LAYER_GZIP}
    assert_registry_has_same_content(target.http, target.repo, "v2s2", image)

    # Pulling back unchanged (dir: keeps the manifest) returns the stored bytes.
    out = target.scratch("dir")
    skopeo(
        "copy", "--quiet", Skopeo.EXACT, "--src-tls-verify=false",
        f"docker://{target.ref('v2s2')}", f"dir:{out}",
    )  # fmt: skip
    assert (out / "manifest.json").read_bytes() == fetched.body
    assert fetched.digest in (None, sha256(fetched.body))
    assert (out / image.config_digest.removeprefix("sha256:")).read_bytes() == image.config
