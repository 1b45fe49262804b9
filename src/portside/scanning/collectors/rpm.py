"""RPM packages (Fedora, RHEL 9, Rocky, Alma, openSUSE, Mariner): the SQLite database
(var/lib/rpm/rpmdb.sqlite, or usr/lib/sysimage/rpm/rpmdb.sqlite where var/lib/rpm is a
link to it), opened from memory, never from a file.

Each row of its Packages table holds one package's header blob, which we parse here:

    int32 il, int32 dl                       big-endian: index entries, data bytes
    il x {int32 tag, int32 type, int32 offset, int32 count}
    dl bytes of data: strings NUL-terminated, integers big-endian at their offset

Every count and offset is checked against the blob before use. A WAL-mode database is
read as its main file (WAL not merged: rpm checkpoints on close, so images rarely have
one).

The older Berkeley DB hash database (var/lib/rpm/Packages: RHEL/CentOS 7 and 8, Amazon
Linux 2) is read too, page by page: every hash page's data items are header blobs,
inline (H_KEYDATA) or in a chain of overflow pages (H_OFFPAGE: first page number and
total length); chains are followed at most once per page, never past the file or the
stated length. The ndb format (Packages.db, SUSE) is not read: a warning says so.
"""

from __future__ import annotations

import sqlite3
import struct
from collections.abc import Iterator

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


BDB_HASH_MAGIC = 0x061561
P_HASH_UNSORTED, P_OVERFLOW, P_HASH = 2, 7, 13
H_KEYDATA, H_OFFPAGE = 1, 3
PAGE_HEADER = 26


def _bdb_blobs(data: bytes) -> Iterator[bytes | None]:
    """The data items of a Berkeley DB hash database (None for a malformed one)."""
    if len(data) < 512:
        raise HeaderError("too short for a Berkeley DB database")
    for order in "<>":
        if struct.unpack_from(order + "I", data, 12)[0] == BDB_HASH_MAGIC:
            break
    else:
        raise HeaderError("not a Berkeley DB hash database")
    size = struct.unpack_from(order + "I", data, 20)[0]
    if size not in (512, 1024, 2048, 4096, 8192, 16384, 32768, 65536):
        raise HeaderError(f"Berkeley DB page size {size} out of range")
    view = memoryview(data)
    pages = len(data) // size
    for number in range(1, pages):
        page = view[number * size : (number + 1) * size]
        if page[25] not in (P_HASH, P_HASH_UNSORTED):
            continue
        entries = struct.unpack_from(order + "H", page, 20)[0]
        if PAGE_HEADER + 2 * entries > size:
            yield None
            continue
        offsets = struct.unpack_from(f"{order}{entries}H", page, PAGE_HEADER)
        for index in range(1, entries, 2):  # even items are keys, odd ones their data
            start, end = offsets[index], offsets[index - 1]
            if not PAGE_HEADER <= start < end <= size:
                yield None
            elif page[start] == H_KEYDATA:
                yield bytes(page[start + 1 : end])
            elif page[start] == H_OFFPAGE and end - start >= 12:
                first, length = struct.unpack_from(order + "II", page, start + 4)
                yield _overflow(view, order, size=size, pages=pages, number=first, length=length)


def _overflow(
    view: memoryview, order: str, *, size: int, pages: int, number: int, length: int
) -> bytes | None:
    """The bytes of an overflow chain, or None if it leaves the file, loops, or does not
    add up to `length`."""
    if length > len(view):
        return None
    out = bytearray()
    seen: set[int] = set()
    while number and len(out) < length:
        if number >= pages or number in seen:
            return None
        seen.add(number)
        page = view[number * size : (number + 1) * size]
        used = struct.unpack_from(order + "H", page, 22)[0]
        if page[25] != P_OVERFLOW or PAGE_HEADER + used > size:
            return None
        out += page[PAGE_HEADER : PAGE_HEADER + used]
        number = struct.unpack_from(order + "I", page, 16)[0]
    return bytes(out) if len(out) == length else None


def read_bdb(data: bytes, limits: Limits) -> tuple[list[Draft], int]:
    """Drafts of every package in a Berkeley DB Packages file, and how many entries
    were malformed; HeaderError if it is not such a database."""
    drafts: list[Draft] = []
    broken = 0
    for blob in _bdb_blobs(data):
        if len(drafts) >= limits.max_packages:
            break
        if blob is not None and len(blob) <= 8:
            continue  # rpm's own counter record (key 0)
        try:
            tags = parse_header(blob) if blob is not None else None
        except HeaderError:
            tags = None
        if tags is None:
            broken += 1
        elif (found := draft(tags)) is not None:
            drafts.append(found)
    return drafts, broken


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
        if path.endswith(".db"):
            return Found(warnings=(f"{path}: the ndb RPM database format is not read",))
        if path.endswith("/Packages"):
            drafts, broken = read_bdb(data, limits)
        else:
            drafts, broken = read_sqlite(data, limits)
        warnings = (f"{path}: {broken} malformed package headers skipped",) if broken else ()
        return Found(drafts=tuple(drafts), warnings=warnings)
