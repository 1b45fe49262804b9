"""Tag immutability rules (per project): a tag matching a rule cannot be moved to
another digest or deleted. Pushing the same digest again is allowed.

Repository patterns match the repository name *within* its project (Harbor's
convention): in project `team`, repository `team/app/api` is matched as `app/api`.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, select

from portside.content.patterns import NamePattern, Syntax
from portside.metadata import schema as s


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
