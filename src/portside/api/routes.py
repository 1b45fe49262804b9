"""Matching /v2 paths to routes. Names may contain any path component, so each pattern
anchors on the route's own suffix and lets the name match greedily."""

from __future__ import annotations

import re
from dataclasses import dataclass

# Most frequent first (each miss costs a regex); `upload` must precede `blob`.
_ROUTES: list[tuple[str, re.Pattern[str]]] = [
    ("manifest", re.compile(r"/v2/(?P<name>.+)/manifests/(?P<reference>[^/]+)")),
    ("upload", re.compile(r"/v2/(?P<name>.+)/blobs/uploads/(?P<id>[^/]*)")),
    ("blob", re.compile(r"/v2/(?P<name>.+)/blobs/(?P<digest>[^/]+)")),
    ("tags", re.compile(r"/v2/(?P<name>.+)/tags/list")),
    ("referrers", re.compile(r"/v2/(?P<name>.+)/referrers/(?P<digest>[^/]+)")),
    ("base", re.compile(r"/v2/?")),
    ("catalog", re.compile(r"/v2/_catalog")),
]


@dataclass(frozen=True, slots=True)
class Match:
    route: str
    params: dict[str, str]


def match(path: str) -> Match | None:
    for route, pattern in _ROUTES:
        found = pattern.fullmatch(path)
        if found:
            return Match(route, found.groupdict())
    return None
