"""Request-rate figures with wrk (-t2 -c64)."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

HEAD_SCRIPT = 'wrk.method = "HEAD"\n'


@dataclass
class WrkResult:
    requests_per_s: float
    requests: int
    non_2xx: int
    socket_errors: str
    latency: dict[str, str] = field(default_factory=dict)


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def parse(output: str) -> WrkResult:
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    total = re.search(r"(\d+) requests in", output)
    if not rps or not total:
        raise RuntimeError(f"cannot parse wrk output:\n{output}")
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    sockerr = re.search(r"Socket errors:(.*)", output)
    latency = {}
    for pct, val in re.findall(r"^\s+(50|75|90|99)%\s+(\S+)", output, re.MULTILINE):
        latency[f"p{pct}"] = val
    avg = re.search(r"Latency\s+(\S+)", output)
    if avg:
        latency["avg"] = avg.group(1)
    return WrkResult(
        requests_per_s=float(rps.group(1)),
        requests=int(total.group(1)),
        non_2xx=int(non2xx.group(1)) if non2xx else 0,
        socket_errors=sockerr.group(1).strip() if sockerr else "",
        latency=latency,
    )


def run_wrk(
    url: str,
    duration: float,
    headers: dict[str, str],
    *,
    method: str = "GET",
    workdir: Path | None = None,
    threads: int = 2,
    connections: int = 64,
) -> WrkResult:
    argv = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(duration))}s",
        "--latency",
        "--timeout",
        "10s",
    ]
    for k, v in headers.items():
        argv += ["-H", f"{k}: {v}"]
    if method == "HEAD":
        assert workdir is not None
        script = workdir / "head.lua"
        script.write_text(HEAD_SCRIPT)
        argv += ["-s", str(script)]
    elif method != "GET":
        raise ValueError(method)
    argv.append(url)
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60)
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {proc.stderr}{proc.stdout}")
    result = parse(proc.stdout)
    if result.non_2xx:
        raise RuntimeError(
            f"{result.non_2xx} of {result.requests} responses were not 2xx/3xx ({url})"
        )
    return result
