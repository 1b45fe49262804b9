"""Read-only mode (`registry.read_only: true`): which requests it refuses, in one place.

Operators set it while they move a registry (`portside db copy`, `portside storage copy`)
or do maintenance: clients keep pulling while nothing changes underneath the copy.

The invariant: in read-only mode no request changes what the registry holds. Every
request whose method can change something (anything but GET, HEAD and OPTIONS) is a
write and is refused before any handler runs, unless it is in `_ALLOWED`, the short list
of non-GET requests that only read or only concern the caller's own sign-in:

- `POST /auth/token`: registry tokens (OAuth2 password/refresh grant) are computed, not
  stored, so clients can still log in and pull;
- `POST /api/v1/sessions`, `DELETE /api/v1/sessions/current`: UI sign-in and sign-out
  (a session row is the visitor's own, not registry content);
- `POST /api/v1/projects/<p>/retention/preview`: computes a plan, deletes nothing.

A new write route is therefore refused by default; only a route added to `_ALLOWED`
passes, and it must not change registry content. Callers of `refusal`:

- the registry API and token endpoint (portside.app), which answer 405 `UNSUPPORTED`
  as Distribution does for writes in its read-only maintenance mode;
- the management API (portside.mgmt.app, a middleware), which the web UI also goes
  through for every change, so UI posts are refused with the same message; the UI shows
  a banner and disables its forms (`read_only` in the templates).

What is not a request: job workers do not start in read-only mode (portside.server, and
`portside worker` refuses), so schedules, GC, retention, scans and webhook deliveries
stay still; pulls neither raise `artifact.pulled` events nor touch `last_pulled_at`
(portside.context). The flag is read at start-up: changing it needs a restart of every
replica (the setting must be the same on all of them during a move).
"""

from __future__ import annotations

import re

MESSAGE = "registry is in read-only mode (registry.read_only)"

_READS = frozenset({"GET", "HEAD", "OPTIONS"})
_ALLOWED: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("POST", re.compile(r"/auth/token")),
    ("POST", re.compile(r"/api/v1/sessions")),
    ("DELETE", re.compile(r"/api/v1/sessions/current")),
    ("POST", re.compile(r"/api/v1/projects/[^/]+/retention/preview")),
)


def refuses(method: str, path: str) -> bool:
    """Does read-only mode refuse this request? (Only call it when the mode is on.)"""
    if method in _READS:
        return False
    return not any(method == m and pattern.fullmatch(path) for m, pattern in _ALLOWED)
