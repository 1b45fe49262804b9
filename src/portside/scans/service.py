"""Running one scan: pick the scanner, find the image manifests to scan (the image, or
each platform of an index), hand each to the scanner, store the results.

What is scanned: an image manifest whose config is an image config (OCI or Docker) and
that is not a referrer; an index (or Docker manifest list) through its platform
manifests, skipping attestation manifests (BuildKit's `unknown/unknown` entries).
Signatures, SBOMs and other artifacts are not images and are refused.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from portside.auth.errors import ManagementError
from portside.auth.scopes import Access
from portside.auth.service import AuthService
from portside.auth.tokens import TokenIssuer
from portside.config import Settings
from portside.content.manifests import ManifestService
from portside.content.uploads import UploadService
from portside.content.vulnerability import SCANNER_SUBJECT_PREFIX
from portside.egress import EgressPolicy, policy_from
from portside.errors import ManifestUnknown, RegistryError
from portside.events.outbox import Actor
from portside.metadata import schema as s
from portside.metadata.db import Database
from portside.oci import mediatypes as mt
from portside.scans import sbom
from portside.scans.harbor import HarborAdapterScanner
from portside.scans.registry import ScannerRegistry
from portside.scans.scanner import BUILTIN, ScanFailed, Scanner, ScanReport, ScanTarget
from portside.scans.store import ScanRecord, ScanStore

IMAGE_CONFIGS = frozenset(
    {"application/vnd.oci.image.config.v1+json", "application/vnd.docker.container.image.v1+json"}
)
_ATTESTATION = "vnd.docker.reference.type"
SBOM_ACTOR = "scanner"  # who the events of SBOMs Portside attaches name


class NotScannable(Exception):
    """The artifact is not an image (a signature, an SBOM, a Helm chart...)."""


class NoScanner(Exception):
    """No scanner is available (none registered, or the named one unknown/disabled)."""


@dataclass(frozen=True, slots=True)
class Image:
    digest: str
    media_type: str
    platform: str | None  # set for an index's platforms
    size: int = 0


def egress_policy(settings: Settings) -> EgressPolicy:
    options = settings.scanning
    return policy_from(
        allow_private=options.allow_private_scanners,
        allowed_networks=options.allowed_networks,
        timeout_seconds=options.timeout_seconds,
        max_redirects=0,
    )


def _is_image(parsed: dict[str, Any], media_type: str) -> bool:
    if media_type not in mt.IMAGE_MANIFESTS or "subject" in parsed:
        return False
    config = parsed.get("config")
    return isinstance(config, dict) and config.get("mediaType") in IMAGE_CONFIGS


def _platform(entry: dict[str, Any]) -> str | None:
    platform = entry.get("platform")
    if not isinstance(platform, dict):
        return None
    parts = [str(platform.get("os") or "unknown"), str(platform.get("architecture") or "unknown")]
    if platform.get("variant"):
        parts.append(str(platform["variant"]))
    return "/".join(parts)


def images_of(db: Database, repository: str, digest: str) -> list[Image]:
    """The image manifests a scan of `repository@digest` covers (see the module
    docstring). NotScannable if there are none; ManifestUnknown if it is missing."""
    m = s.manifests
    with db.read() as conn:
        rows = {
            row.digest: row
            for row in conn.execute(
                select(m.c.digest, m.c.media_type, m.c.content, m.c.size)
                .join(s.repositories, s.repositories.c.id == m.c.repository_id)
                .where(s.repositories.c.name == repository, m.c.digest == digest)
            )
        }
        root = rows.get(digest)
        if root is None:
            raise ManifestUnknown(f"no manifest {digest} in {repository}")
        parsed = json.loads(bytes(root.content))
        if root.media_type not in mt.INDEXES:
            if not _is_image(parsed, root.media_type):
                raise NotScannable(
                    f"{repository}@{digest} is not a container image "
                    f"({parsed.get('artifactType') or root.media_type}); only images are scanned"
                )
            return [Image(digest, root.media_type, None, int(root.size))]
        if "subject" in parsed:
            raise NotScannable(f"{repository}@{digest} is a referrer, not an image")
        entries = [
            e
            for e in parsed.get("manifests") or []
            if isinstance(e, dict)
            and isinstance(e.get("digest"), str)
            and e.get("mediaType") in mt.IMAGE_MANIFESTS
            and _ATTESTATION not in (e.get("annotations") or {})
            and _platform(e) != "unknown/unknown"
        ]
        children = {
            row.digest: row
            for row in conn.execute(
                select(m.c.digest, m.c.media_type, m.c.content, m.c.size)
                .join(s.repositories, s.repositories.c.id == m.c.repository_id)
                .where(
                    s.repositories.c.name == repository,
                    m.c.digest.in_([e["digest"] for e in entries]),
                )
            )
        }
    images = []
    for entry in entries:
        child = children.get(entry["digest"])
        if child is not None and _is_image(json.loads(bytes(child.content)), child.media_type):
            images.append(Image(child.digest, child.media_type, _platform(entry), int(child.size)))
    if not images:
        raise NotScannable(f"{repository}@{digest} is an index without image manifests here")
    return images


class ScanService:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        auth: AuthService,
        uploads: UploadService,
        manifests: ManifestService,
        *,
        builtin: Callable[[], Scanner] | None = None,
        sbom_generator: sbom.Generator | None = None,
    ) -> None:
        """`builtin`: builds the built-in scanner, when it is installed (None: only
        registered adapters can scan). `sbom_generator`: renders an inventory as SBOM
        documents (comes with the built-in scanner; None: no SBOMs are generated)."""
        self.settings = settings
        self.db = db
        self.auth = auth
        self.uploads = uploads
        self.manifests = manifests
        self.sbom_generator = sbom_generator
        self.store = ScanStore(db)
        self.egress = egress_policy(settings)
        self.registry = ScannerRegistry(db, self.egress)
        self.builtin = builtin

    # -- which scanner ----------------------------------------------------------------
    def default_scanner(self) -> str:
        """The name scans use when none is given; NoScanner if there is none."""
        registered = self.registry.default()
        if registered is not None:
            return registered.name
        if self.builtin is not None:
            return BUILTIN
        raise NoScanner(
            "no scanner is available: register a Harbor scanner adapter (e.g. Trivy's) as the "
            "default with `portside scanner add NAME URL --default` (the built-in scanner is "
            "not installed in this version)"
        )

    def scanner(self, name: str) -> Scanner:
        if name == BUILTIN:
            if self.builtin is None:
                raise NoScanner("the built-in scanner is not installed in this version")
            return self.builtin()
        try:
            record = self.registry.get(name)
        except Exception:
            raise NoScanner(f"no scanner {name!r} is registered") from None
        if not record.enabled:
            raise NoScanner(f"scanner {name!r} is disabled")
        options = self.settings.scanning
        return HarborAdapterScanner(
            record.registration(self.registry.credential(name)),
            self.egress,
            registry_url=options.registry_url or self.settings.public_url,
            token_for=self.pull_token,
            max_wait_seconds=options.max_wait_seconds,
            report_max_bytes=options.report_max_bytes,
        )

    def pull_token(self, target: ScanTarget) -> str:
        """A bearer token that may only pull `target.repository`, for a short time,
        whose subject (`scanner:<scan id>`) the vulnerability pull policy exempts."""
        base = self.auth.issuer
        issuer = TokenIssuer(
            base.key, base.issuer, base.audience, self.settings.scanning.token_lifetime_seconds
        )
        access = [Access("repository", target.repository, frozenset({"pull"}))]
        return issuer.issue(f"{SCANNER_SUBJECT_PREFIX}{target.scan_id}", access).token

    # -- one scan -----------------------------------------------------------------------
    def run(
        self, scan_id: int, check: Callable[[], None], log: Callable[[str], None]
    ) -> ScanRecord:
        """Run a queued scan to its end; the finished record (succeeded or failed)."""
        scan = self.store.start(scan_id)
        try:
            images = images_of(self.db, scan.repository, scan.digest)
            scanner = self.scanner(scan.scanner)
        except (NotScannable, NoScanner, ManifestUnknown) as error:
            self.store.fail(scan, str(error))
            log(f"failed: {error}")
            done = self.store.get(scan_id)
            assert done is not None
            return done
        results: list[tuple[str, str | None, ScanReport]] = []
        failures: list[tuple[str, str | None, str]] = []
        tag = self._tag(scan)
        for image in images:
            check()
            label = image.platform or image.digest
            log(f"scanning {scan.repository}@{image.digest} ({label}) with {scanner.name}")
            target = ScanTarget(scan.id, scan.repository, image.digest, image.media_type, tag)
            try:
                report = scanner.scan(target, check)
            except ScanFailed as error:
                log(f"{label}: scan failed: {error}")
                failures.append((image.digest, image.platform, str(error)))
                continue
            log(f"{label}: {len(report.findings)} findings")
            results.append((image.digest, image.platform, report))
        if len(images) == 1 and images[0].platform is None and failures:
            self.store.fail(scan, failures[0][2])
            done = self.store.get(scan_id)
            assert done is not None
            return done
        done = self.store.finish(scan, results, failures=failures)
        if scan.sbom:
            self._attach_sboms(scan, images, results, log)
        return done

    def _attach_sboms(
        self,
        scan: ScanRecord,
        images: list[Image],
        results: list[tuple[str, str | None, ScanReport]],
        log: Callable[[str], None],
    ) -> None:
        """Push the SBOMs of each scanned image as its referrers. An SBOM that cannot be
        attached (e.g. over quota) is logged; the scan's results stand."""
        by_digest = {image.digest: image for image in images}
        for digest, _platform, report in results:
            if report.inventory is None or self.sbom_generator is None:
                log(f"{digest}: no SBOM generated (the scanner reports no package inventory)")
                continue
            image = by_digest[digest]
            rendered = self.sbom_generator(report.inventory, scan.repository, image.digest)
            for artifact_type, document in rendered:
                try:
                    pushed = sbom.attach(
                        self.uploads,
                        self.manifests,
                        scan.repository,
                        subject=(image.digest, image.media_type, image.size),
                        artifact_type=artifact_type,
                        document=document,
                        actor=Actor(SBOM_ACTOR),
                    )
                except (RegistryError, ManagementError) as error:
                    log(f"{digest}: {artifact_type} SBOM not attached: {error}")
                    continue
                log(f"{digest}: attached {artifact_type} SBOM {pushed}")

    def _tag(self, scan: ScanRecord) -> str | None:
        """One tag of the artifact, for adapters that show it (Harbor sends one)."""
        with self.db.read() as conn:
            value = conn.execute(
                select(s.tags.c.name)
                .join(s.manifests, s.manifests.c.id == s.tags.c.manifest_id)
                .join(s.repositories, s.repositories.c.id == s.manifests.c.repository_id)
                .where(
                    s.repositories.c.name == scan.repository, s.manifests.c.digest == scan.digest
                )
                .order_by(s.tags.c.updated_at.desc())
                .limit(1)
            ).scalar_one_or_none()
        return None if value is None else str(value)
