"""/etc/os-release (or /usr/lib/os-release, which it usually links to): which
distribution and release the image is, for the OSV ecosystem of its OS packages."""

from __future__ import annotations

from portside.scanning.collectors.base import Found
from portside.scanning.limits import Limits

KEYS = ("ID", "VERSION_ID", "VERSION", "PRETTY_NAME", "NAME", "ID_LIKE", "VERSION_CODENAME")


def parse(text: str) -> dict[str, str]:
    """KEY=value lines; values may be quoted with ' or " (backslash escapes in ")."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if not sep or key.startswith("#") or key not in KEYS:
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            quote, value = value[0], value[1:-1]
            if quote == '"':
                value = value.replace('\\"', '"').replace("\\\\", "\\")
        fields[key] = value[:200]
    return fields


class OsRelease:
    pattern = r"(?:etc|usr/lib)/os-release"

    def collect(self, path: str, data: bytes, limits: Limits) -> Found:
        fields = parse(data[:65536].decode("utf-8", "replace"))
        return Found(os_release=tuple(sorted(fields.items())))
