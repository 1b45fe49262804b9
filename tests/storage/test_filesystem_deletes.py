"""The filesystem driver's delete_many unlinks through a process-wide thread pool: it
deletes a batch of any size, and keeps working in a process forked after the pool was
made (a forked child has none of its parent's threads; a stale pool would hang it)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from portside.storage.filesystem import FilesystemDriver


def _files(driver: FilesystemDriver, prefix: str, count: int) -> list[str]:
    paths = [f"{prefix}/{n:03d}" for n in range(count)]
    for path in paths:
        driver.put(path, b"x")
    return paths


def test_delete_many_deletes_a_large_batch(tmp_path: Path) -> None:
    driver = FilesystemDriver(tmp_path)
    paths = _files(driver, "batch", 300)
    driver.delete_many([*paths[:200], "batch/missing"])
    assert driver.list("batch") == paths[200:]


def test_delete_many_works_in_a_forked_child(tmp_path: Path) -> None:
    driver = FilesystemDriver(tmp_path)
    driver.delete_many(_files(driver, "parent", 10))  # the pool exists now
    in_child = _files(driver, "child", 10)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through its exit status
        try:
            driver.delete_many(in_child)
            os._exit(0 if not driver.list("child") else 1)
        finally:
            os._exit(2)
    deadline = time.monotonic() + 60
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            raise AssertionError("delete_many hung in the forked child")
        time.sleep(0.05)
    assert os.waitstatus_to_exitcode(status) == 0
