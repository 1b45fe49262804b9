"""content.deletion: the one rule for "is this manifest still needed", and the API delete,
retention and GC agreeing on it about referrers and index children; keepers-first order;
events; a tag pushed while GC deletes."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from starlette.testclient import TestClient

from portside.app import PortsideApp
from portside.content.deletion import Node, Policy, delete_manifest, keepers_first, plan_unneeded
from portside.content.gc import GarbageCollector
from portside.content.retention import Applier, Planner, PolicyStore, RetentionRule
from portside.events import outbox
from portside.metadata import schema as s
from portside.metadata.db import repository_id, utcnow
from tests.api.helpers import (
    Manifest,
    assert_error,
    make_artifact,
    make_image,
    make_index,
    push_image,
    push_manifest,
)

REPO = "team/app"
NOW = timedelta(0)
T0 = datetime(2024, 1, 1, tzinfo=UTC)


def exists(client: TestClient, manifest: Manifest) -> bool:
    status = client.get(f"/v2/{REPO}/manifests/{manifest.digest}").status_code
    assert status in (200, 404)
    return status == 200


def gc(app: PortsideApp) -> GarbageCollector:
    return GarbageCollector(app.ctx.db, app.ctx.storage)


def age_all(app: PortsideApp) -> None:
    """Every manifest pushed a week ago (past every grace period)."""
    with app.ctx.db.write() as conn:
        conn.execute(s.manifests.update().values(pushed_at=utcnow() - timedelta(days=7)))


def referrer(client: TestClient, subject: Manifest, payload: bytes) -> Manifest:
    artifact = make_artifact(client, REPO, subject, payload=payload)
    push_manifest(client, REPO, artifact.digest, artifact)
    return artifact


# -- the planner ------------------------------------------------------------------------


def node(id_: int, digest: str, *, subject: str | None = None, children: str = "") -> Node:
    return Node(id_, 1, digest, subject, frozenset(children), T0 + timedelta(minutes=id_))


def test_plan_keeps_what_a_root_needs_and_orders_keepers_first() -> None:
    nodes = [
        node(1, "I", children="AB"),  # an unneeded index of A and B
        node(2, "A"),
        node(3, "B"),
        node(4, "S", subject="A"),  # a signature of A
        node(5, "T"),  # tagged: a root
        node(6, "ST", subject="T"),  # its signature stays
        node(7, "SS", subject="ST"),  # and the signature's SBOM
        node(8, "J", children="B"),  # a second unneeded index of B
    ]
    needs = plan_unneeded(reversed(nodes), {5: "tagged"})
    assert needs.kept == {
        5: "tagged",
        6: "referrer of T, which stays",
        7: "referrer of ST, which stays",
    }
    order = [n.digest for n in needs.unneeded]
    assert sorted(order) == ["A", "B", "I", "J", "S"]
    for keeper, dependant in [("I", "A"), ("I", "B"), ("J", "B"), ("A", "S")]:
        assert order.index(keeper) < order.index(dependant)
    assert order == ["I", "A", "S", "J", "B"]  # otherwise oldest first


def test_keepers_first_survives_a_cycle() -> None:
    # Content addressing makes a cycle impossible to push; the order still lists all.
    nodes = [node(1, "X", subject="Y"), node(2, "Y", subject="X"), node(3, "Z")]
    assert [n.digest for n in keepers_first(nodes)] == ["Z", "X", "Y"]


# -- the three callers agree ------------------------------------------------------------


def scene(app: PortsideApp, client: TestClient) -> dict[str, Manifest]:
    """A tagged image with a signature, a tagged index of an untagged child, and an
    untagged image with an SBOM and the SBOM's signature; all old."""
    app.ctx.auth.projects.create("team")
    made: dict[str, Manifest] = {}
    made["image"] = push_image(client, REPO, "v1", seed="image")
    made["signature"] = referrer(client, made["image"], b"signature of v1")
    made["child"] = push_image(client, REPO, None, seed="child")
    made["index"] = make_index([made["child"]])
    push_manifest(client, REPO, "multi", made["index"])
    made["untagged"] = push_image(client, REPO, None, seed="old build")
    made["sbom"] = referrer(client, made["untagged"], b"sbom of the old build")
    made["sbom_signature"] = referrer(client, made["sbom"], b"signature of that sbom")
    age_all(app)
    return made


def test_gc_and_retention_agree_on_what_is_needed(app: PortsideApp, client: TestClient) -> None:
    made = scene(app, client)
    doomed = [made[k].digest for k in ("untagged", "sbom", "sbom_signature")]
    gc_plan = gc(app).plan(NOW, delete_untagged=True)
    assert [m.digest for m in gc_plan.manifests] == doomed  # keepers first
    PolicyStore(app.ctx.db).put("team", True, [RetentionRule("always")], updated_by="test")
    retention_plan = Planner(app.ctx.db).plan("team")
    assert [d.digest for d in retention_plan.deletions] == doomed
    reasons = {k.digest: k.reason for k in retention_plan.retained}
    assert reasons[made["signature"].digest] == f"referrer of {made['image'].digest}, which stays"
    assert reasons[made["child"].digest] == f"listed by index {made['index'].digest}, which stays"

    # GC deletes the old build, which takes its SBOM and the SBOM's signature along.
    result = gc(app).run(gc_plan)
    assert (result.manifests, result.skipped) == (3, 0)
    for key, manifest in made.items():
        assert exists(client, manifest) == (manifest.digest not in doomed), key
    # The signature of the tagged image survived; nothing is left for retention.
    assert Planner(app.ctx.db).plan("team").deletions == []


