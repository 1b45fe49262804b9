"""Importing the fixture OSV export (zip and directory) and tracker file, and the exact
findings for the fixture inventory."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import pytest

from portside.events import outbox
from portside.metadata.db import Database
from portside.scanning.model import Severity
from portside.vulndb import FeedError, generation, import_path, match, match_all, status
from portside.vulndb.feeds import detect
from tests.vulndb import fixtures
from tests.vulndb.fixtures import INVENTORY, pkg


def _import_all(db: Database, tmp_path: Path, *, as_zip: bool = True) -> None:
    if as_zip:
        import_path(db, fixtures.osv_zip(tmp_path / "all.zip"))
    else:
        import_path(db, fixtures.osv_directory(tmp_path / "osv"))
    import_path(db, fixtures.tracker_file(tmp_path / "tracker.json"))


def _summary(
    db: Database,
) -> dict[tuple[str, str, str], tuple[str, str | None, str, tuple[str, ...]]]:
    return {
        (f.package.ecosystem, f.package.name, f.package.version): (
            f.vulnerability_id,
            f.fixed_version,
            f.severity.name,
            f.aliases,
        )
        for f in match(db, INVENTORY)
    }


EXPECTED = {
    # OSV's DEBIAN-CVE-2024-1000 and the tracker's CVE-2024-1000 are one finding: the
    # tracker's record wins (a severity, a link), the OSV id stays as an alias.
    ("Debian:12", "libssl3", "3.0.11-1~deb12u2"): None,  # two findings: checked below
    ("Debian:12", "zlib1g", "1:1.2.13.dfsg-1"): (
        "DEBIAN-ZLIB-1",
        "1:1.2.13.dfsg-2",
        "UNKNOWN",
        (),
    ),
    ("Debian:11", "libssl1.1", "1.1.1n-0+deb11u5"): (
        "CVE-2024-1000",
        "1.1.1w-0+deb11u2",
        "HIGH",
        (),
    ),
    # Fixed for CVE-2024-1000; CVE-2024-1001 is open (no fix yet).
    ("Debian:12", "libssl3-new", "3.0.13-1~deb12u1"): ("CVE-2024-1001", None, "LOW", ()),
    ("Alpine:v3.19", "busybox", "1.36.1-r15"): ("CVE-2024-2000", "1.36.1-r16", "CRITICAL", ()),
    ("Alpine:v3.19", "busybox-binsh", "1.36.1-r15"): (
        "CVE-2024-2000",
        "1.36.1-r16",
        "CRITICAL",
        (),
    ),
    ("PyPI", "django", "4.2.1"): ("GHSA-aaaa-bbbb-cccc", "4.2.10", "HIGH", ("CVE-2024-0001",)),
    ("npm", "lodash", "4.17.20"): ("GHSA-lodash-0000-0000", "4.17.21", "MEDIUM", ()),
    ("npm", "minimist", "1.2.5"): ("GHSA-minimist-0000", None, "UNKNOWN", ()),
    ("Go", "golang.org/x/net", "v0.22.0"): (
        "GO-2024-0001",
        "0.23.0",
        "UNKNOWN",
        ("CVE-2023-45288",),
    ),
    ("Hackage", "aeson", "1.0.0"): ("HSEC-2024-0001", None, "UNKNOWN", ()),
}


@pytest.mark.parametrize("as_zip", [True, False], ids=["zip", "directory"])
def test_findings_for_the_fixture_inventory(db: Database, tmp_path: Path, as_zip: bool) -> None:
    _import_all(db, tmp_path, as_zip=as_zip)
    result = match_all(db, INVENTORY)
    findings = result.findings
    by_package: dict[tuple[str, str, str], list[object]] = {}
    for f in findings:
        key = (f.package.ecosystem, f.package.name, f.package.version)
        by_package.setdefault(key, []).append(
            (f.vulnerability_id, f.fixed_version, f.severity.name, f.aliases)
        )
    libssl3 = by_package.pop(("Debian:12", "libssl3", "3.0.11-1~deb12u2"))
    assert libssl3 == [
        ("CVE-2024-1000", "3.0.13-1~deb12u1", "MEDIUM", ("DEBIAN-CVE-2024-1000",)),
        ("CVE-2024-1001", None, "LOW", ()),
    ]
    expected = {k: [v] for k, v in EXPECTED.items() if v is not None}
    assert by_package == expected
    # Fixed versions, "0" (never affected) and undetermined entries report nothing; the
    # range of the unknown ecosystem could not be evaluated for aeson 2.1.0.
    assert [(u.package.name, u.package.version) for u in result.uncompared] == [("aeson", "2.1.0")]
    assert "Hackage" in result.uncompared[0].reason
    assert result.generation == status(db).generation == generation(db)


def test_cvss_score_and_links_are_reported(db: Database, tmp_path: Path) -> None:
    _import_all(db, tmp_path)
    (django,) = match(db, [pkg("PyPI", "Django", "5.0.1")])
    assert django.fixed_version == "5.0.2"
    assert django.cvss_score == 7.5
    assert django.cvss_vector == fixtures.CVSS_HIGH
    assert django.links == ("https://example.test/django",)
    assert django.summary == "Django SQL injection"
    (lodash,) = match(db, [pkg("npm", "lodash", "1.0.0")])
    assert lodash.summary == "Prototype pollution in lodash."


def test_no_database_means_no_findings_and_no_generation(db: Database) -> None:
    result = match_all(db, INVENTORY)
    assert result.findings == []
    assert result.generation is None


def test_status_and_event(db: Database, tmp_path: Path) -> None:
    _import_all(db, tmp_path)
    state = status(db)
    assert [(s.format, s.advisories) for s in state.sources] == [
        ("osv", 8),  # the withdrawn record is left out
        ("debian-tracker", 2),
    ]
    assert state.generation == max(s.import_id for s in state.sources)
    events = [e for e in outbox.recent(db) if e.type == outbox.VULNDB_UPDATED]
    assert [e.data["generation"] for e in events] == [
        state.sources[0].import_id,
        state.sources[1].import_id,
    ]
    # Importing again makes a new generation; the previous one is no longer used.
    import_path(db, tmp_path / "all.zip")
    again = status(db)
    assert again.generation is not None
    assert state.generation is not None
    assert again.generation > state.generation
    assert _summary(db)[("npm", "lodash", "4.17.20")][0] == "GHSA-lodash-0000-0000"


def test_detect(tmp_path: Path) -> None:
    assert detect(fixtures.osv_zip(tmp_path / "a.zip")) == "osv"
    assert detect(fixtures.osv_directory(tmp_path / "d")) == "osv"
    assert detect(tmp_path / "d" / "GO-2024-0001.json") == "osv"
    assert detect(fixtures.tracker_file(tmp_path / "t.json")) == "debian-tracker"
    array = tmp_path / "array.json"
    array.write_text("[]")
    assert detect(array) == "osv"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b'{"id": "X", "affected": [{"package": {"name": "a"}}]}', "affected[0].package"),
        (
            b'{"id": "X", "affected": [{"package": {"ecosystem": "npm", "name": "a"},'
            b' "ranges": [{"type": "SEMVER", "events": [{"fixed": 1}]}]}]}',
            "X: affected[0].ranges[0].events[0]",
        ),
        (b'{"openssl": {"CVE-1": {"releases": {"bookworm": {}}}}}', "openssl/CVE-1/bookworm"),
        (b"", "empty file"),
    ],
)
def test_bad_input_names_file_and_problem(
    db: Database, tmp_path: Path, content: bytes, message: str
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_bytes(content)
    with pytest.raises(FeedError) as caught:
        import_path(db, bad)
    assert str(bad) in str(caught.value)
    assert message in str(caught.value)
    assert status(db).sources == ()


def test_failed_import_keeps_the_previous_data(db: Database, tmp_path: Path) -> None:
    """A source whose new export is broken half-way keeps serving its old data."""
    monkey_batch = 2
    from portside.vulndb import store

    original = store.BATCH
    store.BATCH = monkey_batch  # several batches are committed before the bad record
    try:
        source = str(tmp_path / "export.zip")
        import_path(db, fixtures.osv_zip(tmp_path / "good.zip"), source=source)
        before = _summary(db)
        broken = [*fixtures.OSV[:6], {"id": "BROKEN", "affected": "not a list"}]
        bad = fixtures.osv_zip(tmp_path / "bad.zip", broken)
        with pytest.raises(FeedError, match=r"bad\.zip!BROKEN\.json: BROKEN: affected"):
            import_path(db, bad, source=source)
    finally:
        store.BATCH = original
    assert _summary(db) == before
    state = status(db)
    assert [s.advisories for s in state.sources] == [8]
    assert [f.source for f in state.failures] == [source]
    # Nothing of the failed import is left in the tables.
    from sqlalchemy import func, select

    from portside.metadata import schema as s

    with db.read() as conn:
        used = conn.execute(select(s.vulndb_sources.c.import_id)).scalars().all()
        stray = conn.execute(
            select(func.count())
            .select_from(s.vulndb_advisories)
            .where(s.vulndb_advisories.c.import_id.not_in(used))
        ).scalar_one()
    assert stray == 0


def test_batches_of_packages(db: Database, tmp_path: Path) -> None:
    _import_all(db, tmp_path)
    assert match_all(db, INVENTORY, batch=2).findings == match_all(db, INVENTORY).findings


def test_severity_of_cvss_v4(db: Database, tmp_path: Path) -> None:
    _import_all(db, tmp_path)
    (finding,) = match(db, [pkg("Alpine:v3.18", "busybox", "1.36.1-r6")])
    assert finding.severity == Severity.CRITICAL
    assert finding.fixed_version == "1.36.1-r7"


def test_json_array_file(db: Database, tmp_path: Path) -> None:
    array = tmp_path / "records.json"
    array.write_text(json.dumps(fixtures.OSV))
    result = import_path(db, array)
    assert (result.format, result.advisories) == ("osv", 8)


def _synthetic(count: int) -> list[dict[str, object]]:
    return [
        {
            "id": f"SYN-{index}",
            "modified": "2024-01-01T00:00:00Z",
            "details": "x" * 400,
            "affected": [
                {
                    "package": {"ecosystem": "npm", "name": f"pkg-{index}"},
                    "ranges": [
                        {"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "1.0.0"}]}
                    ],
                }
            ],
        }
        for index in range(count)
    ]


def test_memory_stays_bounded_however_big_the_export(db: Database, tmp_path: Path) -> None:
    """The import holds one batch of advisories at a time (tracemalloc, Python
    allocations): a JSON array four times as long takes about the same memory; a zip
    adds only its directory (zipfile keeps one entry object per member)."""

    def peak(path: Path) -> int:
        tracemalloc.start()
        try:
            import_path(db, path, source=path.name)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    def array(count: int) -> Path:
        path = tmp_path / f"syn{count}.json"
        path.write_text(json.dumps(_synthetic(count)))
        return path

    peak(array(100))  # one-time allocations (statement caches, imports) out of the way
    small, large = peak(array(1500)), peak(array(6000))
    assert large < 1.3 * small, (small, large)
    zipped_small = peak(fixtures.osv_zip(tmp_path / "syn1500.zip", _synthetic(1500)))
    zipped_large = peak(fixtures.osv_zip(tmp_path / "syn6000.zip", _synthetic(6000)))
    assert (zipped_large - zipped_small) / 4500 < 1024, (zipped_small, zipped_large)
    (finding,) = match(db, [pkg("npm", "pkg-5999", "0.9.0")])
    assert finding.vulnerability_id == "SYN-5999"


def test_ubuntu_lts_releases_and_no_other_release(db: Database, tmp_path: Path) -> None:
    record = {
        "id": "UBUNTU-CVE-2024-3000",
        "upstream": ["CVE-2024-3000"],
        "affected": [
            {
                "package": {"ecosystem": "Ubuntu:22.04:LTS", "name": "curl"},
                "ranges": [
                    {
                        "type": "ECOSYSTEM",
                        "events": [{"introduced": "0"}, {"fixed": "7.81.0-1ubuntu1.16"}],
                    }
                ],
            }
        ],
    }
    path = tmp_path / "ubuntu.json"
    path.write_text(json.dumps(record))
    import_path(db, path)
    (found,) = match(db, [pkg("Ubuntu:22.04", "libcurl4", "7.81.0-1ubuntu1.15", "curl")])
    assert (found.vulnerability_id, found.fixed_version) == (
        "UBUNTU-CVE-2024-3000",
        "7.81.0-1ubuntu1.16",
    )
    assert found.aliases == ("CVE-2024-3000",)
    assert match(db, [pkg("Ubuntu:24.04", "libcurl4", "7.81.0-1ubuntu1.15", "curl")]) == []
