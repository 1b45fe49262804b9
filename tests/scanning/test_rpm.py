"""RPM: a real rpmdb.sqlite made by Debian's rpm tools (rpmbuild builds two tiny
packages, `rpm --justdb` installs them into a fresh database, left in WAL mode as rpm
leaves it), read from memory; the same header blobs in a real Berkeley DB hash database
written by Berkeley DB's own db_load (as RHEL 8's var/lib/rpm/Packages); and the
header-blob parser on malformed blobs."""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
import struct
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portside.scanning.collectors.rpm import HeaderError, parse_header, read_bdb, source_rpm
from portside.scanning.inventory import inventory
from portside.scanning.limits import Limits
from tests.missing import missing_tool
from tests.scanning.build import file, image, symlink

SPECS = {
    "openssl.spec": """Name: openssl
Epoch: 1
Version: 3.0.7
Release: 24.el9
Summary: test package
License: Apache-2.0
BuildArch: noarch
%description
test
%package libs
Summary: libraries
License: Apache-2.0
%description libs
libraries
%files
%files libs
""",
    "bash.spec": """Name: bash
Version: 5.1.8
Release: 6.el9
Summary: test package
License: GPL-3.0-or-later
BuildArch: noarch
%description
test
%files
""",
}


@pytest.fixture(scope="module")
def rpmdb(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    if shutil.which("rpmbuild") is None or shutil.which("rpm") is None:
        missing_tool("rpm and rpmbuild (Debian package rpm) are not installed")
    work = tmp_path_factory.mktemp("rpm")
    for name, spec in SPECS.items():
        (work / name).write_text(spec)
        subprocess.run(
            [
                "rpmbuild",
                "-bb",
                "--quiet",
                "--define",
                f"_topdir {work}/top",
                "--define",
                f"_rpmdir {work}/out",
                str(work / name),
            ],
            check=True,
            capture_output=True,
        )
    packages = sorted(str(p) for p in (work / "out").rglob("*.rpm"))
    assert len(packages) == 3
    db = work / "db"
    subprocess.run(["rpm", "--dbpath", str(db), "--initdb"], check=True, capture_output=True)
    subprocess.run(
        ["rpm", "--dbpath", str(db), "-i", "--justdb", "--nodeps", "--noscripts", *packages],
        check=True,
        capture_output=True,
    )
    data = (db / "rpmdb.sqlite").read_bytes()
    assert data[18:20] == b"\x02\x02"  # WAL mode, as rpm leaves it
    return data


ROCKY = (
    'NAME="Rocky Linux"\nID="rocky"\nVERSION_ID="9.3"\nPRETTY_NAME="Rocky Linux 9.3 (Blue Onyx)"\n'
)


def test_a_real_rpm_database(rpmdb: bytes) -> None:
    found = inventory(
        image([file("etc/os-release", ROCKY), file("var/lib/rpm/rpmdb.sqlite", rpmdb)])
    )
    packages = {p.name: p for p in found.packages}
    assert sorted(packages) == ["bash", "openssl", "openssl-libs"]
    libs = packages["openssl-libs"]
    assert libs.ecosystem == "Rocky Linux:9"
    assert libs.version == "1:3.0.7-24.el9"
    assert (libs.source_name, libs.source_version) == ("openssl", None)
    assert libs.licenses == ("Apache-2.0",)
    assert libs.purl == (
        "pkg:rpm/rocky/openssl-libs@3.0.7-24.el9?arch=noarch&distro=rocky-9.3&epoch=1&upstream=openssl"
    )
    assert packages["bash"].purl == "pkg:rpm/rocky/bash@5.1.8-6.el9?arch=noarch&distro=rocky-9.3"
    assert found.warnings == ()


def test_the_usr_lib_sysimage_location(rpmdb: bytes) -> None:
    layer = [
        file("usr/lib/sysimage/rpm/rpmdb.sqlite", rpmdb),
        symlink("var/lib/rpm", "../../usr/lib/sysimage/rpm"),
        file("etc/os-release", 'NAME="Fedora Linux"\nID=fedora\nVERSION_ID=39\n'),
    ]
    found = inventory(image(layer))
    assert {p.ecosystem for p in found.packages} == {"Fedora Linux:39"}
    assert len(found.packages) == 3


def test_a_corrupt_sqlite_file_is_a_warning(rpmdb: bytes) -> None:
    broken = rpmdb[:100] + bytes(len(rpmdb) - 100)
    found = inventory(image([file("var/lib/rpm/rpmdb.sqlite", broken)]))
    assert found.packages == ()
    assert any("could not read var/lib/rpm/rpmdb.sqlite" in w for w in found.warnings)


def test_malformed_header_blobs_are_counted(rpmdb: bytes, tmp_path: Path) -> None:
    copy = tmp_path / "rpmdb.sqlite"
    copy.write_bytes(rpmdb)
    with sqlite3.connect(copy) as con:
        con.execute("PRAGMA journal_mode=DELETE")
        con.execute("INSERT INTO Packages (blob) VALUES (?)", (b"\x00\x00\x00\x05garbage",))
    con.close()
    found = inventory(image([file("var/lib/rpm/rpmdb.sqlite", copy.read_bytes())]))
    assert len(found.packages) == 3
    assert any("1 malformed package headers skipped" in w for w in found.warnings)


def blob(entries: list[tuple[int, int, int, int]], data: bytes) -> bytes:
    index = b"".join(struct.pack(">iiii", *e) for e in entries)
    return struct.pack(">ii", len(entries), len(data)) + index + data


def test_header_blob_parsing() -> None:
    data = b"curl\x00" + b"\x00\x00\x00\x00" + b"8.0\x00"
    tags = parse_header(blob([(1000, 6, 0, 1), (1003, 4, 5, 1), (1001, 6, 9, 1)], data))
    assert tags == {1000: "curl", 1003: 0, 1001: "8.0"}
    with pytest.raises(HeaderError, match="counts out of range"):
        parse_header(struct.pack(">ii", 0x7FFFFFFF, 0))
    with pytest.raises(HeaderError, match="shorter than its counts"):
        parse_header(blob([(1000, 6, 0, 1)], b"x\x00")[:-1])
    with pytest.raises(HeaderError, match="not terminated"):
        parse_header(blob([(1000, 6, 0, 1)], b"curl"))
    with pytest.raises(HeaderError, match="integer past the data"):
        parse_header(blob([(1003, 4, 2, 1)], b"\x00\x00\x00"))
    assert parse_header(blob([(1000, 6, 99, 1)], b"x\x00")) == {}  # offset outside: skipped


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=512))
def test_random_header_blobs_raise_only_header_errors(data: bytes) -> None:
    with contextlib.suppress(HeaderError):
        parse_header(data)


