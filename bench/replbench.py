"""Replication throughput: how fast a push rule copies images from one Portside to a
second Portside and to Distribution 2.8, on loopback.

    .venv/bin/python -m bench.replbench [--images 4] [--layer-mib 64] [--layers 2]

The source Portside is seeded through its API with `--images` images of `--layers`
random layers of `--layer-mib` MiB each (random, so nothing dedupes). A push rule
(`portside replication rule add`) copies everything to each target; the run goes
through `portside replication rule run --here` on the source's database, and the
figure is the run's own bytes over its own seconds (the job's summary), so process
start-up is not counted. A second run shows what a rerun costs when the destination has
everything (HEADs only). Not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from bench.servers import DISTRIBUTION_BIN, Server, start_command, start_distribution
from portside.egress import EgressPolicy
from portside.remote import BlobSource, RegistryClient, push_blob, push_manifest

PORTSIDE = Path(__file__).resolve().parents[1] / ".venv" / "bin" / "portside"
ENV = {
    "PORTSIDE_LOG__ACCESS": "false",
    "PORTSIDE_LOG__LEVEL": "warning",
    "PORTSIDE_ENDPOINTS__ALLOW_PRIVATE_TARGETS": "true",
    "PORTSIDE_JOBS__WORKERS": "0",  # the runs go through the CLI, timed by themselves
}
LOOPBACK = EgressPolicy(allow_private=True, timeout_seconds=120)
CHUNK = 1024 * 1024


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _random(size: int, seed: bytes) -> tuple[str, Iterator[bytes]]:
    """A deterministic pseudo-random blob (its digest, computed first, and its chunks)."""

    def chunks() -> Iterator[bytes]:
        block = hashlib.sha512(seed).digest() * (CHUNK // 64)
        sent, counter = 0, 0
        while sent < size:
            counter += 1
            piece = bytes(b ^ (counter & 0xFF) for b in block[:256]) + block[256:]
            piece = piece[: size - sent]
            sent += len(piece)
            yield piece

    hasher = hashlib.sha256()
    for piece in chunks():
        hasher.update(piece)
    return "sha256:" + hasher.hexdigest(), chunks()


def _whole(data: bytes) -> BlobSource:
    def open_at(offset: int) -> Iterator[bytes]:
        yield data[offset:]

    return open_at


def seed(server: Server, images: int, layers: int, layer_bytes: int) -> int:
    """Push the images; returns the bytes pushed."""
    total = 0
    url = f"http://{server.endpoint.host}:{server.endpoint.port}"
    with RegistryClient(url, egress=LOOPBACK) as client:
        for number in range(images):
            repo = f"bench/app{number}"
            descriptors = []
            for layer in range(layers):
                digest, _ = _random(layer_bytes, f"{number}-{layer}".encode())

                def source(offset: int, n: int = number, k: int = layer) -> Iterator[bytes]:
                    _, chunks = _random(layer_bytes, f"{n}-{k}".encode())
                    skipped = 0
                    for piece in chunks:
                        if skipped + len(piece) <= offset:
                            skipped += len(piece)
                            continue
                        yield piece[max(0, offset - skipped) :]
                        skipped += len(piece)

                push_blob(client, repo, digest, layer_bytes, source)
                descriptors.append(
                    {
                        "mediaType": "application/vnd.oci.image.layer.v1.tar",
                        "digest": digest,
                        "size": layer_bytes,
                    }
                )
                total += layer_bytes
            config = json.dumps({"architecture": "amd64", "os": "linux", "n": number}).encode()
            config_digest = "sha256:" + hashlib.sha256(config).hexdigest()
            push_blob(client, repo, config_digest, len(config), _whole(config))
            manifest = json.dumps(
                {
                    "schemaVersion": 2,
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "config": {
                        "mediaType": "application/vnd.oci.image.config.v1+json",
                        "digest": config_digest,
                        "size": len(config),
                    },
                    "layers": descriptors,
                }
            ).encode()
            push_manifest(
                client, repo, "v1", manifest, "application/vnd.oci.image.manifest.v1+json"
            )
    return total


def portside(*args: str, data_dir: Path) -> str:
    argv = [str(PORTSIDE), *args, "--data-dir", str(data_dir)]
    done = subprocess.run(
        argv, env={**os.environ, **ENV}, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed:\n{done.stderr}")
    return done.stdout


def run_rule(data_dir: Path, rule: str) -> dict[str, object]:
    portside("replication", "rule", "run", rule, "--here", data_dir=data_dir)
    runs = json.loads(portside("replication", "runs", "--rule", rule, "--limit", "1", "--json",
                               data_dir=data_dir))  # fmt: skip
    result = runs[0]["result"]
    assert isinstance(result, dict)
    return result


def figure(result: dict[str, object]) -> str:
    size = float(str(result["bytes"]))
    seconds = float(str(result["seconds"]))
    rate = size / seconds / 1e6 if seconds else 0.0
    return f"{rate:.1f} MB/s ({size / 1e6:.0f} MB in {seconds:.1f} s)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.replbench")
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--layer-mib", type=float, default=64)
    args = parser.parse_args(argv)
    layer_bytes = int(args.layer_mib * 1024 * 1024)
    workdir = Path(tempfile.mkdtemp(prefix="portside-replbench-"))
    template = f"{PORTSIDE} serve --listen {{listen}} --data-dir {{data_dir}}"
    servers: list[Server] = []
    rows: list[tuple[str, str, str]] = []
    try:
        source = start_command("Source", workdir, template, ENV)
        servers.append(source)
        targets = {
            "Portside": start_command("Target Portside", workdir, template, ENV),
            "Distribution": start_distribution("Target Distribution", workdir, DISTRIBUTION_BIN),
        }
        servers += list(targets.values())
        log(f"seeding {args.images} images x {args.layers} x {args.layer_mib} MiB")
        seed(source, args.images, args.layers, layer_bytes)
        for name, target in targets.items():
            url = f"http://{target.endpoint.host}:{target.endpoint.port}"
            kind = "portside" if name == "Portside" else "distribution"
            slug = name.lower()
            portside("endpoint", "add", slug, "--type", kind, "--url", url,
                     data_dir=source.data_dir)  # fmt: skip
            portside("replication", "rule", "add", f"to-{slug}", "--direction", "push",
                     "--endpoint", slug, data_dir=source.data_dir)  # fmt: skip
            log(f"replicating to {name}")
            first = run_rule(source.data_dir, f"to-{slug}")
            again = run_rule(source.data_dir, f"to-{slug}")
            rows.append((f"Portside -> {name}", figure(first), f"{again['seconds']} s"))
    finally:
        for server in servers:
            server.stop()
    print(f"replication of {args.images} images ({args.layers} x {args.layer_mib} MiB layers)\n")
    print("| copy | first run | rerun (nothing to copy) |")
    print("| --- | ---: | ---: |")
    for row in rows:
        print(f"| {row[0]} | {row[1]} | {row[2]} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
