"""`python -m bench`: run Portside and Distribution side by side and compare them."""

from __future__ import annotations

import argparse
import fnmatch
import os
import shutil
import sys
import tempfile
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

from bench import client
from bench.figures import FIGURES, Context, Figure, make_seeds, seed_server, sync
from bench.machine import describe
from bench.report import FigureResult, SideResult, markdown, to_json
from bench.servers import (
    DISTRIBUTION_BIN,
    NullServer,
    Server,
    start_command,
    start_distribution,
)
from bench.settings import FULL, QUICK, Settings

ROOT = Path(__file__).resolve().parent.parent
PORTSIDE = "Portside"
DISTRIBUTION = "Distribution"


def _default_portside_cmd() -> str:
    exe = ROOT / ".venv" / "bin" / "portside"
    if not exe.exists():
        exe = Path(shutil.which("portside") or exe)
    return f"{exe} serve --listen {{listen}} --data-dir {{data_dir}}"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="bench/run", description="Benchmark Portside against CNCF Distribution 2.8."
    )
    p.add_argument("--quick", action="store_true", help="small sizes, short runs (smoke test)")
    p.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="NAME",
        help="run only figures whose key matches (glob or prefix; repeatable, comma-separated)",
    )
    p.add_argument("--list", action="store_true", help="list the figure keys and exit")
    p.add_argument(
        "--portside-cmd",
        default=os.environ.get("PORTSIDE_BENCH_CMD") or _default_portside_cmd(),
        help="command starting the 'Portside' side; {listen} {host} {port} {data_dir} are "
        "filled in; the word 'distribution' runs Distribution on that side too "
        "(env PORTSIDE_BENCH_CMD; default: %(default)s)",
    )
    p.add_argument("--distribution-bin", default=DISTRIBUTION_BIN)
    p.add_argument("--reps", type=int, default=0, help="override every figure's repetitions")
    p.add_argument("--no-ceiling", action="store_true", help="skip the client ceiling check")
    p.add_argument("--keep", action="store_true", help="keep the temporary work directory")
    p.add_argument("--results-dir", type=Path, default=ROOT / "bench" / "results")
    return p.parse_args(argv)


def select(patterns: list[str]) -> list[Figure]:
    pats = [x.strip() for p in patterns for x in p.split(",") if x.strip()]
    if not pats:
        return list(FIGURES)
    chosen = [
        f for f in FIGURES if any(fnmatch.fnmatch(f.key, p) or f.key.startswith(p) for p in pats)
    ]
    if not chosen:
        raise SystemExit(f"--only {pats} matches none of: {', '.join(f.key for f in FIGURES)}")
    return chosen


def client_ceiling(ctx: Context) -> dict[str, float]:
    """The harness's own speed against a null server: it must beat both registries."""
    s = ctx.settings
    out: dict[str, float] = {}
    null = NullServer(s.large_blob)
    try:
        for clients in (1, 8):
            n, secs = client.pull_concurrent(null.endpoint, "null", "sha256:0", clients)
            out[f"pull {clients} client(s)"] = round(n / secs / 1e6, 1)
        blob = ctx.payload(s.push_size)
        _ = blob.digest
        for name, fn in (
            ("push monolithic", client.push_monolithic),
            ("push chunked", client.push_chunked),
            ("push streamed", client.push_streamed),
        ):
            t0 = time.perf_counter()
            fn(null.endpoint, "null", blob)
            out[name] = round(blob.size / (time.perf_counter() - t0) / 1e6, 1)
    finally:
        null.stop()
    return out


def _start(name: str, cmd: str, workdir: Path, dist_bin: str) -> Server:
    if cmd.strip() == "distribution":
        return start_distribution(name, workdir, dist_bin)
    return start_command(name, workdir, cmd)


