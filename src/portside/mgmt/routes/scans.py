"""Vulnerability scanning: start a scan of an artifact, read its results (filtered by
severity, package, fixable), its SBOMs; a project's scan settings and pull policy and its
CVE allowlist; the system allowlist; registered scanners (Harbor scanner adapters).

Permissions: reading results and SBOMs takes pull on the repository; starting a scan
takes push (developers and up, as in Harbor); a project's settings and allowlist take
its `settings` permission (project admins); the system allowlist and the scanners are
the system administrators' (anyone signed in may read the system allowlist).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, Field, StrictBool

from portside.auth.errors import Invalid, Missing
from portside.content.vulnerability import Allowlist, ScanSettings
from portside.errors import RegistryError
from portside.jobs.scan import request_scan
from portside.mgmt.routes.repositories import RepositoryName, _name
from portside.mgmt.schemas import _In
from portside.mgmt.security import Admin, Caller, Ctx, SignedIn, require, require_repository
from portside.reference import project_of
from portside.scanning.model import Severity
from portside.scans import sbom
from portside.scans.registry import ScannerRecord
from portside.scans.service import NoScanner, NotScannable, images_of
from portside.scans.settings import ScanSettingsStore
from portside.scans.store import FindingRecord, ScanRecord

router = APIRouter(tags=["scans"])

SeverityName = Literal["none", "unknown", "negligible", "low", "medium", "high", "critical"]


class ScanIn(_In):
    scanner: str | None = Field(
        default=None, max_length=64, description="A registered scanner; default: the default one."
    )
    sbom: StrictBool | None = Field(
        default=None,
        description="Attach SBOMs after the scan (built-in scanner); default: the project's "
        "setting.",
    )


class ScanStarted(BaseModel):
    scan_id: int
    job_id: int


class PlatformScanOut(BaseModel):
    digest: str
    platform: str | None
    status: str
    reason: str | None
    counts: dict[str, int]
    worst: str


class ScanOut(BaseModel):
    id: int
    repository: str
    digest: str
    scanner: str
    status: Literal["queued", "running", "succeeded", "failed"]
    reason: str | None
    job_id: int | None
    requested_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    scanner_name: str | None
    scanner_version: str | None
    db_generation: str | None = Field(description="The vulnerability database generation used.")
    counts: dict[str, int]
    worst: str
    fixable: int
    platforms: list[PlatformScanOut]


class FindingOut(BaseModel):
    vulnerability_id: str
    severity: str
    package: str
    version: str
    ecosystem: str
    purl: str | None
    path: str | None
    fixed_version: str | None
    cvss_score: float | None
    cvss_vector: str | None
    aliases: list[str]
    links: list[str]
    summary: str
    digest: str
    platform: str | None


def _scan_out(scan: ScanRecord) -> ScanOut:
    return ScanOut(
        id=scan.id,
        repository=scan.repository,
        digest=scan.digest,
        scanner=scan.scanner,
        status=scan.status,  # type: ignore[arg-type]
        reason=scan.reason,
        job_id=scan.job_id,
        requested_by=scan.requested_by,
        created_at=scan.created_at,
        started_at=scan.started_at,
        finished_at=scan.finished_at,
        scanner_name=scan.scanner_name,
        scanner_version=scan.scanner_version,
        db_generation=scan.db_generation,
        counts=scan.summary,
        worst=scan.worst.name.lower(),
        fixable=scan.fixable,
        platforms=[
            PlatformScanOut(
                digest=p.digest,
                platform=p.platform,
                status=p.status,
                reason=p.reason,
                counts=p.summary,
                worst=p.worst.name.lower(),
            )
            for p in scan.platforms
        ],
    )


def _finding_out(f: FindingRecord) -> FindingOut:
    return FindingOut(
        vulnerability_id=f.vulnerability_id,
        severity=f.severity.name.lower(),
        package=f.package_name,
        version=f.package_version,
        ecosystem=f.ecosystem,
        purl=f.purl,
        path=f.path,
        fixed_version=f.fixed_version,
        cvss_score=f.cvss_score,
        cvss_vector=f.cvss_vector,
        aliases=list(f.aliases),
        links=list(f.links),
        summary=f.summary,
        digest=f.digest,
        platform=f.platform,
    )


def _digest(ctx: Ctx, name: str, reference: str) -> str:
    try:
        return ctx.manifests.get(name, reference, pulled_by=None).digest
    except RegistryError:
        raise Missing(f"no artifact {reference!r} in {name!r}") from None


def _latest(ctx: Ctx, name: str, reference: str) -> ScanRecord:
    digest = _digest(ctx, name, reference)
    scan = ctx.scans.store.latest(name, digest)
    if scan is None:
        raise Missing(f"{name}@{digest} has not been scanned")
    return scan


ArtifactPath = "/repositories/{name:path}/-/artifacts/{reference}"


@router.post(ArtifactPath + "/scan", status_code=202, response_model=ScanStarted)
def start_scan(
    name: RepositoryName, reference: str, ctx: Ctx, caller: Caller, body: ScanIn | None = None
) -> ScanStarted:
    """Queue a scan of the artifact (an index: each platform). Poll `GET .../scan`."""
    name = _name(name)
    require_repository(ctx, caller, name, "push")
    digest = _digest(ctx, name, reference)
    body = body or ScanIn()
    try:
        images_of(ctx.db, name, digest)
        sbom_wanted = body.sbom
        if sbom_wanted is None:
            try:
                sbom_wanted = ScanSettingsStore(ctx.db).get(project_of(name)).generate_sbom
            except Missing:
                sbom_wanted = False
        with ctx.db.write() as conn:
            scan_id, job_id = request_scan(
                ctx.db,
                ctx.scans,
                conn,
                name,
                digest,
                scanner=body.scanner,
                requested_by=caller.identity.actor,
                sbom=sbom_wanted,
            )
    except (NotScannable, NoScanner) as error:
        raise Invalid(str(error)) from None
    return ScanStarted(scan_id=scan_id, job_id=job_id)


@router.get(ArtifactPath + "/scan", response_model=ScanOut)
def get_scan(name: RepositoryName, reference: str, ctx: Ctx, caller: Caller) -> ScanOut:
    """The artifact's latest scan: status, counts by severity, per platform for an index."""
    name = _name(name)
    require_repository(ctx, caller, name, "pull")
    return _scan_out(_latest(ctx, name, reference))


