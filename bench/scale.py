"""`bench/run --scale`: manifest GET and blob pull throughput with 1, 2 and 3 Portside
replicas behind nginx, on one PostgreSQL database and one storage directory.

Every replica is a `portside serve` with `server.workers` HTTP workers (default 1, so the
figure is about replicas, not workers) and no job worker; nginx (docs/deploy/nginx.conf,
bench.nginx) balances round-robin. All of it, PostgreSQL and the load generators run on
this machine: on 2 cores expect sub-linear scaling (the replicas, nginx, PostgreSQL and
wrk compete for the same cores), which the figure reports as it is.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import uuid
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

from bench import client, loadgen, nginx
from bench.client import MANIFEST_ACCEPT
from bench.figures import PULL_REPO, SMALL_REPO, SMALL_TAG, Context, make_seeds, seed_server
from bench.machine import cpu_busy, loadavg
from bench.payload import MiB, Payload
from bench.servers import HOST, Server, _launch, free_port, start_command
from bench.settings import FULL, QUICK, human_size

ROOT = Path(__file__).resolve().parent.parent


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench/run --scale", description=__doc__)
    p.add_argument("--scale", action="store_true", help="(selects this mode)")
    p.add_argument("--quick", action="store_true", help="small sizes, short runs")
    p.add_argument("--replicas", default="1,2,3", help="replica counts to measure")
    p.add_argument("--workers", type=int, default=1, help="server.workers of each replica")
    p.add_argument("--seconds", type=float, default=0, help="wrk duration (0: by mode)")
    p.add_argument("--clients", type=int, default=8, help="concurrent blob pulls")
    p.add_argument("--blob-mib", type=int, default=0, help="pulled blob size (0: by mode)")
    p.add_argument(
        "--database-url",
        help="PostgreSQL server (its maintenance database) to create the bench databases "
        "on; default: scripts/postgres",
    )
    p.add_argument(
        "--portside", default=str(ROOT / ".venv" / "bin" / "portside"), help="portside binary"
    )
    p.add_argument("--results-dir", type=Path, default=ROOT / "bench" / "results")
    return p.parse_args(argv)


def _postgres(url: str | None) -> str:
    if url:
        return url
    done = subprocess.run(
        [str(ROOT / "scripts" / "postgres")], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def _database(server_url: str, stack: ExitStack) -> str:
    from sqlalchemy import create_engine, text

    name = f"portside_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()

    stack.callback(drop)
    return server_url.rsplit("/", 1)[0] + f"/{name}"


def _cluster(
    args: argparse.Namespace, count: int, database_url: str, workdir: Path, stack: ExitStack
) -> Server:
    """`count` replicas and nginx in front; returns nginx as the server to measure."""
    storage = workdir / "storage"
    storage.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {
        "PORTSIDE_DATABASE__URL": database_url,
        "PORTSIDE_STORAGE__FILESYSTEM__ROOT": str(storage),
        "PORTSIDE_EXTERNAL_URL": f"http://{HOST}:{port}",
        "PORTSIDE_SERVER__WORKERS": str(args.workers),
        "PORTSIDE_JOBS__WORKERS": "0",
        "PORTSIDE_LOG__ACCESS": "false",
        "PORTSIDE_LOG__LEVEL": "warning",
    }
    template = f"{args.portside} serve --listen {{listen}} --data-dir {{data_dir}}"
    upstreams = []
    for n in range(count):
        replica = start_command(f"replica-{count}-{n}", workdir, template, env)
        stack.callback(replica.stop)
        upstreams.append(f"{HOST}:{replica.endpoint.port}")
    root = workdir / f"nginx-{count}"
    argv = nginx.command(root, port, upstreams)
    proxy = _launch(f"nginx-{count}", argv, root, root / "nginx.log", port)
    stack.callback(proxy.stop)
    return proxy


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    settings = QUICK if args.quick else FULL
    seconds = args.seconds or settings.wrk_seconds
    counts = [int(c) for c in args.replicas.split(",") if c.strip()]
    server_url = _postgres(args.database_url)
    workdir = Path(tempfile.mkdtemp(prefix="portside-scale-"))
    ctx = Context(settings, workdir)
    make_seeds(ctx, {"image"})
    ctx.pull_small = Payload(args.blob_mib * MiB or settings.small_blob, 1)
    assert ctx.image is not None
    busy = cpu_busy(2.0)
    if busy > 0.10:
        log(f"WARNING: the CPUs are already {busy:.0%} busy: figures will be noisy")
    rows: list[dict[str, object]] = []
    for count in counts:
        with ExitStack() as stack:
            database = _database(server_url, stack)
            proxy = _cluster(args, count, database, workdir / f"run-{count}", stack)
            seed_server(ctx, proxy)
            url = f"{proxy.endpoint.base_url}/v2/{SMALL_REPO}/manifests/{SMALL_TAG}"
            headers = {"Accept": MANIFEST_ACCEPT}
            if settings.wrk_warmup_seconds > 0:
                loadgen.run_wrk(url, settings.wrk_warmup_seconds, headers)
            manifest = loadgen.run_wrk(url, seconds, headers)
            digest = ctx.pull_small.digest
            client.pull_concurrent(proxy.endpoint, PULL_REPO, digest, 1)  # warm the cache
            pulled, took = client.pull_concurrent(proxy.endpoint, PULL_REPO, digest, args.clients)
            row: dict[str, object] = {
                "replicas": count,
                "manifest_get_per_s": round(manifest.requests_per_s),
                "manifest_latency": manifest.latency,
                "pull_mb_per_s": round(pulled / took / 1e6, 1),
            }
            rows.append(row)
            log(f"   {count} replica(s): {row}")
    base = rows[0] if rows else None
    print("# Portside scale-out: replicas behind nginx on PostgreSQL (same machine)\n")
    print(
        f"- {args.workers} HTTP worker(s) per replica, no job workers; wrk -t2 -c64 "
        f"{seconds:g} s on the manifest; {args.clients} concurrent pulls of a "
        f"{human_size(ctx.pull_small.size)} blob; load average at end {loadavg()}\n"
    )
    print("| replicas | manifest GET req/s | vs 1 | pull MB/s | vs 1 |")
    print("|---|---|---|---|---|")
    for row in rows:
        assert base is not None
        m = float(str(row["manifest_get_per_s"]))
        p = float(str(row["pull_mb_per_s"]))
        m1 = float(str(base["manifest_get_per_s"])) or 1.0
        p1 = float(str(base["pull_mb_per_s"])) or 1.0
        print(f"| {row['replicas']} | {m:,.0f} | {m / m1:.2f}x | {p:,.1f} | {p / p1:.2f}x |")
    args.results_dir.mkdir(parents=True, exist_ok=True)
    started = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = args.results_dir / f"scale-{started}.json"
    out.write_text(json.dumps({"arguments": vars(args), "rows": rows}, indent=2, default=str))
    print(f"\nJSON: {out}")
    shutil.rmtree(workdir, ignore_errors=True)
    return 0
