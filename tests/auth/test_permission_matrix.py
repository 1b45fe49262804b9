"""The permission matrix, against a real `portside serve`: every subject against every
registry action (through docker's token flow, and with Basic credentials directly on /v2)
and every management-API action, with the expected answer written down as one row per
(subject, action) below. Then the audit log must show what was done, by whom, and no
secret.

How the expectations are derived (Harbor's roles, as src/portside/auth/roles.py states them):

* registry: pull for every role and robot in `acme`; push for project-admin, maintainer,
  developer and the push robot; delete for project-admin and maintainer. A caller who may
  pull but not do the action gets 403 DENIED; one who may not pull gets the 401 challenge,
  identical to the one for a repository that does not exist. Anyone may pull from `pub`.
  A disabled user's credentials are refused everywhere (401), even on public content; in
  the token flow it never gets past the token endpoint, whose refusal is the cell's answer.
* management: a caller who may not see project `acme` gets 404, as for a missing project
  (checked against `nosuch`); one who sees it but may not act gets 403; anonymous on a
  route that needs signing in gets 401. Limited guests see the project and pull, but do
  not list its repositories, members or audit log. Maintainers may read robots and
  webhooks (with their deliveries), only project admins manage members, robots, webhooks
  and settings. Users and the system audit log are for system admins.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.auth.matrix import (
    MATRIX_ENDPOINT,
    MATRIX_RULE,
    MODES,
    NEW_USER_PASSWORD,
    SUBJECT_KEYS,
    WRONG_PASSWORD,
    AuditExpectation,
    Subject,
    World,
    make_image,
    put_manifest,
    running_world,
)
from tests.durability.server import OCI_MANIFEST, error_codes, sha256


class Row(NamedTuple):
    subject: str
    action: str
    status: int
    sees: tuple[str, ...] | None = None  # listings: exactly these names


R = Row

# --- expected answers ------------------------------------------------------------------

ALL_REPOS = ("acme/app", "other/app", "pub/app")
ACME_PUB_REPOS = ("acme/app", "pub/app")
PUB_REPOS = ("pub/app",)
ALL_PROJECTS = ("acme", "other", "pub")
ACME_PUB = ("acme", "pub")
PUB = ("pub",)


# Registry actions, the same expectations through the token flow and with Basic:
#   pull           GET /v2/acme/app/manifests/v1
#   pull-pub       GET /v2/pub/app/manifests/v1
#   head-blob      HEAD /v2/acme/app/blobs/<config digest>
#   push           POST upload + PATCH + PUT, then PUT /v2/acme/app/manifests/<new tag>
#   push-pub       the same into pub/app (nobody but the admin is a member of pub)
#   delete-digest  DELETE /v2/acme/app/manifests/<digest> (a fresh artifact per cell)
#   delete-tag     DELETE /v2/acme/app/manifests/<tag> (a fresh tag per cell)
#   tags           GET /v2/acme/app/tags/list
#   catalog        GET /v2/_catalog (which repositories)
#   pull-missing   GET /v2/acme/missing/manifests/v1: for those who cannot pull acme,
#                  indistinguishable from `pull`
REGISTRY: list[Row] = [
    # -- pull
    R("anonymous", "pull", 401),
    R("admin", "pull", 200),
    R("project-admin", "pull", 200),
    R("maintainer", "pull", 200),
    R("developer", "pull", 200),
    R("guest", "pull", 200),
    R("limited-guest", "pull", 200),
    R("outsider", "pull", 401),
    R("robot-ci", "pull", 200),
    R("robot-pull", "pull", 200),
    R("disabled", "pull", 401),
    # -- pull-pub
    R("anonymous", "pull-pub", 200),
    R("admin", "pull-pub", 200),
    R("project-admin", "pull-pub", 200),
    R("maintainer", "pull-pub", 200),
    R("developer", "pull-pub", 200),
    R("guest", "pull-pub", 200),
    R("limited-guest", "pull-pub", 200),
    R("outsider", "pull-pub", 200),
    R("robot-ci", "pull-pub", 200),
    R("robot-pull", "pull-pub", 200),
    R("disabled", "pull-pub", 401),
    # -- head-blob
    R("anonymous", "head-blob", 401),
    R("admin", "head-blob", 200),
    R("project-admin", "head-blob", 200),
    R("maintainer", "head-blob", 200),
    R("developer", "head-blob", 200),
    R("guest", "head-blob", 200),
    R("limited-guest", "head-blob", 200),
    R("outsider", "head-blob", 401),
    R("robot-ci", "head-blob", 200),
    R("robot-pull", "head-blob", 200),
    R("disabled", "head-blob", 401),
    # -- push
    R("anonymous", "push", 401),
    R("admin", "push", 201),
    R("project-admin", "push", 201),
    R("maintainer", "push", 201),
    R("developer", "push", 201),
    R("guest", "push", 403),
    R("limited-guest", "push", 403),
    R("outsider", "push", 401),
    R("robot-ci", "push", 201),
    R("robot-pull", "push", 403),
    R("disabled", "push", 401),
    # -- push-pub
    R("anonymous", "push-pub", 401),
    R("admin", "push-pub", 201),
    R("project-admin", "push-pub", 403),
    R("maintainer", "push-pub", 403),
    R("developer", "push-pub", 403),
    R("guest", "push-pub", 403),
    R("limited-guest", "push-pub", 403),
    R("outsider", "push-pub", 403),
    R("robot-ci", "push-pub", 403),
    R("robot-pull", "push-pub", 403),
    R("disabled", "push-pub", 401),
    # -- delete-digest
    R("anonymous", "delete-digest", 401),
    R("admin", "delete-digest", 202),
    R("project-admin", "delete-digest", 202),
    R("maintainer", "delete-digest", 202),
    R("developer", "delete-digest", 403),
    R("guest", "delete-digest", 403),
    R("limited-guest", "delete-digest", 403),
    R("outsider", "delete-digest", 401),
    R("robot-ci", "delete-digest", 403),
    R("robot-pull", "delete-digest", 403),
    R("disabled", "delete-digest", 401),
    # -- delete-tag
    R("anonymous", "delete-tag", 401),
    R("admin", "delete-tag", 202),
    R("project-admin", "delete-tag", 202),
    R("maintainer", "delete-tag", 202),
    R("developer", "delete-tag", 403),
    R("guest", "delete-tag", 403),
    R("limited-guest", "delete-tag", 403),
    R("outsider", "delete-tag", 401),
    R("robot-ci", "delete-tag", 403),
    R("robot-pull", "delete-tag", 403),
    R("disabled", "delete-tag", 401),
    # -- tags
    R("anonymous", "tags", 401),
    R("admin", "tags", 200),
    R("project-admin", "tags", 200),
    R("maintainer", "tags", 200),
    R("developer", "tags", 200),
    R("guest", "tags", 200),
    R("limited-guest", "tags", 200),
    R("outsider", "tags", 401),
    R("robot-ci", "tags", 200),
    R("robot-pull", "tags", 200),
    R("disabled", "tags", 401),
    # -- catalog
    R("anonymous", "catalog", 200, PUB_REPOS),
    R("admin", "catalog", 200, ALL_REPOS),
    R("project-admin", "catalog", 200, ACME_PUB_REPOS),
    R("maintainer", "catalog", 200, ACME_PUB_REPOS),
    R("developer", "catalog", 200, ACME_PUB_REPOS),
    R("guest", "catalog", 200, ACME_PUB_REPOS),
    R("limited-guest", "catalog", 200, PUB_REPOS),
    R("outsider", "catalog", 200, PUB_REPOS),
    R("robot-ci", "catalog", 200, ACME_PUB_REPOS),
    R("robot-pull", "catalog", 200, ACME_PUB_REPOS),
    R("disabled", "catalog", 401),
    # -- pull-missing
    R("anonymous", "pull-missing", 401),
    R("admin", "pull-missing", 404),
    R("project-admin", "pull-missing", 404),
    R("maintainer", "pull-missing", 404),
    R("developer", "pull-missing", 404),
    R("guest", "pull-missing", 404),
    R("limited-guest", "pull-missing", 404),
    R("outsider", "pull-missing", 401),
    R("robot-ci", "pull-missing", 404),
    R("robot-pull", "pull-missing", 404),
    R("disabled", "pull-missing", 401),
]

# Management API actions (HTTP Basic on every request):
#   projects          GET /api/v1/projects (which projects)
#   project           GET /api/v1/projects/acme
#   project-patch     PATCH /api/v1/projects/acme {"public": false}
#   proxy             GET /api/v1/projects/acme/proxy (acme is no proxy cache)
#   proxy-patch       PATCH /api/v1/projects/acme/proxy {"tag_ttl_seconds": 60} (conflicts)
#   members           GET /api/v1/projects/acme/members
#   member-put        PUT /api/v1/projects/acme/members/someone (guest -> maintainer)
#   repos-acme        GET /api/v1/repositories?project=acme
#   repos             GET /api/v1/repositories (which repositories)
#   artifacts         GET /api/v1/repositories/acme/app/-/artifacts
#   artifact-delete   DELETE /api/v1/repositories/acme/app/-/artifacts/<digest> (fresh)
#   tag-add           POST /api/v1/repositories/acme/app/-/artifacts/<v1 digest>/tags
#   tag-delete        DELETE /api/v1/repositories/acme/app/-/tags/<tag> (fresh, on v1)
#   robots            GET /api/v1/projects/acme/robots
#   robot-create      POST /api/v1/projects/acme/robots
#   users             GET /api/v1/users
#   user-create       POST /api/v1/users
#   audit             GET /api/v1/audit-logs
#   project-audit     GET /api/v1/projects/acme/audit-logs
#   members-pub       GET /api/v1/projects/pub/members (public; no subject but the admin is
#                     a member, so seeing pub is not enough)
#   robots-pub        GET /api/v1/projects/pub/robots (the same)
#   webhooks          GET /api/v1/projects/acme/webhooks
#   webhook           GET /api/v1/projects/acme/webhooks/<id>
#   webhook-deliveries  GET /api/v1/projects/acme/webhooks/<id>/deliveries
#   webhook-create    POST /api/v1/projects/acme/webhooks (to a loopback receiver)
#   webhook-patch     PATCH /api/v1/projects/acme/webhooks/<id> {"description": ...}
#   webhook-delete    DELETE /api/v1/projects/acme/webhooks/<id> (fresh, made by the admin)
#   webhook-test      POST /api/v1/projects/acme/webhooks/<id>/test (the receiver answers)
#   webhook-redeliver POST /api/v1/projects/acme/webhooks/<id>/deliveries/<id>/redeliver
#                     (a fresh dead delivery: the admin's test event to a target answering 500)
#   vulndb            GET /api/v1/vulndb (the vulnerability database's status: any
#                     signed-in caller)
#   signatures        GET /api/v1/repositories/acme/app/-/artifacts/v1/signatures
#   trusted-keys      GET /api/v1/projects/acme/trusted-keys
#   key-create        POST /api/v1/projects/acme/trusted-keys (a cosign public key)
#   key-delete        DELETE /api/v1/projects/acme/trusted-keys/<key> (fresh, added by the admin)
#   pull-policy       GET /api/v1/projects/acme/pull-policy
#   pull-policy-patch PATCH /api/v1/projects/acme/pull-policy {"require_signed": false}
#   scan-settings     GET /api/v1/projects/acme/scan-settings
#   scan-settings-put PUT /api/v1/projects/acme/scan-settings (auto-scan off, no policy)
#   allowlist-put     PUT /api/v1/projects/acme/cve-allowlist
#   sboms             GET /api/v1/repositories/acme/app/-/artifacts/v1/sboms
#   scan-start        POST /api/v1/repositories/acme/app/-/artifacts/v1/scan (a scanner is
#                     registered: a loopback receiver, so the scan itself fails)
#   scanners          GET /api/v1/scanners
#   system-allowlist  GET /api/v1/system/cve-allowlist
#   allowlist         GET /api/v1/projects/acme/cve-allowlist
#   system-allowlist-put  PUT /api/v1/system/cve-allowlist
#   scan              GET /api/v1/repositories/acme/app/-/artifacts/v1/scan (the admin
#                     asked for one when the world was made)
#   scan-findings     GET /api/v1/repositories/acme/app/-/artifacts/v1/scan/findings
#   scanner-create    POST /api/v1/scanners (a loopback receiver)
MANAGEMENT: list[Row] = [
    # -- projects
    R("anonymous", "projects", 200, PUB),
    R("admin", "projects", 200, ALL_PROJECTS),
    R("project-admin", "projects", 200, ACME_PUB),
    R("maintainer", "projects", 200, ACME_PUB),
    R("developer", "projects", 200, ACME_PUB),
    R("guest", "projects", 200, ACME_PUB),
    R("limited-guest", "projects", 200, ACME_PUB),
    R("outsider", "projects", 200, PUB),
    R("robot-ci", "projects", 200, ACME_PUB),
    R("robot-pull", "projects", 200, ACME_PUB),
    R("disabled", "projects", 401),
    # -- project
    R("anonymous", "project", 404),
    R("admin", "project", 200),
    R("project-admin", "project", 200),
    R("maintainer", "project", 200),
    R("developer", "project", 200),
    R("guest", "project", 200),
    R("limited-guest", "project", 200),
    R("outsider", "project", 404),
    R("robot-ci", "project", 200),
    R("robot-pull", "project", 200),
    R("disabled", "project", 401),
    # -- project-patch
    R("anonymous", "project-patch", 404),
    R("admin", "project-patch", 200),
    R("project-admin", "project-patch", 200),
    R("maintainer", "project-patch", 403),
    R("developer", "project-patch", 403),
    R("guest", "project-patch", 403),
    R("limited-guest", "project-patch", 403),
    R("outsider", "project-patch", 404),
    R("robot-ci", "project-patch", 403),
    R("robot-pull", "project-patch", 403),
    R("disabled", "project-patch", 401),
    # -- proxy (acme is no proxy cache: seen as `proxy: false`; patching it conflicts)
    R("anonymous", "proxy", 404),
    R("admin", "proxy", 200),
    R("project-admin", "proxy", 200),
    R("maintainer", "proxy", 200),
    R("developer", "proxy", 200),
    R("guest", "proxy", 200),
    R("limited-guest", "proxy", 200),
    R("outsider", "proxy", 404),
    R("robot-ci", "proxy", 200),
    R("robot-pull", "proxy", 200),
    R("disabled", "proxy", 401),
    R("anonymous", "proxy-patch", 404),
    R("admin", "proxy-patch", 409),
    R("project-admin", "proxy-patch", 409),
    R("maintainer", "proxy-patch", 403),
    R("developer", "proxy-patch", 403),
    R("guest", "proxy-patch", 403),
    R("limited-guest", "proxy-patch", 403),
    R("outsider", "proxy-patch", 404),
    R("robot-ci", "proxy-patch", 403),
    R("robot-pull", "proxy-patch", 403),
    R("disabled", "proxy-patch", 401),
    # -- members
    R("anonymous", "members", 404),
    R("admin", "members", 200),
    R("project-admin", "members", 200),
    R("maintainer", "members", 200),
    R("developer", "members", 200),
    R("guest", "members", 200),
    R("limited-guest", "members", 403),
    R("outsider", "members", 404),
    R("robot-ci", "members", 403),
    R("robot-pull", "members", 403),
    R("disabled", "members", 401),
    # -- member-put
    R("anonymous", "member-put", 404),
    R("admin", "member-put", 200),
    R("project-admin", "member-put", 200),
    R("maintainer", "member-put", 403),
    R("developer", "member-put", 403),
    R("guest", "member-put", 403),
    R("limited-guest", "member-put", 403),
    R("outsider", "member-put", 404),
    R("robot-ci", "member-put", 403),
    R("robot-pull", "member-put", 403),
    R("disabled", "member-put", 401),
    # -- repos-acme
    R("anonymous", "repos-acme", 404),
    R("admin", "repos-acme", 200, ("acme/app",)),
    R("project-admin", "repos-acme", 200, ("acme/app",)),
    R("maintainer", "repos-acme", 200, ("acme/app",)),
    R("developer", "repos-acme", 200, ("acme/app",)),
    R("guest", "repos-acme", 200, ("acme/app",)),
    R("limited-guest", "repos-acme", 403),
    R("outsider", "repos-acme", 404),
    R("robot-ci", "repos-acme", 200, ("acme/app",)),
    R("robot-pull", "repos-acme", 200, ("acme/app",)),
    R("disabled", "repos-acme", 401),
    # -- repos
    R("anonymous", "repos", 200, PUB_REPOS),
    R("admin", "repos", 200, ALL_REPOS),
    R("project-admin", "repos", 200, ACME_PUB_REPOS),
    R("maintainer", "repos", 200, ACME_PUB_REPOS),
    R("developer", "repos", 200, ACME_PUB_REPOS),
    R("guest", "repos", 200, ACME_PUB_REPOS),
    R("limited-guest", "repos", 200, PUB_REPOS),
    R("outsider", "repos", 200, PUB_REPOS),
    R("robot-ci", "repos", 200, ACME_PUB_REPOS),
    R("robot-pull", "repos", 200, ACME_PUB_REPOS),
    R("disabled", "repos", 401),
    # -- artifacts
    R("anonymous", "artifacts", 404),
    R("admin", "artifacts", 200),
    R("project-admin", "artifacts", 200),
    R("maintainer", "artifacts", 200),
    R("developer", "artifacts", 200),
    R("guest", "artifacts", 200),
    R("limited-guest", "artifacts", 200),
    R("outsider", "artifacts", 404),
    R("robot-ci", "artifacts", 200),
    R("robot-pull", "artifacts", 200),
    R("disabled", "artifacts", 401),
    # -- artifact-delete
    R("anonymous", "artifact-delete", 404),
    R("admin", "artifact-delete", 204),
    R("project-admin", "artifact-delete", 204),
    R("maintainer", "artifact-delete", 204),
    R("developer", "artifact-delete", 403),
    R("guest", "artifact-delete", 403),
    R("limited-guest", "artifact-delete", 403),
    R("outsider", "artifact-delete", 404),
    R("robot-ci", "artifact-delete", 403),
    R("robot-pull", "artifact-delete", 403),
    R("disabled", "artifact-delete", 401),
    # -- tag-add
    R("anonymous", "tag-add", 404),
    R("admin", "tag-add", 201),
    R("project-admin", "tag-add", 201),
    R("maintainer", "tag-add", 201),
    R("developer", "tag-add", 201),
    R("guest", "tag-add", 403),
    R("limited-guest", "tag-add", 403),
    R("outsider", "tag-add", 404),
    R("robot-ci", "tag-add", 201),
    R("robot-pull", "tag-add", 403),
    R("disabled", "tag-add", 401),
    # -- tag-delete
    R("anonymous", "tag-delete", 404),
    R("admin", "tag-delete", 204),
    R("project-admin", "tag-delete", 204),
    R("maintainer", "tag-delete", 204),
    R("developer", "tag-delete", 403),
    R("guest", "tag-delete", 403),
    R("limited-guest", "tag-delete", 403),
    R("outsider", "tag-delete", 404),
    R("robot-ci", "tag-delete", 403),
    R("robot-pull", "tag-delete", 403),
    R("disabled", "tag-delete", 401),
    # -- robots
    R("anonymous", "robots", 404),
    R("admin", "robots", 200),
    R("project-admin", "robots", 200),
    R("maintainer", "robots", 200),
    R("developer", "robots", 403),
    R("guest", "robots", 403),
    R("limited-guest", "robots", 403),
    R("outsider", "robots", 404),
    R("robot-ci", "robots", 403),
    R("robot-pull", "robots", 403),
    R("disabled", "robots", 401),
    # -- robot-create
    R("anonymous", "robot-create", 404),
    R("admin", "robot-create", 201),
    R("project-admin", "robot-create", 201),
    R("maintainer", "robot-create", 403),
    R("developer", "robot-create", 403),
    R("guest", "robot-create", 403),
    R("limited-guest", "robot-create", 403),
    R("outsider", "robot-create", 404),
    R("robot-ci", "robot-create", 403),
    R("robot-pull", "robot-create", 403),
    R("disabled", "robot-create", 401),
    # -- users
    R("anonymous", "users", 401),
    R("admin", "users", 200),
    R("project-admin", "users", 403),
    R("maintainer", "users", 403),
    R("developer", "users", 403),
    R("guest", "users", 403),
    R("limited-guest", "users", 403),
    R("outsider", "users", 403),
    R("robot-ci", "users", 403),
    R("robot-pull", "users", 403),
    R("disabled", "users", 401),
    # -- user-create
    R("anonymous", "user-create", 401),
    R("admin", "user-create", 201),
    R("project-admin", "user-create", 403),
    R("maintainer", "user-create", 403),
    R("developer", "user-create", 403),
    R("guest", "user-create", 403),
    R("limited-guest", "user-create", 403),
    R("outsider", "user-create", 403),
    R("robot-ci", "user-create", 403),
    R("robot-pull", "user-create", 403),
    R("disabled", "user-create", 401),
    # -- audit
    R("anonymous", "audit", 401),
    R("admin", "audit", 200),
    R("project-admin", "audit", 403),
    R("maintainer", "audit", 403),
    R("developer", "audit", 403),
    R("guest", "audit", 403),
    R("limited-guest", "audit", 403),
    R("outsider", "audit", 403),
    R("robot-ci", "audit", 403),
    R("robot-pull", "audit", 403),
    R("disabled", "audit", 401),
    # -- vulndb
    R("anonymous", "vulndb", 401),
    R("admin", "vulndb", 200),
    R("project-admin", "vulndb", 200),
    R("maintainer", "vulndb", 200),
    R("developer", "vulndb", 200),
    R("guest", "vulndb", 200),
    R("limited-guest", "vulndb", 200),
    R("outsider", "vulndb", 200),
    R("robot-ci", "vulndb", 200),
    R("robot-pull", "vulndb", 200),
    R("disabled", "vulndb", 401),
    # -- project-audit
    R("anonymous", "project-audit", 404),
    R("admin", "project-audit", 200),
    R("project-admin", "project-audit", 200),
    R("maintainer", "project-audit", 200),
    R("developer", "project-audit", 200),
    R("guest", "project-audit", 200),
    R("limited-guest", "project-audit", 403),
    R("outsider", "project-audit", 404),
    R("robot-ci", "project-audit", 403),
    R("robot-pull", "project-audit", 403),
    R("disabled", "project-audit", 401),
    # -- members-pub
    R("anonymous", "members-pub", 401),
    R("admin", "members-pub", 200),
    R("project-admin", "members-pub", 403),
    R("maintainer", "members-pub", 403),
    R("developer", "members-pub", 403),
    R("guest", "members-pub", 403),
    R("limited-guest", "members-pub", 403),
    R("outsider", "members-pub", 403),
    R("robot-ci", "members-pub", 403),
    R("robot-pull", "members-pub", 403),
    R("disabled", "members-pub", 401),
    # -- robots-pub
    R("anonymous", "robots-pub", 401),
    R("admin", "robots-pub", 200),
    R("project-admin", "robots-pub", 403),
    R("maintainer", "robots-pub", 403),
    R("developer", "robots-pub", 403),
    R("guest", "robots-pub", 403),
    R("limited-guest", "robots-pub", 403),
    R("outsider", "robots-pub", 403),
    R("robot-ci", "robots-pub", 403),
    R("robot-pull", "robots-pub", 403),
    R("disabled", "robots-pub", 401),
    # -- webhooks
    R("anonymous", "webhooks", 404),
    R("admin", "webhooks", 200),
    R("project-admin", "webhooks", 200),
    R("maintainer", "webhooks", 200),
    R("developer", "webhooks", 403),
    R("guest", "webhooks", 403),
    R("limited-guest", "webhooks", 403),
    R("outsider", "webhooks", 404),
    R("robot-ci", "webhooks", 403),
    R("robot-pull", "webhooks", 403),
    R("disabled", "webhooks", 401),
    # -- webhook
    R("anonymous", "webhook", 404),
    R("admin", "webhook", 200),
    R("project-admin", "webhook", 200),
    R("maintainer", "webhook", 200),
    R("developer", "webhook", 403),
    R("guest", "webhook", 403),
    R("limited-guest", "webhook", 403),
    R("outsider", "webhook", 404),
    R("robot-ci", "webhook", 403),
    R("robot-pull", "webhook", 403),
    R("disabled", "webhook", 401),
    # -- webhook-deliveries
    R("anonymous", "webhook-deliveries", 404),
    R("admin", "webhook-deliveries", 200),
    R("project-admin", "webhook-deliveries", 200),
    R("maintainer", "webhook-deliveries", 200),
    R("developer", "webhook-deliveries", 403),
    R("guest", "webhook-deliveries", 403),
    R("limited-guest", "webhook-deliveries", 403),
    R("outsider", "webhook-deliveries", 404),
    R("robot-ci", "webhook-deliveries", 403),
    R("robot-pull", "webhook-deliveries", 403),
    R("disabled", "webhook-deliveries", 401),
    # -- webhook-create
    R("anonymous", "webhook-create", 404),
    R("admin", "webhook-create", 201),
    R("project-admin", "webhook-create", 201),
    R("maintainer", "webhook-create", 403),
    R("developer", "webhook-create", 403),
    R("guest", "webhook-create", 403),
    R("limited-guest", "webhook-create", 403),
    R("outsider", "webhook-create", 404),
    R("robot-ci", "webhook-create", 403),
    R("robot-pull", "webhook-create", 403),
    R("disabled", "webhook-create", 401),
    # -- webhook-patch
    R("anonymous", "webhook-patch", 404),
    R("admin", "webhook-patch", 200),
    R("project-admin", "webhook-patch", 200),
    R("maintainer", "webhook-patch", 403),
    R("developer", "webhook-patch", 403),
    R("guest", "webhook-patch", 403),
    R("limited-guest", "webhook-patch", 403),
    R("outsider", "webhook-patch", 404),
    R("robot-ci", "webhook-patch", 403),
    R("robot-pull", "webhook-patch", 403),
    R("disabled", "webhook-patch", 401),
    # -- webhook-delete
    R("anonymous", "webhook-delete", 404),
    R("admin", "webhook-delete", 204),
    R("project-admin", "webhook-delete", 204),
    R("maintainer", "webhook-delete", 403),
    R("developer", "webhook-delete", 403),
    R("guest", "webhook-delete", 403),
    R("limited-guest", "webhook-delete", 403),
    R("outsider", "webhook-delete", 404),
    R("robot-ci", "webhook-delete", 403),
    R("robot-pull", "webhook-delete", 403),
    R("disabled", "webhook-delete", 401),
    # -- webhook-test
    R("anonymous", "webhook-test", 404),
    R("admin", "webhook-test", 201),
    R("project-admin", "webhook-test", 201),
    R("maintainer", "webhook-test", 403),
    R("developer", "webhook-test", 403),
    R("guest", "webhook-test", 403),
    R("limited-guest", "webhook-test", 403),
    R("outsider", "webhook-test", 404),
    R("robot-ci", "webhook-test", 403),
    R("robot-pull", "webhook-test", 403),
    R("disabled", "webhook-test", 401),
    # -- webhook-redeliver
    R("anonymous", "webhook-redeliver", 404),
    R("admin", "webhook-redeliver", 200),
    R("project-admin", "webhook-redeliver", 200),
    R("maintainer", "webhook-redeliver", 403),
    R("developer", "webhook-redeliver", 403),
    R("guest", "webhook-redeliver", 403),
    R("limited-guest", "webhook-redeliver", 403),
    R("outsider", "webhook-redeliver", 404),
    R("robot-ci", "webhook-redeliver", 403),
    R("robot-pull", "webhook-redeliver", 403),
    R("disabled", "webhook-redeliver", 401),
    # -- signatures
    R("anonymous", "signatures", 404),
    R("admin", "signatures", 200),
    R("project-admin", "signatures", 200),
    R("maintainer", "signatures", 200),
    R("developer", "signatures", 200),
    R("guest", "signatures", 200),
    R("limited-guest", "signatures", 200),
    R("outsider", "signatures", 404),
    R("robot-ci", "signatures", 200),
    R("robot-pull", "signatures", 200),
    R("disabled", "signatures", 401),
    # -- trusted-keys
    R("anonymous", "trusted-keys", 404),
    R("admin", "trusted-keys", 200),
    R("project-admin", "trusted-keys", 200),
    R("maintainer", "trusted-keys", 200),
    R("developer", "trusted-keys", 200),
    R("guest", "trusted-keys", 200),
    R("limited-guest", "trusted-keys", 403),
    R("outsider", "trusted-keys", 404),
    R("robot-ci", "trusted-keys", 403),
    R("robot-pull", "trusted-keys", 403),
    R("disabled", "trusted-keys", 401),
    # -- key-create
    R("anonymous", "key-create", 404),
    R("admin", "key-create", 201),
    R("project-admin", "key-create", 201),
    R("maintainer", "key-create", 201),
    R("developer", "key-create", 403),
    R("guest", "key-create", 403),
    R("limited-guest", "key-create", 403),
    R("outsider", "key-create", 404),
    R("robot-ci", "key-create", 403),
    R("robot-pull", "key-create", 403),
    R("disabled", "key-create", 401),
    # -- key-delete
    R("anonymous", "key-delete", 404),
    R("admin", "key-delete", 204),
    R("project-admin", "key-delete", 204),
    R("maintainer", "key-delete", 204),
    R("developer", "key-delete", 403),
    R("guest", "key-delete", 403),
    R("limited-guest", "key-delete", 403),
    R("outsider", "key-delete", 404),
    R("robot-ci", "key-delete", 403),
    R("robot-pull", "key-delete", 403),
    R("disabled", "key-delete", 401),
    # -- pull-policy
    R("anonymous", "pull-policy", 404),
    R("admin", "pull-policy", 200),
    R("project-admin", "pull-policy", 200),
    R("maintainer", "pull-policy", 200),
    R("developer", "pull-policy", 200),
    R("guest", "pull-policy", 200),
    R("limited-guest", "pull-policy", 403),
    R("outsider", "pull-policy", 404),
    R("robot-ci", "pull-policy", 403),
    R("robot-pull", "pull-policy", 403),
    R("disabled", "pull-policy", 401),
    # -- pull-policy-patch
    R("anonymous", "pull-policy-patch", 404),
    R("admin", "pull-policy-patch", 200),
    R("project-admin", "pull-policy-patch", 200),
    R("maintainer", "pull-policy-patch", 403),
    R("developer", "pull-policy-patch", 403),
    R("guest", "pull-policy-patch", 403),
    R("limited-guest", "pull-policy-patch", 403),
    R("outsider", "pull-policy-patch", 404),
    R("robot-ci", "pull-policy-patch", 403),
    R("robot-pull", "pull-policy-patch", 403),
    R("disabled", "pull-policy-patch", 401),
    # -- scan-settings
    R("anonymous", "scan-settings", 404),
    R("admin", "scan-settings", 200),
    R("project-admin", "scan-settings", 200),
    R("maintainer", "scan-settings", 200),
    R("developer", "scan-settings", 200),
    R("guest", "scan-settings", 200),
    R("limited-guest", "scan-settings", 200),
    R("outsider", "scan-settings", 404),
    R("robot-ci", "scan-settings", 200),
    R("robot-pull", "scan-settings", 200),
    R("disabled", "scan-settings", 401),
    # -- scan-settings-put
    R("anonymous", "scan-settings-put", 404),
    R("admin", "scan-settings-put", 200),
    R("project-admin", "scan-settings-put", 200),
    R("maintainer", "scan-settings-put", 403),
    R("developer", "scan-settings-put", 403),
    R("guest", "scan-settings-put", 403),
    R("limited-guest", "scan-settings-put", 403),
    R("outsider", "scan-settings-put", 404),
    R("robot-ci", "scan-settings-put", 403),
    R("robot-pull", "scan-settings-put", 403),
    R("disabled", "scan-settings-put", 401),
    # -- allowlist-put
    R("anonymous", "allowlist-put", 404),
    R("admin", "allowlist-put", 200),
    R("project-admin", "allowlist-put", 200),
    R("maintainer", "allowlist-put", 403),
    R("developer", "allowlist-put", 403),
    R("guest", "allowlist-put", 403),
    R("limited-guest", "allowlist-put", 403),
    R("outsider", "allowlist-put", 404),
    R("robot-ci", "allowlist-put", 403),
    R("robot-pull", "allowlist-put", 403),
    R("disabled", "allowlist-put", 401),
    # -- sboms
    R("anonymous", "sboms", 404),
    R("admin", "sboms", 200),
    R("project-admin", "sboms", 200),
    R("maintainer", "sboms", 200),
    R("developer", "sboms", 200),
    R("guest", "sboms", 200),
    R("limited-guest", "sboms", 200),
    R("outsider", "sboms", 404),
    R("robot-ci", "sboms", 200),
    R("robot-pull", "sboms", 200),
    R("disabled", "sboms", 401),
    # -- scan-start
    R("anonymous", "scan-start", 404),
    R("admin", "scan-start", 202),
    R("project-admin", "scan-start", 202),
    R("maintainer", "scan-start", 202),
    R("developer", "scan-start", 202),
    R("guest", "scan-start", 403),
    R("limited-guest", "scan-start", 403),
    R("outsider", "scan-start", 404),
    R("robot-ci", "scan-start", 202),
    R("robot-pull", "scan-start", 403),
    R("disabled", "scan-start", 401),
    # -- scanners
    R("anonymous", "scanners", 401),
    R("admin", "scanners", 200),
    R("project-admin", "scanners", 403),
    R("maintainer", "scanners", 403),
    R("developer", "scanners", 403),
    R("guest", "scanners", 403),
    R("limited-guest", "scanners", 403),
    R("outsider", "scanners", 403),
    R("robot-ci", "scanners", 403),
    R("robot-pull", "scanners", 403),
    R("disabled", "scanners", 401),
    # -- system-allowlist
    R("anonymous", "system-allowlist", 401),
    R("admin", "system-allowlist", 200),
    R("project-admin", "system-allowlist", 200),
    R("maintainer", "system-allowlist", 200),
    R("developer", "system-allowlist", 200),
    R("guest", "system-allowlist", 200),
    R("limited-guest", "system-allowlist", 200),
    R("outsider", "system-allowlist", 200),
    R("robot-ci", "system-allowlist", 200),
    R("robot-pull", "system-allowlist", 200),
    R("disabled", "system-allowlist", 401),
    # -- allowlist
    R("anonymous", "allowlist", 404),
    R("admin", "allowlist", 200),
    R("project-admin", "allowlist", 200),
    R("maintainer", "allowlist", 200),
    R("developer", "allowlist", 200),
    R("guest", "allowlist", 200),
    R("limited-guest", "allowlist", 200),
    R("outsider", "allowlist", 404),
    R("robot-ci", "allowlist", 200),
    R("robot-pull", "allowlist", 200),
    R("disabled", "allowlist", 401),
    # -- system-allowlist-put
    R("anonymous", "system-allowlist-put", 401),
    R("admin", "system-allowlist-put", 200),
    R("project-admin", "system-allowlist-put", 403),
    R("maintainer", "system-allowlist-put", 403),
    R("developer", "system-allowlist-put", 403),
    R("guest", "system-allowlist-put", 403),
    R("limited-guest", "system-allowlist-put", 403),
    R("outsider", "system-allowlist-put", 403),
    R("robot-ci", "system-allowlist-put", 403),
    R("robot-pull", "system-allowlist-put", 403),
    R("disabled", "system-allowlist-put", 401),
    # -- scan
    R("anonymous", "scan", 404),
    R("admin", "scan", 200),
    R("project-admin", "scan", 200),
    R("maintainer", "scan", 200),
    R("developer", "scan", 200),
    R("guest", "scan", 200),
    R("limited-guest", "scan", 200),
    R("outsider", "scan", 404),
    R("robot-ci", "scan", 200),
    R("robot-pull", "scan", 200),
    R("disabled", "scan", 401),
    # -- scan-findings
    R("anonymous", "scan-findings", 404),
    R("admin", "scan-findings", 200),
    R("project-admin", "scan-findings", 200),
    R("maintainer", "scan-findings", 200),
    R("developer", "scan-findings", 200),
    R("guest", "scan-findings", 200),
    R("limited-guest", "scan-findings", 200),
    R("outsider", "scan-findings", 404),
    R("robot-ci", "scan-findings", 200),
    R("robot-pull", "scan-findings", 200),
    R("disabled", "scan-findings", 401),
    # -- scanner-create
    R("anonymous", "scanner-create", 401),
    R("admin", "scanner-create", 201),
    R("project-admin", "scanner-create", 403),
    R("maintainer", "scanner-create", 403),
    R("developer", "scanner-create", 403),
    R("guest", "scanner-create", 403),
    R("limited-guest", "scanner-create", 403),
    R("outsider", "scanner-create", 403),
    R("robot-ci", "scanner-create", 403),
    R("robot-pull", "scanner-create", 403),
    R("disabled", "scanner-create", 401),
]


def _admin_only(action: str, status: int) -> list[Row]:
    """Rows of a system-administrators-only route: anonymous and the disabled user 401,
    the admin `status`, every other user and robot 403 (Admin in mgmt/security.py)."""
    answers = {"anonymous": 401, "admin": status, "disabled": 401}
    return [R(key, action, answers.get(key, 403)) for key in SUBJECT_KEYS]


# Registry endpoints (other registries; replication and proxy cache), admins only:
#   endpoints         GET /api/v1/endpoints
#   endpoint          GET /api/v1/endpoints/matrix-peer (seeded by the admin)
#   endpoint-create   POST /api/v1/endpoints (with a password, never shown or audited)
#   endpoint-patch    PATCH /api/v1/endpoints/matrix-peer {"description": ...}
#   endpoint-delete   DELETE /api/v1/endpoints/<fresh, made by the admin>
#   endpoint-test     POST /api/v1/endpoints/matrix-peer/test (the server itself: OK)
MANAGEMENT += [
    *_admin_only("endpoints", 200),
    *_admin_only("endpoint", 200),
    *_admin_only("endpoint-create", 201),
    *_admin_only("endpoint-patch", 200),
    *_admin_only("endpoint-delete", 204),
    *_admin_only("endpoint-test", 200),
]

# Replication (admins only): the seeded rule `matrix-rule` pushes `nothing/**` (an empty
# plan) to the seeded endpoint.
#   replication-rules        GET /api/v1/replication/rules
#   replication-rule         GET /api/v1/replication/rules/matrix-rule
#   replication-rule-create  POST /api/v1/replication/rules
#   replication-rule-patch   PATCH /api/v1/replication/rules/matrix-rule {"description": ...}
#   replication-rule-delete  DELETE /api/v1/replication/rules/<fresh, made by the admin>
#   replication-run-start    POST /api/v1/replication/rules/matrix-rule/runs
#   replication-runs         GET /api/v1/replication/runs?rule=matrix-rule
#   replication-run          GET /api/v1/replication/runs/<a run the admin started>
MANAGEMENT += [
    *_admin_only("replication-rules", 200),
    *_admin_only("replication-rule", 200),
    *_admin_only("replication-rule-create", 201),
    *_admin_only("replication-rule-patch", 200),
    *_admin_only("replication-rule-delete", 204),
    *_admin_only("replication-run-start", 201),
    *_admin_only("replication-runs", 200),
    *_admin_only("replication-run", 200),
]


def _project_readers(action: str) -> list[Row]:
    """Rows of a route for whoever may see `acme` (every role and robot in it, the admin):
    200; anonymous and the outsider 404, as for a missing project; the disabled user 401."""
    answers = {"anonymous": 404, "outsider": 404, "disabled": 401}
    return [R(key, action, answers.get(key, 200)) for key in SUBJECT_KEYS]


def _project_admins(action: str, status: int) -> list[Row]:
    """Rows of a route for project admins of `acme` (and the admin): `status`; other
    members and robots 403; anonymous and the outsider 404; the disabled user 401."""
    answers = {
        "anonymous": 404,
        "outsider": 404,
        "disabled": 401,
        "admin": status,
        "project-admin": status,
    }
    return [R(key, action, answers.get(key, 403)) for key in SUBJECT_KEYS]


# Routes the first matrix missed (the completeness check below now names any such route):
#   sbom-download      GET /api/v1/repositories/acme/app/-/artifacts/v1/sboms/<spdx referrer>
#   scanner-patch      PATCH /api/v1/scanners/stub {"description": ...}
#   scanner-delete     DELETE /api/v1/scanners/<fresh, registered by the admin>
#   scanner-metadata   GET /api/v1/scanners/stub/metadata (the stub answers 500: 400 INVALID)
#   user               GET /api/v1/users/admin
#   usage              GET /api/v1/usage
#   system-robots      GET /api/v1/robots
#   project-usage      GET /api/v1/projects/acme/usage
#   repository         GET /api/v1/repositories/acme/app
#   artifact           GET /api/v1/repositories/acme/app/-/artifacts/v1
#   immutability-rules GET /api/v1/projects/acme/immutability-rules
#   retention          GET /api/v1/projects/acme/retention
#   retention-runs     GET /api/v1/projects/acme/retention/runs
#   repository-delete  DELETE /api/v1/repositories/acme/<fresh repository, pushed by the admin>
#   immutability-rule-create  POST /api/v1/projects/acme/immutability-rules (protecting
#                      tags of `nothing/**` only, so no other cell meets it)
MANAGEMENT += [
    *_project_readers("sbom-download"),
    *_admin_only("scanner-patch", 200),
    *_admin_only("scanner-delete", 204),
    *_admin_only("scanner-metadata", 400),
    *_admin_only("user", 200),
    *_admin_only("usage", 200),
    *_admin_only("system-robots", 200),
    *_project_readers("project-usage"),
    *_project_readers("repository"),
    *_project_readers("artifact"),
    *_project_readers("immutability-rules"),
    *_project_readers("retention"),
    *_project_admins("retention-runs", 200),
    *_project_admins("immutability-rule-create", 201),
    # Delete permission (as artifact-delete): the admin, project admins and maintainers.
    *[
        R(row.subject, "repository-delete", 204 if row.subject == "maintainer" else row.status)
        for row in _project_admins("repository-delete", 204)
    ],
]


def _cells(rows: list[Row]) -> list[Any]:
    return [pytest.param(row, id=f"{row.action}:{row.subject}") for row in rows]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with running_world(tmp_path_factory.mktemp("matrix")) as created:
        yield created


# --- registry --------------------------------------------------------------------------


def _send(
    world: World, subject: Subject, mode: str, method: str, url: str, **kwargs: Any
) -> httpx.Response:
    """One /v2 request as the subject; in the token flow, a subject refused a token gets
    the token endpoint's answer instead."""
    headers = world.registry_headers(subject, mode)
    if isinstance(headers, httpx.Response):
        return headers
    extra = kwargs.pop("headers", {})
    return world.http.request(method, url, headers={**headers, **extra}, **kwargs)


