"""Garbage-collection figures: how fast each registry's GC examines and deletes blobs,
and what a running GC does to pull latency.

    .venv/bin/python -m bench.gcbench [--blobs 100000] [--manifests 1000]

Both registries get the same store: `--blobs` small blobs, half of them listed by
`--manifests` tagged manifests, the other half never referenced; then half of the
manifests are deleted by digest. So about three quarters of the blobs are garbage. By
default the store is written straight into each registry's storage layout (and
Portside's database), which is what the API would leave; `--seed api` pushes it through
HTTP instead (slow at 100k: every upload is fsynced). Portside runs
`portside gc --grace-period 0` while it serves; Distribution runs
`registry garbage-collect` against its storage while its server keeps serving pulls
(Distribution documents GC as needing read-only mode because of pushes; only pulls run
here). During each GC, wrk pulls a kept manifest; its latency is compared with a run
before the GC. Not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench import client, loadgen
from bench.client import MANIFEST_ACCEPT, OCI_MANIFEST, Endpoint
from bench.servers import DISTRIBUTION_BIN, Server, start_command, start_distribution

REPO = "bench/gc"
PORTSIDE = Path(__file__).resolve().parents[1] / ".venv" / "bin" / "portside"
ENV = {"PORTSIDE_LOG__ACCESS": "false", "PORTSIDE_LOG__LEVEL": "warning"}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _blob(number: int, nonce: str) -> tuple[bytes, str]:
    data = f"gc bench blob {number} {nonce}\n".encode() * 4
    return data, "sha256:" + hashlib.sha256(data).hexdigest()


def documents(
    blobs: int, manifests: int, nonce: str
) -> tuple[list[tuple[bytes, str]], list[tuple[str, bytes, list[tuple[bytes, str]]]]]:
    """The blobs, and the manifests as (tag, bytes, blobs it lists): half of the blobs
    are listed by `manifests` manifests, the other half by none."""
    contents = [_blob(n, nonce) for n in range(blobs)]
    referenced = contents[: blobs // 2]
    per = max(2, len(referenced) // manifests)
    out: list[tuple[str, bytes, list[tuple[bytes, str]]]] = []
    for number in range(manifests):
        group = referenced[number * per : (number + 1) * per]
        if len(group) < 2:
            break
        document: dict[str, object] = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": group[0][1],
                "size": len(group[0][0]),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": d,
                    "size": len(data),
                }
                for data, d in group[1:]
            ],
        }
        out.append((f"m{number}", json.dumps(document).encode(), group))
    return contents, out


def seed(ep: Endpoint, blobs: int, manifests: int, nonce: str) -> None:
    """Push the store through the API; every other manifest is then deleted by digest."""
    contents, docs = documents(blobs, manifests, nonce)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda item: client.push_small(ep, REPO, item[0], item[1]), contents))
    for number, (tag, body, _group) in enumerate(docs):
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        client.put_manifest(ep, REPO, tag, json.loads(body))
        if number % 2:
            conn = ep.connect()
            try:
                reply = client.call(conn, "DELETE", f"/v2/{REPO}/manifests/{digest}")
                client.expect(reply, 202, what="manifest DELETE")
            finally:
                conn.close()


def seed_portside_disk(data_dir: Path, blobs: int, manifests: int, nonce: str) -> None:
    """The state `seed` leaves, written straight into the database and blob store (each
    API upload is fsynced, which makes 100k uploads take most of an hour): every blob
    linked to the repository, every other manifest kept and tagged."""
    from datetime import UTC, datetime, timedelta

    from portside.config import load_settings
    from portside.metadata import schema as s
    from portside.metadata.db import Database
    from portside.metadata.engine import make_engine, upgrade

    settings = load_settings(data_dir=data_dir)
    upgrade(settings.database_url)
    db = Database(make_engine(settings.database_url))
    contents, docs = documents(blobs, manifests, nonce)
    then = datetime.now(UTC) - timedelta(hours=3)
    root = settings.storage_root / "v1" / "blobs" / "sha256"
    for data, digest in contents:
        hexpart = digest.split(":", 1)[1]
        path = root / hexpart[:2] / hexpart
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    with db.write() as conn:
        repo_id = conn.execute(
            s.repositories.insert()
            .values(name=REPO, project=REPO.partition("/")[0], created_at=then)
            .returning(s.repositories.c.id)
        ).scalar_one()
        rows = [{"digest": d, "size": len(data), "created_at": then} for data, d in contents]
        conn.execute(s.blobs.insert(), rows)
        conn.execute(
            s.repository_blobs.insert(),
            [{"repository_id": repo_id, "digest": d, "linked_at": then} for _, d in contents],
        )
        for number, (tag, body, group) in enumerate(docs):
            if number % 2:
                continue  # deleted by digest in the API flow
            manifest_id = conn.execute(
                s.manifests.insert()
                .values(
                    repository_id=repo_id,
                    digest="sha256:" + hashlib.sha256(body).hexdigest(),
                    media_type=OCI_MANIFEST,
                    size=len(body),
                    content=body,
                    pushed_at=then,
                )
                .returning(s.manifests.c.id)
            ).scalar_one()
            conn.execute(
                s.manifest_blobs.insert(),
                [{"manifest_id": manifest_id, "digest": d} for _, d in group],
            )
            conn.execute(
                s.tags.insert().values(
                    repository_id=repo_id, name=tag, manifest_id=manifest_id, updated_at=then
                )
            )
    db.engine.dispose()


def seed_distribution_disk(data_dir: Path, blobs: int, manifests: int, nonce: str) -> None:
    """The same state in Distribution's storage layout: blob data files, the
    repository's layer links, and for kept manifests the manifest blob, its revision link
    and its tag links (deleted manifests leave only their blob, as after a DELETE)."""
    v2 = data_dir / "docker" / "registry" / "v2"
    repo = v2 / "repositories" / REPO

    def put_blob(data: bytes, digest: str) -> None:
        hexpart = digest.split(":", 1)[1]
        path = v2 / "blobs" / "sha256" / hexpart[:2] / hexpart / "data"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def link(path: Path, digest: str) -> None:
        path.mkdir(parents=True, exist_ok=True)
        (path / "link").write_text(digest)

    contents, docs = documents(blobs, manifests, nonce)
    for data, digest in contents:
        put_blob(data, digest)
        link(repo / "_layers" / "sha256" / digest.split(":", 1)[1], digest)
    for number, (tag, body, _group) in enumerate(docs):
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        hexpart = digest.split(":", 1)[1]
        put_blob(body, digest)
        if number % 2:
            continue
        link(repo / "_manifests" / "revisions" / "sha256" / hexpart, digest)
        link(repo / "_manifests" / "tags" / tag / "current", digest)
        link(repo / "_manifests" / "tags" / tag / "index" / "sha256" / hexpart, digest)


def count_files(root: Path, name: str | None = None) -> int:
    return sum(1 for _, _, files in os.walk(root) for f in files if name is None or f == name)


def measure(
    server: Server,
    gc_command: list[str],
    blob_root: Path,
    blob_file: str | None,
    env: dict[str, str],
) -> dict[str, object]:
    url = f"{server.endpoint.base_url}/v2/{REPO}/manifests/m0"
    headers = {"Accept": MANIFEST_ACCEPT}
    before = loadgen.run_wrk(url, 5, headers, connections=16)
    blobs_before = count_files(blob_root, blob_file)
    during: list[loadgen.WrkResult] = []

    def pull() -> None:  # wrk during the first 3 seconds of the GC
        during.append(loadgen.run_wrk(url, 3, headers, connections=16))

    puller = threading.Thread(target=pull)
    started = time.perf_counter()
    puller.start()
    proc = subprocess.run(
        gc_command, capture_output=True, text=True, env={**os.environ, **env}, timeout=3600
    )
    seconds = time.perf_counter() - started
    puller.join()
    if proc.returncode != 0:
        raise RuntimeError(f"GC failed: {proc.stderr[-2000:]}{proc.stdout[-2000:]}")
    blobs_after = count_files(blob_root, blob_file)
    deleted = blobs_before - blobs_after
    pulled = during[0]
    return {
        "gc_seconds": round(seconds, 2),
        "blobs_examined": blobs_before,
        "blobs_deleted": deleted,
        "examined_per_s": round(blobs_before / seconds),
        "deleted_per_s": round(deleted / seconds),
        "pull_p50_before": before.latency.get("p50"),
        "pull_p99_before": before.latency.get("p99"),
        "pull_p50_during": pulled.latency.get("p50"),
        "pull_p99_during": pulled.latency.get("p99"),
        "pull_rps_before": round(before.requests_per_s),
        "pull_rps_during": round(pulled.requests_per_s),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--blobs", type=int, default=100_000)
    parser.add_argument("--manifests", type=int, default=1_000)
    parser.add_argument(
        "--seed",
        choices=("disk", "api"),
        default="disk",
        help="write the store directly (default; fast) or push it through the HTTP API",
    )
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="portside-gcbench-"))
    nonce = os.urandom(4).hex()
    results: dict[str, dict[str, object]] = {}

    template = f"{PORTSIDE} serve --listen {{listen}} --data-dir {{data_dir}}"
    portside = start_command("Portside", workdir, template, ENV)
    try:
        t0 = time.perf_counter()
        if args.seed == "api":
            seed(portside.endpoint, args.blobs, args.manifests, nonce)
        else:
            seed_portside_disk(portside.data_dir, args.blobs, args.manifests, nonce)
        log(f"seeded Portside in {time.perf_counter() - t0:.0f}s")
        command = [str(PORTSIDE), "gc", "--grace-period", "0", "--data-dir", str(portside.data_dir)]
        results["Portside"] = measure(
            portside, command, portside.data_dir / "storage" / "v1" / "blobs", None, ENV
        )
    finally:
        portside.stop()

    distribution = start_distribution("Distribution", workdir, DISTRIBUTION_BIN)
    try:
        t0 = time.perf_counter()
        if args.seed == "api":
            seed(distribution.endpoint, args.blobs, args.manifests, nonce)
        else:
            seed_distribution_disk(distribution.data_dir, args.blobs, args.manifests, nonce)
        log(f"seeded Distribution in {time.perf_counter() - t0:.0f}s")
        config = workdir / "distribution-config.yml"
        command = [DISTRIBUTION_BIN, "garbage-collect", str(config)]
        root = distribution.data_dir / "docker" / "registry" / "v2" / "blobs"
        results["Distribution"] = measure(distribution, command, root, "data", {})
    finally:
        distribution.stop()

    keys = list(results["Portside"])
    print(f"GC of {args.blobs} blobs and {args.manifests} manifests (half deleted)\n")
    print("| figure | Portside | Distribution |")
    print("| --- | ---: | ---: |")
    for key in keys:
        print(f"| {key} | {results['Portside'][key]} | {results['Distribution'][key]} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
