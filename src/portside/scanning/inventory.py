"""The package inventory of one image: read its layers with every collector, then turn
what was found into `Package`s for the image's OS.

    inventory([(layer_digest, stream), ...], Limits(...)) -> Inventory

The streams are the layer blobs as stored (the caller opens them through the storage
driver's reader), lowest layer first; `layers` may be a generator, so each blob is
opened only when its turn comes (and the caller closes it after). Layers are read
one after another, each once, in the calling thread: run it off the event loop.
`LayerRejected` if one is hostile or malformed; files that only cannot be parsed
become `Inventory.warnings`; errors of the streams themselves (a storage read failing)
propagate unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace

from portside.scanning.collectors.apk import Apk
from portside.scanning.collectors.base import Draft, FileCollector, StreamCollector
from portside.scanning.collectors.dpkg import Dpkg, DpkgCopyright
from portside.scanning.collectors.golang import GoBinaries
from portside.scanning.collectors.java import JavaArchive
from portside.scanning.collectors.npm import NpmPackage
from portside.scanning.collectors.osrelease import OsRelease
from portside.scanning.collectors.python import PythonMetadata
from portside.scanning.collectors.rpm import RpmSqlite
from portside.scanning.layers import ImageFiles, read_image
from portside.scanning.limits import Limits
from portside.scanning.model import Inventory, Package
from portside.scanning.purl import finish
from portside.scanning.streams import ByteSource

FILE_COLLECTORS: Sequence[FileCollector] = (
    OsRelease(),
    Dpkg(),
    DpkgCopyright(),
    Apk(),
    RpmSqlite(),
    PythonMetadata(),
    NpmPackage(),
    JavaArchive(),
)
STREAM_COLLECTORS: Sequence[StreamCollector] = (GoBinaries(),)
OS_RELEASE = ("etc/os-release", "usr/lib/os-release")


def os_release(image: ImageFiles) -> dict[str, str] | None:
    for path in OS_RELEASE:
        result = image.lookup(path)
        if result is not None and result.found.os_release is not None:
            return dict(result.found.os_release)
    return None


def _with_licenses(image: ImageFiles, draft: Draft) -> Draft:
    """A Debian package with the licences of its copyright file (its doc directory may
    be a link to another package's, which `lookup` follows inside the image)."""
    if draft.kind != "deb" or draft.licenses:
        return draft
    result = image.lookup(f"usr/share/doc/{draft.name}/copyright")
    return replace(draft, licenses=result.found.licenses) if result is not None else draft


def inventory(layers: Iterable[tuple[str, ByteSource]], limits: Limits | None = None) -> Inventory:
    limits = limits or Limits()
    image = read_image(layers, FILE_COLLECTORS, STREAM_COLLECTORS, limits)
    release = os_release(image)
    packages: list[Package] = []
    warnings = list(image.warnings)
    os_packages = False
    for path, result in image.results():
        warnings.extend(result.found.warnings)
        for draft in result.found.drafts:
            if len(packages) >= limits.max_packages:
                warnings.append(f"more than {limits.max_packages} packages: the rest left out")
                break
            os_packages = os_packages or draft.kind in ("deb", "apk", "rpm")
            packages.append(finish(_with_licenses(image, draft), path, result.layer, release))
    if os_packages and release is None:
        warnings.append("no etc/os-release: OS packages have no release in their ecosystem")
    packages.sort(key=lambda p: (p.ecosystem, p.name, p.version, p.path))
    release = release or {}
    return Inventory(
        packages=tuple(packages),
        os_id=release.get("ID"),
        os_version=release.get("VERSION_ID"),
        os_pretty_name=release.get("PRETTY_NAME"),
        warnings=tuple(dict.fromkeys(warnings)),
    )
