"""The service container: the settings and every service, built once per process.

Everything above the services (the /v2 handlers, the management API, the UI, the job
workers, the CLI) is given a `Context`; nothing below it imports this module.
"""

from __future__ import annotations

from dataclasses import dataclass

from portside.auth.ldap_login import ldap_source
from portside.auth.service import AuthService
from portside.config import Settings
from portside.content.blobs import BlobService
from portside.content.browse import Browser
from portside.content.hotpath import HotQueries
from portside.content.manifests import ManifestService
from portside.content.pull_policy import PullPolicy
from portside.content.uploads import UploadService
from portside.events.audit import AuditLog
from portside.events.batch import EventBuffer
from portside.metadata.db import Database
from portside.metadata.engine import POOL_SIZE, make_engine
from portside.offload import Offloader
from portside.proxy.endpoints import endpoint_upstreams
from portside.proxy.service import ProxyService
from portside.scanning.limits import Limits
from portside.scans.builtin import BuiltinScanner, render_sboms
from portside.scans.service import ScanService
from portside.signatures.service import SignatureService
from portside.storage.base import StorageDriver
from portside.storage.factory import open_storage


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
    audit: AuditLog
    events: EventBuffer  # pull events, counted and written in batches (events.batch)
    browser: Browser
    io: Offloader  # blocking work off the event loop (HTTP handlers)
    proxy: ProxyService  # proxy-cache projects and the mirror mode
    signatures: SignatureService
    pull_policy: PullPolicy  # manifest GET's one question to the project's policies
    scans: ScanService

    def url(self, path: str) -> str:
        """A URL for a response header: absolute under `external_url` when one is set
        (never built from the request's Host), else a path, which the spec allows."""
        base = self.settings.external_url
        return f"{base}{path}" if base else path

    def close(self) -> None:
        """Finish blocking work in flight, then write buffered events and release
        database connections."""
        self.io.close()
        self.proxy.close()
        self.events.flush()
        self.hot.close()
        self.db.engine.dispose()


def registry_host(settings: Settings) -> str:
    """host[:port] of the registry as clients name it (for SBOMs' package URLs)."""
    return settings.public_url.split("://", 1)[-1].rstrip("/")


def build_context(settings: Settings) -> Context:
    db = Database(make_engine(settings.database_url))
    io = Offloader(POOL_SIZE)
    hot = HotQueries(db.engine)
    storage = open_storage(settings)
    blobs = BlobService(db, storage, hot)
    auth = AuthService(settings, db, ldap_source(settings))
    events = EventBuffer(db, io=io)
    audit = AuditLog(db, pending=events)
    # Read-only mode (portside.readonly): pulls write nothing, no event, no last_pulled_at.
    pulls = events if settings.audit.record_pulls and not settings.registry.read_only else None
    uploads = UploadService(db, storage, blobs, io)
    manifests = ManifestService(
        db,
        hot,
        settings.registry.manifest_max_bytes,
        pulls=pulls,
        read_only=settings.registry.read_only,
    )
    proxy = ProxyService(
        db,
        storage,
        blobs=blobs,
        manifests=manifests,
        io=io,
        settings=settings,
        upstreams=endpoint_upstreams(settings, db),
    )
    signatures = SignatureService(db, storage, read_only=settings.registry.read_only)
    return Context(
        settings=settings,
        db=db,
        storage=storage,
        blobs=blobs,
        uploads=uploads,
        manifests=manifests,
        hot=hot,
        auth=auth,
        audit=audit,
        events=events,
        browser=Browser(db, storage),
        io=io,
        proxy=proxy,
        signatures=signatures,
        pull_policy=PullPolicy(db, hot, signatures),
        scans=ScanService(
            settings,
            db,
            auth,
            uploads,
            manifests,
            builtin=lambda: BuiltinScanner(
                db, storage, Limits(**settings.scanning.limits.model_dump())
            ),
            sbom_generator=lambda found, repository, digest: render_sboms(
                found, repository, digest, registry_host(settings)
            ),
        ),
    )
