"""What every /v2 handler is given: the services and the settings, built once per process."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from portside.auth.service import AuthService
from portside.config import Settings
from portside.content.blobs import BlobService
from portside.content.browse import Browser
from portside.content.db import Database
from portside.content.hotpath import HotQueries
from portside.content.manifests import ManifestService
from portside.content.uploads import UploadService
from portside.events.audit import AuditLog
from portside.storage.base import StorageDriver

if TYPE_CHECKING:
    from portside.api.guard import Guard


@dataclass(frozen=True, slots=True)
class Context:
    settings: Settings
    db: Database
    storage: StorageDriver
    blobs: BlobService
    uploads: UploadService
    manifests: ManifestService
    hot: HotQueries
    auth: AuthService
    guard: Guard
    audit: AuditLog
    browser: Browser

    def url(self, path: str) -> str:
        """A URL for a response header: absolute under `external_url` when one is set
        (never built from the request's Host), else a path, which the spec allows."""
        base = self.settings.external_url
        return f"{base}{path}" if base else path

    def close(self) -> None:
        """Release database connections (the hot-path connection is outside the pool)."""
        self.audit.flush()
        self.hot.close()
        self.db.engine.dispose()
