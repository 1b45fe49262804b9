"""Debian and Ubuntu packages: var/lib/dpkg/status (only packages whose status is
"installed": removed packages leave config-files/not-installed records behind), and
distroless images' var/lib/dpkg/status.d/<name> files (one record each, no Status)."""

from __future__ import annotations

from collections.abc import Iterator

from portside.scanning.collectors.base import Draft, Found
from portside.scanning.limits import Limits


def paragraphs(text: str) -> Iterator[dict[str, str]]:
    """Debian control paragraphs: "Field: value" lines, continuation lines indented,
    paragraphs separated by blank lines. Field names are case-insensitive (lowered)."""
    fields: dict[str, str] = {}
    last: str | None = None
    for line in text.splitlines():
        if not line.strip():
            if fields:
                yield fields
            fields, last = {}, None
        elif line[0] in " \t":
            if last is not None and last != "description":
                fields[last] += "\n" + line.strip()
        else:
            name, sep, value = line.partition(":")
            if sep:
                last = name.strip().lower()
                fields[last] = value.strip()
    if fields:
        yield fields


def _source(fields: dict[str, str], version: str) -> tuple[str | None, str | None]:
    source = fields.get("source")
    if not source:
        return None, None
    name, _, rest = source.partition(" ")
    source_version = rest.strip().strip("()").strip() or None
    return name, source_version if source_version != version else None


# Debian's short licence names (DEP-5) that have an SPDX identifier.
SPDX_NAMES = {
    "GPL-1": "GPL-1.0-only", "GPL-1+": "GPL-1.0-or-later",
    "GPL-2": "GPL-2.0-only", "GPL-2+": "GPL-2.0-or-later",
    "GPL-3": "GPL-3.0-only", "GPL-3+": "GPL-3.0-or-later",
    "LGPL-2": "LGPL-2.0-only", "LGPL-2+": "LGPL-2.0-or-later",
    "LGPL-2.1": "LGPL-2.1-only", "LGPL-2.1+": "LGPL-2.1-or-later",
    "LGPL-3": "LGPL-3.0-only", "LGPL-3+": "LGPL-3.0-or-later",
    "AGPL-3": "AGPL-3.0-only", "AGPL-3+": "AGPL-3.0-or-later",
    "BSD-2-clause": "BSD-2-Clause", "BSD-3-clause": "BSD-3-Clause",
    "BSD-4-clause": "BSD-4-Clause", "Expat": "MIT", "zlib": "Zlib", "Apache-2": "Apache-2.0",
    "Artistic": "Artistic-1.0", "MPL-2": "MPL-2.0", "PSF-2": "PSF-2.0",
}  # fmt: skip
_OPERATORS = frozenset(("and", "or", "with", "AND", "OR", "WITH"))


class DpkgCopyright:
    """usr/share/doc/<package>/copyright in Debian's machine-readable format (DEP-5):
    the short names of its License: fields, as SPDX identifiers where one exists
    ("GPL-2+" -> "GPL-2.0-or-later"). Free-text copyright files give none."""

    pattern = r"usr/share/doc/[^/]+/copyright"

    def collect(self, path: str, data: bytes, limits: Limits) -> Found:
        text = data[: 1024 * 1024].decode("utf-8", "replace")
        if not text.startswith("Format:"):
            return Found()
        names: dict[str, None] = {}
        for line in text.splitlines():
            if line.startswith("License:"):
                for word in line[8:].replace(",", " ").replace("(", " ").replace(")", " ").split():
                    if word not in _OPERATORS:
                        names.setdefault(SPDX_NAMES.get(word, word))
        return Found(licenses=tuple(names)[:20])


class Dpkg:
    pattern = r"var/lib/dpkg/status|var/lib/dpkg/status\.d/[^/]+(?<!\.md5sums)"

    def collect(self, path: str, data: bytes, limits: Limits) -> Found:
        drafts: list[Draft] = []
        skipped = 0
        for fields in paragraphs(data.decode("utf-8", "replace")):
            status = fields.get("status", "install ok installed").split()
            if len(status) != 3 or status[2] != "installed":
                continue
            name, version = fields.get("package"), fields.get("version")
            if not name or not version:
                skipped += 1
                continue
            source_name, source_version = _source(fields, version)
            drafts.append(
                Draft(
                    kind="deb",
                    name=name,
                    version=version,
                    arch=fields.get("architecture"),
                    source_name=source_name,
                    source_version=source_version,
                )
            )
        warnings = (f"{path}: {skipped} records without Package or Version",) if skipped else ()
        return Found(drafts=tuple(drafts), warnings=warnings)
