"""Tag immutability on /v2: a protected tag cannot be pushed to another digest or deleted,
nor can the manifest it points to; the same digest pushed again, a new tag, other tags,
disabled rules and other projects are unaffected. The refusal is 403 DENIED naming the
rule. (Open registry: the rules apply whoever pushes.)"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import event
from starlette.testclient import TestClient

from portside.app import PortsideApp
from portside.content.immutability import ImmutabilityRules, ImmutableTag, RuleRecord
from portside.events.outbox import Actor
from tests.api.helpers import (
    Manifest,
    assert_error,
    error_message,
    make_image,
    make_index,
    push_image,
    push_manifest,
    put_manifest,
    tags_of,
)

REPO = "team/app"


@pytest.fixture
def rules(app: PortsideApp) -> ImmutabilityRules:
    for project in ("team", "other", "solo"):
        app.ctx.auth.projects.create(project)
    return ImmutabilityRules(app.ctx.db)


def protect(rules: ImmutabilityRules, tag: str = "v*", **fields: Any) -> RuleRecord:
    return rules.add(fields.pop("project", "team"), tag_pattern=tag, creator="tests", **fields)


def digest_of(client: TestClient, repo: str, reference: str) -> str:
    response = client.head(f"/v2/{repo}/manifests/{reference}")
    assert response.status_code == 200, response.text
    return response.headers["docker-content-digest"]


def assert_denied(response: Any, rule: RuleRecord, tag: str) -> None:
    assert_error(response, 403, "DENIED")
    message = error_message(response)
    assert rule.describe() in message, message
    assert f"tag {tag!r}" in message, message
    (entry,) = response.json()["errors"]
    assert entry["detail"] == {"tag": tag, "rule": rule.id}


def test_push_to_another_digest_is_denied_same_digest_succeeds(
    client: TestClient, rules: ImmutabilityRules
) -> None:
    first = push_image(client, REPO, "v1", seed="first")
    rule = protect(rules)
    second = make_image(client, REPO, seed="second")

    response = put_manifest(client, REPO, "v1", second.body)
    assert_denied(response, rule, "v1")
    assert "cannot be moved to another manifest" in error_message(response)
    assert digest_of(client, REPO, "v1") == first.digest

    # The same digest again is fine (a CI job run twice), by tag and by digest.
    push_manifest(client, REPO, "v1", first)
    push_manifest(client, REPO, second.digest, second)
    assert digest_of(client, REPO, "v1") == first.digest
    # Other tags move freely; a protected tag that does not exist yet may be created once.
    push_manifest(client, REPO, "latest", second)
    push_manifest(client, REPO, "latest", first)
    push_manifest(client, REPO, "v2", second)
    push_manifest(client, REPO, "v2", second)
    assert_denied(put_manifest(client, REPO, "v2", first.body), rule, "v2")
    assert sorted(tags_of(client, REPO)) == ["latest", "v1", "v2"]


def test_index_tags_are_protected_too(client: TestClient, rules: ImmutabilityRules) -> None:
    children = [make_image(client, REPO, seed=f"child{n}") for n in range(2)]
    for child in children:
        push_manifest(client, REPO, child.digest, child)
    index = make_index(children)
    push_manifest(client, REPO, "v1", index)
    rule = protect(rules)
    other = make_index(children[:1])
    assert_denied(put_manifest(client, REPO, "v1", other.body, other.media_type), rule, "v1")
    push_manifest(client, REPO, "v1", index)


def test_delete_of_a_protected_tag_is_denied(client: TestClient, rules: ImmutabilityRules) -> None:
    image = push_image(client, REPO, "v1")
    push_manifest(client, REPO, "latest", image)
    rule = protect(rules)

    response = client.delete(f"/v2/{REPO}/manifests/v1")
    assert_denied(response, rule, "v1")
    assert error_message(response).endswith(": it cannot be deleted")
    assert sorted(tags_of(client, REPO)) == ["latest", "v1"]
    # An unprotected tag goes; a protected one that does not exist is simply unknown.
    assert client.delete(f"/v2/{REPO}/manifests/latest").status_code == 202
    assert_error(client.delete(f"/v2/{REPO}/manifests/v9"), 404, "MANIFEST_UNKNOWN")
    assert tags_of(client, REPO) == ["v1"]


def test_delete_by_digest_of_a_manifest_with_a_protected_tag_is_denied(
    client: TestClient, rules: ImmutabilityRules
) -> None:
    image = push_image(client, REPO, "latest")
    push_manifest(client, REPO, "v1", image)
    loose = push_image(client, REPO, "dev", seed="loose")
    rule = protect(rules)

    response = client.delete(f"/v2/{REPO}/manifests/{image.digest}")
    assert_denied(response, rule, "v1")
    assert f"manifest {image.digest} cannot be deleted" in error_message(response)
    assert digest_of(client, REPO, image.digest) == image.digest
    assert sorted(tags_of(client, REPO)) == ["dev", "latest", "v1"]
    # A manifest without protected tags can be deleted (with its tags).
    assert client.delete(f"/v2/{REPO}/manifests/{loose.digest}").status_code == 202
    # Without the rule the protected one can go too.
    rules.delete("team", rule.id)
    assert client.delete(f"/v2/{REPO}/manifests/{image.digest}").status_code == 202


def test_disabled_rules_are_not_enforced(client: TestClient, rules: ImmutabilityRules) -> None:
    first = push_image(client, REPO, "v1", seed="first")
    second = make_image(client, REPO, seed="second")
    rule = protect(rules)
    rules.update("team", rule.id, disabled=True)
    push_manifest(client, REPO, "v1", second)
    rules.update("team", rule.id, disabled=False)
    assert_denied(put_manifest(client, REPO, "v1", first.body), rule, "v1")
    rules.update("team", rule.id, disabled=True)
    assert client.delete(f"/v2/{REPO}/manifests/v1").status_code == 202


def test_regex_rules_match_whole_tags(client: TestClient, rules: ImmutabilityRules) -> None:
    images = [make_image(client, REPO, seed=f"image{n}") for n in range(2)]
    tags = ["v1.2", "v1.2-rc1", "xv1.2", "v10.20"]
    for tag in tags:
        push_manifest(client, REPO, tag, images[0])
    rule = protect(rules, r"v\d+\.\d+", syntax="regex")
    for tag in tags:
        response = put_manifest(client, REPO, tag, images[1].body)
        if tag in ("v1.2", "v10.20"):
            assert_denied(response, rule, tag)
        else:
            assert response.status_code == 201, (tag, response.text)


def test_glob_alternatives_and_classes(client: TestClient, rules: ImmutabilityRules) -> None:
    images = [make_image(client, REPO, seed=f"image{n}") for n in range(2)]
    tags = ["latest", "stable", "stable2", "1.0", "a.0"]
    for tag in tags:
        push_manifest(client, REPO, tag, images[0])
    protect(rules, "{latest,stable}")
    protect(rules, "[0-9].*")
    moved = [
        tag for tag in tags if put_manifest(client, REPO, tag, images[1].body).status_code == 201
    ]
    assert moved == ["stable2", "a.0"]


def test_repository_patterns_name_repositories_within_the_project(
    client: TestClient, rules: ImmutabilityRules
) -> None:
    repositories = ["team/app/web", "team/app", "team/app/web/deep", "team/tools", "other/app/web"]
    first = {repo: push_image(client, repo, "v1", seed="first") for repo in repositories}
    rule = protect(rules, "*", repository_pattern="app/*")
    for repo in repositories:
        second = make_image(client, repo, seed="second")
        response = put_manifest(client, repo, "v1", second.body)
        if repo == "team/app/web":
            assert_denied(response, rule, "v1")
            assert digest_of(client, repo, "v1") == first[repo].digest
        else:
            assert response.status_code == 201, (repo, response.text)


def test_rules_of_one_project_do_not_reach_another(
    client: TestClient, rules: ImmutabilityRules
) -> None:
    rule = protect(rules, "**")
    for repo in ("other/app", "teamwork/app", "team-b/app"):
        push_image(client, repo, "v1", seed="first")
        push_image(client, repo, "v1", seed="second")
        assert client.delete(f"/v2/{repo}/manifests/v1").status_code == 202
    push_image(client, REPO, "v1", seed="first")
    second = make_image(client, REPO, seed="second")
    assert_denied(put_manifest(client, REPO, "v1", second.body), rule, "v1")


def test_a_one_component_repository_is_matched_by_its_own_name(
    client: TestClient, rules: ImmutabilityRules
) -> None:
    push_image(client, "solo", "v1", seed="first")
    rule = protect(rules, "v1", project="solo", repository_pattern="solo")
    second = make_image(client, "solo", seed="second")
    assert_denied(put_manifest(client, "solo", "v1", second.body), rule, "v1")


def race(app: PortsideApp, tag: str, images: list[Manifest]) -> dict[str, str]:
    """Push each image to `tag` from its own thread, all at once: digest -> outcome."""
    barrier = threading.Barrier(len(images))
    outcomes: dict[str, str] = {}

    def push(image: Manifest) -> None:
        barrier.wait()
        try:
            app.ctx.manifests.put(REPO, tag, image.body, image.media_type, Actor("tests"))
            outcomes[image.digest] = "pushed"
        except ImmutableTag:
            outcomes[image.digest] = "denied"

    threads = [threading.Thread(target=push, args=(image,)) for image in images]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def test_racing_first_pushes_of_a_protected_tag_one_wins(
    app: PortsideApp, client: TestClient, rules: ImmutabilityRules
) -> None:
    """Two different manifests pushed at once to a new protected tag: one creates it, the
    other is refused (PostgreSQL: the loser's insert fails on the key, and its retry sees
    the tag), never a silent overwrite."""
    protect(rules)
    images = [make_image(client, REPO, seed=f"racer{n}") for n in range(2)]
    for round_number in range(5):
        tag = f"v{round_number}"
        outcomes = race(app, tag, images)
        assert sorted(outcomes.values()) == ["denied", "pushed"], outcomes
        (winner,) = [digest for digest, outcome in outcomes.items() if outcome == "pushed"]
        assert digest_of(client, REPO, tag) == winner


def test_push_path_reads_rules_only_when_a_tag_moves(
    app: PortsideApp, client: TestClient, rules: ImmutabilityRules
) -> None:
    """A new tag or the same digest again costs no rule lookup; moving a tag one."""
    statements: list[str] = []

    def note(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    first = make_image(client, "other/app", seed="first")
    second = make_image(client, "other/app", seed="second")
    event.listen(app.ctx.db.engine, "before_cursor_execute", note)
    try:
        push_manifest(client, "other/app", "v1", first)
        push_manifest(client, "other/app", "v1", first)
        assert not [s for s in statements if "immutability_rules" in s]
        push_manifest(client, "other/app", "v1", second)
        assert len([s for s in statements if "immutability_rules" in s]) == 1
    finally:
        event.remove(app.ctx.db.engine, "before_cursor_execute", note)


def test_refused_requests_are_not_audited(
    app: PortsideApp, client: TestClient, rules: ImmutabilityRules
) -> None:
    first = push_image(client, REPO, "v1", seed="first")
    protect(rules)
    second = make_image(client, REPO, seed="second")
    assert put_manifest(client, REPO, "v1", second.body).status_code == 403
    assert client.delete(f"/v2/{REPO}/manifests/v1").status_code == 403
    assert client.delete(f"/v2/{REPO}/manifests/{first.digest}").status_code == 403
    # The /v2 caller's entries (the project and the rule, made by the fixtures, are too).
    entries, _ = app.ctx.audit.find(projects=["team"], actor="anonymous")
    assert [(e.action, e.resource) for e in entries] == [("push", f"{REPO}@{first.digest}")]
