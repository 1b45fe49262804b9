"""From service dataclasses to response models."""

from __future__ import annotations

from portside.auth.accounts import User
from portside.auth.projects import Project
from portside.auth.robots import Robot
from portside.content.browse import ArtifactSummary, RepositorySummary
from portside.events.audit import AuditEntry
from portside.metadata.db import as_utc
from portside.mgmt.schemas import (
    ArtifactOut,
    AuditOut,
    PlatformOut,
    ProjectOut,
    RepositoryOut,
    RobotOut,
    SignatureStatusOut,
    UserOut,
    VulnerabilitySummary,
)
from portside.scans.store import ScanRecord
from portside.signatures.service import SignatureReport


def user(u: User) -> UserOut:
    return UserOut(
        username=u.username,
        email=u.email,
        source=u.source,
        admin=u.is_admin,
        disabled=u.disabled,
        created_at=as_utc(u.created_at),
        last_login_at=as_utc(u.last_login_at) if u.last_login_at else None,
    )


def project(p: Project, role: str | None = None, *, used_bytes: int = 0) -> ProjectOut:
    return ProjectOut(
        name=p.name,
        public=p.public,
        quota_bytes=p.quota_bytes,
        used_bytes=used_bytes,
        repository_count=p.repository_count,
        created_at=as_utc(p.created_at),
        created_by=p.created_by,
        role=role,  # type: ignore[arg-type]
    )


def robot(r: Robot) -> RobotOut:
    return RobotOut(
        name=r.name,
        project=r.project,
        permissions={p: sorted(a) for p, a in r.permissions.items()},  # type: ignore[arg-type]
        disabled=r.disabled,
        expires_at=as_utc(r.expires_at) if r.expires_at else None,
        description=r.description,
        created_by=r.created_by,
        created_at=as_utc(r.created_at),
    )


def repository(r: RepositorySummary) -> RepositoryOut:
    return RepositoryOut(
        name=r.name,
        project=r.project,
        artifact_count=r.artifact_count,
        tag_count=r.tag_count,
        size=r.size,
        pushed_at=as_utc(r.pushed_at) if r.pushed_at else None,
        pulled_at=as_utc(r.pulled_at) if r.pulled_at else None,
    )


def artifact(a: ArtifactSummary) -> ArtifactOut:
    return ArtifactOut(
        digest=a.digest,
        media_type=a.media_type,
        artifact_type=a.artifact_type,
        kind=a.kind,  # type: ignore[arg-type]
        subject=a.subject,
        size=a.size,
        tags=a.tags,
        platforms=[
            PlatformOut(os=p.os, architecture=p.architecture, variant=p.variant)
            for p in a.platforms
        ],
        pushed_at=as_utc(a.pushed_at),
        pulled_at=as_utc(a.pulled_at) if a.pulled_at else None,
    )


def signature_status(reports: list[SignatureReport]) -> SignatureStatusOut:
    verified = next((r.verified_by for r in reports if r.verified), None)
    if verified is not None:
        return SignatureStatusOut(status="verified", verified_by=verified, count=len(reports))
    if reports:
        return SignatureStatusOut(status="unverified", verified_by=None, count=len(reports))
    return SignatureStatusOut(status="none", verified_by=None, count=0)


def audit(e: AuditEntry) -> AuditOut:
    return AuditOut(
        id=e.id,
        occurred_at=as_utc(e.occurred_at),
        actor=e.actor,
        action=e.action,
        resource_type=e.resource_type,
        resource=e.resource,
        project=e.project,
        result=e.result,
        source=e.source,
        detail=e.detail,
    )


def vulnerabilities(scan: ScanRecord | None) -> VulnerabilitySummary | None:
    if scan is None:
        return None
    return VulnerabilitySummary(
        scan_id=scan.id,
        scanner=scan.scanner,
        status=scan.status,
        worst=scan.worst.name.lower(),
        counts=scan.summary,
        fixable=scan.fixable,
        finished_at=scan.finished_at,
    )
