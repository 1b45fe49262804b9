"""RPM packages (Fedora, RHEL 9, Rocky, Alma, openSUSE, Mariner): the SQLite database
(var/lib/rpm/rpmdb.sqlite, or usr/lib/sysimage/rpm/rpmdb.sqlite where var/lib/rpm is a
link to it), opened from memory, never from a file.

Each row of its Packages table holds one package's header blob, which we parse here:

    int32 il, int32 dl                       big-endian: index entries, data bytes
    il x {int32 tag, int32 type, int32 offset, int32 count}
    dl bytes of data: strings NUL-terminated, integers big-endian at their offset

Every count and offset is checked against the blob before use. A WAL-mode database is
read as its main file (WAL not merged: rpm checkpoints on close, so images rarely have
one). The older Berkeley DB (var/lib/rpm/Packages, RHEL 8 and before) and ndb
(Packages.db, SUSE) formats are not read: a warning says so.
"""

from __future__ import annotations

import sqlite3
import struct

from portside.scanning.collectors.base import Draft, Found
from portside.scanning.limits import Limits

NAME, VERSION, RELEASE, EPOCH, VENDOR, LICENSE, ARCH, SOURCERPM = (
    1000,
    1001,
    1002,
    1003,
    1011,
    1014,
    1022,
    1044,
)
INT32, STRING, STRING_ARRAY, I18NSTRING = 4, 6, 8, 9
MAX_INDEX = 0xFFFF  # rpm's own bounds on a header (HEADER_TAGS_MAX, HEADER_DATA_MAX)
MAX_DATA = 0x0FFFFFFF
SQLITE_STEPS = 50_000_000  # virtual machine steps before a query is abandoned


class HeaderError(ValueError):
    """A header blob that does not follow the format."""


def parse_header(blob: bytes) -> dict[int, str | int]:
    """The string and int32 tags of one header blob (first value of arrays)."""
    if len(blob) < 8:
        raise HeaderError("header blob shorter than its counts")
    il, dl = struct.unpack_from(">ii", blob)
    if not 0 < il <= MAX_INDEX or not 0 <= dl <= MAX_DATA:
        raise HeaderError(f"header counts out of range (il={il}, dl={dl})")
    start = 8 + 16 * il
    if len(blob) < start + dl:
        raise HeaderError("header blob shorter than its counts say")
    data = memoryview(blob)[start : start + dl]
    tags: dict[int, str | int] = {}
    for tag, kind, offset, count in struct.iter_unpack(">iiii", blob[8:start]):
        if tag < 1000 or not 0 <= offset < dl or count < 1:
            continue  # regions, signatures, empty entries
        if kind in (STRING, STRING_ARRAY, I18NSTRING):
            end = bytes(data[offset : offset + 65536]).find(b"\0")
            if end < 0:
                raise HeaderError(f"tag {tag}: string not terminated")
            tags[tag] = bytes(data[offset : offset + end]).decode("utf-8", "replace")
        elif kind == INT32:
            if offset + 4 > dl:
                raise HeaderError(f"tag {tag}: integer past the data")
            tags[tag] = struct.unpack_from(">i", data, offset)[0]
    return tags


def source_rpm(filename: str) -> tuple[str | None, str | None]:
    """("openssl", "3.0.7-24.el9") from "openssl-3.0.7-24.el9.src.rpm"."""
    stem = filename.removesuffix(".rpm").removesuffix(".src").removesuffix(".nosrc")
    name, _, release = stem.rpartition("-")
    name, _, version = name.rpartition("-")
    if not name or not version or not release:
        return None, None
    return name, f"{version}-{release}"


def draft(tags: dict[int, str | int]) -> Draft | None:
    name, version, release = tags.get(NAME), tags.get(VERSION), tags.get(RELEASE)
    if not isinstance(name, str) or not isinstance(version, str) or name == "gpg-pubkey":
        return None  # gpg-pubkey: imported signing keys, not software
    full = f"{version}-{release}" if isinstance(release, str) else version
    epoch = tags.get(EPOCH)
    source = tags.get(SOURCERPM)
    source_name, source_version = source_rpm(source) if isinstance(source, str) else (None, None)
    license_ = tags.get(LICENSE)
    arch = tags.get(ARCH)
    return Draft(
        kind="rpm",
        name=name,
        version=full,
        arch=arch if isinstance(arch, str) else None,
        epoch=str(epoch) if isinstance(epoch, int) and epoch else None,
        source_name=source_name,
        source_version=source_version if source_version != full else None,
        licenses=(license_,) if isinstance(license_, str) and license_ else (),
    )


def read_sqlite(data: bytes, limits: Limits) -> tuple[list[Draft], int]:
    """Drafts of every package in an rpmdb.sqlite held in memory, and how many header
    blobs were malformed. sqlite3.Error if it is not such a database."""
    image = bytearray(data)
    if image[18:20] == b"\x02\x02":  # WAL mode: a memory database reads it as rollback
        image[18:20] = b"\x01\x01"
    con = sqlite3.connect(":memory:")
    steps = 0

    def progress() -> int:
        nonlocal steps
        steps += 1
        return 1 if steps * 1000 > SQLITE_STEPS else 0

    try:
        con.deserialize(bytes(image))
        con.set_progress_handler(progress, 1000)
        con.execute("PRAGMA query_only = ON")
        con.execute("PRAGMA trusted_schema = OFF")
        drafts: list[Draft] = []
        broken = 0
        for (blob,) in con.execute("SELECT blob FROM Packages ORDER BY hnum"):
            if len(drafts) >= limits.max_packages:
                break
            try:
                found = draft(parse_header(bytes(blob))) if isinstance(blob, bytes) else None
            except HeaderError:
                broken += 1
                continue
            if found is not None:
                drafts.append(found)
        return drafts, broken
    finally:
        con.close()


class RpmSqlite:
    pattern = r"(?:var/lib/rpm|usr/lib/sysimage/rpm)/(?:rpmdb\.sqlite|Packages|Packages\.db)"

    def collect(self, path: str, data: bytes, limits: Limits) -> Found:
        if not path.endswith(".sqlite"):
            return Found(
                warnings=(f"{path}: this RPM database format (Berkeley DB or ndb) is not read",)
            )
        drafts, broken = read_sqlite(data, limits)
        warnings = (f"{path}: {broken} malformed package headers skipped",) if broken else ()
        return Found(drafts=tuple(drafts), warnings=warnings)
