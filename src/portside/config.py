"""Portside's settings: defaults, a YAML file, and `PORTSIDE_*` environment variables.

Precedence, highest first: command-line overrides, environment (`PORTSIDE_LISTEN`,
`PORTSIDE_DATABASE__URL`: nested keys joined by `__`), the YAML file, defaults.
Every problem is reported as a ConfigError naming the dotted key.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

if TYPE_CHECKING:
    from pydantic_settings import BaseSettings, PydanticBaseSettingsSource


class ConfigError(Exception):
    """A configuration problem, worded for the person who wrote the config."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _networks(value: tuple[str, ...]) -> tuple[str, ...]:
    """CIDR networks (`*.allowed_networks` of the outgoing-request policies)."""
    for network in value:
        try:
            ipaddress.ip_network(network, strict=False)
        except ValueError:
            raise ValueError(f"{network!r} is not a network such as 10.1.2.0/24") from None
    return value


class DatabaseSettings(_Section):
    url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the metadata database. Default: SQLite file "
        "`portside.db` in the data directory. PostgreSQL: "
        "`postgresql+psycopg://user:password@host/dbname`.",
    )

    @field_validator("url")
    @classmethod
    def _known_dialect(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("sqlite", "postgresql")):
            raise ValueError("only sqlite:// and postgresql+psycopg:// URLs are supported")
        return value


class FilesystemStorageSettings(_Section):
    root: Path | None = Field(
        default=None, description="Directory for blobs and uploads. Default: `<data_dir>/storage`."
    )


MIB = 1024 * 1024