def run_figure(
    fig: Figure, ctx: Context, servers: list[Server], reps_override: int
) -> FigureResult:
    s = ctx.settings
    label = fig.label(s)
    sides = {srv.name: SideResult() for srv in servers}
    reps = reps_override or fig.reps(s)
    log(f"== {fig.key}: {label} ({reps} rep{'s' if reps > 1 else ''})")
    for rep in range(reps):
        try:
            fig.prepare(ctx, rep)
        except Exception as exc:
            for side in sides.values():
                side.error = f"prepare failed: {exc}"
            traceback.print_exc()
            break
        order = servers if rep % 2 == 0 else list(reversed(servers))
        for srv in order:
            side = sides[srv.name]
            if side.error:
                continue
            if srv.proc.poll() is not None:
                side.error = f"server exited ({srv.proc.returncode})"
                continue
            sync()
            try:
                sample = fig.sample(ctx, srv, rep)
            except Exception as exc:
                side.error = f"{type(exc).__name__}: {exc}"[:500]
                log(f"   {srv.name}: ERROR {side.error}")
                continue
            side.samples.append(round(sample.value, 3))
            side.extras.append(sample.extra)
            log(f"   rep {rep + 1} {srv.name:<12} {sample.value:12,.2f} {fig.unit}  {sample.extra}")
    for side in sides.values():
        if side.samples and not side.error:
            side.value = fig.aggregate(side.samples)
    return FigureResult(fig, label, sides)


def header(machine: dict[str, str], settings: Settings, commands: dict[str, list[str]]) -> str:
    lines = [
        "# Portside vs Distribution benchmark",
        "",
        f"- machine: {machine['cpu']}, {machine['cores']} cores "
        f"({machine['usable_cores']} usable), {machine['memory']}",
        f"- kernel: {machine['kernel']} ({machine['os']}), Python {machine['python']}",
        f"- tools: {machine['distribution']}; {machine['wrk']}; {machine['skopeo']}",
        f"- mode: {'quick' if settings.quick else 'full'}",
    ]
    lines += [f"- {name}: `{' '.join(cmd)}`" for name, cmd in commands.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    figures = select(args.only)
    if args.list:
        for f in figures:
            print(f"{f.key:<14} {f.label(QUICK if args.quick else FULL)}")
        return 0
    settings = QUICK if args.quick else FULL
    started = datetime.now(UTC)
    machine = describe(args.distribution_bin)
    workdir = Path(tempfile.mkdtemp(prefix="portside-bench-"))
    ctx = Context(settings, workdir)
    servers: list[Server] = []
    try:
        needed = set().union(*(f.seeds for f in figures))
        log(f"work dir {workdir}; preparing fixtures {sorted(needed)}")
        make_seeds(ctx, needed)
        ceiling: dict[str, float] = {}
        if not args.no_ceiling:
            log("measuring the client ceiling against a null server")
            ceiling = client_ceiling(ctx)
            log(f"   {ceiling}")
        try:
            servers.append(_start(PORTSIDE, args.portside_cmd, workdir, args.distribution_bin))
            servers.append(_start(DISTRIBUTION, "distribution", workdir, args.distribution_bin))
        except RuntimeError as exc:
            log(f"cannot start a server: {exc}")
            return 2
        commands = {srv.name: srv.command for srv in servers}
        print(header(machine, settings, commands), flush=True)
        if ceiling:
            print(
                "- client ceiling (harness vs a null server, MB/s): "
                + ", ".join(f"{k} {v:,.0f}" for k, v in ceiling.items())
            )
        print(flush=True)
        for srv in servers:
            t0 = time.perf_counter()
            seed_server(ctx, srv)
            log(f"seeded {srv.name} in {time.perf_counter() - t0:.1f}s")
        results = [run_figure(f, ctx, servers, args.reps) for f in figures]
        names = (PORTSIDE, DISTRIBUTION)
        print(markdown(results, names), flush=True)
        out = args.results_dir / f"{started.strftime('%Y%m%dT%H%M%SZ')}.json"
        to_json(
            out,
            started=started.isoformat(),
            machine=machine,
            settings=settings,
            commands=commands,
            ceiling=ceiling,
            results=results,
            names=names,
        )
        print(f"\nJSON: {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")
        log(f"total {(datetime.now(UTC) - started).total_seconds():.0f}s")
        return 0
    finally:
        for srv in servers:
            srv.stop()
        if args.keep:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
