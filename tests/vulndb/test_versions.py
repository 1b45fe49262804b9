"""Version orderings: known pairs from the upstream tools' own test suites and docs,
the order properties (hypothesis), and differential checks against the real `dpkg`
and `rpm` installed on the test machine. (apk-tools is not packaged for Debian 12: the
apk ordering was checked once against every line of apk-tools' test/unit/version.data,
785 lines, which it passes except that apk string-sorts two pairs with invalid versions
that we refuse to compare; the trickiest of those pairs are in the table below.)"""

from __future__ import annotations

import itertools
import shutil
import subprocess
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portside.vulndb.versions import (
    CannotCompare,
    VersionError,
    apk,
    dpkg,
    maven,
    ordering,
    rpm,
    semver,
)
from tests.missing import missing_tool

Compare = Callable[[str, str], int]

# (smaller, larger) or (equal, equal) pairs, from dpkg's t/t-version.c, rpm's
# tests/rpmvercmp.at, apk-tools' test/version.data, semver.org and Go's semver tests.
DPKG_LESS = [
    ("1.0~rc1", "1.0"),
    ("1.0~~", "1.0~~a"),
    ("1.0~~a", "1.0~"),
    ("1.0~", "1.0"),
    ("1.0", "1.0a"),
    ("1.0a", "1.0+"),  # letters sort before non-letters
    ("1.0a", "1.0.1"),
    ("1.0", "1.0-1"),
    ("1.0-1", "1.0-1+b1"),
    ("1.0-1", "1.0-1.1"),
    ("9.9", "1:0.1"),  # the epoch decides first
    ("1:1.0", "2:0"),
    ("2.30-1", "2.30.1-1"),
    ("0.9", "0.10"),
    ("1.2.3-1~deb12u1", "1.2.3-1"),
    ("3.0.11-1~deb12u2", "3.0.13-1~deb12u1"),
    ("1-1-1", "1-1-2"),  # the revision is after the last hyphen
]
DPKG_EQUAL = [("1.0", "1.0-0"), ("0:1.0", "1.0"), ("1.001", "1.1"), ("1.0-00", "1.0")]

RPM_LESS = [
    ("1.0", "1.0.1"),
    ("1.0a", "1.0.1"),  # numbers beat letters
    ("1.0~rc1", "1.0"),
    ("1.0~rc1", "1.0~rc2"),
    ("1.0~~", "1.0~"),
    ("1.0", "1.0^"),
    ("1.0", "1.0^git1"),
    ("1.0^git1", "1.0.1"),
    ("1.0^git1", "1.0^git2"),
    ("1.0~rc1^git1", "1.0~rc1^git2"),
    ("1.0^", "1.0.a"),
    ("2.0", "10"),
    ("a", "b"),
    ("1.0-1.el9", "1.0-2.el9"),
    ("5:1.0-1", "6:0.1-1"),
    ("1.0-1", "1.0-1.el9_1"),
    ("abc", "1"),
]
RPM_EQUAL = [
    ("1.0", "1.0"),
    ("1.001", "1.1"),
    ("1.0_1", "1.0.1"),
    ("1..0", "1.0"),
    ("0:2.0", "2.0"),
]

