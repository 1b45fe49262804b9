"""Resident memory of a process tree, sampled from /proc."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from types import TracebackType


def _ppid_map() -> dict[int, int]:
    out: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        out[int(entry)] = int(fields[1])
    return out


def tree_pids(root: int) -> list[int]:
    parents = _ppid_map()
    pids = [root]
    frontier = [root]
    while frontier:
        p = frontier.pop()
        kids = [c for c, pp in parents.items() if pp == p]
        pids.extend(kids)
        frontier.extend(kids)
    return pids


def _status_kib(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _rollup_kib(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_pss_kib(pids: list[int]) -> int:
    """Proportional set size: pages shared by forked workers are counted once overall."""
    return sum(_rollup_kib(p, "Pss") for p in pids)


def tree_rss_kib(pids: list[int]) -> int:
    return sum(_status_kib(p, "VmRSS") for p in pids)


def tree_hwm_kib(pids: list[int]) -> int:
    return sum(_status_kib(p, "VmHWM") for p in pids)


class RssSampler:
    """Samples the summed VmRSS of `root`'s process tree every `interval` seconds.

    The tree is re-listed every 20 samples so worker processes that come and go are seen.
    """

    def __init__(self, root: int, interval: float = 0.05, *, pss: bool = False) -> None:
        self.root = root
        self.pss = pss
        self.interval = interval
        self.peak_kib = 0
        self.first_kib = 0
        self.samples = 0
        self.hwm_kib = 0
        self.peak_pss_kib = 0
        self.first_pss_kib = 0
        self.processes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        pids = tree_pids(self.root)
        while True:
            if self.samples % 20 == 0:
                pids = tree_pids(self.root)
            rss = tree_rss_kib(pids)
            pss = tree_pss_kib(pids) if self.pss else 0
            if self.samples == 0:
                self.first_kib = rss
                self.first_pss_kib = pss
            self.samples += 1
            self.peak_kib = max(self.peak_kib, rss)
            self.peak_pss_kib = max(self.peak_pss_kib, pss)
            self.processes = max(self.processes, len(pids))
            if self._stop.wait(self.interval):
                self.hwm_kib = tree_hwm_kib(tree_pids(self.root))
                return

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()
