"""The scanner is pure (no database), so its tests run once, in the SQLite pass of
scripts/test: the PostgreSQL pass (PORTSIDE_TEST_DATABASE_URL set) would only repeat
them on a busy machine."""

from __future__ import annotations

import os

collect_ignore_glob = ["test_*.py"] if os.environ.get("PORTSIDE_TEST_DATABASE_URL") else []
