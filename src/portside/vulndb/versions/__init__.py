"""Version ordering per ecosystem: `ordering(ecosystem)` gives the compare function
OSV means for that ecosystem, or raises CannotCompare (never a guess).

Ecosystems are OSV's names; a release suffix ("Debian:12", "Alpine:v3.19") does not
change the ordering. Range types: `ECOSYSTEM` uses the ecosystem's ordering,
`SEMVER` always SemVer; `GIT` ranges name commits and cannot be evaluated against an
installed version.
"""

from __future__ import annotations

from collections.abc import Callable

from portside.vulndb.versions import apk, dpkg, maven, pep440, rpm, semver
from portside.vulndb.versions.errors import CannotCompare, VersionError

Compare = Callable[[str, str], int]

_BY_ECOSYSTEM: dict[str, Compare] = {
    "Debian": dpkg.compare,
    "Ubuntu": dpkg.compare,
    "Alpine": apk.compare,
    "Wolfi": apk.compare,
    "Chainguard": apk.compare,
    "Red Hat": rpm.compare,
    "Rocky Linux": rpm.compare,
    "AlmaLinux": rpm.compare,
    "openSUSE": rpm.compare,
    "SUSE": rpm.compare,
    "Mageia": rpm.compare,
    "openEuler": rpm.compare,
    "Photon OS": rpm.compare,
    "Azure Linux": rpm.compare,
    "PyPI": pep440.compare,
    "npm": semver.compare,
    "crates.io": semver.compare,
    "Go": semver.compare_go,
    "Maven": maven.compare,
}


def base_ecosystem(ecosystem: str) -> str:
    """ "Debian:12" -> "Debian" (OSV separates the release with the first colon)."""
    return ecosystem.split(":", 1)[0]


def ordering(ecosystem: str, range_type: str = "ECOSYSTEM") -> Compare:
    """The compare function for versions of `ecosystem` in a range of `range_type`."""
    if range_type == "SEMVER":
        return semver.compare_go if base_ecosystem(ecosystem) == "Go" else semver.compare
    if range_type != "ECOSYSTEM":
        raise CannotCompare(f"{range_type} ranges cannot be compared with installed versions")
    found = _BY_ECOSYSTEM.get(base_ecosystem(ecosystem))
    if found is None:
        raise CannotCompare(f"no version ordering known for ecosystem {ecosystem!r}")
    return found


def known_ecosystems() -> list[str]:
    return sorted(_BY_ECOSYSTEM)


__all__ = ["CannotCompare", "Compare", "VersionError", "base_ecosystem", "ordering"]