class S3StorageSettings(_Section):
    """An S3-API bucket (AWS S3, MinIO, Ceph RGW, R2, ...). Credentials are optional here:
    without them the standard AWS chain is used (AWS_* variables, ~/.aws, instance roles)."""

    bucket: str | None = Field(default=None, description="Bucket name (required).")
    prefix: str = Field(
        default="", description="Key prefix: the root directory inside the bucket, e.g. `registry`."
    )
    region: str | None = Field(default=None, description="Region, e.g. `eu-west-1`.")
    endpoint_url: str | None = Field(
        default=None,
        description="Endpoint of an S3-compatible store, e.g. `https://minio.example:9000`. "
        "Default: AWS.",
    )
    access_key_id: str | None = Field(
        default=None, description="Access key id. Default: the AWS credential chain."
    )
    secret_access_key: str | None = Field(
        default=None, description="Secret access key (with `access_key_id`)."
    )
    session_token: str | None = Field(default=None, description="Session token, if any.")
    path_style: bool = Field(
        default=False,
        description="Path-style addressing (`endpoint/bucket/key`), which most "
        "self-hosted stores need; default: virtual-hosted style where possible.",
    )
    encryption: Literal["none", "AES256", "aws:kms"] = Field(
        default="none", description="Server-side encryption of stored objects."
    )
    kms_key_id: str | None = Field(
        default=None,
        description="KMS key id or ARN for `encryption: aws:kms` (else the default key).",
    )
    redirect: bool = Field(
        default=False,
        description="Answer blob GETs with a 307 to a presigned URL (clients fetch from the "
        "store directly) instead of streaming through Portside.",
    )
    redirect_expiry_seconds: int = Field(
        default=1200, ge=1, le=7 * 24 * 3600, description="Lifetime of a presigned URL."
    )
    part_size: int = Field(
        default=8 * MIB,
        ge=5 * MIB,
        le=5 * 1024 * MIB,
        description="Multipart part size in bytes (S3's minimum is 5 MiB); blobs can have "
        "at most 10,000 parts.",
    )
    concurrency: int = Field(
        default=4, ge=1, le=64, description="Parts uploaded or copied in parallel per transfer."
    )

    @field_validator("endpoint_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value

    @field_validator("prefix")
    @classmethod
    def _clean_prefix(cls, value: str) -> str:
        cleaned = value.strip("/")
        if any(part in ("", ".", "..") for part in cleaned.split("/")) and cleaned:
            raise ValueError("must be a plain key prefix such as `registry` or `a/b`")
        return cleaned


class StorageSettings(_Section):
    driver: Literal["filesystem", "s3"] = Field(
        default="filesystem", description="Storage driver: `filesystem` or `s3`."
    )
    filesystem: FilesystemStorageSettings = FilesystemStorageSettings()
    s3: S3StorageSettings = S3StorageSettings()

    @model_validator(mode="after")
    def _driver_complete(self) -> StorageSettings:
        if self.driver == "s3":
            if not self.s3.bucket:
                raise ValueError("storage.s3.bucket is required when storage.driver is s3")
            if (self.s3.access_key_id is None) != (self.s3.secret_access_key is None):
                raise ValueError(
                    "storage.s3.access_key_id and storage.s3.secret_access_key go together"
                )
            if self.s3.kms_key_id is not None and self.s3.encryption != "aws:kms":
                raise ValueError("storage.s3.kms_key_id needs storage.s3.encryption: aws:kms")
        return self


class ServerSettings(_Section):
    workers: int = Field(
        default=0, ge=0, le=256, description="Worker processes; 0 means one per CPU core."
    )


class RegistrySettings(_Section):
    delete_enabled: bool = Field(
        default=True, description="Allow DELETE of manifests, tags and blob links."
    )
    manifest_max_bytes: int = Field(
        default=4 * 1024 * 1024,
        ge=1024,
        le=64 * 1024 * 1024,
        description="Largest manifest accepted on PUT, in bytes.",
    )
    upload_expiry_hours: int = Field(
        default=24, ge=1, description="Incomplete uploads idle this long may be purged."
    )
    read_only: bool = Field(
        default=False,
        description="Maintenance mode: pulls, the token endpoint, sign-in and browsing work; "
        "every write (push, delete, management change, job start) is refused with 405 "
        "`UNSUPPORTED`, and no job worker runs. Takes effect at (re)start.",
    )


class LogSettings(_Section):
    level: Literal["debug", "info", "warning", "error"] = Field(
        default="info", description="Lowest level written."
    )
    format: Literal["json", "console"] = Field(
        default="json", description="`json` lines, or `console` for people."
    )
    access: bool = Field(default=True, description="One log line per HTTP request.")


class TlsSettings(_Section):
    certificate: Path | None = Field(
        default=None, description="PEM certificate chain; with `tls.key`, serve HTTPS."
    )
    key: Path | None = Field(default=None, description="PEM private key for `tls.certificate`.")


class ExternalIssuerSettings(_Section):
    issuer: str = Field(description="`iss` that tokens from the external auth server carry.")
    audience: str = Field(description="`aud` those tokens must be addressed to.")
    public_key_file: Path = Field(
        description="PEM public key (or certificate) they are signed with."
    )
    algorithm: Literal["ES256", "RS256"] = Field(
        default="RS256", description="The one signature algorithm accepted from that issuer."
    )


class TokenSettings(_Section):
    issuer: str = Field(default="portside", description="`iss` of the tokens Portside issues.")
    service: str = Field(
        default="portside",
        description="The `service` named in challenges and the `aud` of issued tokens.",
    )
    lifetime_seconds: int = Field(
        default=300, ge=30, le=3600, description="How long an issued registry token is valid."
    )
    algorithm: Literal["ES256", "RS256"] = Field(
        default="ES256", description="Signature algorithm of issued tokens."
    )
    key_file: Path | None = Field(
        default=None,
        description="PEM private key to sign tokens with. Default: a key generated on first "
        "start and kept in the metadata database (shared by every replica).",
    )


class ThrottleSettings(_Section):
    max_failures: int = Field(
        default=5, ge=1, description="Failed logins per account and source before a 429."
    )
    window_seconds: int = Field(
        default=300, ge=1, description="Period failures are counted over, and the lockout."
    )


class AuthSettings(_Section):
    mode: Literal["auto", "none"] = Field(
        default="auto",
        description="`auto`: authentication is on once any account exists or LDAP is set up. "
        "`none`: an open registry, allowed on a non-loopback address only when set here.",
    )
    token: TokenSettings = TokenSettings()
    external_issuer: ExternalIssuerSettings | None = Field(
        default=None,
        description="Also accept registry tokens from this external auth server.",
    )
    initial_admin_username: str = Field(
        default="admin", description="Name of the admin created from `initial_admin_password`."
    )
    initial_admin_password: str | None = Field(
        default=None,
        description="If set and no account exists at start-up, create the first admin with "
        "this password (use the environment variable "
        "`PORTSIDE_AUTH__INITIAL_ADMIN_PASSWORD`, not a file).",
    )
    throttle: ThrottleSettings = ThrottleSettings()
    cache_seconds: float = Field(
        default=30.0,
        ge=0,
        le=300,
        description="How long each process remembers a verified password (HTTP Basic) and "
        "a role decision: a disabled account or a removed membership is refused by every "
        "replica within this time (0: check the database on every request).",
    )


class ProjectSettings(_Section):
    auto_create: bool = Field(
        default=False,
        description="A push to a repository whose project does not exist creates the project "
        "(private, pusher as project admin) if the pusher may create projects.",
    )
    creation: Literal["admins", "users"] = Field(
        default="admins", description="Who may create projects: `admins` or any signed-in user."
    )


class LdapGroupSettings(_Section):
    base_dn: str | None = Field(
        default=None, description="Where to search groups; unset means no group lookup."
    )
    filter: str = Field(
        default="(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames))",
        description="Which entries under `ldap.groups.base_dn` are groups.",
    )
    member_attribute: str = Field(
        default="member", description="Group attribute holding the member DNs."
    )
    name_attribute: str = Field(
        default="cn", description="Group attribute used as the group's name in mappings."
    )
    admin_group: str | None = Field(
        default=None, description="Members of this group (by name) are system administrators."
    )


class LdapSettings(_Section):
    url: str = Field(description="`ldap://host:389` or `ldaps://host:636`.")
    bind_dn: str | None = Field(default=None, description="DN to search with (unset: anonymous).")
    bind_password: str | None = Field(default=None, description="Password of `ldap.bind_dn`.")
    base_dn: str = Field(description="Where to search users.")
    user_filter: str = Field(default="(objectClass=person)", description="Which entries are users.")
    uid_attribute: str = Field(default="uid", description="Attribute matched against the login.")
    email_attribute: str = Field(default="mail", description="Attribute holding the e-mail.")
    start_tls: bool = Field(default=False, description="Upgrade `ldap://` with StartTLS.")
    ca_file: Path | None = Field(default=None, description="CA bundle to verify the server.")
    verify_certificate: bool = Field(
        default=True, description="Verify the LDAP server's certificate (TLS/StartTLS)."
    )
    timeout_seconds: float = Field(default=5.0, gt=0, description="Connect/operation timeout.")
    groups: LdapGroupSettings = LdapGroupSettings()


class AuditSettings(_Section):
    record_pulls: bool = Field(
        default=True,
        description="Record every manifest pull as an `artifact.pulled` event, and so in the "
        "audit log (batched; turn off for very busy CI caches).",
    )


class EventSettings(_Section):
    keep_days: int = Field(
        default=7,
        ge=1,
        description="Events (the outbox the audit log is built from) are deleted this many "
        "days after they happened, once every consumer has handled them.",
    )


class UiSettings(_Section):
    enabled: bool = Field(
        default=True,
        description="Serve the web UI at `/` (off: only /v2, /auth/token, /api/v1, /healthz "
        "and /metrics answer).",
    )


class JobSettings(_Section):
    workers: int = Field(
        default=1,
        ge=0,
        le=16,
        description="Job worker processes `portside serve` starts beside the HTTP workers "
        "(0: none; run `portside worker` somewhere instead).",
    )
    poll_seconds: float = Field(
        default=2.0, gt=0, le=60, description="How often an idle worker looks for work."
    )
    heartbeat_seconds: float = Field(
        default=5.0, gt=0, le=300, description="How often a running job's worker checks in."
    )
    lost_after_seconds: float = Field(
        default=60.0,
        gt=0,
        description="A running job whose worker has not checked in for this long is queued "
        "again (its worker is presumed dead).",
    )
    max_attempts: int = Field(
        default=3, ge=1, le=100, description="Runs a job gets before it is marked failed."
    )
    history_days: int = Field(
        default=90, ge=1, description="Finished jobs and their logs are kept this many days."
    )

    @model_validator(mode="after")
    def _heartbeat_before_lost(self) -> JobSettings:
        if self.lost_after_seconds <= 2 * self.heartbeat_seconds:
            raise ValueError(
                "lost_after_seconds must be more than twice heartbeat_seconds, or live "
                "jobs would be taken for dead"
            )
        return self


class WebhookSettings(_Section):
    max_attempts: int = Field(
        default=10,
        ge=1,
        le=100,
        description="Attempts a webhook delivery gets before it is marked dead.",
    )
    retry_base_seconds: float = Field(
        default=10.0,
        gt=0,
        description="Wait before the second attempt; each further wait doubles (with "
        "jitter), up to `webhooks.retry_max_seconds`.",
    )
    retry_max_seconds: float = Field(
        default=3600.0, gt=0, description="Longest wait between two attempts."
    )
    timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        le=120,
        description="Connect, send and read timeout of each webhook request.",
    )
    max_redirects: int = Field(
        default=3,
        ge=0,
        le=10,
        description="Redirects followed (each target checked like the first); 0: none.",
    )
    poll_seconds: float = Field(
        default=1.0, gt=0, le=60, description="How often a worker looks for due deliveries."
    )
    allow_private_targets: bool = Field(
        default=False,
        description="Let webhook targets be loopback, private, link-local or unique-local "
        "addresses (cloud metadata addresses stay refused unless in "
        "`webhooks.allowed_networks`).",
    )
    allowed_networks: tuple[str, ...] = Field(
        default=(),
        description="Networks (CIDR, e.g. `10.1.2.0/24`) webhook targets may be in even "
        "when they would be refused.",
    )

    @field_validator("allowed_networks")
    @classmethod
    def _networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _networks(value)

    @model_validator(mode="after")
    def _base_below_max(self) -> WebhookSettings:
        if self.retry_base_seconds > self.retry_max_seconds:
            raise ValueError("retry_base_seconds must not exceed retry_max_seconds")
        return self


