"""Request-rate figures: wrk (-t2 -c64) for GETs, ApacheBench for HEAD.

wrk 4.1 cannot measure HEAD: its response parser is never told the request was a
HEAD, so it waits for the Content-Length bytes of body that never come and counts 0
requests. HEAD is measured with `ab -i -k` instead, two processes of 32 keep-alive
connections each (the same 2 x 32 shape as wrk -t2 -c64), rates summed.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field


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


def run_ab_head(
    url: str,
    duration: float,
    processes: int = 2,
    connections: int = 64,
    headers: dict[str, str] | None = None,
) -> WrkResult:
    """`ab -i -k` (HEAD, keep-alive) in `processes` parallel processes; rates are summed."""
    secs = max(1, round(duration))
    argv = ["ab", "-q", "-i", "-k", "-c", str(connections // processes), "-t", str(secs)]
    for header, header_value in (headers or {}).items():
        argv += ["-H", f"{header}: {header_value}"]
    argv += ["-n", "100000000", url]
    procs = [
        subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(processes)
    ]
    total_rps = 0.0
    total = non2xx = failed = keepalive = 0
    for proc in procs:
        out, err = proc.communicate(timeout=secs + 120)
        if proc.returncode != 0:
            raise RuntimeError(f"ab failed ({proc.returncode}): {err}{out}")
        rps = re.search(r"Requests per second:\s+([\d.]+)", out)
        done = re.search(r"Complete requests:\s+(\d+)", out)
        if not rps or not done:
            raise RuntimeError(f"cannot parse ab output:\n{out}")
        total_rps += float(rps.group(1))
        total += int(done.group(1))
        for pattern, name in (
            (r"Non-2xx responses:\s+(\d+)", "non2xx"),
            (r"Failed requests:\s+(\d+)", "failed"),
            (r"Keep-Alive requests:\s+(\d+)", "keepalive"),
        ):
            m = re.search(pattern, out)
            value = int(m.group(1)) if m else 0
            if name == "non2xx":
                non2xx += value
            elif name == "failed":
                failed += value
            else:
                keepalive += value
    if non2xx or failed:
        raise RuntimeError(f"{non2xx} non-2xx and {failed} failed of {total} HEADs ({url})")
    return WrkResult(
        requests_per_s=total_rps,
        requests=total,
        non_2xx=0,
        socket_errors="",
        latency={"keep_alive_requests": str(keepalive)},
    )
