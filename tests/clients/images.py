"""Build test images in pure Python (no network) and check what clients return.

An ``Image`` is a real multi-layer image: deterministic gzip tar layers with
directories, files, an executable script, a symlink and a whiteout, an OCI
config whose ``rootfs.diff_ids`` match the layers, and a manifest serialized
with unusual (but valid) formatting so that a server which re-serializes
manifests instead of storing the pushed bytes is caught.

Helpers write OCI image layouts and docker-archive tarballs, read layouts back
and compare them, and compare what a registry stores with what was built.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import random
import tarfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .tooling import (
    DOCKER_CONFIG,
    DOCKER_LAYER_GZIP,
    DOCKER_MANIFEST,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER_GZIP,
    OCI_MANIFEST,
    RegistryHTTP,
)

REF_NAME = "org.opencontainers.image.ref.name"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def dumps(obj: Any) -> bytes:
    """Valid but non-canonical JSON: 3-space indent, unsorted keys, trailing newline."""
    return (json.dumps(obj, indent=3) + "\n").encode()


@dataclass(frozen=True)
class Layer:
    tar: bytes
    gz: bytes

    @property
    def digest(self) -> str:
        return sha256(self.gz)

    @property
    def diff_id(self) -> str:
        return sha256(self.tar)


@dataclass(frozen=True)
class Image:
    """A single-platform image: config, layers and the exact manifest bytes."""

    config: bytes
    layers: tuple[Layer, ...]
    manifest: bytes
    architecture: str
    seed: str

    @property
    def digest(self) -> str:
        return sha256(self.manifest)

    @property
    def config_digest(self) -> str:
        return sha256(self.config)

    @property
    def media_type(self) -> str:
        media_type: str = json.loads(self.manifest).get("mediaType", OCI_MANIFEST)
        return media_type

    @property
    def diff_ids(self) -> list[str]:
        return [layer.diff_id for layer in self.layers]

    def blobs(self) -> dict[str, bytes]:
        blobs = {self.config_digest: self.config}
        blobs.update((layer.digest, layer.gz) for layer in self.layers)
        return blobs

    def descriptor(self, **extra: Any) -> dict[str, Any]:
        return {
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": len(self.manifest),
            **extra,
        }

    def platform(self) -> dict[str, str]:
        return {"architecture": self.architecture, "os": "linux"}

    def without_media_type(self) -> Image:
        """The same image whose manifest omits ``mediaType`` (as umoci/podman write)."""
        manifest = json.loads(self.manifest)
        manifest.pop("mediaType", None)
        return replace(self, manifest=dumps(manifest))

    def as_docker_schema2(self) -> Image:
        """The same config and layers under a Docker schema2 manifest."""
        manifest = json.loads(self.manifest)
        manifest["mediaType"] = DOCKER_MANIFEST
        manifest["config"]["mediaType"] = DOCKER_CONFIG
        for layer in manifest["layers"]:
            layer["mediaType"] = DOCKER_LAYER_GZIP
        manifest.pop("annotations", None)
        return replace(self, manifest=dumps(manifest))


@dataclass(frozen=True)
class ImageIndex:
    """A multi-platform image index and its child images."""

    index: bytes
    images: tuple[Image, ...]

    @property
    def digest(self) -> str:
        return sha256(self.index)

    def blobs(self) -> dict[str, bytes]:
        blobs: dict[str, bytes] = {}
        for image in self.images:
            blobs.update(image.blobs())
            blobs[image.digest] = image.manifest
        return blobs

    def image_for(self, architecture: str) -> Image:
        for image in self.images:
            if image.architecture == architecture:
                return image
        raise KeyError(architecture)


# ---------------------------------------------------------------------------
# Building
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    path: str
    data: bytes = b""
    kind: bytes = tarfile.REGTYPE
    mode: int = 0o644
    link: str = ""


def make_layer(entries: Iterable[Entry]) -> Layer:
    """A deterministic gzip-compressed tar layer (fixed mtimes, owners, gzip header)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for entry in entries:
            info = tarfile.TarInfo(entry.path)
            info.type = entry.kind
            info.mode = entry.mode
            info.mtime = 1_700_000_000
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            if entry.kind == tarfile.REGTYPE:
                info.size = len(entry.data)
                tar.addfile(info, io.BytesIO(entry.data))
            else:
                info.linkname = entry.link
                tar.addfile(info)
    tar_bytes = raw.getvalue()
    gz = io.BytesIO()
    with gzip.GzipFile(fileobj=gz, mode="wb", mtime=0, compresslevel=6) as out:
        out.write(tar_bytes)
    return Layer(tar=tar_bytes, gz=gz.getvalue())