def _pull(world: World, subject: Subject, mode: str, repo: str) -> httpx.Response:
    response = _send(
        world,
        subject,
        mode,
        "GET",
        f"/v2/{repo}/manifests/v1",
        headers={"accept": OCI_MANIFEST},
    )
    if response.status_code == 200:
        image = world.v1.get(repo)
        assert image is not None
        assert response.content == image.manifest
        assert response.headers["docker-content-digest"] == image.digest
        world.audited.append(
            AuditExpectation(subject.actor, "pull", f"{repo}@{image.digest}", reference="v1")
        )
    return response


def _push(world: World, subject: Subject, mode: str, repo: str) -> httpx.Response:
    tag = f"{repo.split('/', maxsplit=1)[0]}-push-{subject.key}-{mode}"
    layer = f"layer pushed by {subject.key} with {mode} into {repo}".encode()
    image = make_image(tag, layer=layer, config=world.v1[repo].config)
    expectation = AuditExpectation(subject.actor, "push", f"{repo}@{image.digest}", reference=tag)
    start = _send(world, subject, mode, "POST", f"/v2/{repo}/blobs/uploads/")
    if start.status_code != 202:
        # Refused at the first step; the manifest PUT is refused the same way.
        manifest = _send(
            world,
            subject,
            mode,
            "PUT",
            f"/v2/{repo}/manifests/{tag}",
            content=image.manifest,
            headers={"content-type": OCI_MANIFEST},
        )
        assert manifest.status_code == start.status_code, manifest.text
        assert world.manifest_status(repo, tag) == 404
        world.not_audited.append(expectation)
        return start
    location = start.headers["location"]
    patched = _send(
        world,
        subject,
        mode,
        "PATCH",
        location,
        content=layer,
        headers={
            "content-type": "application/octet-stream",
            "content-range": f"0-{len(layer) - 1}",
        },
    )
    assert patched.status_code == 202, patched.text
    finished = _send(
        world, subject, mode, "PUT", patched.headers["location"], params={"digest": sha256(layer)}
    )
    assert finished.status_code == 201, finished.text
    manifest = _send(
        world,
        subject,
        mode,
        "PUT",
        f"/v2/{repo}/manifests/{tag}",
        content=image.manifest,
        headers={"content-type": OCI_MANIFEST},
    )
    if manifest.status_code == 201:
        assert world.manifest_status(repo, tag) == 200
        world.audited.append(expectation)
    return manifest