@router.get(ArtifactPath + "/scan/findings", response_model=list[FindingOut])
def list_findings(
    name: RepositoryName,
    reference: str,
    ctx: Ctx,
    caller: Caller,
    severity: Annotated[SeverityName | None, Query(description="At least this severe.")] = None,
    package: Annotated[str | None, Query(max_length=255, description="Package contains.")] = None,
    fixable: Annotated[bool | None, Query(description="Only with (true) / without a fix.")] = None,
) -> list[FindingOut]:
    """The latest scan's findings, worst first."""
    name = _name(name)
    require_repository(ctx, caller, name, "pull")
    scan = _latest(ctx, name, reference)
    found = ctx.scans.store.findings(
        scan,
        severity=Severity.parse(severity) if severity else None,
        package=package,
        fixable=fixable,
    )
    return [_finding_out(f) for f in found]


class SbomOut(BaseModel):
    digest: str = Field(description="The SBOM referrer's manifest digest.")
    artifact_type: str
    format: str
    size: int
    created_by: str | None = Field(description="`portside` for SBOMs Portside attached.")
    created_at: str | None


@router.get(ArtifactPath + "/sboms", response_model=list[SbomOut])
def list_sboms(name: RepositoryName, reference: str, ctx: Ctx, caller: Caller) -> list[SbomOut]:
    """SBOMs attached to the artifact as OCI referrers (by Portside or by clients)."""
    name = _name(name)
    require_repository(ctx, caller, name, "pull")
    digest = _digest(ctx, name, reference)
    return [
        SbomOut(
            digest=s.digest,
            artifact_type=s.artifact_type,
            format=s.format,
            size=s.size,
            created_by=s.created_by,
            created_at=s.created_at,
        )
        for s in sbom.sboms_of(ctx.manifests, name, digest)
    ]