def test_source_rpm_names() -> None:
    assert source_rpm("openssl-3.0.7-24.el9.src.rpm") == ("openssl", "3.0.7-24.el9")
    assert source_rpm("python3.11-3.11.5-1.el9.src.rpm") == ("python3.11", "3.11.5-1.el9")
    assert source_rpm("nonsense") == (None, None)


def _bdb(rpmdb: bytes, work: Path, *, pad: int, pagesize: int = 4096) -> bytes:
    """The rpmdb's header blobs as rpm's Packages file: a Berkeley DB hash keyed by
    package number (key 0 is rpm's counter), written by db_load; `pad` bytes added to
    each blob push it onto overflow pages."""
    load = shutil.which("db5.3_load") or shutil.which("db_load")
    if load is None:
        missing_tool("db5.3_load (Debian package db5.3-util) is not installed")
    sqlite_file = work / "rpmdb.sqlite"
    sqlite_file.write_bytes(rpmdb)
    con = sqlite3.connect(f"file:{sqlite_file}?mode=ro", uri=True)
    try:
        rows = con.execute("SELECT hnum, blob FROM Packages").fetchall()
    finally:
        con.close()
    lines = ["VERSION=3", "format=bytevalue", "type=hash", f"db_pagesize={pagesize}", "HEADER=END"]
    lines += [" " + struct.pack("<I", 0).hex(), " " + struct.pack("<I", len(rows) + 1).hex()]
    for number, header_blob in rows:
        lines += [" " + struct.pack("<I", number).hex(), " " + (header_blob + bytes(pad)).hex()]
    lines.append("DATA=END")
    (work / "dump.txt").write_text("\n".join(lines) + "\n")
    subprocess.run([load, "-f", str(work / "dump.txt"), str(work / "Packages")], check=True)
    return (work / "Packages").read_bytes()


@pytest.mark.parametrize("pad", [0, 20_000])  # inline items, then overflow chains
def test_a_berkeley_db_packages_file(rpmdb: bytes, tmp_path: Path, pad: int) -> None:
    packages_file = _bdb(rpmdb, tmp_path, pad=pad)
    found = inventory(
        image([file("etc/os-release", ROCKY), file("var/lib/rpm/Packages", packages_file)])
    )
    assert found.warnings == ()
    packages = {p.name: p for p in found.packages}
    assert sorted(packages) == ["bash", "openssl", "openssl-libs"]
    assert packages["openssl-libs"].version == "1:3.0.7-24.el9"
    assert packages["openssl-libs"].path == "var/lib/rpm/Packages"


def test_a_broken_berkeley_db_chain_is_counted_not_followed(rpmdb: bytes, tmp_path: Path) -> None:
    packages_file = bytearray(_bdb(rpmdb, tmp_path, pad=20_000))
    size = 4096
    for number in range(1, len(packages_file) // size):  # point every chain at itself
        page = number * size
        if packages_file[page + 25] == 7:
            packages_file[page + 16 : page + 20] = struct.pack("<I", number)
    found = inventory(image([file("var/lib/rpm/Packages", bytes(packages_file))]))
    assert found.packages == ()
    assert any("3 malformed package headers skipped" in w for w in found.warnings)


def test_not_a_berkeley_db_file_is_a_warning() -> None:
    found = inventory(image([file("var/lib/rpm/Packages", b"\0" * 4096)]))
    assert any("could not read var/lib/rpm/Packages" in w for w in found.warnings)
    found = inventory(image([file("var/lib/rpm/Packages.db", b"\0" * 4096)]))
    assert any("ndb RPM database format is not read" in w for w in found.warnings)


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=512, max_size=8192), st.integers(0, 8191), st.integers(0, 255))
def test_random_berkeley_db_pages_raise_only_header_errors(
    data: bytes, at: int, value: int
) -> None:
    page = bytearray(struct.pack("<I", 0) * 3 + struct.pack("<II", 0x061561, 512)) + bytearray(data)
    page[at % len(page)] = value
    with contextlib.suppress(HeaderError):
        read_bdb(bytes(page), Limits())
