"""Running the ASGI app under granian with Portside's settings."""

from __future__ import annotations

import os
import shutil
import tempfile
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
        ctx.hot.close()
        ctx.db.engine.dispose()
    if result.expired_uploads or result.orphan_directories:
        log.info(
            "uploads.purged",
            expired=result.expired_uploads,
            leftover_directories=result.orphan_directories,
        )


def serve(settings: Settings) -> None:
    from granian import Granian
    from granian.constants import Interfaces

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.database_url)
    _purge_abandoned_uploads(settings)
    workers = settings.server.workers or os.cpu_count() or 1
    # Workers are separate processes: they rebuild Settings from this variable, and
    # sum their Prometheus counters through files in a private directory.
    os.environ[SERIALIZED_ENV] = settings.model_dump_json()
    metrics_dir = tempfile.mkdtemp(prefix="portside-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    log.info(
        "server.starting",
        listen=settings.listen,
        workers=workers,
        database=settings.database_url.split("@")[-1],
        storage=str(settings.storage_root),
    )
    try:
        Granian(
            "portside.app:worker_app",
            factory=True,
            address=settings.host,
            port=settings.port,
            interface=Interfaces.ASGI,
            workers=workers,
            log_enabled=True,
            respawn_failed_workers=True,
        ).serve()
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)
