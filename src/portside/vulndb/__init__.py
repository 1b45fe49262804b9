"""The vulnerability database: advisories imported from OSV exports and the Debian
security tracker, and matching installed packages against them.

The public API (what the scan service calls):

* `match(db, packages) -> list[Finding]` and `match_all(db, packages) -> MatchResult`
  (findings, the `generation` they come from, the packages that could not be compared);
* `status(db) -> Status` (per source: last import, counts; the overall `generation`),
  and `generation(db) -> int | None` alone;
* `import_path(db, path, ...) -> ImportResult`;
* the outbox event `vulndb.updated` (portside.events.outbox.VULNDB_UPDATED), raised when
  an import switched a source to new data.
"""

from __future__ import annotations

from portside.vulndb.importer import FeedError, ImportResult, import_path
from portside.vulndb.match import MatchResult, Uncompared, match, match_all
from portside.vulndb.store import Status, generation, status

__all__ = [
    "FeedError",
    "ImportResult",
    "MatchResult",
    "Status",
    "Uncompared",
    "generation",
    "import_path",
    "match",
    "match_all",
    "status",
]
