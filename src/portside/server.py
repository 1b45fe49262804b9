"""Running the ASGI app under granian with Portside's settings."""

from __future__ import annotations

import errno
import os
import shutil
import socket
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import structlog

from portside import readonly
from portside.auth.bootstrap import prepare_auth
from portside.config import SERIALIZED_ENV, ConfigError, Settings
from portside.lifeline import SERVE_PID_ENV
from portside.metadata.engine import upgrade
from portside.storage.factory import check_storage

log = structlog.get_logger("portside.server")


def _purge_abandoned_uploads(settings: Settings) -> None:
    from portside.content.purge import purge_uploads
    from portside.context import build_context

    ctx = build_context(settings)
    try:
        result = purge_uploads(
            ctx.db, ctx.storage, timedelta(hours=settings.registry.upload_expiry_hours)
        )
    finally:
        ctx.close()
    if result.expired_uploads or result.orphan_directories or result.aborted_multipart:
        log.info(
            "uploads.purged",
            expired=result.expired_uploads,
            leftover_directories=result.orphan_directories,
            aborted_multipart=result.aborted_multipart,
        )


def _sync_vulndb_schedule(settings: Settings) -> None:
    from portside.jobs.vulndb import sync_schedule
    from portside.metadata.db import Database
    from portside.metadata.engine import make_engine

    engine = make_engine(settings.database_url)
    try:
        sync_schedule(Database(engine), settings)
    finally:
        engine.dispose()


def _read_tls_file(key: str, path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{key}: cannot read {path}: {exc.strerror}") from exc


def check_tls_files(settings: Settings) -> None:
    """Fail with a ConfigError naming `tls.certificate` / `tls.key` when either file is
    unreadable or not PEM, the key is encrypted, or it does not belong to the certificate.

    granian would otherwise fail in each worker with a message that names neither setting.
    """
    from cryptography import x509
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization

    certificate, key = settings.tls.certificate, settings.tls.key
    if certificate is None or key is None:
        return
    try:
        chain = x509.load_pem_x509_certificates(_read_tls_file("tls.certificate", certificate))
    except ValueError as exc:
        raise ConfigError(
            f"tls.certificate: {certificate} is not a PEM certificate "
            "(expected -----BEGIN CERTIFICATE-----)"
        ) from exc
    try:
        private_key = serialization.load_pem_private_key(
            _read_tls_file("tls.key", key), password=None
        )
    except TypeError as exc:  # a password-protected key
        raise ConfigError(
            f"tls.key: {key} is encrypted; Portside needs an unencrypted PEM private key"
        ) from exc
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise ConfigError(
            f"tls.key: {key} is not a PEM private key (expected -----BEGIN PRIVATE KEY-----)"
        ) from exc
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if private_key.public_key().public_bytes(*spki) != chain[0].public_key().public_bytes(*spki):
        raise ConfigError(
            f"tls.key: {key} does not match the public key of the first certificate "
            f"in tls.certificate ({certificate})"
        )


def check_listen_address(settings: Settings) -> None:
    """Refuse to start on an address something already listens on. granian binds with
    SO_REUSEPORT, so a second `portside serve` on the same port would start as well and
    the kernel would split connections between two servers (perhaps different versions
    or data directories) without a word."""
    try:
        infos = socket.getaddrinfo(
            settings.host, settings.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as error:
        raise ConfigError(f"listen: cannot resolve {settings.host!r}: {error}") from None
    family, kind, protocol, _, address = infos[0]
    with socket.socket(family, kind, protocol) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is fine
        try:
            probe.bind(address)
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise ConfigError(
                    f"listen: {settings.listen} is already in use (another portside "
                    "serve, or another server, listens there)"
                ) from None
            raise ConfigError(f"listen: cannot listen on {settings.listen}: {error}") from None


def granian_command(settings: Settings, workers: int) -> list[str]:
    tls: list[str] = []
    if settings.tls.certificate is not None and settings.tls.key is not None:
        tls = [
            "--ssl-certificate",
            str(settings.tls.certificate.absolute()),
            "--ssl-keyfile",
            str(settings.tls.key.absolute()),
            # granian defaults to TLS 1.3 only; Distribution and Harbor accept 1.2, and
            # older clients (Java tools, some CI runners) still need it.
            "--ssl-protocol-min",
            "tls1.2",
        ]
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
        *tls,
        "--log-level",
        "warning" if settings.log.level in ("warning", "error") else "info",
        "portside.app:worker_app",
    ]


def start_job_workers(settings: Settings) -> list[subprocess.Popen[bytes]]:
    """Start `jobs.workers` job worker processes. They are children of this process,
    which becomes granian's master; each exits when its parent is gone (SIGTERM from the
    kernel, see portside.lifeline), so stopping or killing the server stops them (a
    running job is queued again for the next worker)."""
    parent = os.getpid()
    os.environ[SERVE_PID_ENV] = str(parent)
    if settings.registry.read_only:
        # portside.readonly: nothing runs that would change the registry.
        log.info("jobs.not_started", reason=readonly.MESSAGE)
        return []
    return [
        subprocess.Popen(
            [sys.executable, "-m", "portside.jobs", "--parent-pid", str(parent)],
            stdin=subprocess.DEVNULL,
        )
        for _ in range(settings.jobs.workers)
    ]


def _check_mirror(settings: Settings) -> None:
    from portside.metadata.db import Database
    from portside.metadata.engine import make_engine
    from portside.proxy.bindings import check_mirror

    engine = make_engine(settings.database_url)
    try:
        check_mirror(Database(engine), settings.proxy)
    finally:
        engine.dispose()


def _describe_storage(settings: Settings) -> str:
    if settings.storage.driver == "s3":
        s3 = settings.storage.s3
        return f"s3://{s3.bucket}/{s3.prefix}"
    return str(settings.storage_root)


def serve(settings: Settings) -> None:
    """Prepare the data directory and database, then become the granian master.

    exec() rather than running granian in this interpreter: the master then holds none of
    the modules used for preparation (alembic, SQLAlchemy), which saves ~40 MB of RSS, and
    the PID the caller started is the server's, so signals reach it directly.
    """
    check_tls_files(settings)
    check_listen_address(settings)
    check_storage(settings)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.database_url)
    prepare_auth(settings)
    _check_mirror(settings)
    if not settings.registry.read_only:  # portside.readonly: start-up changes nothing
        _sync_vulndb_schedule(settings)
        _purge_abandoned_uploads(settings)
    workers = settings.server.workers or os.cpu_count() or 1
    # Workers are separate processes: they rebuild Settings from this variable, and sum
    # their Prometheus counters through files in a private directory.
    os.environ[SERIALIZED_ENV] = settings.model_dump_json()
    # exec keeps the pid: granian's workers, our children, die with it (portside.lifeline).
    os.environ[SERVE_PID_ENV] = str(os.getpid())
    metrics_dir = settings.data_dir.absolute() / "run" / "metrics"
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    log.info(
        "server.starting",
        listen=settings.listen,
        tls=settings.tls.certificate is not None,
        workers=workers,
        database=settings.database_url.split("@")[-1],
        storage=_describe_storage(settings),
    )
    start_job_workers(settings)
    command = granian_command(settings, workers)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(command[0], command)  # noqa: S606 - fixed argv, our own interpreter
