"""A job worker process: `portside worker`, and the workers `portside serve` starts
(`python -m portside.jobs --parent-pid N`, which skips the CLI's imports). Those wait in
the small state of portside.jobs.idle and exec into `run_busy` below when there is work."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from typing import TYPE_CHECKING

from portside.config import Settings, settings_from_environment
from portside.jobs.kinds import KINDS
from portside.jobs.runner import Worker
from portside.logs import configure
from portside.metadata.db import Database
from portside.metadata.engine import make_engine

if TYPE_CHECKING:
    from portside.context import Context


def run_worker(
    settings: Settings,
    parent_pid: int | None = None,
    idle_exit: float | None = None,
    may_idle: Callable[[], bool] = lambda: True,
) -> bool:
    """Run jobs until SIGTERM/SIGINT, or until `parent_pid` is no longer our parent, or
    (with `idle_exit`) until no job has run for that many seconds and `may_idle()`: then
    True."""
    configure(settings.log.level, settings.log.format)
    db = Database(make_engine(settings.database_url))
    built: list[Context] = []

    def build() -> Context:
        from portside.context import build_context  # the first job pays for these imports

        built.append(build_context(settings))
        return built[-1]

    runner = Worker(build, settings=settings, db=db)

    def stop(signum: int, frame: object) -> None:
        runner.stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    def alive() -> bool:
        return parent_pid is None or os.getppid() == parent_pid

    try:
        return runner.run_forever(alive, idle_exit, may_idle)
    finally:
        for ctx in built:
            ctx.close()
        db.engine.dispose()


def run_busy(
    parent_pid: int, idle_exit: float | None, may_idle: Callable[[], bool]
) -> list[str] | None:
    """The full worker `portside serve` starts (portside.jobs.idle execs into it): the
    job kinds it runs when it went idle (for the idle state to watch), None if stopped."""
    idle = run_worker(settings_from_environment(), parent_pid, idle_exit, may_idle)
    return sorted(KINDS) if idle else None
