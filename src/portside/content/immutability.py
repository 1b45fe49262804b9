"""Tag immutability rules (per project): a tag matching a rule cannot be moved to
another digest or deleted. Pushing the same digest again is allowed.

Repository patterns match the repository name *within* its project (Harbor's
convention): in project `team`, repository `team/app/api` is matched as `app/api`.

`ImmutabilityRules` manages a project's rules (management API, CLI); `check_*` enforce
them inside the write transaction that would move or remove a tag, and raise
`ImmutableTag` (`DENIED`, 403) naming the rule.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Connection, delete, select

from portside.auth.errors import Exists, Invalid, Missing
from portside.content.patterns import SYNTAXES, NamePattern, PatternError, Syntax
from portside.errors import Denied
from portside.events import outbox
from portside.events.outbox import SYSTEM, Actor
from portside.metadata import schema as s
from portside.metadata.db import Database, as_utc, utcnow
from portside.reference import project_of

# As in Harbor: a project has at most this many rules (each push that moves a tag checks
# them all).
MAX_RULES = 15
# The repository pattern of a rule given none: every repository of the project.
EVERY_REPOSITORY: dict[str, str] = {"glob": "**", "regex": ".*"}


@dataclass(frozen=True, slots=True)
class ImmutabilityRule:
    id: int
    project: str
    repository: NamePattern
    tag: NamePattern

    @property
    def syntax(self) -> Syntax:
        return self.tag.syntax

    def describe(self) -> str:
        return (
            f"immutability rule {self.id} of project {self.project!r} "
            f"(repositories {self.repository.pattern!r}, tags {self.tag.pattern!r})"
        )


def name_in_project(repository: str, project: str) -> str:
    """`team/app/api` in project `team` -> `app/api`; a repository without a slash is
    matched by its whole name."""
    prefix = project + "/"
    return repository[len(prefix) :] if repository.startswith(prefix) else repository


@dataclass(frozen=True, slots=True)
class TagMatcher:
    """The enabled rules of one project, loaded once for many checks."""

    project: str
    rules: tuple[ImmutabilityRule, ...]

    def rule_for(self, repository: str, tag: str) -> ImmutabilityRule | None:
        """The first rule protecting `tag` of `repository` (full name), or None."""
        if not self.rules:
            return None
        inner = name_in_project(repository, self.project)
        for rule in self.rules:
            if rule.repository.matches(inner) and rule.tag.matches(tag):
                return rule
        return None


def load_matcher(conn: Connection, project: str) -> TagMatcher:
    r, p = s.immutability_rules, s.projects
    rows = conn.execute(
        select(r.c.id, r.c.repository_pattern, r.c.tag_pattern, r.c.syntax)
        .join(p, p.c.id == r.c.project_id)
        .where(p.c.name == project, r.c.disabled.is_(False))
        .order_by(r.c.id)
    ).all()
    return TagMatcher(
        project,
        tuple(
            ImmutabilityRule(
                int(row.id),
                project,
                NamePattern(row.repository_pattern, row.syntax),
                NamePattern(row.tag_pattern, row.syntax),
            )
            for row in rows
        ),
    )


# -- enforcement ---------------------------------------------------------------------------


class ImmutableTag(Denied):
    """A push, move or delete of a tag that an immutability rule protects."""


def check_move(conn: Connection, repository: str, tag: str) -> None:
    """Before pointing an existing `tag` at another manifest (call it only then: a new
    tag may always be created, and the same digest pushed again)."""
    rule = load_matcher(conn, project_of(repository)).rule_for(repository, tag)
    if rule is not None:
        raise ImmutableTag(
            f"tag {tag!r} of {repository} is protected by {rule.describe()}: it cannot "
            "be moved to another manifest",
            detail={"tag": tag, "rule": rule.id},
        )


def check_delete(
    conn: Connection, repository: str, tags: Iterable[str], what: str | None = None
) -> None:
    """Before removing `tags` of `repository` (a tag, an artifact's tags, a repository):
    refuse if a rule protects any of them. `what` names what is being deleted if that is
    more than the tag (a manifest, a repository)."""
    names = sorted(set(tags))
    if not names:
        return
    matcher = load_matcher(conn, project_of(repository))
    for tag in names:
        rule = matcher.rule_for(repository, tag)
        if rule is not None:
            protected = f"tag {tag!r} of {repository} is protected by {rule.describe()}"
            raise ImmutableTag(
                f"{what} cannot be deleted: {protected}"
                if what
                else f"{protected}: it cannot be deleted",
                detail={"tag": tag, "rule": rule.id},
            )


# -- managing a project's rules -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RuleRecord:
    """A stored rule as the management API and the CLI show it."""

    id: int
    project: str
    repository_pattern: str
    tag_pattern: str
    syntax: Syntax
    disabled: bool
    created_by: str
    created_at: datetime

    def describe(self) -> str:
        return ImmutabilityRule(
            self.id,
            self.project,
            NamePattern(self.repository_pattern, self.syntax),
            NamePattern(self.tag_pattern, self.syntax),
        ).describe()


def _validate(repository_pattern: str, tag_pattern: str, syntax: Syntax) -> None:
    """Invalid naming the field if a pattern does not compile under `syntax`."""
    if syntax not in SYNTAXES:
        raise Invalid(f"syntax: must be one of {', '.join(SYNTAXES)}, not {syntax!r}")
    fields = (("repository_pattern", repository_pattern), ("tag_pattern", tag_pattern))
    for field, pattern in fields:
        try:
            NamePattern(pattern, syntax)
        except PatternError as error:
            reason = str(error).removeprefix(f"invalid {syntax} pattern: ")
            raise Invalid(f"{field}: invalid {syntax} pattern {pattern!r}: {reason}") from None


class ImmutabilityRules:
    """List, add, change and remove the immutability rules of a project."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def find(self, project: str) -> list[RuleRecord]:
        """The project's rules, oldest first (the order they are checked in)."""
        with self.db.read() as conn:
            project_id = _project_id(conn, project)
            return _records(conn, project, s.immutability_rules.c.project_id == project_id)

    def get(self, project: str, rule_id: int) -> RuleRecord:
        with self.db.read() as conn:
            return _record(conn, project, _project_id(conn, project), rule_id)

    def add(
        self,
        project: str,
        *,
        tag_pattern: str,
        repository_pattern: str | None = None,
        syntax: Syntax = "glob",
        creator: str,
        actor: Actor | None = None,
    ) -> RuleRecord:
        """Without a repository pattern the rule covers every repository of the project.
        `actor` (for the event) is the creator unless given."""
        if repository_pattern is None:
            repository_pattern = EVERY_REPOSITORY.get(syntax, "**")
        _validate(repository_pattern, tag_pattern, syntax)
        r = s.immutability_rules
        with self.db.write() as conn:
            project_id = _project_id(conn, project, lock=True)
            existing = _records(conn, project, r.c.project_id == project_id)
            _refuse_duplicate(existing, repository_pattern, tag_pattern, syntax)
            if len(existing) >= MAX_RULES:
                raise Invalid(
                    f"project {project!r} already has {MAX_RULES} immutability rules, the most "
                    "a project may have; change or remove one"
                )
            rule_id = conn.execute(
                r.insert()
                .values(
                    project_id=project_id,
                    repository_pattern=repository_pattern,
                    tag_pattern=tag_pattern,
                    syntax=syntax,
                    disabled=False,
                    created_by=creator,
                    created_at=utcnow(),
                )
                .returning(r.c.id)
            ).scalar_one()
            added = _record(conn, project, project_id, int(rule_id))
            _emit(
                conn, outbox.IMMUTABILITY_CREATED, actor or Actor(creator), added, _patterns(added)
            )
            return added

    def update(
        self,
        project: str,
        rule_id: int,
        *,
        repository_pattern: str | None = None,
        tag_pattern: str | None = None,
        syntax: Syntax | None = None,
        disabled: bool | None = None,
        actor: Actor = SYSTEM,
    ) -> RuleRecord:
        """Change the given fields (None: keep); patterns are checked under the syntax the
        rule ends up with. The event names the fields given."""
        r = s.immutability_rules
        with self.db.write() as conn:
            project_id = _project_id(conn, project, lock=True)
            current = _record(conn, project, project_id, rule_id)
            new_repository = (
                current.repository_pattern if repository_pattern is None else repository_pattern
            )
            new_tag = current.tag_pattern if tag_pattern is None else tag_pattern
            new_syntax = current.syntax if syntax is None else syntax
            _validate(new_repository, new_tag, new_syntax)
            others = [
                rule
                for rule in _records(conn, project, r.c.project_id == project_id)
                if rule.id != rule_id
            ]
            _refuse_duplicate(others, new_repository, new_tag, new_syntax)
            values: dict[str, object] = {
                "repository_pattern": new_repository,
                "tag_pattern": new_tag,
                "syntax": new_syntax,
            }
            if disabled is not None:
                values["disabled"] = disabled
            conn.execute(r.update().where(r.c.id == rule_id).values(**values))
            changed = _record(conn, project, project_id, rule_id)
            given = {
                "repository_pattern": repository_pattern,
                "tag_pattern": tag_pattern,
                "syntax": syntax,
                "disabled": disabled,
            }
            data: dict[str, object] = {k: v for k, v in given.items() if v is not None}
            _emit(conn, outbox.IMMUTABILITY_UPDATED, actor, changed, data)
            return changed

    def delete(self, project: str, rule_id: int, *, actor: Actor = SYSTEM) -> RuleRecord:
        r = s.immutability_rules
        with self.db.write() as conn:
            found = _record(conn, project, _project_id(conn, project, lock=True), rule_id)
            conn.execute(delete(r).where(r.c.id == rule_id))
            _emit(conn, outbox.IMMUTABILITY_DELETED, actor, found, _patterns(found))
        return found


def _patterns(rule: RuleRecord) -> dict[str, object]:
    return {
        "repository_pattern": rule.repository_pattern,
        "tag_pattern": rule.tag_pattern,
        "syntax": rule.syntax,
    }


def _emit(
    conn: Connection, type_: str, actor: Actor, rule: RuleRecord, data: dict[str, object]
) -> None:
    resource = f"{rule.project}/immutability-rules/{rule.id}"
    outbox.emit(conn, type_, actor, resource=resource, project=rule.project, data=data)


def _project_id(conn: Connection, project: str, *, lock: bool = False) -> int:
    """The project's id. With lock (PostgreSQL), changes to one project's rules queue, so
    the duplicate and limit checks see each other's rules."""
    query = select(s.projects.c.id).where(s.projects.c.name == project)
    found = conn.execute(query.with_for_update() if lock else query).scalar_one_or_none()
    if found is None:
        raise Missing(f"no project {project!r}")
    return int(found)


def _records(conn: Connection, project: str, *where: ColumnElement[bool]) -> list[RuleRecord]:
    r = s.immutability_rules
    rows = conn.execute(select(r).where(*where).order_by(r.c.id)).all()
    return [
        RuleRecord(
            int(row.id),
            project,
            row.repository_pattern,
            row.tag_pattern,
            row.syntax,
            bool(row.disabled),
            row.created_by,
            as_utc(row.created_at),
        )
        for row in rows
    ]


def _record(conn: Connection, project: str, project_id: int, rule_id: int) -> RuleRecord:
    r = s.immutability_rules
    found = _records(conn, project, r.c.project_id == project_id, r.c.id == rule_id)
    if not found:
        raise Missing(f"no immutability rule {rule_id} in project {project!r}")
    return found[0]


def _refuse_duplicate(
    rules: list[RuleRecord], repository_pattern: str, tag_pattern: str, syntax: Syntax
) -> None:
    for rule in rules:
        if (rule.repository_pattern, rule.tag_pattern, rule.syntax) == (
            repository_pattern,
            tag_pattern,
            syntax,
        ):
            raise Exists(f"project {rule.project!r} already has this rule: {rule.describe()}")
