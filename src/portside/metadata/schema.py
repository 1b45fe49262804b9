"""The metadata schema (SQLAlchemy Core tables), shared by the app and Alembic.

Blobs are global and stored once; a repository sees a blob only through a
repository_blobs link. Manifests are per repository and keep their exact bytes.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

DIGEST = String(150)
NAME = String(255)

repositories = Table(
    "repositories",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", NAME, nullable=False, unique=True),
    # The first path component: which project's roles and visibility apply (no foreign
    # key: repositories may exist before their project, e.g. pushed while auth was off).
    Column("project", NAME, nullable=False, index=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

blobs = Table(
    "blobs",
    metadata,
    Column("digest", DIGEST, primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

repository_blobs = Table(
    "repository_blobs",
    metadata,
    Column(
        "repository_id",
        Integer,
        ForeignKey("repositories.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("digest", DIGEST, ForeignKey("blobs.digest"), primary_key=True),
    Column("linked_at", DateTime(timezone=True), nullable=False),
    Index(None, "digest"),
)

manifests = Table(
    "manifests",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "repository_id",
        Integer,
        ForeignKey("repositories.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("digest", DIGEST, nullable=False),
    Column("media_type", String(255), nullable=False),
    Column("artifact_type", String(255)),
    Column("subject_digest", DIGEST),
    Column("annotations", Text),
    Column("size", BigInteger, nullable=False),
    Column("content", LargeBinary, nullable=False),
    Column("pushed_at", DateTime(timezone=True), nullable=False),
    Column("last_pulled_at", DateTime(timezone=True)),
    Index(None, "repository_id", "digest", unique=True),
    Index(None, "repository_id", "subject_digest"),
)

manifest_blobs = Table(
    "manifest_blobs",
    metadata,
    Column(
        "manifest_id", Integer, ForeignKey("manifests.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("digest", DIGEST, primary_key=True),
    Index(None, "digest"),
)

manifest_children = Table(
    "manifest_children",
    metadata,
    Column(
        "manifest_id", Integer, ForeignKey("manifests.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("child_digest", DIGEST, primary_key=True),
    Index(None, "child_digest"),
)

tags = Table(
    "tags",
    metadata,
    Column(
        "repository_id",
        Integer,
        ForeignKey("repositories.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("name", String(128), primary_key=True),
    Column("manifest_id", Integer, ForeignKey("manifests.id", ondelete="CASCADE"), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index(None, "manifest_id"),
)

uploads = Table(
    "uploads",
    metadata,
    Column("id", String(36), primary_key=True),
    Column(
        "repository_id",
        Integer,
        ForeignKey("repositories.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # Who started the upload ("user:alice", "robot:robot$ci"); only they may continue it.
    Column("owner", NAME),
)

# --- access control -------------------------------------------------------------------

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("username", NAME, nullable=False, unique=True),
    Column("password_hash", Text),  # NULL for LDAP users: their password lives in LDAP
    Column("email", NAME),
    Column("source", String(16), nullable=False),  # "local" or "ldap"
    Column("is_admin", Boolean, nullable=False),
    Column("disabled", Boolean, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_login_at", DateTime(timezone=True)),
    # LDAP users: the group names seen at their last login, as a JSON list (group roles).
    Column("ldap_groups", Text),
)

projects = Table(
    "projects",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", NAME, nullable=False, unique=True),
    Column("public", Boolean, nullable=False),
    Column("quota_bytes", BigInteger),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", NAME),
    # Pull policies (content.pull_policy): "only signed images", and the trust settings
    # the signature verdicts depend on. `keyset_generation` grows with every change to
    # the project's trusted keys or trust policy: verdicts of older generations are stale.
    Column("require_signed", Boolean, nullable=False, server_default=false()),
    Column("keyset_generation", Integer, nullable=False, server_default="0"),
    Column("notation_level", String(16), nullable=False, server_default="strict"),
    Column("notation_identities", Text),  # JSON list of subject DNs or ["*"]; NULL: ["*"]
)

project_members = Table(
    "project_members",
    metadata,
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("role", String(32), nullable=False),
    Index(None, "user_id"),
)

# LDAP groups given a role in a project (members of the group get it at login).
project_groups = Table(
    "project_groups",
    metadata,
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True),
    Column("group_name", NAME, primary_key=True),
    Column("role", String(32), nullable=False),
)

robots = Table(
    "robots",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", NAME, nullable=False, unique=True),  # robot$proj+name or robot$name
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE")),
    Column("description", Text),
    Column("secret_hash", String(128), nullable=False),
    Column("disabled", Boolean, nullable=False),
    Column("expires_at", DateTime(timezone=True)),
    Column("created_by", NAME, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

robot_permissions = Table(
    "robot_permissions",
    metadata,
    Column("robot_id", Integer, ForeignKey("robots.id", ondelete="CASCADE"), primary_key=True),
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True),
    Column("actions", String(64), nullable=False),  # "pull,push,delete" subset
)

signing_keys = Table(
    "signing_keys",
    metadata,
    Column("kid", String(64), primary_key=True),
    Column("algorithm", String(16), nullable=False),
    Column("private_pem", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

login_failures = Table(
    "login_failures",
    metadata,
    Column("account", NAME, primary_key=True),
    Column("source", String(64), primary_key=True),
    Column("failures", Integer, nullable=False),
    Column("first_failed_at", DateTime(timezone=True), nullable=False),
)

sessions = Table(
    "sessions",
    metadata,
    Column("id_hash", String(64), primary_key=True),  # sha256 of the cookie value
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("occurred_at", DateTime(timezone=True), nullable=False, index=True),
    Column("actor", NAME, nullable=False),
    Column("action", String(32), nullable=False),
    Column("resource_type", String(32), nullable=False),
    Column("resource", Text, nullable=False),
    Column("project", NAME, index=True),
    Column("result", String(16), nullable=False),
    Column("source", String(64)),
    Column("detail", Text),
)

# --- lifecycle: jobs, schedules, immutability, retention --------------------------------

# Background jobs (GC, retention runs). A worker claims a queued job with a conditional
# UPDATE (so a job runs once across processes), keeps `heartbeat_at` fresh while it runs,
# and any worker re-queues a running job whose heartbeat went stale (its worker died).
jobs = Table(
    "jobs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("kind", String(32), nullable=False),  # "gc", "retention"
    Column("params", Text, nullable=False),  # JSON object
    Column("project", NAME, index=True),  # the project a job acts on (retention), or NULL
    Column("status", String(16), nullable=False),  # queued running succeeded failed stopped
    Column("created_by", NAME, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("started_at", DateTime(timezone=True)),
    Column("finished_at", DateTime(timezone=True)),
    Column("heartbeat_at", DateTime(timezone=True)),
    Column("worker", String(128)),
    Column("attempts", Integer, nullable=False),
    Column("stop_requested", Boolean, nullable=False),
    Column("progress_done", BigInteger, nullable=False),
    Column("progress_total", BigInteger),
    Column("progress_message", Text),
    Column("result", Text),  # JSON object: the job's summary
    Column("error", Text),
    Column("schedule", NAME),  # name of the schedule that queued it
    Index(None, "status", "id"),
)

job_log = Table(
    "job_log",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("job_id", Integer, ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("level", String(8), nullable=False),
    Column("message", Text, nullable=False),
    Index(None, "job_id", "id"),
)

# Cron schedules: when `next_run_at` passes, one worker (conditional UPDATE of
# next_run_at) queues a job of `kind` with `params`.
schedules = Table(
    "schedules",
    metadata,
    Column("name", NAME, primary_key=True),  # "gc", "retention:<project>"
    Column("kind", String(32), nullable=False),
    Column("project", NAME),
    Column("cron", String(128), nullable=False),
    Column("params", Text, nullable=False),  # JSON object
    Column("enabled", Boolean, nullable=False),
    Column("next_run_at", DateTime(timezone=True)),
    Column("last_job_id", Integer),
    Column("created_by", NAME, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# Tag immutability: a tag matching a rule cannot move to another digest or be deleted.
immutability_rules = Table(
    "immutability_rules",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("repository_pattern", String(512), nullable=False),
    Column("tag_pattern", String(512), nullable=False),
    Column("syntax", String(8), nullable=False),  # "glob" or "regex"
    Column("disabled", Boolean, nullable=False),
    Column("created_by", NAME, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index(None, "project_id"),
)

# Retention: a project's policy (untagged handling) and its rules (OR-ed).
retention_policies = Table(
    "retention_policies",
    metadata,
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True),
    Column("remove_untagged", Boolean, nullable=False),
    Column("updated_by", NAME, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

retention_rules = Table(
    "retention_rules",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    # latest_pushed, latest_pulled (value = N), pushed_within_days, pulled_within_days
    # (value = D), always (value NULL)
    Column("kind", String(32), nullable=False),
    Column("value", Integer),
    Column("repository_pattern", String(512), nullable=False),
    Column("repository_excluding", Boolean, nullable=False),
    Column("tag_pattern", String(512), nullable=False),
    Column("tag_excluding", Boolean, nullable=False),
    Column("syntax", String(8), nullable=False),  # "glob" or "regex"
    Column("disabled", Boolean, nullable=False),
    Index(None, "project_id"),
)

# --- personal access tokens -------------------------------------------------------------

# A user's named secrets for Basic logins (docker login, scripts) instead of their password:
# the CLI secret of an LDAP user. Only the SHA-256 of the secret is kept.
access_tokens = Table(
    "access_tokens",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(64), nullable=False),
    Column("secret_hash", String(64), nullable=False, unique=True),  # sha256 hex
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True)),
    Column("last_used_at", DateTime(timezone=True)),
    UniqueConstraint("user_id", "name"),
)

# --- events: the outbox ----------------------------------------------------------------

# What happened to artifacts, tags, projects and accounts, written by the service that
# made the change in the same transaction as the change (events/outbox.py). Consumers
# (the audit log, webhooks; later replication and scanning) read it in id order with a
# cursor kept in `event_cursors`, advanced in the same transaction as their effect.
# AUTOINCREMENT on SQLite: ids are never reused after old events are pruned.
events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("occurred_at", DateTime(timezone=True), nullable=False, index=True),
    Column("type", String(64), nullable=False),  # "artifact.pushed", "tag.deleted"...
    Column("actor", NAME, nullable=False),
    Column("source", String(64)),  # client address, or "cli", "gc", "retention"
    Column("project", NAME, index=True),
    Column("repository", NAME),
    Column("resource", Text, nullable=False),  # "acme/app@sha256:...", "acme/app:v1"...
    Column("data", Text, nullable=False),  # JSON object, per type
    sqlite_autoincrement=True,
)

event_cursors = Table(
    "event_cursors",
    metadata,
    Column("consumer", String(64), primary_key=True),  # "audit", "webhooks"
    Column("position", Integer, nullable=False),  # every event id <= this is handled
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# --- webhooks ----------------------------------------------------------------------------

# A project's webhook policies (Harbor's model): which events go to which URL, in which
# payload format, signed with which secret. The secret is kept as given (it signs every
# request), and never returned by the API after creation.
webhook_policies = Table(
    "webhook_policies",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(64), nullable=False),
    Column("description", Text),
    Column("enabled", Boolean, nullable=False),
    Column("target_url", Text, nullable=False),
    Column("event_types", Text, nullable=False),  # JSON list: ["artifact.pushed", ...]
    Column("payload_format", String(16), nullable=False),  # "default" or "cloudevents"
    Column("secret", String(255)),
    Column("created_by", NAME, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("project_id", "name"),
)

# One row per (policy, event): queued by the "webhooks" outbox consumer in its cursor's
# transaction, claimed by a worker with a lease (`claimed_until`), retried with backoff,
# dead after `webhooks.max_attempts`. The body is kept, so retries send the same bytes
# after the event itself is pruned. Test deliveries have no event.
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "policy_id",
        Integer,
        ForeignKey("webhook_policies.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("event_id", Integer),
    Column("event_type", String(64), nullable=False),
    Column("payload", Text, nullable=False),
    # queued, delivering, succeeded, failed (will be retried), dead
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False),
    Column("claimed_by", String(128)),
    Column("claimed_until", DateTime(timezone=True)),
    Column("response_code", Integer),
    Column("latency_ms", Integer),
    Column("error", Text),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("policy_id", "event_id"),
    Index(None, "status", "next_attempt_at"),
)

# --- vulnerability database ------------------------------------------------------------

# Each import of a source (an OSV export, the Debian security tracker) writes a new
# generation of rows under a new `vulndb_imports.id`, in batched transactions, and only
# then points `vulndb_sources.import_id` at it, in one transaction: readers, which only
# read rows of the imports the sources point at, see the old or the new data, never
# half (portside.vulndb.store). No foreign keys to the imports: rows of a failed or
# superseded import are deleted in batches, after the switch.
vulndb_imports = Table(
    "vulndb_imports",
    metadata,
    Column("id", Integer, primary_key=True),  # the generation: grows with every import
    Column("source", Text, nullable=False),  # a path or URL, as configured or given
    Column("format", String(32), nullable=False),  # "osv" or "debian-tracker"
    Column("status", String(16), nullable=False),  # running, complete, failed, superseded
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
    Column("advisories", Integer, nullable=False),
    Column("packages", Integer, nullable=False),  # affected (ecosystem, name) entries
    Column("fingerprint", Text),  # ETag, Last-Modified or mtime+size it was read at
    Column("error", Text),
    sqlite_autoincrement=True,
)

vulndb_sources = Table(
    "vulndb_sources",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(1024), nullable=False, unique=True),
    Column("import_id", Integer, nullable=False),  # the generation readers use
    Column("format", String(32), nullable=False),
    Column("imported_at", DateTime(timezone=True), nullable=False),
    Column("advisories", Integer, nullable=False),
    Column("packages", Integer, nullable=False),
    Column("fingerprint", Text),
)

vulndb_advisories = Table(
    "vulndb_advisories",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("import_id", Integer, nullable=False, index=True),
    Column("vuln_id", String(255), nullable=False),  # "CVE-2024-1234", "GHSA-...", "DSA-..."
    Column("aliases", Text, nullable=False),  # JSON list of the other ids of the same flaw
    Column("summary", Text, nullable=False),
    Column("severity", Integer, nullable=False),  # scanning.model.Severity value
    Column("cvss_score", Float),
    Column("cvss_vector", String(255)),
    Column("links", Text, nullable=False),  # JSON list of URLs
)

# One row per affected (ecosystem, package name) of an advisory, with its ranges as OSV
# writes them: JSON [{"type": "ECOSYSTEM"|"SEMVER"|"GIT", "events": [{"introduced": v},
# {"fixed": v}, {"last_affected": v}, {"limit": v}]}], and the explicit `versions` list.
vulndb_affected = Table(
    "vulndb_affected",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("advisory_id", Integer, nullable=False, index=True),
    Column("import_id", Integer, nullable=False),
    Column("ecosystem", String(100), nullable=False),  # "Debian:12", "PyPI"
    Column("name", String(255), nullable=False),
    Column("ranges", Text, nullable=False),
    Column("versions", Text, nullable=False),
    Column("severity", Integer),  # per package (Debian urgency per release), else null
    Index(None, "ecosystem", "name", "import_id"),
    Index(None, "import_id"),
)

# --- vulnerability scanning ----------------------------------------------------------------

# One scan of one artifact (repository, manifest digest) by one scanner ("builtin" or a
# registered adapter's name). A rescan replaces the row's results in place, so there is
# at most one top-level row per (repository, digest, scanner). An index's scan has one
# child row per platform manifest (`parent_id`), and its own counts are their aggregate.
# `summary` is a JSON object of counts by severity name ("critical": 2, ...); `worst` is
# the highest severity found (portside.scanning.model.Severity value), 0 for none.
scans = Table(
    "scans",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "repository_id",
        Integer,
        ForeignKey("repositories.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("digest", DIGEST, nullable=False),
    Column("scanner", String(64), nullable=False),
    Column("parent_id", Integer, ForeignKey("scans.id", ondelete="CASCADE")),
    Column("platform", String(128)),  # "linux/amd64" for an index's child
    Column("status", String(16), nullable=False),  # queued running succeeded failed
    # The outcome of the last finished run ("succeeded"/"failed"; NULL: none yet). A
    # rescan keeps the previous results (and this) until it finishes, so the pull policy
    # never sees an artifact as unscanned while it is being scanned again.
    Column("result", String(16)),
    Column("reason", Text),  # why the last finished run failed
    Column("job_id", Integer),
    Column("requested_by", NAME, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("started_at", DateTime(timezone=True)),
    Column("finished_at", DateTime(timezone=True)),
    Column("scanner_name", String(128)),  # as the scanner reports itself
    Column("scanner_version", String(128)),
    Column("db_generation", String(128)),  # the vulnerability database it matched against
    Column("summary", Text),  # JSON counts by severity
    Column("worst", Integer, nullable=False),
    Column("fixable", Integer, nullable=False),  # findings with a fixed version
    Column("sbom", Boolean, nullable=False),  # push SBOM referrers after it
    Index(None, "repository_id", "digest"),
    Index(None, "parent_id"),
)

scan_findings = Table(
    "scan_findings",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("scan_id", Integer, ForeignKey("scans.id", ondelete="CASCADE"), nullable=False),
    Column("vulnerability_id", String(128), nullable=False),
    Column("severity", Integer, nullable=False),  # Severity value
    Column("package_name", String(512), nullable=False),
    Column("package_version", String(255), nullable=False),
    Column("ecosystem", String(128), nullable=False),
    Column("purl", Text),
    Column("path", Text),
    Column("fixed_version", String(255)),
    Column("cvss_score", Float),
    Column("cvss_vector", String(255)),
    Column("aliases", Text, nullable=False),  # JSON list
    Column("links", Text, nullable=False),  # JSON list
    Column("summary", Text, nullable=False),
    Index(None, "scan_id", "severity"),
)

# The package inventory a built-in scan found (JSON), kept for SBOM documents.
scan_inventories = Table(
    "scan_inventories",
    metadata,
    Column("scan_id", Integer, ForeignKey("scans.id", ondelete="CASCADE"), primary_key=True),
    Column("content", Text, nullable=False),
)

# A project's scanning settings and its "prevent vulnerable images" pull policy.
project_scan_settings = Table(
    "project_scan_settings",
    metadata,
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True),
    Column("auto_scan", Boolean, nullable=False),
    Column("generate_sbom", Boolean, nullable=False),
    Column("prevent_vulnerable", Boolean, nullable=False),
    Column("severity", Integer, nullable=False),  # refuse findings at or above this
    Column("reuse_system_allowlist", Boolean, nullable=False),
    Column("updated_by", NAME, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# CVE allowlists (Harbor's model): the system's (scope "system") and each project's
# (scope "project:<id>"). `items` is a JSON list of vulnerability ids; after
# `expires_at` the list no longer applies.
cve_allowlists = Table(
    "cve_allowlists",
    metadata,
    Column("scope", String(64), primary_key=True),
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE")),
    Column("items", Text, nullable=False),
    Column("expires_at", DateTime(timezone=True)),
    Column("updated_by", NAME, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# External scanners speaking Harbor's Pluggable Scanner API (a Trivy or Clair adapter).
# `auth` is "" (none), "Basic", "Bearer" or "X-ScannerAdapter-API-Key"; the credential is
# kept as given (it is sent with every request) and never returned by the API.
scanners = Table(
    "scanners",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("description", Text),
    Column("url", Text, nullable=False),
    Column("auth", String(32), nullable=False),
    Column("access_credential", Text),
    Column("enabled", Boolean, nullable=False),
    Column("is_default", Boolean, nullable=False),
    Column("created_by", NAME, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# --- registry endpoints and replication -------------------------------------------------

# Other registries Portside talks to (replication peers, proxy-cache upstreams). The
# password/token is kept only encrypted (Fernet, key `secrets.encryption_key`), and never
# returned by the API; `ca_pem` is a CA bundle (PEM) trusted for this endpoint only.
registry_endpoints = Table(
    "registry_endpoints",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("description", Text),
    Column("kind", String(32), nullable=False),  # portside, distribution, docker-hub, ...
    Column("url", Text, nullable=False),
    Column("username", NAME),
    Column("secret", Text),  # Fernet token of the password; NULL: anonymous
    Column("verify_tls", Boolean, nullable=False),
    Column("ca_pem", Text),
    Column("created_by", NAME, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# Replication rules (Harbor's model): push (local -> endpoint) or pull (endpoint ->
# local), with filters, a destination namespace and flattening, and a trigger.
replication_rules = Table(
    "replication_rules",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("description", Text),
    Column("enabled", Boolean, nullable=False),
    Column("direction", String(8), nullable=False),  # "push" or "pull"
    Column(
        "endpoint_id",
        Integer,
        ForeignKey("registry_endpoints.id", ondelete="RESTRICT"),
        nullable=False,
    ),
    Column("repositories", Text, nullable=False),  # name pattern (content/patterns.py)
    Column("tags", Text, nullable=False),  # tag pattern
    Column("labels", Text, nullable=False),  # JSON list of "key=value" annotations
    Column("resources", String(16), nullable=False),  # images, artifacts, all
    Column("destination_namespace", NAME),
    Column("flattening", Integer, nullable=False),  # Harbor's: -1 all, 0 none, 1..3
    Column("copy_deletions", Boolean, nullable=False),
    Column("override", Boolean, nullable=False),
    Column("bandwidth_kbps", Integer),  # NULL: unlimited
    Column("trigger", String(16), nullable=False),  # manual, scheduled, event
    Column("cron", String(128)),
    Column("created_by", NAME, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# One row per replication job (the job row holds status, progress, log and summary).
replication_runs = Table(
    "replication_runs",
    metadata,
    Column("job_id", Integer, ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True),
    Column(
        "rule_id",
        Integer,
        ForeignKey("replication_rules.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("trigger", String(16), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# What a run did with each artifact: copied, skipped (already there), deleted, failed.
replication_items = Table(
    "replication_items",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("job_id", Integer, ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
    Column("source", Text, nullable=False),  # repository:tag or repository@digest
    Column("destination", Text, nullable=False),
    Column("digest", DIGEST),
    Column("status", String(16), nullable=False),
    Column("blobs", Integer, nullable=False),  # blobs copied (not mounted or present)
    Column("bytes", BigInteger, nullable=False),
    Column("message", Text),
    Column("at", DateTime(timezone=True), nullable=False),
    Index(None, "job_id", "id"),
)

# --- proxy cache (portside.proxy) -------------------------------------------------------

# A project that caches an upstream registry (Harbor's proxy-cache project). The endpoint
# is an admin-registered registry endpoint, named here (mirror mode's cache project has
# its upstreams in the config instead and no row).
proxy_projects = Table(
    "proxy_projects",
    metadata,
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True),
    Column("endpoint", NAME, nullable=False),
    # Cached tags are checked against the upstream again after this many seconds.
    Column("tag_ttl_seconds", Integer, nullable=False),
    # Least-recently-pulled artifacts are evicted past this size (None: no limit).
    Column("cache_limit_bytes", BigInteger),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# When a cached tag was last confirmed against the upstream (its digest there).
proxy_tags = Table(
    "proxy_tags",
    metadata,
    Column(
        "repository_id",
        Integer,
        ForeignKey("repositories.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("tag", String(128), primary_key=True),
    Column("checked_at", DateTime(timezone=True), nullable=False),
)

# One row while some process fetches a blob from an upstream into the cache: the lease
# that keeps other processes (replicas) from fetching it too. A lease not renewed by
# `expires_at` belonged to a process that died; another may take it over.
proxy_fills = Table(
    "proxy_fills",
    metadata,
    Column("digest", DIGEST, primary_key=True),
    Column("holder", String(64), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
)

# --- signatures ---------------------------------------------------------------------------

# Keys a project trusts to sign its artifacts: cosign public keys (ECDSA P-256, Ed25519;
# kind "cosign") and Notation X.509 certificates, a CA or the signing certificate itself
# (kind "notation"). The PEM is kept as given; `fingerprint` is the SHA-256 of the DER
# public key (cosign) or certificate (notation).
trusted_keys = Table(
    "trusted_keys",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(64), nullable=False),
    Column("kind", String(16), nullable=False),  # "cosign" or "notation"
    Column("algorithm", String(32), nullable=False),  # "ecdsa-p256", "ed25519", "x509"...
    Column("pem", Text, nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("created_by", NAME, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("project_id", "name"),
)

# What verifying one signature of an artifact found, per trusted key (key_id NULL: no
# key applied, e.g. the project trusts none or the signature could not be read), under
# the project's keyset generation (signatures.verdicts). Rows of an older generation
# are recomputed when next needed.
signature_verdicts = Table(
    "signature_verdicts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "repository_id",
        Integer,
        ForeignKey("repositories.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("artifact_digest", DIGEST, nullable=False),
    Column("signature_digest", DIGEST, nullable=False),  # the signature's manifest
    Column("layer", Integer, nullable=False),  # which signature in that manifest
    Column("format", String(32), nullable=False),  # "cosign", "notation"
    Column("key_id", Integer, ForeignKey("trusted_keys.id", ondelete="CASCADE")),
    Column("generation", Integer, nullable=False),
    Column("verified", Boolean, nullable=False),
    Column("reason", Text, nullable=False),
    Column("signer", Text),  # the certificate subject, for Notation
    Column("checked_at", DateTime(timezone=True), nullable=False),
    Index(None, "repository_id", "artifact_digest"),
)