class VulndbSourceSettings(_Section):
    url: str | None = Field(
        default=None,
        description="An http(s) URL to download the source from (an OSV export zip such as "
        "`https://osv-vulnerabilities.storage.googleapis.com/Debian/all.zip`, or the Debian "
        "tracker's JSON), through the SSRF-safe client (see `vulndb.allowed_networks`).",
    )
    path: Path | None = Field(
        default=None,
        description="A local file or directory to import instead of a URL.",
    )
    format: Literal["auto", "osv", "debian-tracker"] = Field(
        default="auto", description="`auto` tells OSV (zip, directory, JSON) from the tracker."
    )

    @model_validator(mode="after")
    def _one_location(self) -> VulndbSourceSettings:
        if (self.url is None) == (self.path is None):
            raise ValueError("give exactly one of url or path")
        if self.url is not None:
            parts = urlsplit(self.url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ValueError("url must be an absolute http:// or https:// URL")
        return self

    @property
    def name(self) -> str:
        """The source's name in the database: its URL, or its absolute path."""
        return self.url if self.url is not None else str(Path(str(self.path)).absolute())


class VulndbSettings(_Section):
    sources: tuple[VulndbSourceSettings, ...] = Field(
        default=(),
        description="Sources the scheduled `vulndb_import` job imports (only those that "
        "changed: ETag/Last-Modified for URLs, modification time and size for paths).",
    )
    schedule: str = Field(
        default="0 3 * * *",
        description="When the import runs (cron, 5 fields, UTC). Kept in the job schedule "
        "`vulndb-import`, set at start-up while `vulndb.sources` is not empty.",
    )
    timeout_seconds: float = Field(
        default=60.0, gt=0, le=3600, description="Connect and read timeout of a download."
    )
    max_download_bytes: int = Field(
        default=4 * 1024**3, ge=1024, description="Largest file a source may download."
    )
    allow_private_sources: bool = Field(
        default=False,
        description="Let source URLs be loopback, private, link-local or unique-local "
        "addresses (a mirror on the local network).",
    )
    allowed_networks: tuple[str, ...] = Field(
        default=(),
        description="Networks (CIDR) source URLs may be in even when they would be refused.",
    )

    @field_validator("allowed_networks")
    @classmethod
    def _networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _networks(value)

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str) -> str:
        from croniter import croniter

        if len(value.split()) != 5 or not croniter.is_valid(value):
            raise ValueError(f"{value!r} is not a cron expression of 5 fields, e.g. '0 3 * * *'")
        return value