APK_LESS = [
    ("1.0_alpha", "1.0_beta"),
    ("1.0_beta", "1.0_pre"),
    ("1.0_pre", "1.0_rc"),
    ("1.0_rc", "1.0_rc1"),
    ("1.0_rc1", "1.0"),
    ("1.0", "1.0-r1"),
    ("1.0-r1", "1.0_cvs"),
    ("1.0_cvs", "1.0_svn"),
    ("1.0_svn", "1.0_git"),
    ("1.0_git", "1.0_hg"),
    ("1.0_hg", "1.0_p1"),
    ("1.0_p1", "1.0a"),
    ("1.0a", "1.0.1"),
    ("1.0-r9", "1.0-r10"),
    ("1.01", "1.1"),  # a leading zero makes the part compare as a string
    ("1.001", "1.01"),
    ("1.09", "1.1"),
    ("2.0", "10.0"),
    ("1.0_rc1_p1", "1.0_rc2"),
    ("3.0.11-r0", "3.0.12-r0"),
    ("1.0-r1", "1.0~abc123-r1"),
    ("0.1.0_alpha_pre2", "0.1.0_alpha"),
    ("1.0_p9-r0", "1.0_p10-r0"),
    ("2.12r-r4", "2.12r-r5"),
    ("1.06-r6", "006"),
    ("3.0.20060720", "20060720"),
    ("1.2.07.8", "1.2.12.04"),
    ("0.1_pre2~1234abcd", "0.1_pre2~1234abce"),
]
# What apk refuses as a version (apk-tools' test/unit/version.data "!" lines): we refuse
# to compare them too, rather than guess.
APK_INVALID = [
    "0.1bc",
    "0.1a1",
    "0.1_pre2~1234xbcd",
    "0.1_foobar",
    "0.1-r",
    "0.1-r2_pre1",
    "0.1-r2.1",
]
APK_EQUAL = [("1.0", "1.0"), ("1.0-r0", "1.0-r0"), ("1.0_p1", "1.0_p01")]

SEMVER_LESS = [  # semver.org item 11
    ("1.0.0-alpha", "1.0.0-alpha.1"),
    ("1.0.0-alpha.1", "1.0.0-alpha.beta"),
    ("1.0.0-alpha.beta", "1.0.0-beta"),
    ("1.0.0-beta", "1.0.0-beta.2"),
    ("1.0.0-beta.2", "1.0.0-beta.11"),
    ("1.0.0-beta.11", "1.0.0-rc.1"),
    ("1.0.0-rc.1", "1.0.0"),
    ("1.9.0", "1.10.0"),
    ("1.10.0", "1.11.0"),
    ("2.0.0", "2.1.0"),
    ("2.1.0", "2.1.1"),
]
SEMVER_EQUAL = [("1.0.0+build.1", "1.0.0+build.2"), ("1.0.0", "v1.0.0")]
GO_LESS = [
    ("v0.0.0-20200101000000-abcdefabcdef", "v0.0.1"),
    ("v1.2", "v1.2.1"),
    ("v1.9.0", "v1.10.0"),
    ("v2.0.0+incompatible", "v2.0.1+incompatible"),
    ("v1.0.0-rc.1", "1.0.0"),
]
GO_EQUAL = [("v1.2", "v1.2.0"), ("v1", "v1.0.0"), ("v2.0.0+incompatible", "2.0.0")]

# Maven's own ComparableVersionTest: each list ascending; then equal spellings.
MAVEN_ASCENDING = [
    [
        "1-alpha2snapshot",
        "1-alpha2",
        "1-alpha-123",
        "1-beta-2",
        "1-beta123",
        "1-m2",
        "1-m11",
        "1-rc",
        "1-cr2",
        "1-rc123",
        "1-SNAPSHOT",
        "1",
        "1-sp",
        "1-sp2",
        "1-sp123",
        "1-abc",
        "1-def",
        "1-pom-1",
        "1-1-snapshot",
        "1-1",
        "1-2",
        "1-123",
    ],
    [
        "2.0",
        "2.0.a",
        "2-1",
        "2.0.2",
        "2.0.123",
        "2.1.0",
        "2.1-a",
        "2.1b",
        "2.1-c",
        "2.1-1",
        "2.1.0.1",
        "2.2",
        "2.123",
        "11.a2",
        "11.a11",
        "11.b2",
        "11.b11",
        "11.m2",
        "11.m11",
        "11",
        "11.a",
        "11b",
        "11c",
        "11m",
    ],
]
MAVEN_LESS = [pair for series in MAVEN_ASCENDING for pair in itertools.pairwise(series)]
MAVEN_EQUAL = [
    ("1", "1.0.0"),
    ("1", "1-0"),
    ("1.0", "1.0-0"),
    ("1a", "1.0.0-a"),
    ("1x", "1.0-x"),
    ("1ga", "1"),
    ("1release", "1"),
    ("1final", "1"),
    ("1cr", "1rc"),
    ("1a1", "1-alpha-1"),
    ("1b2", "1-beta-2"),
    ("1m3", "1-milestone-3"),
    ("1X", "1x"),
    ("1SNAPSHOT", "1snapshot"),
]

