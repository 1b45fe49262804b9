"""Matching /v2 paths to routes. Names may contain any path component, so each pattern
anchors on the route's own suffix and lets the name match greedily.

granian hands over the path percent-decoded, so `..%2F..%2Fetc` in a digest or upload id
arrives as `../../etc`: a `/` where the patterns expect none. Such a path is matched a
second time with the name taken as short as it can be and the rest as the parameter, so
it still reaches the blob, upload or manifest handler, which refuses the parameter with
the route's own error (DIGEST_INVALID, BLOB_UNKNOWN, BLOB_UPLOAD_UNKNOWN,
MANIFEST_UNKNOWN) rather than a 404 for an unknown endpoint.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from portside.reference import is_valid_name

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
# Tried only when none of the above matched: the parameter holds a decoded `/`.
_SLASHED: list[tuple[str, re.Pattern[str]]] = [
    ("upload", re.compile(r"/v2/(?P<name>.+?)/blobs/uploads/(?P<id>.+)")),
    ("blob", re.compile(r"/v2/(?P<name>.+?)/blobs/(?P<digest>.+)")),
    ("manifest", re.compile(r"/v2/(?P<name>.+?)/manifests/(?P<reference>.+)")),
    ("referrers", re.compile(r"/v2/(?P<name>.+?)/referrers/(?P<digest>.+)")),
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
    for route, pattern in _SLASHED:
        found = pattern.fullmatch(path)
        if found and is_valid_name(found["name"]):
            return Match(route, found.groupdict())
    return None
