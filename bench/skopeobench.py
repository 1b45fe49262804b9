"""Whole-image push and pull with skopeo, from a generated OCI layout."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import time
import zlib
from pathlib import Path

LAYOUT_TAG = "bench"
LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"
CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"
MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"


def _write_blob(layout: Path, data: bytes) -> str:
    hexd = hashlib.sha256(data).hexdigest()
    (layout / "blobs" / "sha256" / hexd).write_bytes(data)
    return "sha256:" + hexd


def _layer(index: int, size: int) -> tuple[bytes, str]:
    """A gzip'd tar holding one file of random bytes. The gzip stream uses stored
    (level 0) blocks: random data does not compress, and the layer is generated fast."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo(f"layer{index}/data.bin")
        info.size = size
        info.mode = 0o644
        info.mtime = 0
        tar.addfile(info, io.BytesIO(os.urandom(size)))
    tar_bytes = raw.getvalue()
    diff_id = "sha256:" + hashlib.sha256(tar_bytes).hexdigest()
    comp = zlib.compressobj(0, zlib.DEFLATED, 31)
    gz = comp.compress(tar_bytes) + comp.flush()
    return gz, diff_id


def make_layout(layout: Path, layers: int, total_bytes: int) -> int:
    """Write an OCI image layout with `layers` random layers; returns the total blob bytes."""
    if layout.exists():
        shutil.rmtree(layout)
    (layout / "blobs" / "sha256").mkdir(parents=True)
    (layout / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    descs: list[dict[str, object]] = []
    diff_ids: list[str] = []
    per_layer = total_bytes // layers
    size_sum = 0
    for i in range(layers):
        gz, diff_id = _layer(i, per_layer)
        descs.append({"mediaType": LAYER_TYPE, "digest": _write_blob(layout, gz), "size": len(gz)})
        diff_ids.append(diff_id)
        size_sum += len(gz)
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": MANIFEST_TYPE,
            "config": {
                "mediaType": CONFIG_TYPE,
                "digest": _write_blob(layout, config),
                "size": len(config),
            },
            "layers": descs,
        }
    ).encode()
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": MANIFEST_TYPE,
                "digest": _write_blob(layout, manifest),
                "size": len(manifest),
                "annotations": {"org.opencontainers.image.ref.name": LAYOUT_TAG},
            }
        ],
    }
    (layout / "index.json").write_text(json.dumps(index))
    return size_sum + len(config) + len(manifest)


def _skopeo(args: list[str]) -> float:
    argv = ["skopeo", "--insecure-policy", "copy", "--quiet", *args]
    t0 = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=900)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {proc.stderr.strip()[-1500:]}")
    return elapsed


def push(layout: Path, hostport: str, repo: str) -> float:
    return _skopeo(
        [
            "--dest-tls-verify=false",
            f"oci:{layout}:{LAYOUT_TAG}",
            f"docker://{hostport}/{repo}:latest",
        ]
    )


def pull(hostport: str, repo: str, dest: Path) -> float:
    if dest.exists():
        shutil.rmtree(dest)
    try:
        return _skopeo(
            [
                "--src-tls-verify=false",
                f"docker://{hostport}/{repo}:latest",
                f"oci:{dest}:{LAYOUT_TAG}",
            ]
        )
    finally:
        shutil.rmtree(dest, ignore_errors=True)