@router.get(ArtifactPath + "/sboms/{sbom_digest}", response_class=Response)
def download_sbom(
    name: RepositoryName, reference: str, sbom_digest: str, ctx: Ctx, caller: Caller
) -> StreamingResponse:
    """The SBOM document itself (the referrer's first layer)."""
    name = _name(name)
    require_repository(ctx, caller, name, "pull")
    digest = _digest(ctx, name, reference)
    found = {s.digest: s for s in sbom.sboms_of(ctx.manifests, name, digest)}.get(sbom_digest)
    if found is None:
        raise Missing(f"no SBOM {sbom_digest!r} for {name}@{digest}")
    document = sbom.document(ctx.db, ctx.storage, name, found)
    extension = "cdx.json" if found.format == "cyclonedx" else "spdx.json"
    filename = f"{name.replace('/', '_')}-{digest[7:19]}.{extension}"
    return StreamingResponse(
        document.chunks,
        media_type=document.media_type,
        headers={
            "content-length": str(document.size),
            "content-disposition": f'attachment; filename="{filename}"',
        },
    )


# --- project settings and allowlists -------------------------------------------------


class ScanSettingsIO(_In):
    auto_scan: StrictBool = Field(default=False, description="Scan every image pushed.")
    generate_sbom: StrictBool = Field(
        default=False, description="Attach SPDX and CycloneDX SBOMs after built-in scans."
    )
    prevent_vulnerable: StrictBool = Field(
        default=False,
        description="Refuse pulls (manifest GET) of artifacts never scanned, or with a "
        "finding at or above `severity` that no allowlist covers.",
    )
    severity: SeverityName = Field(default="critical", description="The policy's threshold.")
    reuse_system_allowlist: StrictBool = Field(
        default=True, description="Use the system CVE allowlist instead of the project's."
    )


class ScanSettingsOut(ScanSettingsIO):
    project: str
    updated_by: str | None
    updated_at: datetime | None


def _settings_out(project: str, found: ScanSettings) -> ScanSettingsOut:
    return ScanSettingsOut(
        project=project,
        auto_scan=found.auto_scan,
        generate_sbom=found.generate_sbom,
        prevent_vulnerable=found.prevent_vulnerable,
        severity=found.severity.name.lower(),  # type: ignore[arg-type]
        reuse_system_allowlist=found.reuse_system_allowlist,
        updated_by=found.updated_by,
        updated_at=found.updated_at,
    )


@router.get("/projects/{project}/scan-settings", response_model=ScanSettingsOut)
def get_scan_settings(project: str, ctx: Ctx, caller: Caller) -> ScanSettingsOut:
    require(ctx, caller, project, "pull")
    return _settings_out(project, ScanSettingsStore(ctx.db).get(project))


@router.put("/projects/{project}/scan-settings", response_model=ScanSettingsOut)
def put_scan_settings(
    project: str, body: ScanSettingsIO, ctx: Ctx, caller: Caller
) -> ScanSettingsOut:
    require(ctx, caller, project, "settings")
    wanted = ScanSettings(
        auto_scan=body.auto_scan,
        generate_sbom=body.generate_sbom,
        prevent_vulnerable=body.prevent_vulnerable,
        severity=Severity.parse(body.severity),
        reuse_system_allowlist=body.reuse_system_allowlist,
    )
    saved = ScanSettingsStore(ctx.db).save(project, wanted, caller.actor)
    return _settings_out(project, saved)


class AllowlistIO(_In):
    items: list[Annotated[str, Field(max_length=128)]] = Field(
        default_factory=list, max_length=10_000, description="Vulnerability ids (CVE-...)."
    )
    expires_at: datetime | None = Field(
        default=None, description="After this the list no longer applies; none: never."
    )


class AllowlistOut(AllowlistIO):
    scope: str
    expired: bool
    updated_by: str | None
    updated_at: datetime | None


def _allowlist_out(scope: str, found: Allowlist) -> AllowlistOut:
    from portside.metadata.db import utcnow

    return AllowlistOut(
        scope=scope,
        items=list(found.items),
        expires_at=found.expires_at,
        expired=found.expires_at is not None and found.expires_at <= utcnow(),
        updated_by=found.updated_by,
        updated_at=found.updated_at,
    )


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise Invalid("expires_at needs a time zone (e.g. 2027-01-31T00:00:00Z)")
    return value


@router.get("/projects/{project}/cve-allowlist", response_model=AllowlistOut)
def get_project_allowlist(project: str, ctx: Ctx, caller: Caller) -> AllowlistOut:
    require(ctx, caller, project, "pull")
    return _allowlist_out(project, ScanSettingsStore(ctx.db).allowlist(project))


