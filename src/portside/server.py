"""Running the ASGI app under granian with Portside's settings."""

from __future__ import annotations

import os
import shutil
import sys
from datetime import timedelta

import structlog

from portside.config import SERIALIZED_ENV, Settings
from portside.metadata.engine import upgrade

log = structlog.get_logger("portside.server")


def _purge_abandoned_uploads(settings: Settings) -> None:
    from portside.app import build_context
    from portside.content.purge import purge_uploads

    ctx = build_context(settings)
    try:
        result = purge_uploads(
            ctx.db, ctx.storage, timedelta(hours=settings.registry.upload_expiry_hours)
        )
    finally:
        ctx.close()
    if result.expired_uploads or result.orphan_directories:
        log.info(
            "uploads.purged",
            expired=result.expired_uploads,
            leftover_directories=result.orphan_directories,
        )


def granian_command(settings: Settings, workers: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "granian",
        "--interface",
        "rsgi",
        "--factory",
        "--host",
        settings.host,
        "--port",
        str(settings.port),
        "--workers",
        str(workers),
        "--no-ws",
        "--respawn-failed-workers",
        "--log-level",
        "warning" if settings.log.level in ("warning", "error") else "info",
        "portside.app:worker_app",
    ]


def serve(settings: Settings) -> None:
    """Prepare the data directory and database, then become the granian master.

    exec() rather than running granian in this interpreter: the master then holds none of
    the modules used for preparation (alembic, SQLAlchemy), which saves ~40 MB of RSS, and
    the PID the caller started is the server's, so signals reach it directly.
    """
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.database_url)
    _purge_abandoned_uploads(settings)
    workers = settings.server.workers or os.cpu_count() or 1
    # Workers are separate processes: they rebuild Settings from this variable, and sum
    # their Prometheus counters through files in a private directory.
    os.environ[SERIALIZED_ENV] = settings.model_dump_json()
    metrics_dir = settings.data_dir.absolute() / "run" / "metrics"
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    log.info(
        "server.starting",
        listen=settings.listen,
        workers=workers,
        database=settings.database_url.split("@")[-1],
        storage=str(settings.storage_root),
    )
    command = granian_command(settings, workers)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(command[0], command)  # noqa: S606 - fixed argv, our own interpreter
