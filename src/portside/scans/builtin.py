"""The built-in scanner: reads an image's layers (found with the artifact walker, opened
through the storage driver's reader, one at a time, lowest first) with the layer reader
and package collectors of portside.scanning, and matches the inventory against the
vulnerability database (portside.vulndb). A layer the reader rejects (a decompression
bomb, a path escape, malformed tar/gzip/zstd...) fails the scan with the reader's reason.

Also renders SBOMs (SPDX 2.3, CycloneDX 1.5) of an inventory, for the scan service to
attach as referrers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from importlib.metadata import version

from portside.content.walker import walk
from portside.digest import Digest
from portside.metadata.db import Database
from portside.scanning import sbom as documents
from portside.scanning.inventory import inventory
from portside.scanning.limits import LayerRejected, Limits
from portside.scanning.model import Inventory
from portside.scans.scanner import BUILTIN, ScanFailed, ScannerInfo, ScanReport, ScanTarget
from portside.storage.base import Reader, StorageDriver
from portside.storage.paths import blob_path
from portside.vulndb import match_all

VERSION = version("portside")
INFO = ScannerInfo("Portside", "Portside", VERSION)


class BuiltinScanner:
    name = BUILTIN

    def __init__(self, db: Database, storage: StorageDriver, limits: Limits | None = None) -> None:
        self.db = db
        self.storage = storage
        self.limits = limits or Limits()

    def info(self) -> ScannerInfo:
        return INFO

    def _layers(self, target: ScanTarget) -> list[str]:
        layers = []
        for part in walk(self.db, target.repository, target.digest, max_depth=0):
            if part.role != "layer" or part.depth != 0:
                continue
            if part.external:
                raise ScanFailed(
                    f"layer {part.digest} is a foreign layer (stored elsewhere): not scanned"
                )
            layers.append(part.digest)
        return layers

    def scan(self, target: ScanTarget, check: Callable[[], None]) -> ScanReport:
        digests = self._layers(target)

        def opened() -> Iterator[tuple[str, Reader]]:
            for digest in digests:
                check()
                reader = self.storage.reader(blob_path(Digest.parse(digest)))
                try:
                    yield digest, reader
                finally:
                    reader.close()

        try:
            found = inventory(opened(), self.limits)
        except LayerRejected as error:
            raise ScanFailed(str(error)) from None
        check()
        matched = match_all(self.db, found.packages)
        generation = None if matched.generation is None else str(matched.generation)
        return ScanReport(tuple(matched.findings), INFO, generation, found)


def render_sboms(
    inventory_: Inventory, repository: str, digest: str, registry: str | None
) -> list[tuple[str, bytes]]:
    """SPDX 2.3 and CycloneDX 1.5 documents of one image: (artifact type, bytes)."""
    subject = documents.Subject(repository, digest, registry)
    created = datetime.now(UTC)
    return [
        (
            documents.SPDX_MEDIA_TYPE,
            documents.render(documents.spdx(inventory_, subject, created, VERSION)),
        ),
        (
            documents.CYCLONEDX_MEDIA_TYPE,
            documents.render(documents.cyclonedx(inventory_, subject, created, VERSION)),
        ),
    ]
