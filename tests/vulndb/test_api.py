"""GET /api/v1/vulndb (who may read it is pinned in tests/auth/test_permission_matrix.py)."""

from __future__ import annotations

from pathlib import Path

from starlette.testclient import TestClient

from portside.app import PortsideApp
from portside.vulndb import import_path
from tests.vulndb import fixtures


def test_status_document(app: PortsideApp, client: TestClient, tmp_path: Path) -> None:
    empty = client.get("/api/v1/vulndb")
    assert empty.status_code == 200, empty.text
    assert empty.json() == {"generation": None, "advisories": 0, "sources": [], "failures": []}
    result = import_path(app.ctx.db, fixtures.tracker_file(tmp_path / "tracker.json"))
    body = client.get("/api/v1/vulndb").json()
    assert body["generation"] == result.generation
    assert body["advisories"] == 2
    (source,) = body["sources"]
    assert source["name"] == str(tmp_path / "tracker.json")
    assert (source["format"], source["advisories"], source["packages"]) == ("debian-tracker", 2, 3)
    assert source["import_id"] == result.import_id
