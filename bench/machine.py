"""What the benchmark ran on."""

from __future__ import annotations

import os
import platform
import subprocess
import time
from pathlib import Path


def _first(cmd: list[str]) -> str:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "n/a"
    lines = (proc.stdout or proc.stderr).strip().splitlines()
    return lines[0].strip() if lines else "n/a"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _mem_total_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / (1 << 20)
    except OSError:
        pass
    return 0.0


def describe(distribution_bin: str) -> dict[str, str]:
    return {
        "cpu": _cpu_model(),
        "cores": str(os.cpu_count()),
        "usable_cores": str(len(os.sched_getaffinity(0))),
        "memory": f"{_mem_total_gib():.1f} GiB",
        "kernel": f"{platform.system()} {platform.release()}",
        "os": _first(["sh", "-c", ". /etc/os-release && echo $PRETTY_NAME"]),
        "python": platform.python_version(),
        "distribution": _first([distribution_bin, "--version"]),
        "wrk": _first(["wrk", "--version"]).split(" Copyright")[0],
        "skopeo": _first(["skopeo", "--version"]),
    }


def _cpu_times() -> tuple[int, int]:
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields), idle


def cpu_busy(seconds: float = 1.0) -> float:
    """Share of all CPUs busy over `seconds` while this harness sleeps: other load on the
    machine (another benchmark, a build, a test run) skews every figure."""
    total0, idle0 = _cpu_times()
    time.sleep(seconds)
    total1, idle1 = _cpu_times()
    if total1 == total0:
        return 0.0
    return 1.0 - (idle1 - idle0) / (total1 - total0)


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])
