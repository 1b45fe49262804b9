"""What every /v2 handler is given: the services and the settings, built once per process."""

from __future__ import annotations

from dataclasses import dataclass

from portside.config import Settings
from portside.content.blobs import BlobService
from portside.content.db import Database
from portside.content.hotpath import HotQueries
from portside.content.manifests import ManifestService
from portside.content.uploads import UploadService
from portside.storage.base import StorageDriver


@dataclass(frozen=True, slots=True)
class Context:
    settings: Settings
    db: Database
    storage: StorageDriver
    blobs: BlobService
    uploads: UploadService
    manifests: ManifestService
    hot: HotQueries

    def close(self) -> None:
        """Release database connections (the hot-path connection is outside the pool)."""
        self.hot.close()
        self.db.engine.dispose()
