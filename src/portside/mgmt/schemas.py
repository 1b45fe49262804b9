"""Request and response bodies of the management API (pydantic models: validated in,
documented in the OpenAPI document, serialized out)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from portside.auth.roles import Role

Action = Literal["pull", "push", "delete"]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data: Any) -> Any:
        if isinstance(data, dict) and any(
            isinstance(v, str) and "\x00" in v for v in data.values()
        ):
            raise ValueError("NUL characters are not allowed")
        return data


class SystemInfo(BaseModel):
    version: str
    auth_enabled: bool
    registry_url: str
    token_realm: str
    token_service: str
    ldap: bool
    project_creation: Literal["admins", "users"]


class LoginIn(_In):
    username: str = Field(min_length=1, max_length=255)
    password: str = Field(min_length=1, max_length=1024)


class UserOut(BaseModel):
    username: str
    email: str | None
    source: str
    admin: bool
    disabled: bool
    created_at: datetime
    last_login_at: datetime | None


class SessionOut(BaseModel):
    csrf_token: str
    expires_at: datetime
    user: UserOut


class UserIn(_In):
    username: str = Field(min_length=1, max_length=128)
    password: str = Field(min_length=1, max_length=1024)
    email: str | None = Field(default=None, max_length=255)
    admin: bool = False


class UserPatch(_In):
    disabled: bool | None = None
    admin: bool | None = None
    email: str | None = Field(default=None, max_length=255)
    password: str | None = Field(default=None, min_length=1, max_length=1024)


class PasswordChange(_In):
    old_password: str = Field(min_length=1, max_length=1024)
    new_password: str = Field(min_length=1, max_length=1024)


class ProxyIn(_In):
    endpoint: str = Field(
        min_length=1, max_length=255, description="The registry endpoint the project caches."
    )
    tag_ttl_seconds: int | None = Field(
        default=None,
        ge=0,
        description="Cached tags are checked upstream after this long (default: "
        "`proxy.tag_ttl_seconds`).",
    )
    cache_limit_bytes: int | None = Field(
        default=None, ge=0, description="Evict least-recently-pulled artifacts past this size."
    )


class ProxyPatch(_In):
    tag_ttl_seconds: int | None = Field(default=None, ge=0)
    cache_limit_bytes: int | None = Field(default=None, ge=0)
    clear_limit: bool = False


class CachedArtifactOut(BaseModel):
    repository: str
    digest: str
    tags: list[str]
    size: int
    cached_at: datetime
    last_pulled_at: datetime | None
    pulls: int = Field(description="Pulls recorded in the kept events (`events.keep_days`).")


class ProxyOut(BaseModel):
    project: str
    proxy: bool = Field(description="Whether the project is a proxy cache at all.")
    mirror: bool = False
    endpoints: list[str] = []
    tag_ttl_seconds: int | None = None
    cache_limit_bytes: int | None = None
    used_bytes: int | None = None
    artifact_count: int | None = None
    last_pulled_at: datetime | None = None
    pulls: int | None = None
    artifacts: list[CachedArtifactOut] = Field(
        default=[], description="Most recently pulled first (at most 100)."
    )


class ProjectIn(_In):
    name: str = Field(min_length=1, max_length=64)
    public: bool = False
    quota_bytes: int | None = Field(default=None, ge=0)
    proxy: ProxyIn | None = Field(
        default=None,
        description="Make it a proxy-cache project of a registry endpoint (administrators).",
    )


class ProjectPatch(_In):
    public: bool | None = None
    quota_bytes: int | None = Field(default=None, ge=0)
    clear_quota: bool = False


class ProjectOut(BaseModel):
    name: str
    public: bool
    quota_bytes: int | None
    used_bytes: int = Field(description="What the quota is checked against (see /usage).")
    repository_count: int
    created_at: datetime
    created_by: str | None
    role: Role | None = None


class RepositoryUsageOut(BaseModel):
    name: str
    used_bytes: int = Field(description="Blobs it links plus its manifests.")
    unique_bytes: int = Field(description="What deleting the repository frees.")
    shared_bytes: int = Field(description="Blobs other repositories link too.")
    manifest_bytes: int = Field(description="Its manifests (part of used and unique).")


class ProjectUsageOut(BaseModel):
    name: str
    quota_bytes: int | None
    used_bytes: int = Field(
        description="Distinct blobs its repositories link (each once) plus its manifests."
    )
    unique_bytes: int = Field(description="What deleting the project frees.")
    shared_bytes: int = Field(description="Blobs repositories of other projects link too.")
    manifest_bytes: int = Field(description="Its manifests (part of used and unique).")
    repository_count: int = Field(description="Repositories holding a manifest or a blob.")
    repositories: list[RepositoryUsageOut] | None = Field(
        default=None, description="Per repository, with ?repositories=true."
    )


class RegistryUsageOut(BaseModel):
    stored_bytes: int = Field(description="Every blob once plus every manifest.")
    blob_bytes: int
    manifest_bytes: int
    unreferenced_bytes: int = Field(
        description="Blobs no repository links: garbage collection frees them."
    )
    projects_used_bytes: int = Field(
        description="Sum of the projects' used bytes: more than stored when they share blobs."
    )
    projects: list[ProjectUsageOut]


class MemberIn(_In):
    role: Role
    kind: Literal["user", "group"] = "user"


class MemberOut(BaseModel):
    name: str
    kind: Literal["user", "group"]
    role: Role


class RobotIn(_In):
    name: str = Field(min_length=1, max_length=64)
    permissions: list[Action] = Field(min_length=1)
    expires_in_days: int | None = Field(default=None, ge=1, le=36500)
    description: str | None = Field(default=None, max_length=1024)


class SystemRobotIn(_In):
    name: str = Field(min_length=1, max_length=64)
    permissions: dict[str, list[Action]] = Field(min_length=1)
    expires_in_days: int | None = Field(default=None, ge=1, le=36500)
    description: str | None = Field(default=None, max_length=1024)


class RobotPatch(_In):
    disabled: bool


class RobotOut(BaseModel):
    name: str
    project: str | None
    permissions: dict[str, list[Action]]
    disabled: bool
    expires_at: datetime | None
    description: str | None
    created_by: str
    created_at: datetime


class RobotSecretOut(RobotOut):
    secret: str = Field(description="Shown only in this response; store it now.")


class RepositoryOut(BaseModel):
    name: str
    project: str
    artifact_count: int
    tag_count: int
    size: int
    pushed_at: datetime | None
    pulled_at: datetime | None


class PlatformOut(BaseModel):
    os: str | None
    architecture: str | None
    variant: str | None = None


class VulnerabilitySummary(BaseModel):
    """The artifact's latest scan, in short (full results: .../scan)."""

    scan_id: int
    scanner: str
    status: str
    worst: str = Field(description="Highest severity found: none, unknown ... critical.")
    counts: dict[str, int] = Field(description="Findings by severity.")
    fixable: int
    finished_at: datetime | None


