"""Package names as the database keys them: PyPI names are normalized (PEP 503:
`Foo.Bar_baz` -> `foo-bar-baz`) on import and on lookup, since installed metadata and
advisories spell them differently; NuGet and Packagist names are case-insensitive;
every other ecosystem's names are compared exactly as written.

Which ecosystems key advisories by SOURCE package (a Debian source package builds
several binary packages; Alpine's origin; an RPM's source RPM): for those a package is
looked up by its binary name and by Package.source_name.
"""

from __future__ import annotations

import re

from portside.vulndb.versions import base_ecosystem

_SEPARATORS = re.compile(r"[-_.]+")
SOURCE_KEYED = frozenset(
    {
        "Debian",
        "Ubuntu",
        "Alpine",
        "Wolfi",
        "Chainguard",
        "Red Hat",
        "Rocky Linux",
        "AlmaLinux",
        "openSUSE",
        "SUSE",
        "Mageia",
        "openEuler",
        "Photon OS",
        "Azure Linux",
    }
)


def normalize(ecosystem: str, name: str) -> str:
    base = base_ecosystem(ecosystem)
    if base == "PyPI":
        return _SEPARATORS.sub("-", name).lower()
    if base in ("NuGet", "Packagist"):
        return name.lower()
    return name


def source_keyed(ecosystem: str) -> bool:
    return base_ecosystem(ecosystem) in SOURCE_KEYED