def _delete(world: World, subject: Subject, mode: str, by: str) -> httpx.Response:
    tag = f"delete-{by}-{subject.key}-{mode}"
    digest = world.push_as_admin("acme/app", tag, tag)
    reference = digest if by == "digest" else tag
    resource = f"acme/app@{digest}" if by == "digest" else f"acme/app:{tag}"
    response = _send(world, subject, mode, "DELETE", f"/v2/acme/app/manifests/{reference}")
    expectation = AuditExpectation(subject.actor, "delete", resource)
    if response.status_code == 202:
        assert world.manifest_status("acme/app", reference) == 404
        world.audited.append(expectation)
    else:
        assert world.manifest_status("acme/app", reference) == 200
        world.not_audited.append(expectation)
    return response


def _head_blob(world: World, subject: Subject, mode: str) -> httpx.Response:
    digest = world.v1["acme/app"].config_digest
    response = _send(world, subject, mode, "HEAD", f"/v2/acme/app/blobs/{digest}")
    if response.status_code == 200:
        assert response.headers["docker-content-digest"] == digest
        assert int(response.headers["content-length"]) == len(world.v1["acme/app"].config)
    return response


def _tags(world: World, subject: Subject, mode: str) -> httpx.Response:
    response = _send(world, subject, mode, "GET", "/v2/acme/app/tags/list")
    if response.status_code == 200:
        assert response.json()["name"] == "acme/app"
        assert "v1" in response.json()["tags"]
    return response


