"""Severity from what advisories carry: a CVSS vector (its base score, computed with the
`cvss` library), a score alone, or a word from the source.

Bands (Harbor's, which are CVSS v3's qualitative ratings): 0.0 none, 0.1-3.9 low,
4.0-6.9 medium, 7.0-8.9 high, 9.0-10.0 critical.

Words: GitHub's `database_specific.severity` (LOW, MODERATE, HIGH, CRITICAL), and the
Debian security tracker's urgency: `unimportant` -> negligible, `low` -> low,
`medium` -> medium, `high` -> high; `not yet assigned`, `end-of-life` and anything
else -> unknown. Trailing `*` marks (urgency set by the tracker, not the team) are
ignored.
"""

from __future__ import annotations

from portside.scanning.model import Severity

_WORDS = {
    "none": Severity.NONE,
    "unimportant": Severity.NEGLIGIBLE,
    "negligible": Severity.NEGLIGIBLE,
    "low": Severity.LOW,
    "moderate": Severity.MEDIUM,
    "medium": Severity.MEDIUM,
    "important": Severity.HIGH,
    "high": Severity.HIGH,
    "critical": Severity.CRITICAL,
}


def from_score(score: float) -> Severity:
    if score <= 0:
        return Severity.NONE
    if score < 4.0:
        return Severity.LOW
    if score < 7.0:
        return Severity.MEDIUM
    if score < 9.0:
        return Severity.HIGH
    return Severity.CRITICAL


def from_word(word: object) -> Severity | None:
    """A severity named by a source, or None for a word that names none."""
    if not isinstance(word, str):
        return None
    return _WORDS.get(word.strip().rstrip("*").strip().lower())


def cvss_base_score(vector: str) -> float | None:
    """The base score of a CVSS v2, v3.x or v4.0 vector; None if it is not one."""
    from cvss import CVSS2, CVSS3, CVSS4
    from cvss.exceptions import CVSSError

    text = vector.strip()
    try:
        if text.startswith("CVSS:4."):
            return float(CVSS4(text).base_score)
        if text.startswith("CVSS:3."):
            return float(CVSS3(text).base_score)
        return float(CVSS2(text).scores()[0])
    except (CVSSError, ValueError, KeyError, IndexError):
        return None
