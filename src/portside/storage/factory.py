"""Build the storage driver the configuration names (`storage.driver`).

The one place that knows which driver classes exist: the application, the job workers,
fsck and the CLI all ask here, so a new driver (object storage) plugs in by adding a
branch and a settings section, and every caller gets it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from portside.storage.base import StorageDriver

if TYPE_CHECKING:
    from portside.config import Settings


def open_storage(settings: Settings) -> StorageDriver:
    driver = settings.storage.driver
    if driver == "filesystem":
        from portside.storage.filesystem import FilesystemDriver

        return FilesystemDriver(settings.storage_root)
    if driver == "s3":
        from portside.storage.s3 import S3Driver

        return S3Driver(settings.storage.s3)
    # The settings model only admits known drivers; this guards a new Literal value
    # added there without a branch here.
    raise ValueError(f"storage.driver: unknown driver {driver!r}")


def check_storage(settings: Settings) -> None:
    """At start: fail with a ConfigError naming the key when the configured store cannot
    be used (for S3: the bucket is missing, the credentials are refused, the endpoint is
    unreachable)."""
    if settings.storage.driver == "s3":
        from portside.storage.s3 import S3Driver

        S3Driver(settings.storage.s3).check()