CASES: list[tuple[str, Compare, list[tuple[str, str]], list[tuple[str, str]]]] = [
    ("dpkg", dpkg.compare, DPKG_LESS, DPKG_EQUAL),
    ("rpm", rpm.compare, RPM_LESS, RPM_EQUAL),
    ("apk", apk.compare, APK_LESS, APK_EQUAL),
    ("semver", semver.compare, SEMVER_LESS, SEMVER_EQUAL),
    ("go", semver.compare_go, GO_LESS, GO_EQUAL),
    ("maven", maven.compare, MAVEN_LESS, MAVEN_EQUAL),
    ("pypi", ordering("PyPI"), [("1.0rc1", "1.0"), ("1.0", "1.0.post1"), ("2.0", "1!0.1")], []),
]


@pytest.mark.parametrize(("name", "compare", "less", "equal"), CASES, ids=[c[0] for c in CASES])
def test_known_pairs(
    name: str, compare: Compare, less: list[tuple[str, str]], equal: list[tuple[str, str]]
) -> None:
    for a, b in less:
        assert compare(a, b) == -1, (name, a, b)
        assert compare(b, a) == 1, (name, b, a)
    for a, b in equal:
        assert compare(a, b) == 0, (name, a, b)
        assert compare(b, a) == 0, (name, b, a)


def test_invalid_versions_are_errors_not_answers() -> None:
    for compare, bad in [
        (dpkg.compare, "x:1.0"),
        (apk.compare, "1.0-beta"),
        (apk.compare, "1.0_foo"),
        (apk.compare, "abc"),
        *((apk.compare, version) for version in APK_INVALID),
        (semver.compare, "1.0"),
        (semver.compare, "1.0.0-01"),
        (ordering("PyPI"), "not a version"),
        (rpm.compare, "x:1"),
    ]:
        with pytest.raises(VersionError):
            compare(bad, "1.0.0")


def test_unknown_ecosystem_and_git_ranges_cannot_compare() -> None:
    with pytest.raises(CannotCompare, match="Hackage"):
        ordering("Hackage")
    with pytest.raises(CannotCompare, match="GIT"):
        ordering("PyPI", "GIT")
    assert ordering("Debian:12") is dpkg.compare
    assert ordering("Alpine:v3.19") is apk.compare
    assert ordering("Maven", "SEMVER") is semver.compare


# Version-like strings built from the characters that matter to each grammar.
def _text(alphabet: str, max_size: int = 8) -> st.SearchStrategy[str]:
    return st.text(alphabet=alphabet, min_size=1, max_size=max_size)


