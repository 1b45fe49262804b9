"""Retention policies: which artifacts of a project its policy keeps, a plan of what goes
(the dry run, `planner`), and applying that plan while the registry serves (`applier`).
Policies and their validation are in `policy`; the `retention` job in `job`.

Semantics (Harbor's tag retention, at the artifact level as in Harbor 2):
- A repository is in scope when an enabled rule's repository pattern selects it (the
  name within the project: `app/api` for `team/app/api`; `repository_excluding` inverts
  the match). Repositories no rule selects are left alone entirely; so is everything when
  no rule is enabled.
- Per repository, each applicable rule looks at the tagged artifacts (manifests) with at
  least one tag its tag pattern selects (`tag_excluding`: a tag the pattern does not
  match) and retains: `always` all of them; `latest_pushed N` the N most recently pushed;
  `latest_pulled N` the N most recently pulled (never pulled ones last, newest push
  first); `pushed_within_days D` / `pulled_within_days D` those pushed / pulled in the
  last D days. N counts per repository. Rules are OR-ed: an artifact stays if any rule
  retains it, and a retained artifact keeps all its tags; one no rule retains goes with
  all its tags (no tag-level deletion, so no tag ever disappears from an artifact that
  stays).
- Untagged artifacts are not matched by rules. With `remove_untagged` they go; without,
  they stay, except those that belong to an artifact that goes: the untagged children of
  a deleted index and the untagged referrers (signatures, SBOMs) of a deleted subject go
  with it.
- Whatever the rules say, these stay: an artifact with a tag an immutability rule
  protects; every manifest an index that stays lists (same repository); every referrer
  of an artifact that stays (to a fixed point: a signature of a kept SBOM of a kept image
  stays); and an untagged manifest pushed within the last hour (`UNTAGGED_GRACE`: the
  children of an index being pushed arrive before the index).
- Push and pull times are the manifest's `pushed_at` (the last push of that digest into
  the repository) and `last_pulled_at` (written at most once a minute).

A run deletes manifests and their tags, never blobs: blob bytes are reclaimed by the next
garbage collection. `bytes_freed` = `blob_bytes` (the sizes, each blob once, of the blobs
deleted manifests list and no manifest that stays anywhere in the registry lists: exactly
what GC with a grace period of 0 frees beyond what it would have freed anyway; with its
default grace, once the blobs' links are older than it) + `manifest_bytes` (the deleted
manifests' own bytes, which live in the metadata database and go at once).

The plan is computed in one read transaction and is exactly what a dry run reports. What
stays and what goes follows content.deletion's rule from the roots above. A run applies
the plan item by item, keepers first (an index before its children, a subject before its
referrers), each in its own short write transaction through content.deletion: it locks
the manifest row and re-checks that it is as the plan saw it (same push and pull times,
exactly the planned tags), that no tag is now immutable, no index of the repository lists
it and it is not a referrer of a manifest that is still needed; anything else is skipped,
never half-done. Each deletion takes along, in its transaction, the untagged referrers
and children only it kept (normally the next items of the plan), so a skipped subject
keeps its signatures and SBOMs, and no referrer outlives its subject.
"""

from __future__ import annotations

from portside.content.retention.applier import Applier, RetentionResult
from portside.content.retention.planner import (
    UNTAGGED_GRACE,
    Deletion,
    Kept,
    Planner,
    RetentionPlan,
)
from portside.content.retention.policy import (
    MAX_RULES,
    PolicyError,
    PolicyStore,
    ProjectUnknown,
    RetentionPolicy,
    RetentionRule,
    parse_policy,
)

__all__ = [
    "MAX_RULES",
    "UNTAGGED_GRACE",
    "Applier",
    "Deletion",
    "Kept",
    "Planner",
    "PolicyError",
    "PolicyStore",
    "ProjectUnknown",
    "RetentionPlan",
    "RetentionPolicy",
    "RetentionResult",
    "RetentionRule",
    "parse_policy",
]
