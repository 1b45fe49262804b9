"""Proxy-cache figures: what pulling through a Portside proxy-cache project costs.

    .venv/bin/python -m bench.proxybench [--size-mib 200] [--layers 5] [--reps 3]

An upstream Distribution 2.8 holds a generated image (`--layers` layers, `--size-mib` in
all). A Portside server has a proxy-cache project `cache` of it (a registry endpoint on
loopback) and the same image pushed into a normal project `plain`. skopeo pulls it:

- `direct`: from the upstream itself;
- `cold`: through a proxy project with an empty cache (every blob streamed from the
  upstream while it is stored; each repetition makes a new proxy project);
- `warm`: through the proxy project again, everything cached (the tag within its TTL);
- `normal`: from the normal project (a plain pull of pushed content).

It prints the medians and two ratios: cold / direct (the proxy's overhead on a miss)
and warm / normal (what a cache hit costs over a normal pull; the goal is ~1).
Not a test: nothing is asserted. Try it small first: `--size-mib 2 --layers 2 --reps 1`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench import skopeobench
from bench.servers import Server, start_command, start_distribution

REPO = "bench/app"


def _portside_bin() -> str:
    local = Path(sys.executable).parent / "portside"
    return str(local) if local.exists() else "portside"


def _admin(env: dict[str, str], *args: str) -> None:
    subprocess.run([_portside_bin(), *args], env=env, check=True, capture_output=True)


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.proxybench")
    parser.add_argument("--size-mib", type=int, default=200)
    parser.add_argument("--layers", type=int, default=5)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="portside-proxybench-"))
    servers: list[Server] = []
    try:
        upstream = start_distribution("Upstream", work)
        servers.append(upstream)
        up = f"{upstream.endpoint.host}:{upstream.endpoint.port}"
        layout = work / "layout"
        size = skopeobench.make_layout(layout, args.layers, args.size_mib * 1024 * 1024)
        skopeobench.push(layout, up, REPO)
        env = {
            **os.environ,
            "PORTSIDE_LOG__ACCESS": "false",
            "PORTSIDE_LOG__LEVEL": "warning",
            "PORTSIDE_ENDPOINTS__ALLOW_PRIVATE_TARGETS": "true",
        }
        data_dir = work / "portside-admin"
        data_dir.mkdir()
        portside = start_command(
            "Portside", work, f"{_portside_bin()} serve --listen {{listen}} --data-dir {data_dir}",
            env=env,
        )  # fmt: skip
        servers.append(portside)
        admin_env = {**env, "PORTSIDE_DATA_DIR": str(data_dir)}
        _admin(
            admin_env, "endpoint", "add", "upstream", "--type", "distribution",
            "--url", f"http://{up}",
        )  # fmt: skip
        _admin(admin_env, "project", "create", "plain", "--public")
        here = f"{portside.endpoint.host}:{portside.endpoint.port}"
        skopeobench.push(layout, here, f"plain/{REPO}")
        figures: dict[str, list[float]] = {"direct": [], "cold": [], "warm": [], "normal": []}
        for rep in range(args.reps):
            cache = f"cache{rep}"  # a new, empty proxy project each repetition
            _admin(
                admin_env, "project", "create", cache, "--public",
                "--proxy-endpoint", "upstream", "--tag-ttl", "3600",
            )  # fmt: skip
            dest = work / "pulled"
            figures["direct"].append(skopeobench.pull(up, REPO, dest))
            figures["cold"].append(skopeobench.pull(here, f"{cache}/{REPO}", dest))
            figures["warm"].append(skopeobench.pull(here, f"{cache}/{REPO}", dest))
            figures["normal"].append(skopeobench.pull(here, f"plain/{REPO}", dest))
            print(
                f"rep {rep + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in figures.items()),
                file=sys.stderr,
            )
        medians = {k: _median(v) for k, v in figures.items()}
        result = {
            "image_bytes": size,
            "layers": args.layers,
            "reps": args.reps,
            "seconds": figures,
            "median_seconds": medians,
            "cold_over_direct": medians["cold"] / medians["direct"],
            "warm_over_normal": medians["warm"] / medians["normal"],
        }
        print("| pull (skopeo) | median s | MB/s |")
        print("| --- | --- | --- |")
        for key, seconds in medians.items():
            print(f"| {key} | {seconds:.2f} | {size / seconds / 1e6:.1f} |")
        print(f"\ncold / direct: {result['cold_over_direct']:.2f}x; "
              f"warm / normal: {result['warm_over_normal']:.2f}x")  # fmt: skip
        print(json.dumps(result), file=sys.stderr)
    finally:
        for server in reversed(servers):
            server.stop()
        if args.keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
