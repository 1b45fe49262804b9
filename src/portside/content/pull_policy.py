"""Pull policies: the one place manifest GET asks "may this artifact be pulled under its
project's policies?".

Checks (CHECKS, in order; the first refusal wins):
- "only signed images" (projects.require_signed): the artifact, or an index in its
  repository that contains it, has a signature verified by a key the project trusts
  (signatures.service: verified against the keys, not mere presence).
- "prevent vulnerable images" (project_scan_settings.prevent_vulnerable): the latest scan
  has no finding at or above the project's threshold that no CVE allowlist covers, and
  there is one (content.vulnerability).

A refusal is `Denied` (403 DENIED) whose message names the policy and says why.

Invariants:
- Zero cost for projects without policies. The manifest lookup (content.hotpath) reads
  `ACTIVE`, a SQL expression over the project's row, in the same query that finds the
  manifest, and the GET consults this module only when it is true. A project with no
  policy pays for a LEFT JOIN on a cache miss and one attribute test per request.
- The answer is as fresh as the data: on SQLite, a decision is cached in the hot path's
  validated cache (same `data_version`, so any commit, a new signature, a key change, a
  settings change, drops it); on PostgreSQL every policed GET decides anew.
- Only manifest GET is policed (blobs are not, as in Harbor: without the manifest a client
  does not know what to fetch, and a policy is about pulling an artifact); HEAD is
  answered as usual (Harbor enforces its content-trust and vulnerability policies on
  manifest GET only: a HEAD returns no content, and clients' HEAD-then-GET pulls are
  refused at the GET).
- Artifacts that describe another stay pullable whatever the policy: referrers (a
  `subject`: signatures, SBOMs, attestations) and cosign's tag-scheme artifacts
  (signature/attestation/SBOM manifests under `sha256-<hex>.sig|.att|.sbom`), which
  clients must fetch to verify an image. Never a manifest with a filesystem layer: a
  runnable image does not escape the policy by carrying a `subject`.
- Robots and administrators follow the rules. Readers exempt as Harbor exempts them: an
  external scanner pulling with the token minted for its scan (subject `scanner:<id>`,
  checked by the manifest handler, api/manifests.py `_is_scanner`), and any identity
  of a kind in EXEMPT_KINDS. Replication and the built-in scanner read content through
  the services and storage, not /v2, so they never reach this module.

Adding a check: write `def check(pull: Pull) -> str | None` (None allows, a message
refuses; `pull.settings` is the project's row, `pull.policy.db` the database) and add
`Check("name", "p.<column> <condition>", check)` to CHECKS. The SQL predicate makes the
hot path notice the project (it reads columns of `projects p`, e.g.
"p.prevent_vulnerable"). Decisions are cached (SQLite) until the next commit to the
database, so a check must depend only on the database, never on the caller; one that
depends on the time (an allowlist entry's expiry) is re-decided at the next commit, not
at the exact second.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import select

from portside.auth.identity import Identity
from portside.content.vulnerability import POLICY_NAME
from portside.content.vulnerability import refusal as vulnerability_refusal
from portside.errors import Denied
from portside.metadata import schema as s
from portside.metadata.db import Database
from portside.reference import project_of

# Identity kinds that read content for the registry itself (see the docstring).
EXEMPT_KINDS: frozenset[str] = frozenset({"scanner", "replication"})

# Media types of layers that make an artifact a description of another one.
_DESCRIBING_LAYERS = (
    "application/vnd.dev.cosign.",
    "application/vnd.dsse.envelope",
    "application/vnd.in-toto",
    "application/vnd.cncf.notary.",
    "application/jose+json",
    "application/cose",
    "application/vnd.dev.sigstore.",
    "application/spdx",
    "text/spdx",
    "application/vnd.cyclonedx",
    "application/vnd.syft",
)


# Layers a container runtime unpacks: their manifest is an image to run, policed always.
_FILESYSTEM_LAYERS = (
    "application/vnd.oci.image.layer.",
    "application/vnd.docker.image.rootfs.",
)


class SignatureCheck(Protocol):
    """What "only signed images" needs (signatures.service.SignatureService)."""

    def trusted(self, repo: str, digest: str) -> Any:
        """An object with `signed: bool` and `detail: str`."""


@dataclass(frozen=True, slots=True)
class Pull:
    """One manifest GET under policy."""

    repository: str
    digest: str
    media_type: str
    content: bytes
    settings: Any  # the project's row (every column of projects)
    policy: PullPolicy


@dataclass(frozen=True, slots=True)
class Check:
    name: str  # as the refusal names it
    active_sql: str  # true when the project has this policy on (columns of projects p)
    check: Callable[[Pull], str | None]


def only_signed(pull: Pull) -> str | None:
    if not pull.settings.require_signed:
        return None
    trust = pull.policy.signatures.trusted(pull.repository, pull.digest)
    return None if trust.signed else str(trust.detail)


def prevent_vulnerable(pull: Pull) -> str | None:
    """Harbor's "prevent vulnerable images from running" (content.vulnerability)."""
    return vulnerability_refusal(pull.policy.db, pull.settings.id, pull.repository, pull.digest)