class ProxyMirrorSettings(_Section):
    project: str = Field(
        description="Project the mirrored content is cached in; create it first "
        "(`portside project create NAME --public` lets anonymous clients pull through "
        "the mirror): `serve` refuses to start while it is missing. Pulls through the "
        "mirror need pull permission there."
    )
    endpoints: tuple[str, ...] = Field(
        min_length=1,
        description="Registry endpoints (by name, see `portside endpoint`) asked in "
        "order; the first that has a manifest serves it and its blobs.",
    )


class ProxySettings(_Section):
    tag_ttl_seconds: int = Field(
        default=300,
        ge=0,
        description="Default for new proxy-cache projects: a cached tag is served without "
        "asking the upstream for this long after it was last checked (a HEAD for its "
        "digest); 0 checks on every pull.",
    )
    fill_lease_seconds: float = Field(
        default=30.0,
        ge=2,
        le=600,
        description="A process fetching a blob into the cache renews its lease this "
        "often (at a third of it); a lease not renewed in time is taken over.",
    )
    wait_seconds: float = Field(
        default=300.0,
        gt=0,
        description="Longest a pull waits for a blob another process is fetching.",
    )
    max_fills: int = Field(
        default=32,
        ge=1,
        le=1024,
        description="Blobs one process fetches into the cache at once (each fetch holds "
        "a thread for its download). A request for another missing blob waits up to "
        "`fill_slot_wait_seconds` for one to end, then gets the blob passed through from "
        "the upstream without caching it (`X-Portside-Cache: pass`).",
    )
    fill_slot_wait_seconds: float = Field(
        default=5.0,
        ge=0,
        le=300,
        description="How long a blob request waits for a free fill slot "
        "(`proxy.max_fills`) before the blob is passed through uncached.",
    )
    mirror: ProxyMirrorSettings | None = Field(
        default=None,
        description="Transparent mirror: /v2 requests for repositories of no project "
        "(`library/alpine`, as docker's `registry-mirrors` sends them) are proxied "
        "through these endpoints and cached in `proxy.mirror.project`.",
    )


