"""Name patterns for immutability and retention rules: glob (Harbor's doublestar
flavour) or a regular expression, always matched against the whole name.

Glob: `*` any run of characters except `/`, `**` any run including `/` (and `**/` zero
or more whole segments), `?` one character except `/`, `[abc]`/`[!abc]` classes, `{a,b}`
alternatives. Regex: RE2 syntax (Python's without backreferences and lookaround),
anchored at both ends. Both compile to RE2, which matches in linear time: a project
admin's pattern can never make a push spin on catastrophic backtracking.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Any, Literal


@functools.cache
def _re2() -> tuple[Any, Any]:
    """RE2 and its options, loaded on the first pattern: an HTTP worker that never meets
    a rule does without the module and the C++ runtime it brings (~3 MB)."""
    import re2

    options = re2.Options()
    options.log_errors = False  # errors are raised to the caller, not printed
    return re2, options


Syntax = Literal["glob", "regex"]
SYNTAXES: tuple[Syntax, ...] = ("glob", "regex")
MAX_PATTERN = 512


class PatternError(ValueError):
    """A pattern that cannot be compiled; the message says why."""


def _glob_to_regex(pattern: str) -> str:
    out: list[str] = []
    i, n, depth = 0, len(pattern), 0
    while i < n:
        c = pattern[i]
        if c == "*":
            if pattern.startswith("**", i):
                at_start = i == 0 or pattern[i - 1] == "/"
                if at_start and pattern.startswith("**/", i):
                    # `**/` is zero or more whole segments: `app/**/web` matches `app/web`
                    out.append("(?:.*/)?")
                    i += 3
                    continue
                out.append(".*")
                i += 2
                continue
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            end = pattern.find("]", i + 2 if pattern.startswith("[!", i) else i + 1)
            if end < 0:
                raise PatternError(f"unclosed '[' at position {i}")
            body = pattern[i + 1 : end]
            if body.startswith("!"):
                body = "^" + body[1:]
            out.append("[" + body.replace("\\", "\\\\") + "]")
            i = end + 1
            continue
        elif c == "{":
            depth += 1
            out.append("(?:")
        elif c == "}" and depth:
            depth -= 1
            out.append(")")
        elif c == "," and depth:
            out.append("|")
        elif c == "\\" and i + 1 < n:
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        else:
            out.append(re.escape(c))
        i += 1
    if depth:
        raise PatternError("unclosed '{'")
    return "".join(out)


@dataclass(frozen=True, slots=True)
class NamePattern:
    pattern: str
    syntax: Syntax = "glob"
    _regex: Any = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.syntax not in SYNTAXES:
            raise PatternError(f"syntax must be one of {', '.join(SYNTAXES)}")
        if not self.pattern:
            raise PatternError("pattern must not be empty")
        if len(self.pattern) > MAX_PATTERN:
            raise PatternError(f"pattern is longer than {MAX_PATTERN} characters")
        source = self.pattern if self.syntax == "regex" else _glob_to_regex(self.pattern)
        re2, options = _re2()
        try:
            compiled = re2.compile(source, options)
        except re2.error as error:
            reason = error.args[0] if error.args else "cannot be compiled"
            if isinstance(reason, bytes):
                reason = reason.decode(errors="replace")
            raise PatternError(f"invalid {self.syntax} pattern: {reason}") from None
        object.__setattr__(self, "_regex", compiled)

    def matches(self, name: str) -> bool:
        return self._regex.fullmatch(name) is not None
