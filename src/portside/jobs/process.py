"""A job worker process: `portside worker`, and the workers `portside serve` starts
(`python -m portside.jobs --parent-pid N`, which skips the CLI's imports: an idle worker
then holds little more than SQLAlchemy and the settings)."""

from __future__ import annotations

import os
import signal
import sys
from typing import TYPE_CHECKING

from portside.config import Settings, settings_from_environment
from portside.jobs.runner import Worker
from portside.lifeline import die_with_parent
from portside.logs import configure
from portside.metadata.db import Database
from portside.metadata.engine import make_engine

if TYPE_CHECKING:
    from portside.context import Context


def run_worker(settings: Settings, parent_pid: int | None = None) -> None:
    """Run jobs until SIGTERM/SIGINT, or until `parent_pid` is no longer our parent."""
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
        runner.run_forever(alive)
    finally:
        for ctx in built:
            ctx.close()
        db.engine.dispose()


def main(argv: list[str]) -> None:
    if len(argv) != 2 or argv[0] != "--parent-pid" or not argv[1].isdigit():
        sys.exit("usage: python -m portside.jobs --parent-pid PID (started by portside serve)")
    die_with_parent(signal.SIGTERM)  # at once, not at the next poll of the parent pid
    run_worker(settings_from_environment(), int(argv[1]))