class SecretSettings(_Section):
    encryption_key: str | None = Field(
        default=None,
        description="Fernet key (44 characters of URL-safe base64, from `portside endpoint "
        "new-key`) that encrypts stored credentials of registry endpoints. Without it, "
        "endpoints can only be anonymous. Keep it secret and keep it: changing it makes "
        "stored credentials unreadable.",
    )

    @field_validator("encryption_key")
    @classmethod
    def _fernet_key(cls, value: str | None) -> str | None:
        if value is None:
            return None
        import base64
        import binascii

        try:
            raw = base64.urlsafe_b64decode(value.encode("ascii"))
        except (binascii.Error, UnicodeEncodeError, ValueError):
            raw = b""
        if len(raw) != 32:
            raise ValueError(
                "expected a Fernet key: 32 bytes in URL-safe base64 (44 characters); make "
                "one with `portside endpoint new-key`"
            )
        return value


class EndpointSettings(_Section):
    allow_private_targets: bool = Field(
        default=False,
        description="Let registry endpoints (replication peers, proxy-cache upstreams) be "
        "loopback, private, link-local or unique-local addresses (cloud metadata addresses "
        "stay refused unless in `endpoints.allowed_networks`).",
    )
    allowed_networks: tuple[str, ...] = Field(
        default=(),
        description="Networks (CIDR) endpoints may be in even when they would be refused.",
    )
    timeout_seconds: float = Field(
        default=60.0, gt=0, le=600, description="Connect and read timeout of each request."
    )
    max_redirects: int = Field(
        default=5, ge=0, le=10, description="Redirects followed (each target checked)."
    )
    retry_attempts: int = Field(
        default=5,
        ge=1,
        le=20,
        description="Attempts a request gets on connection errors, 429 and 5xx answers.",
    )
    retry_max_seconds: float = Field(
        default=30.0,
        gt=0,
        le=600,
        description="Longest wait between attempts (also caps a peer's `Retry-After`).",
    )
    chunk_bytes: int = Field(
        default=16 * 1024 * 1024,
        ge=64 * 1024,
        le=1024 * 1024 * 1024,
        description="Blobs larger than this are uploaded in chunks of this size (resumable).",
    )

    @field_validator("allowed_networks")
    @classmethod
    def _networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _networks(value)


_GiB = 1024 * MIB


