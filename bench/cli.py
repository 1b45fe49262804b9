"""`python -m bench`: run Portside and Distribution side by side and compare them."""

from __future__ import annotations

import argparse
import dataclasses
import fnmatch
import os
import shutil
import sys
import tempfile
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

from bench import client, tokenauth
from bench.figures import FIGURES, SMALL_REPO, Context, Figure, make_seeds, seed_server, sync
from bench.machine import cpu_busy, describe, loadavg
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
PORTSIDE_ENV = ["PORTSIDE_LOG__ACCESS=false", "PORTSIDE_LOG__LEVEL=warning"]


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
        "--scale",
        action="store_true",
        help="instead: Portside alone with 1, 2, 3 replicas behind nginx on PostgreSQL "
        "(bench/run --scale --help)",
    )
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
    p.add_argument(
        "--portside-env",
        action="append",
        metavar="KEY=VALUE",
        help="environment for the Portside side (repeatable); default: "
        + " ".join(PORTSIDE_ENV)
        + " (no access log, warnings only: what Distribution's generated config does)",
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
    """The harness's own speed against a null server: it must beat both registries.

    Best of two tries each, after one warm-up pull (the null server's first read of its
    sparse file fills the page cache and is slow)."""
    s = ctx.settings
    out: dict[str, float] = {}
    null = NullServer(s.large_blob)
    try:
        client.pull_concurrent(null.endpoint, "null", "sha256:0", 1)
        for clients in (1, 8):
            for _ in range(2):
                n, secs = client.pull_concurrent(null.endpoint, "null", "sha256:0", clients)
                key = f"pull {clients} client{'s' if clients > 1 else ''}"
                out[key] = max(out.get(key, 0.0), round(n / secs / 1e6, 1))
        blob = ctx.payload(s.push_size)
        _ = blob.digest
        for name, fn in (
            ("push monolithic", client.push_monolithic),
            ("push chunked", client.push_chunked),
            ("push streamed", client.push_streamed),
        ):
            for _ in range(2):
                t0 = time.perf_counter()
                fn(null.endpoint, "null", blob)
                rate = round(blob.size / (time.perf_counter() - t0) / 1e6, 1)
                out[name] = max(out.get(name, 0.0), rate)
    finally:
        null.stop()
    return out


def _start(name: str, cmd: str, workdir: Path, dist_bin: str, env: list[str]) -> Server:
    if cmd.strip() == "distribution":
        return start_distribution(name, workdir, dist_bin)
    pairs = dict(kv.split("=", 1) for kv in env if "=" in kv)
    return start_command(name, workdir, cmd, pairs)


_reported_dead: set[str] = set()


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
                if srv.name not in _reported_dead:
                    _reported_dead.add(srv.name)
                    log(f"   {srv.name} exited ({srv.proc.returncode}); its log ends:")
                    log(srv.log_tail())
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
        f"- mode: {'quick' if settings.quick else 'full'}; CPU busy before start "
        f"{machine['cpu_busy_before_start']} (load average {machine['loadavg_before_start']})",
    ]
    lines += [f"- {name}: `{' '.join(cmd)}`" for name, cmd in commands.items()]
    return "\n".join(lines)


def _machine(args: argparse.Namespace) -> dict[str, str]:
    machine = describe(args.distribution_bin)
    busy = cpu_busy(2.0)
    machine["cpu_busy_before_start"] = f"{busy:.0%}"
    machine["loadavg_before_start"] = loadavg()
    if busy > 0.10:
        log(f"WARNING: the CPUs are already {busy:.0%} busy: figures will be noisy")
    return machine


def _run(
    args: argparse.Namespace, figures: list[Figure], ctx: Context, servers: list[Server]
) -> int:
    settings, workdir = ctx.settings, ctx.workdir
    started = datetime.now(UTC)
    machine = _machine(args)
    needed = set().union(*(f.seeds for f in figures))
    log(f"work dir {workdir}; preparing fixtures {sorted(needed)}")
    make_seeds(ctx, needed)
    ceiling: dict[str, float] = {}
    if not args.no_ceiling:
        log("measuring the client ceiling against a null server")
        ceiling = client_ceiling(ctx)
        log(f"   {ceiling}")
    try:
        env = PORTSIDE_ENV if args.portside_env is None else args.portside_env
        servers.append(_start(PORTSIDE, args.portside_cmd, workdir, args.distribution_bin, env))
        servers.append(_start(DISTRIBUTION, "distribution", workdir, args.distribution_bin, []))
    except RuntimeError as exc:
        log(f"cannot start a server: {exc}")
        return 2
    commands = {srv.name: srv.command for srv in servers}
    if args.portside_cmd.strip() != "distribution":
        commands[PORTSIDE] = [*env, *commands[PORTSIDE]]
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
    results = [run_figure(f, ctx, servers, args.reps) for f in figures if not f.token_auth]
    token_figures = [f for f in figures if f.token_auth]
    if token_figures:
        results += _run_token_auth(args, token_figures, ctx, servers, env)
    names = (PORTSIDE, DISTRIBUTION)
    print(markdown(results, names), flush=True)
    machine["loadavg_at_end"] = loadavg()
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
    elapsed = (datetime.now(UTC) - started).total_seconds()
    log(f"total {elapsed:.0f}s; load average {machine['loadavg_at_end']}")
    return 0


def _run_token_auth(
    args: argparse.Namespace,
    figures: list[Figure],
    ctx: Context,
    servers: list[Server],
    env: list[str],
) -> list[FigureResult]:
    """The same figures with authentication: Portside checks its own tokens, Distribution
    checks the same tokens (it trusts Portside's signing certificate)."""
    log("starting the token-auth pair")
    for srv in servers:
        srv.stop()
    pair = tokenauth.start_pair(ctx.workdir, args.portside_cmd, env, (PORTSIDE, DISTRIBUTION))
    servers[:] = list(pair)
    scope = f"repository:{SMALL_REPO}:pull,push"
    issued = tokenauth.token(pair[0].endpoint, scope)
    image_only = dataclasses.replace(
        ctx, pull_small=None, pull_large=None, signed=False, scanned=False
    )
    for srv in pair:
        srv.endpoint = dataclasses.replace(srv.endpoint, authorization=f"Bearer {issued}")
        seed_server(image_only, srv)
    return [run_figure(f, ctx, servers, args.reps) for f in figures]


def main(argv: list[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else argv
    if "--scale" in arguments:
        from bench import scale

        return scale.main(arguments)
    args = parse_args(argv)
    figures = select(args.only)
    settings = QUICK if args.quick else FULL
    if args.list:
        for f in figures:
            print(f"{f.key:<14} {f.label(settings)}")
        return 0
    ctx = Context(settings, Path(tempfile.mkdtemp(prefix="portside-bench-")))
    servers: list[Server] = []
    try:
        return _run(args, figures, ctx, servers)
    finally:
        for srv in servers:
            srv.stop()
        if args.keep:
            log(f"kept {ctx.workdir}")
        else:
            shutil.rmtree(ctx.workdir, ignore_errors=True)
