"""The two ways a version comparison can fail, kept apart so that a caller never takes
"cannot tell" for "not affected"."""

from __future__ import annotations


class VersionError(ValueError):
    """A version string the ecosystem's rules cannot read; the message names it."""


class CannotCompare(LookupError):
    """No ordering is known for this ecosystem (or range type)."""