class ScanLimitsSettings(_Section):
    """The bounds the built-in scanner keeps to (portside.scanning.limits.Limits: the
    same names, the same defaults). Sizes are in bytes."""

    max_layer_bytes: int = Field(
        default=8 * _GiB,
        gt=0,
        description="Uncompressed size of one layer (larger: the scan fails).",
    )
    max_ratio: int = Field(
        default=100,
        gt=0,
        description="Uncompressed / compressed size of one layer (higher: the scan fails).",
    )
    ratio_grace_bytes: int = Field(
        default=128 * MIB, gt=0, description="Expanded bytes of a layer before `max_ratio` applies."
    )
    max_entries: int = Field(default=1_000_000, gt=0, description="Tar entries in one layer.")
    max_layers: int = Field(default=512, gt=0, description="Layers in one image.")
    max_image_bytes: int = Field(
        default=32 * _GiB, gt=0, description="Uncompressed size of all layers of one image."
    )
    max_header_bytes: int = Field(
        default=1 * MIB, gt=0, description="One pax extended header or GNU long name."
    )
    max_path_bytes: int = Field(default=4096, gt=0, description="One entry's name or link target.")
    max_file_bytes: int = Field(
        default=64 * MIB,
        gt=0,
        description="A package database or manifest file read in memory (larger: skipped "
        "with a warning).",
    )
    max_binary_bytes: int = Field(
        default=512 * MIB,
        gt=0,
        description="An executable read for Go build information (larger: skipped).",
    )
    max_kept_bytes: int = Field(
        default=64 * MIB,
        gt=0,
        description="Links and package records kept in memory for one image.",
    )
    max_link_depth: int = Field(
        default=40, gt=0, description="Symbolic links followed for one path."
    )
    max_packages: int = Field(default=100_000, gt=0, description="Packages reported for one image.")
    max_archive_members: int = Field(
        default=20_000, gt=0, description="Members of one jar examined."
    )
    max_archive_depth: int = Field(default=2, gt=0, description="Jars inside jars followed.")

    @model_validator(mode="after")
    def _consistent(self) -> ScanLimitsSettings:
        if self.max_image_bytes < self.max_layer_bytes:
            raise ValueError(
                "max_image_bytes must be at least max_layer_bytes (one layer is part of the image)"
            )
        return self


class ScanningSettings(_Section):
    timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        le=600,
        description="Connect, send and read timeout of each request to an external scanner.",
    )
    max_wait_seconds: float = Field(
        default=1800.0,
        gt=0,
        description="How long a scan waits for an external scanner's report before failing.",
    )
    report_max_bytes: int = Field(
        default=64 * 1024 * 1024,
        ge=1024,
        description="Largest report an external scanner may return (a larger one fails the scan).",
    )
    token_lifetime_seconds: int = Field(
        default=1800,
        ge=60,
        le=86400,
        description="Lifetime of the pull-only token an external scanner is given to read "
        "the artifact it scans.",
    )
    registry_url: str | None = Field(
        default=None,
        description="The registry URL external scanners are told to pull from (default: "
        "`external_url`, else the URL `listen` is reached at).",
    )
    allow_private_scanners: bool = Field(
        default=False,
        description="Let registered scanner adapters be at loopback, private, link-local or "
        "unique-local addresses (an adapter usually runs beside the registry: set this, "
        "or list its network in `scanning.allowed_networks`).",
    )
    allowed_networks: tuple[str, ...] = Field(
        default=(),
        description="Networks (CIDR) scanner adapters may be in even when they would be refused.",
    )
    limits: ScanLimitsSettings = ScanLimitsSettings()

    @field_validator("allowed_networks")
    @classmethod
    def _networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _networks(value)