def _catalog(world: World, subject: Subject, mode: str) -> httpx.Response:
    return _send(world, subject, mode, "GET", "/v2/_catalog")


_IGNORED_HEADERS = {"x-request-id", "content-length", "date", "www-authenticate"}


def _pull_missing(world: World, subject: Subject, mode: str) -> httpx.Response:
    existing = _send(
        world, subject, mode, "GET", "/v2/acme/app/manifests/v1", headers={"accept": OCI_MANIFEST}
    )
    missing = _send(
        world,
        subject,
        mode,
        "GET",
        "/v2/acme/missing/manifests/v1",
        headers={"accept": OCI_MANIFEST},
    )
    if existing.status_code != 200:
        # Who may not pull acme/app cannot tell it from a repository that does not exist.
        assert missing.status_code == existing.status_code
        assert missing.text.replace("acme/missing", "acme/app") == existing.text
        assert missing.headers.get("www-authenticate", "").replace(
            "acme/missing", "acme/app"
        ) == existing.headers.get("www-authenticate", "")
        assert {k: v for k, v in missing.headers.items() if k not in _IGNORED_HEADERS} == {
            k: v for k, v in existing.headers.items() if k not in _IGNORED_HEADERS
        }
    elif missing.status_code == 404:
        assert set(error_codes(missing)) <= {"NAME_UNKNOWN", "MANIFEST_UNKNOWN"}, missing.text
    return missing


