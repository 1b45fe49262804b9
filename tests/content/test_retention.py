"""Retention policies: every rule kind, OR-ed rules counted per repository, repository and
tag patterns (glob and regex, with exclusions), untagged removal, what always stays
(immutable tags, children of kept indexes, referrers of kept artifacts, recent untagged
pushes), dry run = run, bytes freed = what GC then frees, and plans overtaken by
concurrent changes."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert, select, update
from starlette.testclient import TestClient

from portside.app import PortsideApp
from portside.config import Settings
from portside.content.gc import GarbageCollector
from portside.content.retention import (
    Applier,
    Planner,
    PolicyError,
    PolicyStore,
    ProjectUnknown,
    RetentionPlan,
    RetentionRule,
    parse_policy,
)
from portside.events.outbox import Actor
from portside.fsck import run_fsck
from portside.jobs.context import JobContext, JobStopped
from portside.jobs.retention import deletion_line, run_retention
from portside.metadata import schema as s
from portside.metadata.db import utcnow
from tests.api.helpers import (
    Manifest,
    make_artifact,
    make_image,
    make_index,
    push_manifest,
    sha256,
)

NOW = utcnow()
DAY = timedelta(days=1)


# -- helpers ----------------------------------------------------------------------------


@pytest.fixture
def team(app: PortsideApp) -> str:
    app.ctx.auth.projects.create("team")
    return "team"


def push(
    client: TestClient,
    repo: str,
    *tags: str,
    seed: str | None = None,
    layers: Sequence[bytes] | None = None,
) -> Manifest:
    """An image pushed by digest and then under each tag."""
    manifest = make_image(client, repo, seed=seed or f"{repo}:{','.join(tags)}", layers=layers)
    push_manifest(client, repo, manifest.digest, manifest)
    for tag in tags:
        push_manifest(client, repo, tag, manifest)
    return manifest


def set_times(
    app: PortsideApp,
    repo: str,
    manifest: Manifest,
    *,
    pushed: datetime | None = None,
    pulled: datetime | None = None,
) -> None:
    m, r = s.manifests, s.repositories
    values: dict[str, Any] = {}
    if pushed is not None:
        values["pushed_at"] = pushed
    if pulled is not None:
        values["last_pulled_at"] = pulled
    with app.ctx.db.write() as conn:
        repo_id = conn.execute(select(r.c.id).where(r.c.name == repo)).scalar_one()
        changed = conn.execute(
            update(m)
            .where(m.c.repository_id == repo_id, m.c.digest == manifest.digest)
            .values(**values)
        ).rowcount
    assert changed == 1


def age(app: PortsideApp, repo: str, manifests: Sequence[Manifest], start: int = 2) -> None:
    """Pushed `start` days ago, `start + 1` days ago, ...: the first is the newest."""
    for number, manifest in enumerate(manifests):
        set_times(app, repo, manifest, pushed=NOW - (start + number) * DAY)


def set_policy(app: PortsideApp, *rules: RetentionRule, remove_untagged: bool = False) -> None:
    PolicyStore(app.ctx.db).put("team", remove_untagged, rules, updated_by="test")


def plan(app: PortsideApp) -> RetentionPlan:
    return Planner(app.ctx.db).plan("team")


def deleted(plan: RetentionPlan) -> set[tuple[str, str]]:
    return {(d.repository, d.digest) for d in plan.deletions}


def kept(plan: RetentionPlan) -> set[tuple[str, str]]:
    return {(k.repository, k.digest) for k in plan.retained}


def protect(app: PortsideApp, repository_pattern: str, tag_pattern: str) -> None:
    """An immutability rule in project team."""
    with app.ctx.db.write() as conn:
        project_id = conn.execute(
            select(s.projects.c.id).where(s.projects.c.name == "team")
        ).scalar_one()
        conn.execute(
            insert(s.immutability_rules).values(
                project_id=project_id,
                repository_pattern=repository_pattern,
                tag_pattern=tag_pattern,
                syntax="glob",
                disabled=False,
                created_by="test",
                created_at=utcnow(),
            )
        )


def exists(client: TestClient, repo: str, reference: str) -> bool:
    status = client.get(f"/v2/{repo}/manifests/{reference}").status_code
    assert status in (200, 404)
    return status == 200


# -- the policy document and store ------------------------------------------------------


def test_policy_round_trip_keeps_rule_order(app: PortsideApp, team: str) -> None:
    store = PolicyStore(app.ctx.db)
    empty = store.get(team)
    assert (empty.remove_untagged, empty.rules, empty.updated_by) == (False, (), None)
    remove, rules = parse_policy(
        {
            "remove_untagged": True,
            "rules": [
                {"kind": "always", "tag_pattern": "release-*"},
                {"kind": "latest_pushed", "value": 3, "repository_pattern": "app/**"},
                {
                    "kind": "pulled_within_days",
                    "value": 30,
                    "tag_pattern": r"v\d+",
                    "syntax": "regex",
                    "tag_excluding": True,
                    "repository_pattern": "tmp",
                    "repository_excluding": True,
                    "disabled": True,
                },
            ],
        }
    )
    stored = store.put(team, remove, rules, updated_by="alice")
    assert stored == store.get(team)
    assert stored.rules == rules
    assert [r.kind for r in stored.rules] == ["always", "latest_pushed", "pulled_within_days"]
    assert (stored.remove_untagged, stored.updated_by) == (True, "alice")
    assert [n for n, _ in stored.enabled_rules] == [1, 2]
    # Replacing drops the old rules.
    replaced = store.put(team, False, rules[1:2], updated_by="bob")
    assert replaced.rules == rules[1:2]
    assert not replaced.remove_untagged


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([], "policy: must be an object"),
        ({"rules": "x"}, "rules: must be a list"),
        ({"remove_untagged": "yes"}, "remove_untagged: must be true or false"),
        ({"retain": []}, "unknown field 'retain'"),
        ({"rules": [{"kind": "newest", "value": 1}]}, "rules[0].kind: must be one of"),
        ({"rules": [{"kind": "latest_pushed"}]}, "rules[0].value: must be a whole number"),
        ({"rules": [{"kind": "latest_pushed", "value": 0}]}, "from 1 to"),
        ({"rules": [{"kind": "latest_pulled", "value": "3"}]}, "rules[0].value"),
        ({"rules": [{"kind": "pushed_within_days", "value": True}]}, "of days from 1"),
        ({"rules": [{"kind": "pulled_within_days", "value": 1.5}]}, "rules[0].value"),
        ({"rules": [{"kind": "always", "value": 2}]}, "takes no value"),
        ({"rules": [{"kind": "always", "tag_pattern": "[abc"}]}, "rules[0].tag_pattern: unclosed"),
        (
            {"rules": [{"kind": "always", "repository_pattern": "(", "syntax": "regex"}]},
            "rules[0].repository_pattern: invalid regex",
        ),
        ({"rules": [{"kind": "always", "tag_pattern": ""}]}, "must not be empty"),
        ({"rules": [{"kind": "always", "syntax": "re"}]}, "rules[0].syntax"),
        ({"rules": [{"kind": "always", "disabled": 1}]}, "rules[0].disabled"),
        ({"rules": [{"kind": "always", "colour": 1}]}, "rules[0]: unknown field 'colour'"),
        ({"rules": [{"kind": "always"}] * 16}, "at most 15 rules"),
        ({"rules": [{"kind": "always"}, 3]}, "rules[1]: must be an object"),
    ],
)
def test_invalid_policies_name_the_field(document: Any, message: str) -> None:
    with pytest.raises(PolicyError) as error:
        parse_policy(document)
    assert message in str(error.value)


def test_omitted_patterns_match_everything_in_either_syntax(app: PortsideApp, team: str) -> None:
    _, rules = parse_policy({"rules": [{"kind": "always"}, {"kind": "always", "syntax": "regex"}]})
    assert [(r.repository_pattern, r.tag_pattern) for r in rules] == [("**", "**"), (".*", ".*")]
    # The store checks rules built in code too.
    with pytest.raises(PolicyError, match=r"rules\[0\]\.repository_pattern: invalid regex"):
        PolicyStore(app.ctx.db).put(
            team, False, [RetentionRule("always", syntax="regex")], updated_by="x"
        )


def test_unknown_project(app: PortsideApp) -> None:
    with pytest.raises(ProjectUnknown):
        PolicyStore(app.ctx.db).get("nope")
    with pytest.raises(ProjectUnknown):
        PolicyStore(app.ctx.db).put("nope", False, (), updated_by="x")
    with pytest.raises(ProjectUnknown):
        plan(app)


# -- rule kinds -------------------------------------------------------------------------


def test_no_rules_deletes_nothing(app: PortsideApp, client: TestClient, team: str) -> None:
    push(client, "team/app", "v1")
    push(client, "team/app", seed="untagged")
    set_policy(app, remove_untagged=True)
    result = plan(app)
    assert (result.deletions, result.repositories, result.bytes_freed) == ([], [], 0)


def test_latest_pushed_counts_per_repository(
    app: PortsideApp, client: TestClient, team: str
) -> None:
    images = {
        repo: [push(client, repo, f"b{n}") for n in range(4)] for repo in ("team/a", "team/b")
    }
    for repo, manifests in images.items():
        age(app, repo, manifests)  # b0 newest
    set_policy(app, RetentionRule("latest_pushed", 2))
    result = plan(app)
    assert result.repositories == ["team/a", "team/b"]
    assert deleted(result) == {(r, m.digest) for r, ms in images.items() for m in ms[2:]}
    assert kept(result) == {(r, m.digest) for r, ms in images.items() for m in ms[:2]}
    assert {k.rule for k in result.retained} == {1}
    assert all(d.reason == "not retained by any rule" for d in result.deletions)


def test_latest_pulled_puts_never_pulled_last(
    app: PortsideApp, client: TestClient, team: str
) -> None:
    never, old_pull, new_pull, never_newer = (push(client, "team/app", f"t{n}") for n in range(4))
    age(app, "team/app", [never_newer, never, old_pull, new_pull])
    set_times(app, "team/app", old_pull, pulled=NOW - 10 * DAY)
    set_times(app, "team/app", new_pull, pulled=NOW - DAY)
    set_policy(app, RetentionRule("latest_pulled", 3))
    result = plan(app)
    # Pulled ones first (newest pull first), then never pulled by newest push.
    assert kept(result) == {("team/app", m.digest) for m in (new_pull, old_pull, never_newer)}
    assert deleted(result) == {("team/app", never.digest)}


def test_pushed_within_days(app: PortsideApp, client: TestClient, team: str) -> None:
    manifests = [push(client, "team/app", f"t{n}") for n in range(4)]
    for manifest, days in zip(manifests, (1, 6, 8, 30), strict=True):
        set_times(app, "team/app", manifest, pushed=NOW - days * DAY)
    set_policy(app, RetentionRule("pushed_within_days", 7))
    result = plan(app)
    assert kept(result) == {("team/app", m.digest) for m in manifests[:2]}
    assert deleted(result) == {("team/app", m.digest) for m in manifests[2:]}


def test_pulled_within_days(app: PortsideApp, client: TestClient, team: str) -> None:
    recent, stale, never = (push(client, "team/app", f"t{n}") for n in range(3))
    age(app, "team/app", [never, recent, stale], start=40)
    set_times(app, "team/app", recent, pulled=NOW - 2 * DAY)
    set_times(app, "team/app", stale, pulled=NOW - 20 * DAY)
    set_policy(app, RetentionRule("pulled_within_days", 7))
    result = plan(app)
    assert kept(result) == {("team/app", recent.digest)}
    assert deleted(result) == {("team/app", stale.digest), ("team/app", never.digest)}


def test_always_with_a_tag_pattern(app: PortsideApp, client: TestClient, team: str) -> None:
    release = push(client, "team/app", "release-1")
    both = push(client, "team/app", "dev-2", "release-2")
    dev = push(client, "team/app", "dev-1")
    age(app, "team/app", [release, both, dev])
    set_policy(app, RetentionRule("always", tag_pattern="release-*"))
    result = plan(app)
    # An artifact stays with all its tags when one of them is retained.
    assert kept(result) == {("team/app", release.digest), ("team/app", both.digest)}
    [gone] = result.deletions
    assert (gone.digest, gone.tags) == (dev.digest, ("dev-1",))
    assert result.tags == 1


def test_rules_are_ored(app: PortsideApp, client: TestClient, team: str) -> None:
    releases = [push(client, "team/app", f"release-{n}") for n in range(2)]
    builds = [push(client, "team/app", f"build-{n}") for n in range(3)]
    age(app, "team/app", [builds[0], *releases, *builds[1:]])
    set_policy(
        app,
        RetentionRule("always", tag_pattern="release-*"),
        RetentionRule("latest_pushed", 1),
    )
    result = plan(app)
    assert kept(result) == {("team/app", m.digest) for m in (*releases, builds[0])}
    assert deleted(result) == {("team/app", m.digest) for m in builds[1:]}
    reasons = {k.digest: k.rule for k in result.retained}
    # Each artifact names the first rule that retained it.
    assert reasons == {releases[0].digest: 1, releases[1].digest: 1, builds[0].digest: 2}


def test_repository_patterns_and_exclusion(app: PortsideApp, client: TestClient, team: str) -> None:
    images = {repo: push(client, repo, "t") for repo in ("team/app/api", "team/app", "team/tmp")}
    push(client, "other/app", "t")  # another project: never touched
    for repo, manifest in images.items():
        age(app, repo, [manifest])
    set_policy(app, RetentionRule("latest_pushed", 5, repository_pattern="app/*"))
    result = plan(app)
    # `app/*` selects team/app/api only (`*` stops at a slash); the rest is out of scope.
    assert result.repositories == ["team/app/api"]
    assert deleted(result) == set()
    set_policy(app, RetentionRule("always", repository_pattern="app/**", repository_excluding=True))
    result = plan(app)
    # Repositories not matching app/** are in scope (and keep everything here); the
    # excluded ones are left alone.
    assert result.repositories == ["team/app", "team/tmp"]
    set_policy(
        app,
        RetentionRule("latest_pushed", 1, repository_pattern="app"),
        RetentionRule("always", repository_pattern="tmp", tag_pattern="none"),
    )
    result = plan(app)
    assert result.repositories == ["team/app", "team/tmp"]
    assert deleted(result) == {("team/tmp", images["team/tmp"].digest)}


def test_tag_exclusion_and_regex(app: PortsideApp, client: TestClient, team: str) -> None:
    dev = push(client, "team/app", "dev-1")
    mixed = push(client, "team/app", "dev-2", "v1.2")
    rc = push(client, "team/app", "v1.3-rc1")
    final = push(client, "team/app", "v1.3")
    age(app, "team/app", [dev, mixed, rc, final])
    set_policy(app, RetentionRule("always", tag_pattern="dev-*", tag_excluding=True))
    result = plan(app)
    # A tag not matching dev-* selects the artifact: `mixed` stays through v1.2.
    assert deleted(result) == {("team/app", dev.digest)}
    set_policy(
        app,
        RetentionRule("always", repository_pattern=".*", tag_pattern=r"v\d+\.\d+", syntax="regex"),
    )
    result = plan(app)
    # Regexes match the whole tag: v1.3-rc1 is not selected.
    assert kept(result) == {("team/app", mixed.digest), ("team/app", final.digest)}
    assert deleted(result) == {("team/app", dev.digest), ("team/app", rc.digest)}


def test_disabled_rules_are_ignored(app: PortsideApp, client: TestClient, team: str) -> None:
    old, new = push(client, "team/app", "old"), push(client, "team/app", "new")
    age(app, "team/app", [new, old])
    set_policy(app, RetentionRule("always", disabled=True), RetentionRule("latest_pushed", 1))
    assert deleted(plan(app)) == {("team/app", old.digest)}
    set_policy(app, RetentionRule("always", disabled=True))
    assert plan(app).deletions == []


# -- untagged artifacts -----------------------------------------------------------------


def test_untagged_only_when_asked_and_not_when_just_pushed(
    app: PortsideApp, client: TestClient, team: str
) -> None:
    tagged = push(client, "team/app", "v1")
    old_untagged = push(client, "team/app", seed="old build")
    fresh_untagged = push(client, "team/app", seed="fresh build")
    age(app, "team/app", [tagged, old_untagged])
    set_policy(app, RetentionRule("always"))
    assert plan(app).deletions == []
    set_policy(app, RetentionRule("always"), remove_untagged=True)
    result = plan(app)
    assert deleted(result) == {("team/app", old_untagged.digest)}
    assert result.deletions[0].reason == "untagged"
    reasons = {k.digest: k.reason for k in result.retained}
    assert reasons[fresh_untagged.digest] == "untagged, pushed within the last hour"
    # Without any grace, the fresh one goes too.
    immediate = Planner(app.ctx.db, untagged_grace=timedelta(0)).plan("team")
    assert deleted(immediate) == {
        ("team/app", old_untagged.digest),
        ("team/app", fresh_untagged.digest),
    }


# -- what always stays ------------------------------------------------------------------


def test_immutable_tags_stay(app: PortsideApp, client: TestClient, team: str) -> None:
    protected = push(client, "team/app", "v1", "tmp")
    other = push(client, "team/app", "tmp2")
    age(app, "team/app", [protected, other])
    set_policy(app, RetentionRule("always", tag_pattern="none"))
    protect(app, "**", "v*")
    result = plan(app)
    assert deleted(result) == {("team/app", other.digest)}
    [stays] = result.retained
    assert stays.digest == protected.digest
    assert stays.reason.startswith("tag 'v1' is protected by immutability rule")
    Applier(app.ctx.db).apply(result)
    assert exists(client, "team/app", "v1")
    assert exists(client, "team/app", "tmp")


def test_index_children_stay_with_a_kept_index_and_go_with_a_deleted_one(
    app: PortsideApp, client: TestClient, team: str
) -> None:
    def index(tag: str, seed: str) -> tuple[Manifest, list[Manifest]]:
        children = [make_image(client, "team/app", seed=f"{seed}{n}") for n in range(2)]
        for child in children:
            push_manifest(client, "team/app", child.digest, child)
        made = make_index(children)
        push_manifest(client, "team/app", tag, made)
        return made, children

    new_index, new_children = index("new", "n")
    old_index, old_children = index("old", "o")
    age(app, "team/app", [new_index, *new_children, old_index, *old_children])
    set_policy(app, RetentionRule("latest_pushed", 1))  # untagged ones are not removed
    result = plan(app)
    assert deleted(result) == {("team/app", m.digest) for m in (old_index, *old_children)}
    reasons = {k.digest: k.reason for k in result.retained}
    for child in new_children:
        assert reasons[child.digest] == f"listed by index {new_index.digest}, which stays"
    # The index goes before its children.
    assert result.deletions[0].digest == old_index.digest
    assert result.deletions[1].reason == "untagged, listed only by indexes that go"
    outcome = Applier(app.ctx.db).apply(result)
    assert (len(outcome.deleted), outcome.skipped) == (3, [])
    assert not exists(client, "team/app", old_children[0].digest)
    assert exists(client, "team/app", new_children[1].digest)


def test_tagged_child_of_a_kept_index_stays(
    app: PortsideApp, client: TestClient, team: str
) -> None:
    child = push(client, "team/app", "amd64-only", seed="child")
    index = make_index([child])
    push_manifest(client, "team/app", "release", index)
    age(app, "team/app", [index, child])
    set_policy(app, RetentionRule("always", tag_pattern="release"))
    result = plan(app)
    assert result.deletions == []
    assert {k.digest: k.reason for k in result.retained}[child.digest] == (
        f"listed by index {index.digest}, which stays"
    )


def test_referrers_stay_with_their_subject_and_go_with_it(
    app: PortsideApp, client: TestClient, team: str
) -> None:
    kept_image, old_image = push(client, "team/app", "new"), push(client, "team/app", "old")
    signatures = {}
    for image in (kept_image, old_image):
        signature = make_artifact(
            client, "team/app", image, payload=b"signature of " + image.digest.encode()
        )
        push_manifest(client, "team/app", signature.digest, signature)
        sbom_of_signature = make_artifact(
            client, "team/app", signature, payload=b"sbom of signature of " + image.digest.encode()
        )
        push_manifest(client, "team/app", sbom_of_signature.digest, sbom_of_signature)
        signatures[image.digest] = (signature, sbom_of_signature)
        age(app, "team/app", [image, signature, sbom_of_signature], start=3)
    set_times(app, "team/app", kept_image, pushed=NOW - DAY)
    set_policy(app, RetentionRule("latest_pushed", 1), remove_untagged=True)
    result = plan(app)
    doomed_signature, doomed_sbom = signatures[old_image.digest]
    assert deleted(result) == {
        ("team/app", d) for d in (old_image.digest, doomed_signature.digest, doomed_sbom.digest)
    }
    # Keepers go first and take their referrers along (content.deletion): the image, then
    # its signature, then the signature's SBOM, so a skipped image keeps its signatures.
    assert [d.digest for d in result.deletions] == [
        old_image.digest,
        doomed_signature.digest,
        doomed_sbom.digest,
    ]
    kept_signature, kept_sbom = signatures[kept_image.digest]
    reasons = {k.digest: k.reason for k in result.retained}
    assert reasons[kept_signature.digest] == f"referrer of {kept_image.digest}, which stays"
    assert reasons[kept_sbom.digest] == f"referrer of {kept_signature.digest}, which stays"
    outcome = Applier(app.ctx.db).apply(result)
    assert (len(outcome.deleted), outcome.skipped) == (3, [])
    referrers = client.get(f"/v2/team/app/referrers/{kept_image.digest}").json()
    assert [m["digest"] for m in referrers["manifests"]] == [kept_signature.digest]


def test_dangling_referrer_is_an_untagged_artifact(
    app: PortsideApp, client: TestClient, team: str
) -> None:
    subject = make_image(client, "team/app", seed="never pushed")
    referrer = make_artifact(client, "team/app", subject)
    push_manifest(client, "team/app", referrer.digest, referrer)
    age(app, "team/app", [referrer])
    set_policy(app, RetentionRule("always"))
    assert plan(app).deletions == []
    set_policy(app, RetentionRule("always"), remove_untagged=True)
    assert deleted(plan(app)) == {("team/app", referrer.digest)}


# -- dry run, run, bytes ----------------------------------------------------------------


@dataclass
class FakeJob:
    """A JobContext's callbacks, recorded; `stop_after` log lines starting with
    'deleted' -> check_stop raises."""

    stop_after: int | None = None
    lines: list[tuple[str, str]] = field(default_factory=list)
    progress: list[tuple[int, int | None, str | None]] = field(default_factory=list)

    def context(self, app: PortsideApp, dry_run: bool) -> JobContext:
        return JobContext(
            job_id=7,
            kind="retention",
            params={"dry_run": dry_run},
            project="team",
            created_by="test",
            services=app.ctx,
            _log=lambda level, message: self.lines.append((level, message)),
            _progress=lambda done, total, message: self.progress.append((done, total, message)),
            _stop_requested=self.stop_requested,
        )

    def stop_requested(self) -> bool:
        done = sum(1 for _, line in self.lines if line.startswith("deleted "))
        return self.stop_after is not None and done >= self.stop_after

    def messages(self) -> list[str]:
        return [message for _, message in self.lines]


def populate(app: PortsideApp, client: TestClient) -> dict[str, list[Manifest]]:
    """Three repositories with shared and private layers, some images old."""
    shared = b"base layer every image shares"
    made: dict[str, list[Manifest]] = {}
    for repo in ("team/one", "team/two", "team/three"):
        images = [
            push(client, repo, f"v{n}", layers=[shared, f"{repo} private {n}".encode()])
            for n in range(3)
        ]
        images.append(
            push(client, repo, seed=f"{repo} untagged", layers=[shared, b"u" + repo.encode()])
        )
        age(app, repo, images)
        made[repo] = images
    # The same old image also lives in another project: its blobs are not freed.
    twin = make_image(
        client, "other/app", layers=[shared, b"team/two private 2"], seed="team/two:v2"
    )
    assert twin.digest == made["team/two"][2].digest
    push_manifest(client, "other/app", "v2", twin)
    return made


def gc_bytes(app: PortsideApp) -> int:
    return GarbageCollector(app.ctx.db, app.ctx.storage).plan(timedelta(0)).bytes


def test_dry_run_equals_run_and_bytes_equal_what_gc_frees(
    app: PortsideApp, client: TestClient, team: str, settings: Settings
) -> None:
    made = populate(app, client)
    GarbageCollector(app.ctx.db, app.ctx.storage).run(
        GarbageCollector(app.ctx.db, app.ctx.storage).plan(timedelta(0))
    )
    assert gc_bytes(app) == 0
    set_policy(app, RetentionRule("latest_pushed", 1), remove_untagged=True)

    dry = FakeJob()
    dry_summary = run_retention(dry.context(app, dry_run=True))
    first, second = plan(app), plan(app)
    assert first.deletions == second.deletions
    assert first.blobs == second.blobs
    expected = {(repo, m.digest) for repo, images in made.items() for m in images[1:]}
    assert deleted(first) == expected
    # Private layers and configs of the deleted images, not the shared base layer nor
    # what other/app still lists.
    assert sha256(b"base layer every image shares") not in first.blobs
    assert sha256(b"team/two private 2") not in first.blobs
    assert sha256(b"team/one private 2") in first.blobs
    assert first.bytes_freed == first.blob_bytes + sum(d.size for d in first.deletions)
    for line in (
        f"would delete team/one@{made['team/one'][1].digest} [v1]: not retained by any rule",
        "rule 1: latest_pushed 1 (repositories **, tags **): retains 3 artifacts",
    ):
        assert line in dry.messages()
    assert dry_summary["dry_run"] is True
    assert dry_summary["artifacts_deleted"] == len(expected)
    assert all(exists(client, repo, m.digest) for repo, ms in made.items() for m in ms)
    assert app.ctx.audit.find(actor="retention")[1] == 0

    run = FakeJob()
    run_summary = run_retention(run.context(app, dry_run=False))
    for key in ("artifacts_deleted", "tags_deleted", "blob_bytes", "manifest_bytes", "bytes_freed"):
        assert run_summary[key] == dry_summary[key], key
    assert run_summary["skipped"] == 0
    assert run_summary["bytes_freed"] == first.bytes_freed
    assert [m for m in run.messages() if m.startswith("deleted ")] == [
        m.replace("would delete", "deleted", 1)
        for m in dry.messages()
        if m.startswith("would delete ")
    ]
    assert run.progress[-1] == (len(expected), len(expected), "deleting")
    entries, total = app.ctx.audit.find(actor="retention")
    assert total == len(expected)
    assert {(e.action, e.resource_type, e.project) for e in entries} == {
        ("retention.delete", "artifact", "team")
    }
    assert all(set(e.detail) >= {"media_type", "tags", "reason"} for e in entries)
    planned = {d.reason for d in first.deletions}
    assert {e.detail["reason"] for e in entries} <= planned
    # GC now frees exactly the blob bytes the plan announced.
    assert gc_bytes(app) == first.blob_bytes > 0
    assert plan(app).deletions == []
    for repo, images in made.items():
        assert exists(client, repo, images[0].digest)
        assert not exists(client, repo, images[1].digest)
    assert exists(client, "other/app", "v2")
    report = run_fsck(settings)
    assert report.problems == [], report.problems


def test_a_stopped_job_leaves_finished_repositories_done(
    app: PortsideApp, client: TestClient, team: str
) -> None:
    populate(app, client)
    set_policy(app, RetentionRule("latest_pushed", 1), remove_untagged=True)
    planned = plan(app)
    job = FakeJob(stop_after=1)
    with pytest.raises(JobStopped):
        run_retention(job.context(app, dry_run=False))
    # It stops at the first repository boundary: all of team/one, nothing else.
    first_repo = [d for d in planned.deletions if d.repository == "team/one"]
    assert [m for m in job.messages() if m.startswith("deleted ")] == [
        deletion_line(d, "deleted") for d in first_repo
    ]
    assert app.ctx.audit.find(actor="retention")[1] == len(first_repo)
    rest = plan(app)
    assert {d.repository for d in rest.deletions} == {"team/three", "team/two"}


# -- plans overtaken by concurrent changes ----------------------------------------------


def test_changes_after_the_plan_are_skipped_not_broken(
    app: PortsideApp, client: TestClient, team: str, settings: Settings
) -> None:
    retagged, repushed, pulled, listed, gone, untouched = (
        push(client, "team/app", f"t{n}") for n in range(6)
    )
    newest = push(client, "team/app", "newest")
    age(app, "team/app", [newest, retagged, repushed, pulled, listed, gone, untouched])
    set_policy(app, RetentionRule("latest_pushed", 1))
    planned = plan(app)
    assert len(planned.deletions) == 6
    # Meanwhile: a new tag, a push of the same manifest, a pull, a new index listing one,
    # one deleted by hand, and an immutability rule for another.
    app.ctx.manifests.add_tag("team/app", "hotfix", retagged.digest, Actor("tests"))  # as mgmt
    push_manifest(client, "team/app", "t1", repushed)
    assert client.get("/v2/team/app/manifests/t2").status_code == 200
    bundle = make_index([listed])
    push_manifest(client, "team/app", "bundle", bundle)
    assert client.delete(f"/v2/team/app/manifests/{gone.digest}").status_code == 202
    protect(app, "app", "t5")
    outcome = Applier(app.ctx.db).apply(planned)
    assert outcome.deleted == []
    reasons = {item.digest: why for item, why in outcome.skipped}
    assert reasons == {
        retagged.digest: "its tags changed since the plan",
        repushed.digest: "pushed again since the plan",
        pulled.digest: "pulled since the plan",
        listed.digest: f"listed by index {bundle.digest}",
        gone.digest: "already deleted",
        untouched.digest: reasons[untouched.digest],
    }
    assert reasons[untouched.digest].startswith("tag 't5' is protected by immutability rule")
    assert outcome.bytes_freed == 0
    for tag in ("t0", "hotfix", "t1", "t2", "t3", "t5", "bundle", "newest"):
        assert exists(client, "team/app", tag), tag
    assert run_fsck(settings).problems == []


def test_skipped_parent_keeps_its_children(app: PortsideApp, client: TestClient, team: str) -> None:
    child = make_image(client, "team/app", seed="child")
    push_manifest(client, "team/app", child.digest, child)
    index = make_index([child])
    push_manifest(client, "team/app", "old", index)
    newest = push(client, "team/app", "newest")
    age(app, "team/app", [newest, index, child])
    set_policy(app, RetentionRule("latest_pushed", 1))
    planned = plan(app)
    assert [d.digest for d in planned.deletions] == [index.digest, child.digest]
    push_manifest(client, "team/app", "keep-me", index)  # someone pushes the index again
    outcome = Applier(app.ctx.db).apply(planned)
    assert outcome.deleted == []
    assert [why for _, why in outcome.skipped] == [
        "pushed again since the plan",
        f"listed by index {index.digest}",
    ]
    assert exists(client, "team/app", child.digest)


def test_pushes_racing_runs_never_leave_an_index_without_its_children(
    app: PortsideApp, client: TestClient, team: str, settings: Settings
) -> None:
    """Runs in a loop with no grace for untagged manifests, while multi-platform images
    are pushed (children by digest, then the index): children may be deleted before
    their index arrives, and that index push then fails cleanly; nothing committed is
    ever left incomplete."""
    set_policy(app, RetentionRule("latest_pushed", 1), remove_untagged=True)
    planner, applier = Planner(app.ctx.db, untagged_grace=timedelta(0)), Applier(app.ctx.db)
    stop = threading.Event()
    runs = 0
    errors: list[BaseException] = []

    def sweep() -> None:
        nonlocal runs
        try:
            while not stop.wait(0.02):
                applier.apply(planner.plan("team"))
                runs += 1
        except BaseException as error:
            errors.append(error)

    thread = threading.Thread(target=sweep)
    thread.start()
    acknowledged, refused = 0, 0

    def push_index(number: int) -> int:
        children = [make_image(client, "team/app", seed=f"{number}-{k}") for k in range(2)]
        for child in children:
            push_manifest(client, "team/app", child.digest, child)
        index = make_index(children)
        response = client.put(
            f"/v2/team/app/manifests/i{number}",
            content=index.body,
            headers={"content-type": index.media_type},
        )
        if response.status_code != 201:
            assert response.status_code == 400, response.text
            assert response.json()["errors"][0]["code"] == "MANIFEST_BLOB_UNKNOWN"
        return response.status_code

    try:
        for number in range(20):
            if push_index(number) == 201:
                acknowledged += 1
            else:
                refused += 1
    finally:
        stop.set()
        thread.join(60)
    assert not errors, errors
    assert runs > 0
    assert acknowledged + refused == 20
    assert run_fsck(settings).problems == []
    assert push_index(20) == 201  # with no run in between, always
    applier.apply(planner.plan("team"))
    assert run_fsck(settings).problems == []
    # One index stays (the newest), complete.
    assert client.get("/v2/team/app/tags/list").json()["tags"] == ["i20"]
    document = client.get("/v2/team/app/manifests/i20").json()
    for child in document["manifests"]:
        assert exists(client, "team/app", child["digest"])