def test_an_untagged_image_goes_with_its_signature_in_gc(
    app: PortsideApp, client: TestClient
) -> None:
    made = scene(app, client)
    assert client.delete(f"/v2/{REPO}/manifests/v1").status_code == 202  # untag
    plan = gc(app).plan(NOW, delete_untagged=True)
    digests = [m.digest for m in plan.manifests]
    assert digests.index(made["image"].digest) < digests.index(made["signature"].digest)
    after = _last_event(app)
    gc(app).run(plan)
    assert not exists(client, made["image"])
    assert not exists(client, made["signature"])
    events = outbox.recent(app.ctx.db, after=after)
    deleted = {e.resource: e for e in events if e.type == outbox.ARTIFACT_DELETED}
    image = deleted[f"{REPO}@{made['image'].digest}"]
    assert (image.actor, image.data["by"], image.data["tags"]) == ("gc", "gc", [])
    signature = deleted[f"{REPO}@{made['signature'].digest}"]
    assert signature.data["along_with"] == made["image"].digest


def test_retention_deleting_an_image_takes_its_signature_along(
    app: PortsideApp, client: TestClient
) -> None:
    made = scene(app, client)
    newer = push_image(client, REPO, "v2", seed="newer")
    rules = [
        RetentionRule("latest_pushed", 1, tag_pattern="v*"),
        RetentionRule("always", tag_pattern="multi"),
    ]
    PolicyStore(app.ctx.db).put("team", False, rules, updated_by="test")
    plan = Planner(app.ctx.db).plan("team")
    assert [d.digest for d in plan.deletions] == [made["image"].digest, made["signature"].digest]
    after = _last_event(app)
    outcome = Applier(app.ctx.db).apply(plan)
    assert ([d.digest for d in outcome.deleted], outcome.skipped) == (
        [made["image"].digest, made["signature"].digest],
        [],
    )
    assert exists(client, newer)
    assert not exists(client, made["signature"])
    events = [(e.type, e.actor, e.data.get("by")) for e in outbox.recent(app.ctx.db, after=after)]
    assert events == [
        ("tag.deleted", "retention", "retention"),
        ("artifact.deleted", "retention", "retention"),
        ("artifact.deleted", "retention", "retention"),
    ]


def test_an_index_child_is_refused_by_all_three_while_the_index_lists_it(
    app: PortsideApp, client: TestClient
) -> None:
    made = scene(app, client)
    child = made["child"].digest
    assert_error(client.delete(f"/v2/{REPO}/manifests/{child}"), 409)
    assert child not in {m.digest for m in gc(app).plan(NOW, delete_untagged=True).manifests}
    with app.ctx.db.write() as conn:
        repo_id = repository_id(conn, REPO)
        for policy in (Policy.gc(utcnow()), Policy.retention(utcnow())):
            outcome = delete_manifest(
                conn, REPO, repo_id, child, actor=outbox.Actor("test"), policy=policy
            )
            assert outcome == type(outcome)(skipped=f"listed by index {made['index'].digest}")
    assert exists(client, made["child"])


def test_a_signature_of_a_needed_image_is_only_deleted_when_asked(
    app: PortsideApp, client: TestClient
) -> None:
    made = scene(app, client)
    signature = made["signature"].digest
    with app.ctx.db.write() as conn:
        outcome = delete_manifest(
            conn,
            REPO,
            repository_id(conn, REPO),
            signature,
            actor=outbox.Actor("gc"),
            policy=Policy.gc(utcnow()),
        )
    assert outcome.skipped is not None
    assert outcome.skipped.startswith(f"a referrer of {made['image'].digest}, which stays")
    assert client.delete(f"/v2/{REPO}/manifests/{signature}").status_code == 202
    assert exists(client, made["image"])


# -- concurrency ------------------------------------------------------------------------


def test_a_tag_pushed_while_gc_deletes_makes_gc_skip(app: PortsideApp, client: TestClient) -> None:
    """The tag's transaction holds the manifest row (as a tag push does) when GC reaches
    it: GC waits, then sees the tag and skips (PostgreSQL row lock; SQLite's writer lock)."""
    image = make_image(client, REPO, seed="about to be tagged")
    push_manifest(client, REPO, image.digest, image)
    age_all(app)
    plan = gc(app).plan(NOW, delete_untagged=True)
    assert [m.digest for m in plan.manifests] == [image.digest]
    results = []
    m = s.manifests
    with app.ctx.db.write() as conn:
        repo_id = repository_id(conn, REPO)
        manifest_id = conn.execute(
            select(m.c.id)
            .where(m.c.repository_id == repo_id, m.c.digest == image.digest)
            .with_for_update(key_share=True)
        ).scalar_one()
        thread = threading.Thread(target=lambda: results.append(gc(app).run(plan)))
        thread.start()
        time.sleep(0.5)
        assert thread.is_alive()  # waiting for the tag's transaction
        conn.execute(
            s.tags.insert().values(
                repository_id=repo_id, name="late", manifest_id=manifest_id, updated_at=utcnow()
            )
        )
    thread.join(30)
    [result] = results
    assert result.manifests == 0
    assert result.skipped == 1 + len(plan.links) + len(plan.blobs)  # all in use again
    assert client.get(f"/v2/{REPO}/manifests/late").content == image.body


