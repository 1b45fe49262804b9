"""The immutability rule service: adding, listing, changing and removing a project's rules,
the checks on patterns (errors naming the field), duplicates and the per-project limit,
and what the matcher the push path and retention share makes of the stored rules."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from portside.auth.errors import Exists, Invalid, Missing
from portside.auth.projects import Projects
from portside.content.immutability import MAX_RULES, ImmutabilityRules, RuleRecord, load_matcher
from portside.content.patterns import NamePattern
from portside.metadata.db import Database
from portside.metadata.engine import make_engine


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(make_engine(database_url))
    projects = Projects(database)
    projects.create("team")
    projects.create("other")
    yield database
    database.engine.dispose()


@pytest.fixture
def rules(db: Database) -> ImmutabilityRules:
    return ImmutabilityRules(db)


def test_add_find_get_update_delete(rules: ImmutabilityRules) -> None:
    first = rules.add("team", tag_pattern="v*", creator="alice")
    second = rules.add(
        "team", tag_pattern=r"rel-\d+", repository_pattern="app/.*", syntax="regex", creator="bob"
    )
    assert (first.project, first.repository_pattern, first.tag_pattern) == ("team", "**", "v*")
    assert (first.syntax, first.disabled, first.created_by) == ("glob", False, "alice")
    assert first.created_at.tzinfo is not None
    assert [r.id for r in rules.find("team")] == [first.id, second.id]
    assert rules.find("other") == []
    assert rules.get("team", second.id) == second

    changed = rules.update("team", first.id, tag_pattern="v[0-9]*", disabled=True)
    assert (changed.tag_pattern, changed.repository_pattern, changed.disabled) == (
        "v[0-9]*",
        "**",
        True,
    )
    assert rules.update("team", first.id, disabled=False).disabled is False

    removed = rules.delete("team", first.id)
    assert removed.id == first.id
    assert [r.id for r in rules.find("team")] == [second.id]


def test_without_repository_pattern_a_rule_covers_every_repository(
    rules: ImmutabilityRules,
) -> None:
    glob = rules.add("team", tag_pattern="v*", creator="t")
    regex = rules.add("team", tag_pattern="v.*", syntax="regex", creator="t")
    assert (glob.repository_pattern, regex.repository_pattern) == ("**", ".*")


def test_describe_names_the_rule(rules: ImmutabilityRules) -> None:
    rule = rules.add("team", tag_pattern="v*", repository_pattern="app/*", creator="t")
    assert rule.describe() == (
        f"immutability rule {rule.id} of project 'team' (repositories 'app/*', tags 'v*')"
    )


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"tag_pattern": "v["}, "tag_pattern: invalid glob pattern 'v[': unclosed '['"),
        ({"tag_pattern": "{a,b"}, "tag_pattern: invalid glob pattern '{a,b'"),
        ({"tag_pattern": ""}, "tag_pattern: invalid glob pattern ''"),
        ({"tag_pattern": "x" * 513}, "tag_pattern: invalid glob pattern"),
        ({"tag_pattern": "v*", "repository_pattern": "[app"}, "repository_pattern: invalid glob"),
        ({"tag_pattern": "(v", "syntax": "regex"}, "tag_pattern: invalid regex pattern '(v': "),
        (
            {"tag_pattern": "v", "repository_pattern": "**", "syntax": "regex"},
            "repository_pattern: invalid regex pattern '**'",
        ),
        ({"tag_pattern": "v", "syntax": "shell"}, "syntax: must be one of glob, regex"),
    ],
)
def test_invalid_patterns_name_the_field(
    rules: ImmutabilityRules, fields: dict[str, str], message: str
) -> None:
    with pytest.raises(Invalid) as raised:
        rules.add("team", creator="t", **fields)  # type: ignore[arg-type]
    assert raised.value.message.startswith(message), raised.value.message
    assert rules.find("team") == []


def test_update_checks_patterns_under_the_new_syntax(rules: ImmutabilityRules) -> None:
    rule = rules.add("team", tag_pattern="v*", creator="t")
    # `**` (the default repository pattern) is no regular expression.
    with pytest.raises(Invalid, match=r"^repository_pattern: invalid regex pattern"):
        rules.update("team", rule.id, syntax="regex")
    with pytest.raises(Invalid, match=r"^tag_pattern: invalid glob pattern"):
        rules.update("team", rule.id, tag_pattern="[")
    assert rules.get("team", rule.id) == rule
    changed = rules.update(
        "team", rule.id, syntax="regex", repository_pattern=".*", tag_pattern="v.*"
    )
    assert (changed.syntax, changed.repository_pattern, changed.tag_pattern) == (
        "regex",
        ".*",
        "v.*",
    )


def test_duplicates_are_refused(rules: ImmutabilityRules) -> None:
    rule = rules.add("team", tag_pattern="v*", creator="t")
    with pytest.raises(Exists, match=f"immutability rule {rule.id} of project 'team'"):
        rules.add("team", tag_pattern="v*", repository_pattern="**", creator="t")
    # The same patterns in another syntax or another project are another rule.
    rules.add("other", tag_pattern="v*", creator="t")
    other = rules.add(
        "team", tag_pattern="v.*", repository_pattern=".*", syntax="regex", creator="t"
    )
    with pytest.raises(Exists):
        rules.update("team", other.id, tag_pattern="v*", repository_pattern="**", syntax="glob")
    # Updating a rule to what it already is is no duplicate of itself.
    assert rules.update("team", rule.id, tag_pattern="v*") == rule


def test_at_most_fifteen_rules_per_project(rules: ImmutabilityRules) -> None:
    assert MAX_RULES == 15
    for number in range(MAX_RULES):
        rules.add("team", tag_pattern=f"t{number}", creator="t")
    with pytest.raises(Invalid, match="already has 15 immutability rules"):
        rules.add("team", tag_pattern="one-more", creator="t")
    rules.add("other", tag_pattern="one-more", creator="t")


def test_missing_project_or_rule(rules: ImmutabilityRules) -> None:
    rule = rules.add("team", tag_pattern="v*", creator="t")
    with pytest.raises(Missing, match="no project 'nope'"):
        rules.find("nope")
    with pytest.raises(Missing, match="no project 'nope'"):
        rules.add("nope", tag_pattern="v*", creator="t")
    # A rule is found only under its own project.
    calls: list[Callable[[], RuleRecord]] = [
        lambda: rules.get("other", rule.id),
        lambda: rules.update("other", rule.id, disabled=True),
        lambda: rules.delete("other", rule.id),
        lambda: rules.delete("team", rule.id + 1),
    ]
    for call in calls:
        with pytest.raises(Missing, match="no immutability rule"):
            call()
    assert rules.get("team", rule.id).disabled is False


def test_matcher_uses_enabled_rules_of_the_project(db: Database, rules: ImmutabilityRules) -> None:
    glob = rules.add("team", tag_pattern="v*", repository_pattern="app/*", creator="t")
    regex = rules.add(
        "team", tag_pattern=r"\d+", repository_pattern=".*", syntax="regex", creator="t"
    )
    off = rules.add("team", tag_pattern="latest", creator="t")
    rules.update("team", off.id, disabled=True)
    rules.add("other", tag_pattern="**", creator="t")
    with db.read() as conn:
        matcher = load_matcher(conn, "team")
    assert [r.id for r in matcher.rules] == [glob.id, regex.id]
    found = matcher.rule_for("team/app/web", "v1")
    assert found is not None
    assert found.id == glob.id
    assert matcher.rule_for("team/app", "v1") is None  # `app/*` needs one more level
    assert matcher.rule_for("team/app/web/x", "v1") is None
    regex_rule = matcher.rule_for("team/anything/deep", "42")
    assert regex_rule is not None
    assert regex_rule.id == regex.id
    assert matcher.rule_for("team/app/web", "42a") is None  # regexes are anchored
    assert matcher.rule_for("team/app/web", "latest") is None  # disabled
    with db.read() as conn:
        assert load_matcher(conn, "nope").rules == ()


def test_rules_go_with_their_project(db: Database, rules: ImmutabilityRules) -> None:
    rules.add("other", tag_pattern="v*", creator="t")
    projects = Projects(db)
    projects.delete("other")
    projects.create("other")
    assert rules.find("other") == []


@pytest.mark.parametrize(("pattern", "name"), [("app/**/web", "app/web"), ("**/web", "web")])
def test_double_star_segment_matches_no_segment(pattern: str, name: str) -> None:
    assert NamePattern(pattern).matches(name)