@router.put("/projects/{project}/cve-allowlist", response_model=AllowlistOut)
def put_project_allowlist(
    project: str, body: AllowlistIO, ctx: Ctx, caller: Caller
) -> AllowlistOut:
    require(ctx, caller, project, "settings")
    saved = ScanSettingsStore(ctx.db).save_allowlist(
        project, body.items, _aware(body.expires_at), caller.actor
    )
    return _allowlist_out(project, saved)


@router.get("/system/cve-allowlist", response_model=AllowlistOut)
def get_system_allowlist(ctx: Ctx, caller: SignedIn) -> AllowlistOut:
    return _allowlist_out("system", ScanSettingsStore(ctx.db).allowlist(None))


@router.put("/system/cve-allowlist", response_model=AllowlistOut)
def put_system_allowlist(body: AllowlistIO, ctx: Ctx, caller: Admin) -> AllowlistOut:
    saved = ScanSettingsStore(ctx.db).save_allowlist(
        None, body.items, _aware(body.expires_at), caller.actor
    )
    return _allowlist_out("system", saved)


# --- scanners --------------------------------------------------------------------------

AuthScheme = Literal["", "Basic", "Bearer", "X-ScannerAdapter-API-Key"]


class ScannerIn(_In):
    name: str = Field(min_length=1, max_length=64)
    url: str = Field(min_length=1, max_length=2048, description="The adapter's base URL.")
    description: str | None = Field(default=None, max_length=1024)
    auth: AuthScheme = Field(default="", description="How to authenticate to the adapter.")
    access_credential: str | None = Field(
        default=None, max_length=4096, description="`user:password`, a token or an API key."
    )
    is_default: StrictBool = False


class ScannerPatch(_In):
    url: str | None = Field(default=None, min_length=1, max_length=2048)
    description: str | None = Field(default=None, max_length=1024)
    auth: AuthScheme | None = None
    access_credential: str | None = Field(default=None, max_length=4096)
    enabled: StrictBool | None = None
    is_default: StrictBool | None = None


class ScannerOut(BaseModel):
    name: str
    url: str
    description: str | None
    auth: str
    has_credential: bool
    enabled: bool
    is_default: bool
    created_by: str
    created_at: datetime


class ScannerMetadataOut(BaseModel):
    name: str
    vendor: str
    version: str


def _scanner_out(r: ScannerRecord) -> ScannerOut:
    return ScannerOut(
        name=r.name,
        url=r.url,
        description=r.description,
        auth=r.auth,
        has_credential=r.has_credential,
        enabled=r.enabled,
        is_default=r.is_default,
        created_by=r.created_by,
        created_at=r.created_at,
    )


@router.get("/scanners", response_model=list[ScannerOut])
def list_scanners(ctx: Ctx, caller: Admin) -> list[ScannerOut]:
    return [_scanner_out(r) for r in ctx.scans.registry.list()]


@router.post("/scanners", status_code=201, response_model=ScannerOut)
def add_scanner(body: ScannerIn, ctx: Ctx, caller: Admin) -> ScannerOut:
    return _scanner_out(
        ctx.scans.registry.add(
            body.name,
            body.url,
            auth=body.auth,
            access_credential=body.access_credential,
            description=body.description,
            is_default=body.is_default,
            created_by=caller.identity.actor,
        )
    )


@router.patch("/scanners/{scanner}", response_model=ScannerOut)
def update_scanner(scanner: str, body: ScannerPatch, ctx: Ctx, caller: Admin) -> ScannerOut:
    return _scanner_out(ctx.scans.registry.update(scanner, **body.model_dump(exclude_unset=True)))


@router.delete("/scanners/{scanner}", status_code=204)
def remove_scanner(scanner: str, ctx: Ctx, caller: Admin) -> None:
    ctx.scans.registry.remove(scanner)


@router.get("/scanners/{scanner}/metadata", response_model=ScannerMetadataOut)
def scanner_metadata(scanner: str, ctx: Ctx, caller: Admin) -> ScannerMetadataOut:
    """Ask the scanner who it is (checks the registration works)."""
    from portside.scans.scanner import ScanFailed

    try:
        info = ctx.scans.scanner(scanner).info()
    except (NoScanner, ScanFailed) as error:
        raise Invalid(str(error)) from None
    return ScannerMetadataOut(name=info.name, vendor=info.vendor, version=info.version)
