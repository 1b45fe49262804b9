"""OSV range evaluation (portside.vulndb.ranges) on its own."""

from __future__ import annotations

import pytest

from portside.vulndb.model import Range
from portside.vulndb.ranges import Verdict, evaluate
from portside.vulndb.versions import CannotCompare, VersionError


def eco(*events: tuple[str, str]) -> Range:
    return Range("ECOSYSTEM", events)


TWO_WINDOWS = eco(("introduced", "1.0"), ("fixed", "1.2"), ("introduced", "2.0"), ("fixed", "2.1"))


@pytest.mark.parametrize(
    ("version", "verdict"),
    [
        ("0.9", Verdict(False)),
        ("1.0", Verdict(True, "1.2")),
        ("1.1.5", Verdict(True, "1.2")),
        ("1.2", Verdict(False)),
        ("1.9", Verdict(False)),
        ("2.0rc1", Verdict(False)),
        ("2.0.1", Verdict(True, "2.1")),
        ("2.1", Verdict(False)),
    ],
)
def test_two_windows(version: str, verdict: Verdict) -> None:
    assert evaluate("PyPI", version, [TWO_WINDOWS], []) == verdict


def test_events_in_any_order_are_sorted_first() -> None:
    shuffled = eco(("fixed", "2.1"), ("introduced", "2.0"), ("fixed", "1.2"), ("introduced", "0"))
    assert evaluate("PyPI", "1.1", [shuffled], []) == Verdict(True, "1.2")
    assert evaluate("PyPI", "1.5", [shuffled], []) == Verdict(False)


def test_last_affected_and_limit() -> None:
    last = eco(("introduced", "0"), ("last_affected", "1.4.0"))
    assert evaluate("npm", "1.4.0", [Range("SEMVER", last.events)], []) == Verdict(True)
    assert evaluate("npm", "1.4.1", [Range("SEMVER", last.events)], []) == Verdict(False)
    limited = eco(("introduced", "0"), ("limit", "3.0"))
    assert evaluate("PyPI", "2.9", [limited], []) == Verdict(True)
    assert evaluate("PyPI", "3.0", [limited], []) == Verdict(False)


def test_dpkg_epochs_and_tildes_in_ranges() -> None:
    fixed = eco(("introduced", "0"), ("fixed", "1:2.0-1~deb12u1"))
    assert evaluate("Debian:12", "1:2.0-1~deb12u0", [fixed], []).affected
    assert not evaluate("Debian:12", "1:2.0-1", [fixed], []).affected
    assert evaluate("Debian:12", "9.9", [fixed], []).affected  # no epoch: 0, below 1


def test_listed_versions_and_what_cannot_be_compared() -> None:
    git = Range("GIT", (("introduced", "abc123"), ("fixed", "def456")))
    assert evaluate("PyPI", "1.0", [git], ["1.0"]) == Verdict(True)
    assert evaluate("PyPI", "1.1", [git], ["1.0"]) == Verdict(False)
    with pytest.raises(CannotCompare, match="GIT"):
        evaluate("PyPI", "1.0", [git], [])
    unknown = eco(("introduced", "0"), ("fixed", "2"))
    assert evaluate("Hackage", "1", [unknown], ["1"]) == Verdict(True)
    with pytest.raises(CannotCompare, match="Hackage"):
        evaluate("Hackage", "3", [unknown], ["1"])
    with pytest.raises(VersionError):
        evaluate("npm", "not-semver", [Range("SEMVER", unknown.events)], [])