RegistryAction = Callable[[World, Subject, str], httpx.Response]

REGISTRY_ACTIONS: dict[str, RegistryAction] = {
    "pull": lambda w, s, m: _pull(w, s, m, "acme/app"),
    "pull-pub": lambda w, s, m: _pull(w, s, m, "pub/app"),
    "head-blob": _head_blob,
    "push": lambda w, s, m: _push(w, s, m, "acme/app"),
    "push-pub": lambda w, s, m: _push(w, s, m, "pub/app"),
    "delete-digest": lambda w, s, m: _delete(w, s, m, "digest"),
    "delete-tag": lambda w, s, m: _delete(w, s, m, "tag"),
    "tags": _tags,
    "catalog": _catalog,
    "pull-missing": _pull_missing,
}


def _check_registry_refusal(world: World, response: httpx.Response, status: int) -> None:
    if status == 401:
        challenge = response.headers["www-authenticate"]
        if response.request.url.path == "/auth/token":
            # The token endpoint refused the login (a disabled account).
            assert challenge.startswith("Basic "), challenge
        else:
            realm = f'Bearer realm="{world.server.url}/auth/token",service="portside"'
            assert challenge.startswith(realm), challenge
    if response.request.method != "HEAD":
        code = {401: "UNAUTHORIZED", 403: "DENIED"}[status]
        assert error_codes(response) == [code], response.text


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("row", _cells(REGISTRY))
def test_registry(world: World, mode: str, row: Row) -> None:
    subject = world.subjects[row.subject]
    response = REGISTRY_ACTIONS[row.action](world, subject, mode)
    assert response.status_code == row.status, (response.status_code, response.text)
    if row.status in (401, 403):
        _check_registry_refusal(world, response, row.status)
    if row.sees is not None:
        assert tuple(sorted(response.json()["repositories"])) == row.sees


# --- management API --------------------------------------------------------------------


def _api(world: World, subject: Subject, method: str, path: str, **kwargs: Any) -> httpx.Response:
    return world.http.request(method, f"/api/v1{path}", headers=subject.basic(), **kwargs)


def _as_admin(world: World, method: str, path: str, **kwargs: Any) -> httpx.Response:
    return world.admin_api.request(method, f"/api/v1{path}", **kwargs)


def _role_of(world: World, member: str) -> str | None:
    response = _as_admin(world, "GET", "/projects/acme/members")
    assert response.status_code == 200, response.text
    roles = {m["name"]: m["role"] for m in response.json() if m["kind"] == "user"}
    return roles.get(member)


# Each takes (world, subject, project): `project` is "acme", or "nosuch" to check that a
# 404 for acme is the 404 of a project that does not exist (setup then does nothing).
ManagementAction = Callable[[World, Subject, str], httpx.Response]


def _project_patch(world: World, subject: Subject, project: str) -> httpx.Response:
    response = _api(world, subject, "PATCH", f"/projects/{project}", json={"public": False})
    if project == "acme":
        assert _as_admin(world, "GET", "/projects/acme").json()["public"] is False
    return response


def _proxy_patch(world: World, subject: Subject, project: str) -> httpx.Response:
    return _api(world, subject, "PATCH", f"/projects/{project}/proxy", json={"tag_ttl_seconds": 60})


def _member_put(world: World, subject: Subject, project: str) -> httpx.Response:
    if project == "acme":
        reset = _as_admin(world, "PUT", "/projects/acme/members/someone", json={"role": "guest"})
        assert reset.status_code == 200, reset.text
    response = _api(
        world, subject, "PUT", f"/projects/{project}/members/someone", json={"role": "maintainer"}
    )
    if project == "acme":
        changed = response.status_code == 200
        assert _role_of(world, "someone") == ("maintainer" if changed else "guest")
        if changed:
            world.audited.append(AuditExpectation(subject.actor, "member.set", "acme"))
    return response


def _artifact_delete(world: World, subject: Subject, project: str) -> httpx.Response:
    if project != "acme":
        return _api(world, subject, "DELETE", f"/repositories/{project}/app/-/artifacts/{_FAKE}")
    label = f"mgmt-delete-{subject.key}"
    digest = world.push_as_admin("acme/app", label, label)
    response = _api(world, subject, "DELETE", f"/repositories/acme/app/-/artifacts/{digest}")
    expectation = AuditExpectation(
        subject.actor, "delete", f"acme/app@{digest}", resource_type="artifact"
    )
    deleted = response.status_code == 204
    assert world.manifest_status("acme/app", digest) == (404 if deleted else 200)
    (world.audited if deleted else world.not_audited).append(expectation)
    return response


def _tag_add(world: World, subject: Subject, project: str) -> httpx.Response:
    tag = f"mgmt-tag-{subject.key}"
    digest = world.v1["acme/app"].digest
    response = _api(
        world,
        subject,
        "POST",
        f"/repositories/{project}/app/-/artifacts/{digest}/tags",
        json={"name": tag},
    )
    if project == "acme":
        added = response.status_code == 201
        assert world.manifest_status("acme/app", tag) == (200 if added else 404)
        expectation = AuditExpectation(subject.actor, "tag", f"acme/app:{tag}")
        (world.audited if added else world.not_audited).append(expectation)
    return response


def _tag_delete(world: World, subject: Subject, project: str) -> httpx.Response:
    tag = f"mgmt-untag-{subject.key}"
    if project == "acme":
        tagged = put_manifest(
            world.http, "acme/app", tag, world.v1["acme/app"].manifest, world.admin
        )
        assert tagged.status_code == 201, tagged.text
    response = _api(world, subject, "DELETE", f"/repositories/{project}/app/-/tags/{tag}")
    if project == "acme":
        deleted = response.status_code == 204
        assert world.manifest_status("acme/app", tag) == (404 if deleted else 200)
        # Removing a tag leaves the artifact and its other tags alone.
        assert world.manifest_status("acme/app", "v1") == 200
        expectation = AuditExpectation(
            subject.actor, "delete", f"acme/app:{tag}", resource_type="tag"
        )
        (world.audited if deleted else world.not_audited).append(expectation)
    return response