class Settings(BaseModel):
    """All settings. A plain model: reading the environment and the YAML file
    (pydantic-settings, PyYAML) happens only in `load_settings`, so the worker processes,
    which get their settings as JSON from `portside serve`, never import either (~6 MB
    each)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    listen: str = Field(
        default="127.0.0.1:5000", description="Address and port to listen on, `HOST:PORT`."
    )
    data_dir: Path = Field(
        default=Path("portside-data"),
        description="Directory holding the SQLite database and stored blobs by default.",
    )
    database: DatabaseSettings = DatabaseSettings()
    storage: StorageSettings = StorageSettings()
    server: ServerSettings = ServerSettings()
    registry: RegistrySettings = RegistrySettings()
    log: LogSettings = LogSettings()
    external_url: str | None = Field(
        default=None,
        description="URL clients reach this registry at, e.g. `https://registry.example.com` "
        "behind a proxy. Used in the token realm, `Location` and `Link`; the request's "
        "`Host` and `X-Forwarded-*` are never trusted. Default: from `listen` and `tls`.",
    )
    tls: TlsSettings = TlsSettings()
    auth: AuthSettings = AuthSettings()
    projects: ProjectSettings = ProjectSettings()
    audit: AuditSettings = AuditSettings()
    events: EventSettings = EventSettings()
    jobs: JobSettings = JobSettings()
    webhooks: WebhookSettings = WebhookSettings()
    proxy: ProxySettings = ProxySettings()
    secrets: SecretSettings = SecretSettings()
    endpoints: EndpointSettings = EndpointSettings()
    scanning: ScanningSettings = ScanningSettings()
    ui: UiSettings = UiSettings()
    vulndb: VulndbSettings = VulndbSettings()
    ldap: LdapSettings | None = Field(default=None, description="LDAP / Active Directory users.")

    @field_validator("listen")
    @classmethod
    def _host_port(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError("expected HOST:PORT, for example 127.0.0.1:5000 or [::1]:5000")
        return value

    @field_validator("external_url")
    @classmethod
    def _absolute_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
            raise ValueError(
                "expected an absolute http(s) URL such as https://registry.example.com"
            )
        return value.rstrip("/")

    @model_validator(mode="after")
    def _tls_pair(self) -> Settings:
        if (self.tls.certificate is None) != (self.tls.key is None):
            raise ValueError("tls.certificate and tls.key must be set together")
        return self

    @property
    def public_url(self) -> str:
        """external_url, or the URL `listen` is reached at (a wildcard becomes this host)."""
        if self.external_url:
            return self.external_url
        scheme = "https" if self.tls.certificate else "http"
        host = self.host
        if host in ("0.0.0.0", "::", ""):  # noqa: S104 - naming the wildcard, not binding it
            host = socket.getfqdn()
        if ":" in host:
            host = f"[{host}]"
        return f"{scheme}://{host}:{self.port}"

    @property
    def host(self) -> str:
        return self.listen.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])

    @property
    def database_url(self) -> str:
        return self.database.url or f"sqlite:///{self.data_dir.absolute() / 'portside.db'}"

    @property
    def storage_root(self) -> Path:
        return (self.storage.filesystem.root or self.data_dir / "storage").absolute()


@functools.cache
def _from_environment() -> type[Settings]:
    """Settings read from init arguments, then `PORTSIDE_*` variables, then the YAML
    file `load_settings` names (highest first)."""
    from pydantic_settings import BaseSettings, InitSettingsSource, SettingsConfigDict

    class YamlSource(InitSettingsSource):
        def __init__(self, settings_cls: type[BaseSettings]) -> None:
            super().__init__(settings_cls, dict(_yaml_data))

    class FromEnvironment(Settings, BaseSettings):
        model_config = SettingsConfigDict(
            env_prefix="PORTSIDE_", env_nested_delimiter="__", extra="forbid", frozen=True
        )

        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            return init_settings, env_settings, YamlSource(settings_cls)

    return FromEnvironment


# The YAML file's settings while `load_settings` builds Settings from it.
_yaml_data: dict[str, Any] = {}


def _read_yaml(path: Path) -> dict[str, Any]:
    import yaml

    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc.strerror}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of settings")
    return data


def _describe(error: ValidationError, source: str) -> str:
    lines = [f"{source}: invalid configuration"]
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"]) or "(top level)"
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            message = "unknown setting"
        lines.append(f"  {key}: {message} (got {item.get('input')!r})")
    return "\n".join(lines)


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Build Settings from the file, the environment and non-None overrides."""
    file_data = _read_yaml(config_file) if config_file else {}
    source = str(config_file) if config_file else "command line and PORTSIDE_* variables"
    global _yaml_data  # noqa: PLW0603 - the YAML source reads it during the call below
    _yaml_data = file_data
    try:
        loaded = _from_environment()(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        raise ConfigError(_describe(exc, source)) from exc
    finally:
        _yaml_data = {}
    # A plain Settings, equal to what a worker rebuilds from its JSON.
    return Settings.model_validate(loaded.model_dump())


SERIALIZED_ENV = "PORTSIDE_INTERNAL_SETTINGS_JSON"


def settings_from_environment() -> Settings:
    """Settings a worker process was handed by `portside serve` (see cli.serve)."""
    raw = os.environ.get(SERIALIZED_ENV)
    if raw is None:
        return load_settings()
    return Settings.model_validate_json(raw)