DPKG_VERSIONS = st.builds(
    lambda epoch, up, rev: f"{epoch}{up}{rev}",
    st.sampled_from(["", "1:", "2:"]),
    st.builds(
        lambda d, rest: d + rest, _text("0123456789", 2), st.text("0123456789.~+ab", max_size=6)
    ),
    st.sampled_from(["", "-1", "-1~deb12u1", "-0", "-2+b1", "-a~"]),
)
RPM_VERSIONS = st.builds(
    lambda epoch, v, rel: f"{epoch}{v}{rel}",
    st.sampled_from(["", "1:"]),
    _text("0123456789.~^ab_", 8),
    st.sampled_from(["", "-1", "-1.el9", "-2~rc", "-1^git"]),
)
APK_VERSIONS = st.builds(
    lambda n, parts, letter, suffix, rev: n + parts + letter + suffix + rev,
    _text("0123456789", 2),
    st.lists(_text("0123456789", 2).map(lambda d: "." + d), max_size=3).map("".join),
    st.sampled_from(["", "a", "z"]),
    st.lists(
        st.sampled_from(["_alpha", "_beta", "_pre", "_rc", "_p", "_git", "_rc1", "_p2"]),
        max_size=2,
    ).map("".join),
    st.sampled_from(["", "-r0", "-r1", "-r10"]),
)
SEMVER_VERSIONS = st.builds(
    lambda a, b, c, pre: f"{a}.{b}.{c}{pre}",
    st.integers(0, 3),
    st.integers(0, 3),
    st.integers(0, 3),
    st.sampled_from(["", "-alpha", "-alpha.1", "-1", "-beta.2", "-beta.11", "-rc.1", "-0.a"]),
)
# Maven's ComparableVersion is not transitive for odd mixes of qualifiers and lists
# ("2.spb1" < "2rc" < "2ga-" < "2.spb1": a qualifier is below any list, a list is
# compared with a missing item by its first element). Ours is Maven's, so for Maven only
# reflexivity and antisymmetry are checked, on versions that start with a number.
MAVEN_VERSIONS = st.builds(
    lambda first, rest: first + "".join(rest),
    st.sampled_from(["0", "1", "2", "10"]),
    st.lists(
        st.sampled_from(["1", "0", "2", "10", ".", "-", "a", "b1", "rc", "sp", "ga", "x"]),
        max_size=5,
    ),
)
STRATEGIES = [
    ("dpkg", dpkg.compare, DPKG_VERSIONS, True),
    ("rpm", rpm.compare, RPM_VERSIONS, True),
    ("apk", apk.compare, APK_VERSIONS, True),
    ("semver", semver.compare, SEMVER_VERSIONS, True),
    ("maven", maven.compare, MAVEN_VERSIONS, False),
]


@pytest.mark.parametrize(
    ("name", "compare", "versions", "transitive"), STRATEGIES, ids=[s[0] for s in STRATEGIES]
)
def test_total_order(
    name: str, compare: Compare, versions: st.SearchStrategy[str], transitive: bool
) -> None:
    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(versions, versions, versions)
    def check(a: str, b: str, c: str) -> None:
        assert compare(a, a) == 0
        assert compare(a, b) == -compare(b, a)  # antisymmetry
        if not transitive:
            return
        if compare(a, b) <= 0 and compare(b, c) <= 0:
            assert compare(a, c) <= 0, (a, b, c)  # transitivity
        if compare(a, b) == 0:
            assert compare(a, c) == compare(b, c)

    check()


@settings(max_examples=150, deadline=None)
@given(DPKG_VERSIONS, DPKG_VERSIONS)
def test_dpkg_agrees_with_dpkg(a: str, b: str) -> None:
    if shutil.which("dpkg") is None:
        missing_tool("dpkg is not installed")
    ours = dpkg.compare(a, b)
    less = subprocess.run(["dpkg", "--compare-versions", a, "lt", b], check=False).returncode
    equal = subprocess.run(["dpkg", "--compare-versions", a, "eq", b], check=False).returncode
    theirs = -1 if less == 0 else 0 if equal == 0 else 1
    assert ours == theirs, (a, b)


def _rpm_vercmp(pairs: list[tuple[str, str]]) -> list[int]:
    """rpm.vercmp through the real rpm (its Lua interpreter), many pairs in one run."""
    calls = " ".join(f'print(rpm.vercmp("{a}", "{b}") .. " ")' for a, b in pairs)
    out = subprocess.run(
        ["rpm", "--eval", f"%{{lua: {calls} }}"], check=True, capture_output=True, text=True
    ).stdout
    return [int(line) for line in out.split()]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(RPM_VERSIONS, RPM_VERSIONS), min_size=1, max_size=20))
def test_rpm_agrees_with_rpm(pairs: list[tuple[str, str]]) -> None:
    if shutil.which("rpm") is None:
        missing_tool("rpm is not installed (scripts/test-deps installs it)")
    # rpm.vercmp compares whole EVR strings (epoch, version, release) as rpm does.
    assert [rpm.compare(a, b) for a, b in pairs] == _rpm_vercmp(pairs)