def _last_event(app: PortsideApp) -> int:
    return max((e.id for e in outbox.recent(app.ctx.db, limit=100_000)), default=0)


# -- what was learnt about a manifest goes with it --------------------------------------


def _scan_row(app: PortsideApp, digest: str, parent: int | None = None) -> int:
    with app.ctx.db.write() as conn:
        repo = repository_id(conn, REPO)
        inserted = conn.execute(
            s.scans.insert().values(
                repository_id=repo,
                digest=digest,
                scanner="builtin",
                parent_id=parent,
                status="succeeded",
                result="succeeded",
                requested_by="admin",
                created_at=utcnow(),
                worst=3,
                fixable=0,
                sbom=False,
            )
        ).inserted_primary_key
        assert inserted is not None
        scan_id = inserted[0]
        conn.execute(
            s.scan_findings.insert().values(
                scan_id=scan_id,
                vulnerability_id="CVE-2024-0001",
                severity=3,
                package_name="zlib",
                package_version="1.0",
                ecosystem="debian",
                aliases="[]",
                links="[]",
                summary="",
            )
        )
        conn.execute(s.scan_inventories.insert().values(scan_id=scan_id, content="{}"))
    return int(scan_id)


def _verdict_row(app: PortsideApp, artifact: str, signature: str) -> None:
    with app.ctx.db.write() as conn:
        conn.execute(
            s.signature_verdicts.insert().values(
                repository_id=repository_id(conn, REPO),
                artifact_digest=artifact,
                signature_digest=signature,
                layer=0,
                format="cosign",
                generation=1,
                verified=True,
                reason="",
                checked_at=utcnow(),
            )
        )


def _rows(app: PortsideApp) -> dict[str, set[object]]:
    with app.ctx.db.read() as conn:
        return {
            "scans": set(conn.execute(select(s.scans.c.digest, s.scans.c.id)).all()),
            "findings": set(conn.execute(select(s.scan_findings.c.scan_id)).scalars()),
            "inventories": set(conn.execute(select(s.scan_inventories.c.scan_id)).scalars()),
            "verdicts": set(
                conn.execute(
                    select(
                        s.signature_verdicts.c.artifact_digest,
                        s.signature_verdicts.c.signature_digest,
                    )
                ).all()
            ),
        }


def test_deleting_a_manifest_deletes_its_scans_and_signature_verdicts(
    app: PortsideApp, client: TestClient
) -> None:
    """In the deleting transaction (no consumer has run): the image's scan with its
    per-platform row, findings and inventory, the verdicts about it, and those made from
    its signature (taken along); another image's scan and verdict stay."""
    image = make_image(client, REPO, layers=[b"doomed"])
    push_manifest(client, REPO, "v1", image)
    other = make_image(client, REPO, layers=[b"kept"])
    push_manifest(client, REPO, "v2", other)
    signature = referrer(client, image, b"signature")
    unrelated_signature = "sha256:" + "5" * 64

    doomed = _scan_row(app, image.digest)
    doomed_child = _scan_row(app, "sha256:" + "c" * 64, parent=doomed)
    doomed_signature_scan = _scan_row(app, signature.digest)
    kept = _scan_row(app, other.digest)
    _verdict_row(app, image.digest, signature.digest)
    _verdict_row(app, other.digest, unrelated_signature)
    before = _rows(app)
    assert len(before["scans"]) == 4
    assert len(before["verdicts"]) == 2

    assert client.delete(f"/v2/{REPO}/manifests/{image.digest}").status_code == 202
    assert not exists(client, signature)

    after = _rows(app)
    assert after["scans"] == {(other.digest, kept)}
    assert after["findings"] == {kept}
    assert after["inventories"] == {kept}
    assert after["verdicts"] == {(other.digest, unrelated_signature)}
    gone = {doomed, doomed_child, doomed_signature_scan}
    assert not gone & after["findings"]


def test_deleting_a_signature_deletes_the_verdicts_made_from_it(
    app: PortsideApp, client: TestClient
) -> None:
    image = make_image(client, REPO, layers=[b"signed"])
    push_manifest(client, REPO, "v1", image)
    signature = referrer(client, image, b"signature")
    _verdict_row(app, image.digest, signature.digest)
    with app.ctx.db.write() as conn:
        delete_manifest(
            conn,
            REPO,
            repository_id(conn, REPO),
            signature.digest,
            actor=outbox.Actor("admin"),
            policy=Policy.api(),
        )
    assert exists(client, image)
    assert _rows(app)["verdicts"] == set()
