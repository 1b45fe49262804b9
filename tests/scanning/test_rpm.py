"""RPM: a real rpmdb.sqlite made by Debian's rpm tools (rpmbuild builds two tiny
packages, `rpm --justdb` installs them into a fresh database, left in WAL mode as rpm
leaves it), read from memory; and the header-blob parser on malformed blobs."""

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

from portside.scanning.collectors.rpm import HeaderError, parse_header, source_rpm
from portside.scanning.inventory import inventory
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


def test_berkeley_db_is_named_as_unsupported() -> None:
    found = inventory(image([file("var/lib/rpm/Packages", b"\0" * 4096)]))
    assert any("Berkeley DB or ndb" in w for w in found.warnings)


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