def _dir(path: str) -> Entry:
    return Entry(path, kind=tarfile.DIRTYPE, mode=0o755)


def build_image(seed: str, architecture: str = "amd64", *, big_layer_kib: int = 1536) -> Image:
    """A three-layer linux image whose content is derived from ``seed``.

    Every layer depends on the seed: containers/image keeps a host-wide cache
    of "uncompressed layer X is also blob Y in registry R" and substitutes
    blobs other clients pushed, so tests must never share layer content.

    The second layer holds ``big_layer_kib`` KiB of incompressible data so
    that clients use their multi-request (chunked/streamed) upload paths.
    """
    rng = random.Random(f"{seed}/{architecture}")
    script = f"#!/bin/sh\necho 'hello from {seed} ({architecture})'\n".encode()
    base = make_layer(
        [
            _dir("bin"),
            _dir("etc"),
            _dir("etc/portside"),
            Entry("etc/portside/seed", f"{seed}\n".encode()),
            Entry("etc/portside/remove-me", b"deleted by a whiteout in layer 3\n"),
            Entry("bin/hello", script, mode=0o755),
            Entry("bin/hi", kind=tarfile.SYMTYPE, mode=0o777, link="hello"),
        ]
    )
    data = make_layer(
        [
            _dir("data"),
            Entry("data/random.bin", rng.randbytes(big_layer_kib * 1024)),
            Entry("data/text.txt", ("portside " * 2000).encode()),
        ]
    )
    top = make_layer(
        [
            _dir("etc"),
            _dir("etc/portside"),
            Entry("etc/portside/.wh.remove-me"),
            Entry("etc/portside/arch", f"{architecture} {seed}\n".encode()),
        ]
    )
    layers = (base, data, top)
    config = dumps(
        {
            "created": "2024-01-01T00:00:00Z",
            "architecture": architecture,
            "os": "linux",
            "config": {
                "Env": ["PATH=/bin"],
                "Cmd": ["/bin/hello"],
                "Labels": {"org.example.portside.seed": seed},
            },
            "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]},
            "history": [
                {"created": "2024-01-01T00:00:00Z", "created_by": f"portside tests layer {i}"}
                for i in range(len(layers))
            ],
        }
    )
    manifest = dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": sha256(config), "size": len(config)},
            "layers": [
                {"mediaType": OCI_LAYER_GZIP, "digest": layer.digest, "size": len(layer.gz)}
                for layer in layers
            ],
            "annotations": {"org.example.portside.seed": seed},
        }
    )
    return Image(
        config=config, layers=layers, manifest=manifest, architecture=architecture, seed=seed
    )


def build_index(seed: str, architectures: Sequence[str] = ("amd64", "arm64")) -> ImageIndex:
    images = tuple(build_image(seed, arch, big_layer_kib=256) for arch in architectures)
    index = dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                {
                    **image.descriptor(),
                    "platform": image.platform(),
                }
                for image in images
            ],
            "annotations": {"org.example.portside.seed": seed},
        }
    )
    return ImageIndex(index=index, images=images)


# ---------------------------------------------------------------------------
# OCI image layouts
# ---------------------------------------------------------------------------


def _write_blobs(layout: Path, blobs: Mapping[str, bytes]) -> None:
    blob_dir = layout / "blobs" / "sha256"
    blob_dir.mkdir(parents=True, exist_ok=True)
    for digest, data in blobs.items():
        assert sha256(data) == digest
        (blob_dir / digest.removeprefix("sha256:")).write_bytes(data)


def write_layout(layout: Path, refs: Mapping[str, Image | ImageIndex]) -> Path:
    """Write an OCI image layout holding each image/index under its ref name."""
    blobs: dict[str, bytes] = {}
    manifests: list[dict[str, Any]] = []
    for ref, item in refs.items():
        blobs.update(item.blobs())
        if isinstance(item, ImageIndex):
            blobs[item.digest] = item.index
            manifests.append(
                {
                    "mediaType": OCI_INDEX,
                    "digest": item.digest,
                    "size": len(item.index),
                    "annotations": {REF_NAME: ref},
                }
            )
        else:
            blobs[item.digest] = item.manifest
            manifests.append(item.descriptor(annotations={REF_NAME: ref}))
    _write_blobs(layout, blobs)
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (layout / "index.json").write_bytes(
        dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests})
    )
    return layout


