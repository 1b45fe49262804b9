"""A project's retention policy: its rules, their validation, and the store that reads
and replaces them. What the rules mean when a policy runs is in the package docstring.

A policy is `remove_untagged` plus an ordered list of at most 15 rules (Harbor's limit).
Each rule has a kind and a value (`latest_pushed`/`latest_pulled`: N artifacts;
`pushed_within_days`/`pulled_within_days`: D days; `always`: no value), a repository
pattern and a tag pattern, each of which may be excluding, a syntax (`glob` or `regex`,
see `content.patterns`) and a `disabled` flag. Documents (API bodies, the CLI's YAML)
are validated by `parse_policy`, whose errors name the field: `rules[2].value: ...`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Literal, cast, get_args

from sqlalchemy import Connection, delete, insert, select

from portside.content.patterns import SYNTAXES, NamePattern, PatternError, Syntax
from portside.events import outbox
from portside.events.outbox import Actor
from portside.metadata import schema as s
from portside.metadata.db import Database, as_utc, utcnow

RuleKind = Literal[
    "latest_pushed", "latest_pulled", "pushed_within_days", "pulled_within_days", "always"
]
KINDS: tuple[RuleKind, ...] = get_args(RuleKind)
COUNT_KINDS = frozenset({"latest_pushed", "latest_pulled"})
DAY_KINDS = frozenset({"pushed_within_days", "pulled_within_days"})
MAX_RULES = 15
MAX_COUNT = 1_000_000
MAX_DAYS = 36_500
_RULE_FIELDS = frozenset(
    {
        "kind",
        "value",
        "repository_pattern",
        "repository_excluding",
        "tag_pattern",
        "tag_excluding",
        "syntax",
        "disabled",
    }
)
_POLICY_FIELDS = frozenset({"remove_untagged", "rules"})
# What an omitted pattern defaults to: every name.
MATCH_ALL: dict[str, str] = {"glob": "**", "regex": ".*"}


class PolicyError(ValueError):
    """A policy document that is not valid; the message names the field."""


class ProjectUnknown(LookupError):
    """No project of that name."""


@dataclass(frozen=True, slots=True)
class RetentionRule:
    kind: RuleKind
    value: int | None = None
    repository_pattern: str = "**"
    repository_excluding: bool = False
    tag_pattern: str = "**"
    tag_excluding: bool = False
    syntax: Syntax = "glob"
    disabled: bool = False

    @property
    def repositories(self) -> NamePattern:
        return NamePattern(self.repository_pattern, self.syntax)

    @property
    def tags(self) -> NamePattern:
        return NamePattern(self.tag_pattern, self.syntax)

    def describe(self) -> str:
        """`latest_pushed 3 (repositories **, tags v*)` and the like."""
        what = self.kind if self.value is None else f"{self.kind} {self.value}"
        repos = ("not " if self.repository_excluding else "") + self.repository_pattern
        tags = ("not " if self.tag_excluding else "") + self.tag_pattern
        syntax = " regex" if self.syntax == "regex" else ""
        return f"{what} (repositories{syntax} {repos}, tags{syntax} {tags})"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    project: str
    remove_untagged: bool = False
    rules: tuple[RetentionRule, ...] = ()
    updated_by: str | None = None
    updated_at: datetime | None = None

    @property
    def enabled_rules(self) -> tuple[tuple[int, RetentionRule], ...]:
        """(1-based position, rule) of the rules that are not disabled."""
        return tuple((n, r) for n, r in enumerate(self.rules, 1) if not r.disabled)

    def to_dict(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "remove_untagged": self.remove_untagged,
            "rules": [r.to_dict() for r in self.rules],
            "updated_by": self.updated_by,
            "updated_at": self.updated_at.isoformat() if self.updated_at else None,
        }


# -- validation ---------------------------------------------------------------------------


def _bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise PolicyError(f"{where}: must be true or false")
    return value


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise PolicyError(f"{where}: must be a string")
    if "\x00" in value:
        raise PolicyError(f"{where}: NUL characters are not allowed")
    return value


def parse_rule(document: Any, where: str = "rule") -> RetentionRule:
    if not isinstance(document, Mapping):
        raise PolicyError(f"{where}: must be an object")
    unknown = sorted(set(document) - _RULE_FIELDS)
    if unknown:
        raise PolicyError(
            f"{where}: unknown field {unknown[0]!r} (fields: {', '.join(sorted(_RULE_FIELDS))})"
        )
    kind = document.get("kind")
    if kind not in KINDS:
        raise PolicyError(f"{where}.kind: must be one of {', '.join(KINDS)}")
    value = document.get("value")
    if kind == "always":
        if value is not None:
            raise PolicyError(f"{where}.value: an 'always' rule takes no value")
    else:
        high = MAX_COUNT if kind in COUNT_KINDS else MAX_DAYS
        unit = "artifacts" if kind in COUNT_KINDS else "days"
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= high:
            raise PolicyError(f"{where}.value: must be a whole number of {unit} from 1 to {high}")
    syntax = document.get("syntax", "glob")
    if syntax not in SYNTAXES:
        raise PolicyError(f"{where}.syntax: must be one of {', '.join(SYNTAXES)}")
    everything = MATCH_ALL[syntax]
    rule = RetentionRule(
        kind=cast(RuleKind, kind),
        value=value,
        repository_pattern=_text(
            document.get("repository_pattern", everything), f"{where}.repository_pattern"
        ),
        repository_excluding=_bool(
            document.get("repository_excluding", False), f"{where}.repository_excluding"
        ),
        tag_pattern=_text(document.get("tag_pattern", everything), f"{where}.tag_pattern"),
        tag_excluding=_bool(document.get("tag_excluding", False), f"{where}.tag_excluding"),
        syntax=cast(Syntax, syntax),
        disabled=_bool(document.get("disabled", False), f"{where}.disabled"),
    )
    check_patterns(rule, where)
    return rule


def check_patterns(rule: RetentionRule, where: str = "rule") -> None:
    """PolicyError naming the field if a pattern of `rule` does not compile."""
    for name, pattern in (
        ("repository_pattern", rule.repository_pattern),
        ("tag_pattern", rule.tag_pattern),
    ):
        try:
            NamePattern(pattern, rule.syntax)
        except PatternError as error:
            raise PolicyError(f"{where}.{name}: {error}") from None


def parse_policy(document: Any) -> tuple[bool, tuple[RetentionRule, ...]]:
    """`{"remove_untagged": bool, "rules": [...]}` -> (remove_untagged, rules)."""
    if not isinstance(document, Mapping):
        raise PolicyError("policy: must be an object with remove_untagged and rules")
    unknown = sorted(set(document) - _POLICY_FIELDS)
    if unknown:
        raise PolicyError(f"unknown field {unknown[0]!r} (fields: remove_untagged, rules)")
    remove_untagged = _bool(document.get("remove_untagged", False), "remove_untagged")
    rules = document.get("rules", [])
    if not isinstance(rules, Sequence) or isinstance(rules, str | bytes):
        raise PolicyError("rules: must be a list")
    if len(rules) > MAX_RULES:
        raise PolicyError(f"rules: at most {MAX_RULES} rules per project")
    return remove_untagged, tuple(parse_rule(r, f"rules[{n}]") for n, r in enumerate(rules))


# -- store --------------------------------------------------------------------------------


def _project_id(conn: Connection, project: str, *, lock: bool = False) -> int:
    query = select(s.projects.c.id).where(s.projects.c.name == project)
    found = conn.execute(query.with_for_update() if lock else query).scalar_one_or_none()
    if found is None:
        raise ProjectUnknown(f"no project {project!r}")
    return int(found)


def load_policy(conn: Connection, project: str) -> RetentionPolicy:
    """The project's policy; an empty one (no rules) if none was ever set."""
    project_id = _project_id(conn, project)
    p, r = s.retention_policies, s.retention_rules
    row = conn.execute(select(p).where(p.c.project_id == project_id)).first()
    rules = tuple(
        RetentionRule(
            kind=rule.kind,
            value=None if rule.value is None else int(rule.value),
            repository_pattern=rule.repository_pattern,
            repository_excluding=bool(rule.repository_excluding),
            tag_pattern=rule.tag_pattern,
            tag_excluding=bool(rule.tag_excluding),
            syntax=rule.syntax,
            disabled=bool(rule.disabled),
        )
        for rule in conn.execute(
            select(r).where(r.c.project_id == project_id).order_by(r.c.id)
        ).all()
    )
    if row is None:
        return RetentionPolicy(project, rules=rules)
    return RetentionPolicy(
        project, bool(row.remove_untagged), rules, row.updated_by, as_utc(row.updated_at)
    )


class PolicyStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def get(self, project: str) -> RetentionPolicy:
        with self.db.read() as conn:
            return load_policy(conn, project)

    def put(
        self,
        project: str,
        remove_untagged: bool,
        rules: Sequence[RetentionRule],
        *,
        updated_by: str,
        actor: Actor | None = None,
    ) -> RetentionPolicy:
        """Replace the project's policy and rules (in this order) in one transaction, with
        its `retention.updated` event (`actor`: `updated_by` unless given)."""
        if len(rules) > MAX_RULES:
            raise PolicyError(f"rules: at most {MAX_RULES} rules per project")
        for number, rule in enumerate(rules):
            check_patterns(rule, f"rules[{number}]")
        p, r = s.retention_policies, s.retention_rules
        with self.db.write() as conn:
            # Locked (PostgreSQL): two replacements at once run one after the other.
            project_id = _project_id(conn, project, lock=True)
            now = utcnow()
            values = {"remove_untagged": remove_untagged, "updated_by": updated_by}
            changed = conn.execute(
                p.update().where(p.c.project_id == project_id).values(**values, updated_at=now)
            ).rowcount
            if not changed:
                conn.execute(insert(p).values(project_id=project_id, updated_at=now, **values))
            conn.execute(delete(r).where(r.c.project_id == project_id))
            # One row at a time: ids ascend in list order, which is the rules' order.
            for rule in rules:
                conn.execute(insert(r).values(project_id=project_id, **rule.to_dict()))
            data = {"remove_untagged": remove_untagged, "rules": [r.to_dict() for r in rules]}
            outbox.emit(
                conn,
                outbox.RETENTION_UPDATED,
                actor or Actor(updated_by),
                resource=project,
                project=project,
                data=data,
            )
            return load_policy(conn, project)