def _robot_create(world: World, subject: Subject, project: str) -> httpx.Response:
    name = f"by-{subject.key}"
    response = _api(
        world,
        subject,
        "POST",
        f"/projects/{project}/robots",
        json={"name": name, "permissions": ["pull"]},
    )
    if response.status_code == 201:
        world.secrets.add(response.json()["secret"])
    if project == "acme":
        full = f"robot$acme+{name}"
        exists = _as_admin(world, "GET", f"/robots/{full}").status_code
        assert exists == (200 if response.status_code == 201 else 404)
        if response.status_code == 201:
            world.audited.append(AuditExpectation(subject.actor, "create", full))
    return response


def _user_create(world: World, subject: Subject, project: str) -> httpx.Response:
    username = f"new-{subject.key}"
    response = _api(
        world,
        subject,
        "POST",
        "/users",
        json={"username": username, "password": NEW_USER_PASSWORD},
    )
    created = response.status_code == 201
    assert _as_admin(world, "GET", f"/users/{username}").status_code == (200 if created else 404)
    if created:
        world.audited.append(AuditExpectation(subject.actor, "create", username))
    return response


def _webhook_create(world: World, subject: Subject, project: str) -> httpx.Response:
    name = f"by-{subject.key}"
    secret = f"webhook-secret-of-{subject.key}"
    world.secrets.add(secret)
    assert world.receiver is not None
    response = _api(
        world,
        subject,
        "POST",
        f"/projects/{project}/webhooks",
        json={
            "name": name,
            "target_url": world.receiver.url,
            "event_types": ["replication.completed"],
            "secret": secret,
        },
    )
    if project == "acme":
        listed = _as_admin(world, "GET", "/projects/acme/webhooks").json()
        created = response.status_code == 201
        assert (name in {w["name"] for w in listed}) == created
        expectation = AuditExpectation(
            subject.actor, "create", f"acme/webhooks/{name}", resource_type="webhook"
        )
        (world.audited if created else world.not_audited).append(expectation)
    return response


def _webhook_patch(world: World, subject: Subject, project: str) -> httpx.Response:
    hook = f"/projects/{project}/webhooks/{world.webhook}"
    description = f"changed by {subject.key}"
    response = _api(world, subject, "PATCH", hook, json={"description": description})
    if project == "acme":
        stored = _as_admin(world, "GET", hook).json()
        assert (stored["description"] == description) == (response.status_code == 200)
    return response


def _webhook_delete(world: World, subject: Subject, project: str) -> httpx.Response:
    if project != "acme":
        return _api(world, subject, "DELETE", f"/projects/{project}/webhooks/{world.webhook}")
    made = _as_admin(
        world,
        "POST",
        "/projects/acme/webhooks",
        json={
            "name": f"gone-{subject.key}",
            "target_url": world.receiver.url if world.receiver else "",
            "event_types": ["replication.completed"],
        },
    )
    assert made.status_code == 201, made.text
    hook = f"/projects/acme/webhooks/{made.json()['id']}"
    response = _api(world, subject, "DELETE", hook)
    deleted = response.status_code == 204
    assert _as_admin(world, "GET", hook).status_code == (404 if deleted else 200)
    expectation = AuditExpectation(
        subject.actor, "delete", f"acme/webhooks/gone-{subject.key}", resource_type="webhook"
    )
    (world.audited if deleted else world.not_audited).append(expectation)
    return response


def _webhook_test(world: World, subject: Subject, project: str) -> httpx.Response:
    response = _api(world, subject, "POST", f"/projects/{project}/webhooks/{world.webhook}/test")
    if response.status_code == 201:
        assert response.json()["status"] == "succeeded", response.text
    return response


def _webhook_redeliver(world: World, subject: Subject, project: str) -> httpx.Response:
    hook = f"/projects/{project}/webhooks/{world.dead_end}"
    delivery = 1
    if project == "acme":
        sent = _as_admin(world, "POST", f"{hook}/test")
        assert sent.status_code == 201, sent.text
        assert sent.json()["status"] == "dead", sent.text
        delivery = sent.json()["id"]
    response = _api(world, subject, "POST", f"{hook}/deliveries/{delivery}/redeliver")
    if response.status_code == 200:
        assert response.json()["status"] == "queued", response.text
    return response


def _endpoint_create(world: World, subject: Subject, project: str) -> httpx.Response:
    name = f"by-{subject.key}"
    secret = f"endpoint-password-of-{subject.key}"
    world.secrets.add(secret)
    response = _api(
        world,
        subject,
        "POST",
        "/endpoints",
        json={
            "name": name,
            "type": "portside",
            "url": world.server.url,
            "username": "admin",
            "password": secret,
        },
    )
    created = response.status_code == 201
    assert _as_admin(world, "GET", f"/endpoints/{name}").status_code == (200 if created else 404)
    if created:
        assert secret not in response.text
    expectation = AuditExpectation(
        subject.actor, "create", f"endpoints/{name}", resource_type="endpoint"
    )
    (world.audited if created else world.not_audited).append(expectation)
    return response


def _endpoint_patch(world: World, subject: Subject, project: str) -> httpx.Response:
    description = f"changed by {subject.key}"
    path = f"/endpoints/{MATRIX_ENDPOINT}"
    response = _api(world, subject, "PATCH", path, json={"description": description})
    stored = _as_admin(world, "GET", path).json()
    assert (stored["description"] == description) == (response.status_code == 200)
    return response


def _endpoint_delete(world: World, subject: Subject, project: str) -> httpx.Response:
    name = f"gone-{subject.key}"
    made = _as_admin(
        world,
        "POST",
        "/endpoints",
        json={"name": name, "type": "portside", "url": world.server.url},
    )
    assert made.status_code == 201, made.text
    response = _api(world, subject, "DELETE", f"/endpoints/{name}")
    deleted = response.status_code == 204
    assert _as_admin(world, "GET", f"/endpoints/{name}").status_code == (404 if deleted else 200)
    expectation = AuditExpectation(
        subject.actor, "delete", f"endpoints/{name}", resource_type="endpoint"
    )
    (world.audited if deleted else world.not_audited).append(expectation)
    return response


def _endpoint_test(world: World, subject: Subject, project: str) -> httpx.Response:
    response = _api(world, subject, "POST", f"/endpoints/{MATRIX_ENDPOINT}/test")
    if response.status_code == 200:
        assert response.json()["ok"] is True, response.text
    return response


def _rule_body(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "direction": "push",
        "endpoint": MATRIX_ENDPOINT,
        "repositories": "nothing/**",
    }


def _replication_rule_create(world: World, subject: Subject, project: str) -> httpx.Response:
    name = f"by-{subject.key}"
    response = _api(world, subject, "POST", "/replication/rules", json=_rule_body(name))
    created = response.status_code == 201
    found = _as_admin(world, "GET", f"/replication/rules/{name}").status_code
    assert found == (200 if created else 404)
    expectation = AuditExpectation(
        subject.actor, "create", f"replication/rules/{name}", resource_type="replication-rule"
    )
    (world.audited if created else world.not_audited).append(expectation)
    return response


def _replication_rule_patch(world: World, subject: Subject, project: str) -> httpx.Response:
    description = f"changed by {subject.key}"
    path = f"/replication/rules/{MATRIX_RULE}"
    response = _api(world, subject, "PATCH", path, json={"description": description})
    stored = _as_admin(world, "GET", path).json()
    assert (stored["description"] == description) == (response.status_code == 200)
    return response


def _replication_rule_delete(world: World, subject: Subject, project: str) -> httpx.Response:
    name = f"gone-{subject.key}"
    made = _as_admin(world, "POST", "/replication/rules", json=_rule_body(name))
    assert made.status_code == 201, made.text
    response = _api(world, subject, "DELETE", f"/replication/rules/{name}")
    deleted = response.status_code == 204
    found = _as_admin(world, "GET", f"/replication/rules/{name}").status_code
    assert found == (404 if deleted else 200)
    return response


def _replication_run_start(world: World, subject: Subject, project: str) -> httpx.Response:
    response = _api(world, subject, "POST", f"/replication/rules/{MATRIX_RULE}/runs")
    if response.status_code == 201:
        assert response.json()["rule"] == MATRIX_RULE, response.text
    return response


def _replication_run(world: World, subject: Subject, project: str) -> httpx.Response:
    started = _as_admin(world, "POST", f"/replication/rules/{MATRIX_RULE}/runs")
    assert started.status_code == 201, started.text
    return _api(world, subject, "GET", f"/replication/runs/{started.json()['id']}")


def _webhook_get(tail: str) -> ManagementAction:
    """GET the seeded webhook (or what is under it)."""

    def action(world: World, subject: Subject, project: str) -> httpx.Response:
        return _api(world, subject, "GET", f"/projects/{project}/webhooks/{world.webhook}{tail}")

    return action


def _get(path: str) -> ManagementAction:
    def action(world: World, subject: Subject, project: str) -> httpx.Response:
        return _api(world, subject, "GET", path.format(project=project))

    return action


def _scanner_create(world: World, subject: Subject, project: str) -> httpx.Response:
    assert world.receiver is not None
    body = {"name": "another", "url": world.receiver.url}
    return _api(world, subject, "POST", "/scanners", json=body)


def _put(path: str, body: dict[str, Any]) -> ManagementAction:
    def action(world: World, subject: Subject, project: str) -> httpx.Response:
        return _api(world, subject, "PUT", path.format(project=project), json=body)

    return action


def _post(path: str, body: dict[str, Any]) -> ManagementAction:
    def action(world: World, subject: Subject, project: str) -> httpx.Response:
        return _api(world, subject, "POST", path.format(project=project), json=body)

    return action


_FAKE = sha256(b"no such artifact")
_COSIGN_PUB = (
    ec.generate_private_key(ec.SECP256R1())
    .public_key()
    .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    .decode()
)


def _key_create(world: World, subject: Subject, project: str) -> httpx.Response:
    name = f"by-{subject.key}"
    response = _api(
        world,
        subject,
        "POST",
        f"/projects/{project}/trusted-keys",
        json={"name": name, "pem": _COSIGN_PUB},
    )
    if project == "acme":
        listed = _as_admin(world, "GET", "/projects/acme/trusted-keys").json()
        assert (name in {k["name"] for k in listed}) == (response.status_code == 201)
    return response


def _key_delete(world: World, subject: Subject, project: str) -> httpx.Response:
    name = f"gone-{subject.key}"
    if project == "acme":
        made = _as_admin(
            world,
            "POST",
            "/projects/acme/trusted-keys",
            json={"name": name, "pem": _COSIGN_PUB},
        )
        assert made.status_code == 201, made.text
    response = _api(world, subject, "DELETE", f"/projects/{project}/trusted-keys/{name}")
    if project == "acme":
        listed = _as_admin(world, "GET", "/projects/acme/trusted-keys").json()
        assert (name in {k["name"] for k in listed}) == (response.status_code != 204)
    return response