class ArtifactOut(BaseModel):
    digest: str
    media_type: str
    artifact_type: str | None
    kind: Literal["image", "index", "artifact"]
    subject: str | None
    size: int
    tags: list[str]
    platforms: list[PlatformOut]
    pushed_at: datetime
    pulled_at: datetime | None
    vulnerabilities: VulnerabilitySummary | None = None
    signature: SignatureStatusOut | None = Field(
        default=None, description="With ?grouped=true: its signatures, verified or not."
    )
    attached: list[AttachedOut] | None = Field(
        default=None,
        description="With ?grouped=true: platform manifests, signatures, SBOMs and other "
        "referrers shown under it (and not in the list on their own).",
    )


class SignatureStatusOut(BaseModel):
    status: Literal["verified", "unverified", "none"]
    verified_by: str | None = Field(description="The trusted key of a verified signature.")
    count: int = Field(description="Signatures found (cosign layers count one each).")


class AttachedOut(ArtifactOut):
    relation: Literal["child", "referrer", "tag"] = Field(
        description="child: a platform manifest of the index; referrer: its subject is the "
        "artifact; tag: cosign's sha256-<hex>.sig/.att/.sbom tag names the artifact."
    )


class ReferrerOut(BaseModel):
    digest: str
    media_type: str
    artifact_type: str | None
    size: int


class ArtifactDetail(ArtifactOut):
    manifest: dict[str, object]
    config: dict[str, object] | None
    referrers: list[ReferrerOut]


class TagIn(_In):
    name: str = Field(min_length=1, max_length=128)


class AuditOut(BaseModel):
    id: int
    occurred_at: datetime
    actor: str
    action: str
    resource_type: str
    resource: str
    project: str | None
    result: str
    source: str | None
    detail: object | None


class AccessTokenIn(_In):
    name: str = Field(min_length=1, max_length=64)
    expires_in_days: int | None = Field(default=None, ge=1, le=36500)


class AccessTokenOut(BaseModel):
    id: int
    name: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None


class AccessTokenSecretOut(AccessTokenOut):
    secret: str = Field(
        description="Shown only in this response; use it as the password for Basic "
        "credentials (docker login, /v2, /api/v1)."
    )


class VulndbSourceOut(BaseModel):
    name: str  # a URL, or an absolute path
    format: Literal["osv", "debian-tracker"]
    import_id: int  # the generation this source's data belongs to
    imported_at: datetime
    advisories: int
    packages: int


class VulndbFailureOut(BaseModel):
    source: str
    at: datetime
    error: str


class VulndbStatusOut(BaseModel):
    generation: int | None  # null until something is imported; scans record it
    advisories: int
    sources: list[VulndbSourceOut]
    failures: list[VulndbFailureOut]  # sources whose latest import failed