@dataclass(frozen=True)
class Layout:
    """An OCI image layout read back from disk (what a client pulled)."""

    path: Path

    def index(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.path / "index.json").read_bytes())
        return data

    def blob(self, digest: str) -> bytes:
        algorithm, _, hex_digest = digest.partition(":")
        data = (self.path / "blobs" / algorithm / hex_digest).read_bytes()
        assert sha256(data) == digest, f"layout blob {digest} does not match its digest"
        return data

    def descriptor(self, ref: str | None = None) -> dict[str, Any]:
        manifests: list[dict[str, Any]] = self.index()["manifests"]
        if ref is None:
            assert len(manifests) == 1, manifests
            return manifests[0]
        for desc in manifests:
            if desc.get("annotations", {}).get(REF_NAME) == ref:
                return desc
        raise AssertionError(f"no {ref!r} in {self.path}/index.json: {manifests}")


def assert_layout_has_image(layout: Layout, image: Image, ref: str | None = None) -> None:
    """The pulled layout holds exactly the built manifest, config and layers."""
    desc = layout.descriptor(ref)
    assert desc["digest"] == image.digest
    assert layout.blob(image.digest) == image.manifest
    assert layout.blob(image.config_digest) == image.config
    for layer in image.layers:
        assert layout.blob(layer.digest) == layer.gz


def assert_layout_has_index(layout: Layout, index: ImageIndex, ref: str | None = None) -> None:
    desc = layout.descriptor(ref)
    assert desc["digest"] == index.digest
    assert layout.blob(index.digest) == index.index
    for image in index.images:
        assert layout.blob(image.digest) == image.manifest
        assert layout.blob(image.config_digest) == image.config
        for layer in image.layers:
            assert layout.blob(layer.digest) == layer.gz


# ---------------------------------------------------------------------------
# docker-archive (docker save / docker load format)
# ---------------------------------------------------------------------------


def write_docker_archive(image: Image, path: Path, repo_tag: str) -> Path:
    """A ``docker load``-able tarball with uncompressed layers."""
    members: list[tuple[str, bytes]] = []
    config_name = image.config_digest.removeprefix("sha256:") + ".json"
    members.append((config_name, image.config))
    layer_names = []
    for layer in image.layers:
        name = layer.diff_id.removeprefix("sha256:") + "/layer.tar"
        layer_names.append(name)
        members.append((name, layer.tar))
    manifest = [{"Config": config_name, "RepoTags": [repo_tag], "Layers": layer_names}]
    members.append(("manifest.json", json.dumps(manifest).encode()))
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members:
            if "/" in name:
                info = tarfile.TarInfo(name.split("/")[0])
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tar.addfile(info)
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return path


# ---------------------------------------------------------------------------
# What the registry stores
# ---------------------------------------------------------------------------


def assert_registry_has_exact_image(http: RegistryHTTP, repo: str, ref: str, image: Image) -> None:
    """The registry returns the pushed manifest bytes and blobs unchanged."""
    fetched = http.manifest(repo, ref)
    assert fetched.body == image.manifest, "registry changed the manifest bytes"
    if fetched.digest is not None:
        assert fetched.digest == image.digest
    for digest, data in image.blobs().items():
        assert http.blob(repo, digest) == data, f"blob {digest} differs"


def assert_registry_has_same_content(
    http: RegistryHTTP, repo: str, ref: str, image: Image, *, extra_layers_ok: bool = False
) -> dict[str, Any]:
    """The registry holds an image with the built config and layer contents.

    For clients that rebuild manifests and recompress layers (docker, podman,
    buildah): the config blob must be byte-identical (unless the client is
    expected to change it, e.g. buildah commit, with ``extra_layers_ok``) and
    every layer must decompress to exactly the built tar stream.
    Returns the parsed manifest.
    """
    fetched = http.manifest(repo, ref)
    if fetched.digest is not None:
        assert fetched.digest == sha256(fetched.body)
    manifest: dict[str, Any] = fetched.json()
    assert manifest.get("mediaType", OCI_MANIFEST) in (OCI_MANIFEST, DOCKER_MANIFEST)
    assert fetched.media_type.split(";")[0] == manifest.get("mediaType", OCI_MANIFEST)
    config = http.blob(repo, manifest["config"]["digest"])
    assert sha256(config) == manifest["config"]["digest"]
    layers = manifest["layers"]
    if extra_layers_ok:
        assert len(layers) >= len(image.layers)
        assert json.loads(config)["rootfs"]["diff_ids"][: len(image.layers)] == image.diff_ids
    else:
        assert config == image.config, "config blob differs from the built one"
        assert len(layers) == len(image.layers)
    for built, desc in zip(image.layers, layers, strict=False):
        blob = http.blob(repo, desc["digest"])
        assert sha256(blob) == desc["digest"]
        assert len(blob) == desc["size"]
        assert gzip.decompress(blob) == built.tar, f"layer {desc['digest']} content differs"
    return manifest