def _policy_patch(world: World, subject: Subject, project: str) -> httpx.Response:
    return _api(
        world, subject, "PATCH", f"/projects/{project}/pull-policy", json={"require_signed": False}
    )


def _sbom_download(world: World, subject: Subject, project: str) -> httpx.Response:
    path = f"/repositories/{project}/app/-/artifacts/v1/sboms/{world.sbom}"
    return _api(world, subject, "GET", path)


def _scanner_patch(world: World, subject: Subject, project: str) -> httpx.Response:
    body = {"description": f"patched by {subject.key}"}
    return _api(world, subject, "PATCH", "/scanners/stub", json=body)


def _scanner_delete(world: World, subject: Subject, project: str) -> httpx.Response:
    assert world.receiver is not None
    name = f"gone-{subject.key}"
    made = _as_admin(world, "POST", "/scanners", json={"name": name, "url": world.receiver.url})
    assert made.status_code == 201, made.text
    response = _api(world, subject, "DELETE", f"/scanners/{name}")
    listed = {s["name"] for s in _as_admin(world, "GET", "/scanners").json()}
    assert (name in listed) == (response.status_code != 204)
    return response


def _repository_delete(world: World, subject: Subject, project: str) -> httpx.Response:
    repo = f"{project}/gone-{subject.key}"
    if project != "acme":
        return _api(world, subject, "DELETE", f"/repositories/{repo}")
    world.push_as_admin(repo, "v1", f"{repo}:v1")
    response = _api(world, subject, "DELETE", f"/repositories/{repo}")
    deleted = response.status_code == 204
    assert world.manifest_status(repo, "v1") == (404 if deleted else 200)
    expectation = AuditExpectation(subject.actor, "delete", repo, resource_type="repository")
    (world.audited if deleted else world.not_audited).append(expectation)
    return response


def _immutability_rule_create(world: World, subject: Subject, project: str) -> httpx.Response:
    body = {"tag_pattern": f"by-{subject.key}-*", "repository_pattern": "nothing/**"}
    return _api(world, subject, "POST", f"/projects/{project}/immutability-rules", json=body)


MANAGEMENT_ACTIONS: dict[str, ManagementAction] = {
    "projects": _get("/projects"),
    "project": _get("/projects/{project}"),
    "project-patch": _project_patch,
    "proxy": _get("/projects/{project}/proxy"),
    "proxy-patch": _proxy_patch,
    "members": _get("/projects/{project}/members"),
    "member-put": _member_put,
    "repos-acme": _get("/repositories?project={project}"),
    "repos": _get("/repositories"),
    "artifacts": _get("/repositories/{project}/app/-/artifacts?tag=v1"),
    "artifact-delete": _artifact_delete,
    "tag-add": _tag_add,
    "tag-delete": _tag_delete,
    "robots": _get("/projects/{project}/robots"),
    "robot-create": _robot_create,
    "users": _get("/users"),
    "user-create": _user_create,
    "audit": _get("/audit-logs"),
    "project-audit": _get("/projects/{project}/audit-logs"),
    "members-pub": _get("/projects/pub/members"),
    "robots-pub": _get("/projects/pub/robots"),
    "webhooks": _get("/projects/{project}/webhooks"),
    "webhook": _webhook_get(""),
    "webhook-deliveries": _webhook_get("/deliveries"),
    "webhook-create": _webhook_create,
    "webhook-patch": _webhook_patch,
    "webhook-delete": _webhook_delete,
    "webhook-test": _webhook_test,
    "webhook-redeliver": _webhook_redeliver,
    "vulndb": _get("/vulndb"),
    "endpoints": _get("/endpoints"),
    "endpoint": _get(f"/endpoints/{MATRIX_ENDPOINT}"),
    "endpoint-create": _endpoint_create,
    "endpoint-patch": _endpoint_patch,
    "endpoint-delete": _endpoint_delete,
    "endpoint-test": _endpoint_test,
    "replication-rules": _get("/replication/rules"),
    "replication-rule": _get(f"/replication/rules/{MATRIX_RULE}"),
    "replication-rule-create": _replication_rule_create,
    "replication-rule-patch": _replication_rule_patch,
    "replication-rule-delete": _replication_rule_delete,
    "replication-run-start": _replication_run_start,
    "replication-runs": _get(f"/replication/runs?rule={MATRIX_RULE}"),
    "replication-run": _replication_run,
    "signatures": _get("/repositories/{project}/app/-/artifacts/v1/signatures"),
    "trusted-keys": _get("/projects/{project}/trusted-keys"),
    "key-create": _key_create,
    "key-delete": _key_delete,
    "pull-policy": _get("/projects/{project}/pull-policy"),
    "pull-policy-patch": _policy_patch,
    "scan-settings": _get("/projects/{project}/scan-settings"),
    "scan-settings-put": _put("/projects/{project}/scan-settings", {"severity": "high"}),
    "allowlist-put": _put("/projects/{project}/cve-allowlist", {"items": ["CVE-2024-1"]}),
    "sboms": _get("/repositories/{project}/app/-/artifacts/v1/sboms"),
    "scan-start": _post("/repositories/{project}/app/-/artifacts/v1/scan", {}),
    "scanners": _get("/scanners"),
    "system-allowlist": _get("/system/cve-allowlist"),
    "allowlist": _get("/projects/{project}/cve-allowlist"),
    "system-allowlist-put": _put("/system/cve-allowlist", {"items": []}),
    "scan": _get("/repositories/{project}/app/-/artifacts/v1/scan"),
    "scan-findings": _get("/repositories/{project}/app/-/artifacts/v1/scan/findings"),
    "scanner-create": _scanner_create,
    "sbom-download": _sbom_download,
    "scanner-patch": _scanner_patch,
    "scanner-delete": _scanner_delete,
    "scanner-metadata": _get("/scanners/stub/metadata"),
    "user": _get("/users/admin"),
    "usage": _get("/usage"),
    "system-robots": _get("/robots"),
    "project-usage": _get("/projects/{project}/usage"),
    "repository": _get("/repositories/{project}/app"),
    "artifact": _get("/repositories/{project}/app/-/artifacts/v1"),
    "immutability-rules": _get("/projects/{project}/immutability-rules"),
    "retention": _get("/projects/{project}/retention"),
    "retention-runs": _get("/projects/{project}/retention/runs"),
    "repository-delete": _repository_delete,
    "immutability-rule-create": _immutability_rule_create,
}

# The route each management action calls (method, the OpenAPI document's path). Every
# route the API serves must be here, or in NOT_YET_IN_MATRIX with the tests that pin
# its permissions meanwhile; test_every_route_is_in_the_matrix checks both against the
# server's own OpenAPI document, so a new route without a row fails it.
ACTION_ROUTES: dict[str, tuple[str, str]] = {
    "projects": ("get", "/projects"),
    "project": ("get", "/projects/{name}"),
    "project-patch": ("patch", "/projects/{name}"),
    "proxy": ("get", "/projects/{name}/proxy"),
    "proxy-patch": ("patch", "/projects/{name}/proxy"),
    "members": ("get", "/projects/{name}/members"),
    "members-pub": ("get", "/projects/{name}/members"),
    "member-put": ("put", "/projects/{name}/members/{member}"),
    "repos-acme": ("get", "/repositories"),
    "repos": ("get", "/repositories"),
    "repository": ("get", "/repositories/{name}"),
    "artifacts": ("get", "/repositories/{name}/-/artifacts"),
    "artifact": ("get", "/repositories/{name}/-/artifacts/{reference}"),
    "artifact-delete": ("delete", "/repositories/{name}/-/artifacts/{reference}"),
    "tag-add": ("post", "/repositories/{name}/-/artifacts/{reference}/tags"),
    "tag-delete": ("delete", "/repositories/{name}/-/tags/{tag}"),
    "robots": ("get", "/projects/{project}/robots"),
    "robots-pub": ("get", "/projects/{project}/robots"),
    "robot-create": ("post", "/projects/{project}/robots"),
    "system-robots": ("get", "/robots"),
    "users": ("get", "/users"),
    "user": ("get", "/users/{username}"),
    "user-create": ("post", "/users"),
    "audit": ("get", "/audit-logs"),
    "project-audit": ("get", "/projects/{name}/audit-logs"),
    "usage": ("get", "/usage"),
    "project-usage": ("get", "/projects/{name}/usage"),
    "immutability-rules": ("get", "/projects/{project}/immutability-rules"),
    "retention": ("get", "/projects/{project}/retention"),
    "retention-runs": ("get", "/projects/{project}/retention/runs"),
    "repository-delete": ("delete", "/repositories/{name}"),
    "immutability-rule-create": ("post", "/projects/{project}/immutability-rules"),
    "webhooks": ("get", "/projects/{project}/webhooks"),
    "webhook": ("get", "/projects/{project}/webhooks/{webhook_id}"),
    "webhook-deliveries": ("get", "/projects/{project}/webhooks/{webhook_id}/deliveries"),
    "webhook-create": ("post", "/projects/{project}/webhooks"),
    "webhook-patch": ("patch", "/projects/{project}/webhooks/{webhook_id}"),
    "webhook-delete": ("delete", "/projects/{project}/webhooks/{webhook_id}"),
    "webhook-test": ("post", "/projects/{project}/webhooks/{webhook_id}/test"),
    "webhook-redeliver": (
        "post",
        "/projects/{project}/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver",
    ),
    "vulndb": ("get", "/vulndb"),
    "endpoints": ("get", "/endpoints"),
    "endpoint": ("get", "/endpoints/{name}"),
    "endpoint-create": ("post", "/endpoints"),
    "endpoint-patch": ("patch", "/endpoints/{name}"),
    "endpoint-delete": ("delete", "/endpoints/{name}"),
    "endpoint-test": ("post", "/endpoints/{name}/test"),
    "replication-rules": ("get", "/replication/rules"),
    "replication-rule": ("get", "/replication/rules/{name}"),
    "replication-rule-create": ("post", "/replication/rules"),
    "replication-rule-patch": ("patch", "/replication/rules/{name}"),
    "replication-rule-delete": ("delete", "/replication/rules/{name}"),
    "replication-run-start": ("post", "/replication/rules/{name}/runs"),
    "replication-runs": ("get", "/replication/runs"),
    "replication-run": ("get", "/replication/runs/{run_id}"),
    "signatures": ("get", "/repositories/{name}/-/artifacts/{reference}/signatures"),
    "trusted-keys": ("get", "/projects/{name}/trusted-keys"),
    "key-create": ("post", "/projects/{name}/trusted-keys"),
    "key-delete": ("delete", "/projects/{name}/trusted-keys/{key}"),
    "pull-policy": ("get", "/projects/{name}/pull-policy"),
    "pull-policy-patch": ("patch", "/projects/{name}/pull-policy"),
    "scan-settings": ("get", "/projects/{project}/scan-settings"),
    "scan-settings-put": ("put", "/projects/{project}/scan-settings"),
    "allowlist": ("get", "/projects/{project}/cve-allowlist"),
    "allowlist-put": ("put", "/projects/{project}/cve-allowlist"),
    "system-allowlist": ("get", "/system/cve-allowlist"),
    "system-allowlist-put": ("put", "/system/cve-allowlist"),
    "sboms": ("get", "/repositories/{name}/-/artifacts/{reference}/sboms"),
    "sbom-download": ("get", "/repositories/{name}/-/artifacts/{reference}/sboms/{sbom_digest}"),
    "scan-start": ("post", "/repositories/{name}/-/artifacts/{reference}/scan"),
    "scan": ("get", "/repositories/{name}/-/artifacts/{reference}/scan"),
    "scan-findings": ("get", "/repositories/{name}/-/artifacts/{reference}/scan/findings"),
    "scanners": ("get", "/scanners"),
    "scanner-create": ("post", "/scanners"),
    "scanner-patch": ("patch", "/scanners/{scanner}"),
    "scanner-delete": ("delete", "/scanners/{scanner}"),
    "scanner-metadata": ("get", "/scanners/{scanner}/metadata"),
}