CHECKS: tuple[Check, ...] = (
    Check("only signed images", "p.require_signed", only_signed),
    Check(
        POLICY_NAME,
        "EXISTS (SELECT 1 FROM project_scan_settings v"
        " WHERE v.project_id = p.id AND v.prevent_vulnerable)",
        prevent_vulnerable,
    ),
)

# The hot path's query selects this (`projects p` joined by the repository's project).
ACTIVE = "(" + " OR ".join(check.active_sql for check in CHECKS) + ")"


class DecisionCache(Protocol):
    """The hot path's validated cache (content.hotpath.HotQueries)."""

    def peek(self, version: int | None, key: tuple[str, str, str]) -> Any: ...

    def remember(self, version: int | None, key: tuple[str, str, str], value: Any) -> None: ...


class PullPolicy:
    def __init__(self, db: Database, cache: DecisionCache, signatures: SignatureCheck) -> None:
        self.db = db
        self.cache = cache
        self.signatures = signatures

    @staticmethod
    def exempt(identity: Identity | None) -> bool:
        return identity is not None and identity.kind in EXEMPT_KINDS

    def cached(self, repo: str, digest: str, version: int | None) -> str | None:
        """The decision if cached under `version` (memory only, never blocks): "" allows,
        a message refuses; None: decide() it."""
        decision = self.cache.peek(version, ("pull_policy", repo, digest))
        return decision if isinstance(decision, str) else None

    def decide(
        self, repo: str, digest: str, media_type: str, content: bytes, version: int | None
    ) -> str:
        """ "" or the refusal (blocking: on the pool), cached under `version`."""
        decision = self.refusal(repo, digest, media_type, content) or ""
        self.cache.remember(version, ("pull_policy", repo, digest), decision)
        return decision

    def refusal(self, repo: str, digest: str, media_type: str, content: bytes) -> str | None:
        """The refusal message, or None if the pull is allowed. The answer depends only
        on the data, not on who asks (see exempt), so it may be cached."""
        if describes_another(content):
            return None
        p = s.projects
        with self.db.read() as conn:
            settings = conn.execute(select(p).where(p.c.name == project_of(repo))).first()
        if settings is None:
            return None
        pull = Pull(repo, digest, media_type, content, settings, self)
        for check in CHECKS:
            why = check.check(pull)
            if why is not None:
                return f"pull refused by project policy '{check.name}': {why}"
        return None


def refuse(message: str, repo: str, digest: str) -> Denied:
    return Denied(message, detail={"repository": repo, "digest": digest})


def describes_another(content: bytes) -> bool:
    """A referrer (it has a subject), or a manifest whose layers are all signatures,
    attestations or SBOMs (cosign's tag-scheme artifacts); never one with a filesystem
    layer (a runnable image)."""
    try:
        manifest = json.loads(content)
    except ValueError:
        return False
    if not isinstance(manifest, dict):
        return False
    layers = manifest.get("layers")
    layers = [x for x in layers if isinstance(x, dict)] if isinstance(layers, list) else []
    types = [str(layer.get("mediaType", "")) for layer in layers]
    if any(media_type.startswith(_FILESYSTEM_LAYERS) for media_type in types):
        return False
    if isinstance(manifest.get("subject"), dict):
        return True
    return bool(types) and all(t.startswith(_DESCRIBING_LAYERS) for t in types)
