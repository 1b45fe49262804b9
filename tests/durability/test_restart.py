"""SIGKILL of `portside serve`'s main process takes its whole process tree down, so the
server can be started again at once on the same address (granian's workers used to
outlive it, serving the old code on the port and refusing the restart)."""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path

import httpx

from tests.durability.conftest import ServerFactory


def _children(pid: int) -> list[int]:
    """Live (non-zombie) processes whose parent is pid."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[1]) == pid and fields[0] not in ("Z", "X"):
            found.append(int(entry.name))
    return found


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_sigkill_of_serve_takes_workers_and_job_worker_down(
    server_factory: ServerFactory,
) -> None:
    server = server_factory(workers=2).start()
    assert server.process is not None
    main = server.process.pid
    children = _children(main)
    # two HTTP workers and the job worker, all children of the exec'd main process
    assert len(children) == 3, children

    os.kill(main, signal.SIGKILL)  # the main process only, not its process group
    server.process.wait(timeout=5)
    deadline = time.monotonic() + 5
    left = children
    while time.monotonic() < deadline:
        left = [pid for pid in children if _alive(pid)]
        if not left and not _listening(server.port):
            break
        time.sleep(0.05)
    assert left == [], f"children outlived the main process: {left}"
    assert not _listening(server.port), "something still listens on the port"

    again = server_factory(workers=1).start(port=server.port)
    with again.client() as client:
        assert client.get("/v2/").status_code == 200


def test_serve_restarts_on_its_port_after_a_crash_with_a_connection_open(
    server_factory: ServerFactory,
) -> None:
    """An idle keep-alive connection into a worker does not keep it alive either."""
    server = server_factory(workers=1).start()
    assert server.process is not None
    with httpx.Client(base_url=server.url, timeout=5) as held:
        assert held.get("/v2/").status_code == 200
        os.kill(server.process.pid, signal.SIGKILL)
        server.process.wait(timeout=5)
        deadline = time.monotonic() + 5
        while _listening(server.port) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _listening(server.port)
        again = server_factory(workers=1).start(port=server.port)
        with again.client() as client:
            assert client.get("/v2/").status_code == 200


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return state[state.rindex(")") + 2 :].split()[0] not in ("Z", "X")