# Routes with no matrix row yet: a known gap, listed so that it can only shrink (a route
# named here that has a row, or that no longer exists, fails the check). Their
# permissions are pinned meanwhile by the tests named.
NOT_YET_IN_MATRIX: dict[tuple[str, str], str] = {
    # Public, or about the caller themself (no project, no other subject's data).
    ("get", "/systeminfo"): "tests/mgmt/test_system.py (public by design)",
    ("post", "/sessions"): "tests/mgmt/test_sessions.py",
    ("delete", "/sessions/current"): "tests/mgmt/test_sessions.py",
    ("get", "/users/current"): "tests/mgmt/test_users.py",
    ("put", "/users/current/password"): "tests/mgmt/test_users.py",
    ("get", "/users/current/tokens"): "tests/mgmt/test_tokens.py",
    ("post", "/users/current/tokens"): "tests/mgmt/test_tokens.py",
    ("delete", "/users/current/tokens/{token_id}"): "tests/mgmt/test_tokens.py",
    # Not yet rows of their own.
    ("patch", "/users/{username}"): "tests/mgmt/test_users.py",
    ("delete", "/users/{username}"): "tests/mgmt/test_users.py",
    ("post", "/projects"): "tests/mgmt/test_projects.py",
    ("delete", "/projects/{name}"): "tests/mgmt/test_projects.py",
    ("delete", "/projects/{name}/members/{member}"): "tests/mgmt/test_projects.py",
    ("patch", "/projects/{project}/immutability-rules/{rule_id}"): (
        "tests/mgmt/test_immutability.py"
    ),
    ("delete", "/projects/{project}/immutability-rules/{rule_id}"): (
        "tests/mgmt/test_immutability.py"
    ),
    ("get", "/jobs"): "tests/jobs",
    ("post", "/jobs"): "tests/jobs",
    ("get", "/jobs/{job_id}"): "tests/jobs",
    ("get", "/jobs/{job_id}/log"): "tests/jobs",
    ("post", "/jobs/{job_id}/stop"): "tests/jobs",
    ("get", "/schedules"): "tests/jobs",
    ("get", "/schedules/{name}"): "tests/jobs",
    ("put", "/schedules/{name}"): "tests/jobs",
    ("delete", "/schedules/{name}"): "tests/jobs",
    ("put", "/projects/{project}/retention"): "tests/mgmt/test_retention_api.py",
    ("post", "/projects/{project}/retention/preview"): "tests/mgmt/test_retention_api.py",
    ("post", "/projects/{project}/retention/runs"): "tests/mgmt/test_retention_api.py",
    ("post", "/robots"): "tests/mgmt/test_robots.py",
    ("get", "/robots/{name}"): "tests/mgmt/test_robots.py",
    ("patch", "/robots/{name}"): "tests/mgmt/test_robots.py",
    ("delete", "/robots/{name}"): "tests/mgmt/test_robots.py",
    ("post", "/robots/{name}/secret"): "tests/mgmt/test_robots.py",
}

# What an allowed listing must contain (beyond `sees`).
_CONTENT: dict[str, Callable[[World, Any], None]] = {
    "project": lambda w, body: _assert(body["name"] == "acme" and body["public"] is False),
    "proxy": lambda w, body: _assert(body["project"] == "acme" and body["proxy"] is False),
    "members": lambda w, body: _assert(
        {"projectadmin", "limitedguest"} <= {m["name"] for m in body}
    ),
    "artifacts": lambda w, body: _assert(w.v1["acme/app"].digest in {a["digest"] for a in body}),
    "robots": lambda w, body: _assert("robot$acme+ci" in {r["name"] for r in body}),
    "users": lambda w, body: _assert("admin" in {u["username"] for u in body}),
    "audit": lambda w, body: _assert(len(body) > 0),
    "project-audit": lambda w, body: _assert({e["project"] for e in body} <= {"acme"}),
    "members-pub": lambda w, body: _assert(isinstance(body, list)),
    "webhooks": lambda w, body: _assert(
        {"matrix", "dead-end"} <= {h["name"] for h in body} and not any("secret" in h for h in body)
    ),
    "webhook": lambda w, body: _assert(body["id"] == w.webhook and "secret" not in body),
    "webhook-deliveries": lambda w, body: _assert(isinstance(body, list)),
    "vulndb": lambda w, body: _assert(body["generation"] is None and body["sources"] == []),
}


def _assert(condition: bool) -> None:
    assert condition


def _listed(action: str, body: Any) -> tuple[str, ...]:
    key = "username" if action == "users" else "name"
    return tuple(sorted(item[key] for item in body))


@pytest.mark.parametrize("row", _cells(MANAGEMENT))
def test_management(world: World, row: Row) -> None:
    subject = world.subjects[row.subject]
    action = MANAGEMENT_ACTIONS[row.action]
    response = action(world, subject, "acme")
    assert response.status_code == row.status, (response.status_code, response.text)
    if row.status < 300:
        body = response.json() if response.content else None
        if row.sees is not None:
            assert _listed(row.action, body) == row.sees
        if row.action in _CONTENT:
            _CONTENT[row.action](world, body)
        return
    code = {
        400: "INVALID",
        401: "UNAUTHORIZED",
        403: "FORBIDDEN",
        404: "NOT_FOUND",
        409: "CONFLICT",
    }[row.status]
    assert error_codes(response) == [code], response.text
    if row.status == 404:
        # Exactly what the same caller gets for a project that does not exist.
        twin = action(world, subject, "nosuch")
        assert twin.status_code == 404, twin.text
        assert twin.json() == json.loads(response.text.replace("acme", "nosuch"))


# --- completeness and the audit log ---------------------------------------------------


@pytest.mark.parametrize(
    ("rows", "actions"),
    [(REGISTRY, REGISTRY_ACTIONS), (MANAGEMENT, MANAGEMENT_ACTIONS)],
    ids=["registry", "management"],
)
def test_every_subject_meets_every_action_once(rows: list[Row], actions: dict[str, Any]) -> None:
    cells = [(row.subject, row.action) for row in rows]
    assert len(cells) == len(set(cells))
    assert set(cells) == {(s, a) for s in SUBJECT_KEYS for a in actions}


def test_every_route_is_in_the_matrix(world: World) -> None:
    """Every route the server's OpenAPI document lists has a matrix action (so rows for
    every subject, by the test above), unless it is a listed known gap; the gap list
    holds only real routes without rows. The first matrix had no such check: it only
    compared rows with actions, so a route with neither went unnoticed."""
    document = world.http.get("/api/v1/openapi.json").json()
    served = {
        (method, path.removeprefix("/api/v1"))
        for path, operations in document["paths"].items()
        for method in operations
        if method in {"get", "put", "post", "patch", "delete"}
    }
    assert set(ACTION_ROUTES) == set(MANAGEMENT_ACTIONS)
    covered = set(ACTION_ROUTES.values())
    assert covered <= served, sorted(covered - served)  # a typo in ACTION_ROUTES
    missing = served - covered - set(NOT_YET_IN_MATRIX)
    assert not missing, f"routes without permission-matrix rows: {sorted(missing)}"
    stale = set(NOT_YET_IN_MATRIX) - (served - covered)
    assert not stale, f"NOT_YET_IN_MATRIX lists routes that have rows or are gone: {stale}"


def _matches(entry: dict[str, Any], expected: AuditExpectation) -> bool:
    if (entry["actor"], entry["action"], entry["resource"], entry["result"]) != (
        expected.actor,
        expected.action,
        expected.resource,
        expected.result,
    ):
        return False
    if expected.resource_type is not None and entry["resource_type"] != expected.resource_type:
        return False
    if expected.reference is not None:
        return bool((entry["detail"] or {}).get("reference") == expected.reference)
    return True


def test_audit_log_shows_the_matrix(world: World) -> None:
    """Logins (made here and by the fixture) always; with the whole module, also every
    push, pull, delete and change the matrix cells made (they record expectations)."""
    developer = world.subjects["developer"]
    wrong = developer.basic(WRONG_PASSWORD)
    assert world.http.get("/auth/token", headers=wrong).status_code == 401
    assert world.http.get("/v2/", headers=wrong).status_code == 401
    assert world.http.get("/api/v1/projects", headers=wrong).status_code == 401
    for subject in world.subjects.values():
        if subject.username is None:
            continue
        world.registry_headers(subject, "token")  # logs in once, unless a cell already did
        result = "failure" if subject.key == "disabled" else "success"
        world.audited.append(AuditExpectation(subject.actor, "login", subject.actor, result))
    world.audited.append(AuditExpectation("developer", "login", "developer", "failure"))

    deadline = time.monotonic() + 10  # pulls are written about once a second
    while True:
        entries = world.audit_entries()
        missing = [e for e in world.audited if not any(_matches(x, e) for x in entries)]
        if not missing or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert not missing, missing

    refused = [e for e in world.not_audited if any(_matches(x, e) for x in entries)]
    assert not refused, refused
    # Three wrong passwords (token endpoint, /v2 Basic, management API), all recorded.
    failures = [
        e
        for e in entries
        if e["actor"] == "developer" and e["action"] == "login" and e["result"] == "failure"
    ]
    assert len(failures) == 3, failures
    disabled = [e for e in entries if e["actor"] == "disabled"]
    assert disabled
    assert all(e["action"] == "login" and e["result"] == "failure" for e in disabled)

    text = json.dumps(entries)
    for secret in world.secrets:
        assert secret not in text


def test_no_request_failed_inside_the_server(world: World) -> None:
    assert world.server.internal_errors() == []
