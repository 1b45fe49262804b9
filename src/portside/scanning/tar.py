"""A streaming reader of tar archives written for hostile input.

Python's tarfile reads a pax header or a GNU long name of any declared size into memory
and accepts negative sizes in places; this reader bounds everything it holds: headers
(one 512-byte block), pax records and GNU long names (`max_header_bytes`), and never
reads an entry's data unless asked, in bounded chunks. It understands ustar, GNU
(long names 'L'/'K', base-256 numbers) and pax ('x' records path, linkpath, size;
global 'g' headers are read and ignored). Checksums are verified. Any malformation
(bad checksum, non-octal or negative size, a header cut short, data cut short) raises
`LayerRejected`; the end is two zero blocks, one zero block, or end of stream exactly at
a header boundary.
"""

from __future__ import annotations

import enum
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from portside.scanning.limits import LayerRejected, Limits

BLOCK = 512
ZERO_BLOCK = bytes(BLOCK)
CHUNK = 256 * 1024
PAX_KEYS = frozenset(("path", "linkpath", "size"))
_HEADER_ONLY = frozenset((b"1", b"2", b"3", b"4", b"5", b"6"))  # as GNU tar and Go read them
_KINDS = {b"0": "file", b"\0": "file", b"7": "file", b"1": "hardlink", b"2": "symlink"}


class Kind(enum.Enum):
    FILE = "file"
    DIR = "dir"
    SYMLINK = "symlink"
    HARDLINK = "hardlink"
    OTHER = "other"  # devices, fifos, sparse and unknown types: never read


@dataclass(frozen=True, slots=True)
class TarEntry:
    name: str  # as recorded (not normalised: see layers.normalise)
    kind: Kind
    size: int
    mode: int
    linkname: str


class _Stream(Protocol):
    def read(self, size: int, /) -> bytes: ...


def looks_like_tar(block: bytes) -> bool:
    """Whether a first block is a tar header (or the end marker of an empty tar)."""
    if len(block) < BLOCK:
        return False
    return block[257:262] == b"ustar" or block[:BLOCK] == ZERO_BLOCK or _checksum_ok(block)


def _checksum_ok(block: bytes) -> bool:
    try:
        stored = _number(block[148:156])
    except LayerRejected:
        return False
    unsigned = _byte_sum(block[:256]) + _byte_sum(block[256:BLOCK]) - sum(block[148:156]) + 256
    if stored == unsigned:
        return True
    high = sum(1 for b in block[:148] if b >= 128) + sum(1 for b in block[156:BLOCK] if b >= 128)
    return stored == unsigned - 256 * high  # old writers summed signed chars


def _byte_sum(data: bytes) -> int:
    """Sum of at most 256 bytes, in C: Adler-32's first half is 1 + that sum modulo
    65521, and 256 bytes sum to at most 65280 (ten times faster than sum() here)."""
    return (zlib.adler32(data) & 0xFFFF) - 1


def _number(field: bytes) -> int:
    if field and field[0] == 0x80:  # GNU base-256, positive
        return int.from_bytes(field[1:], "big")
    if field and field[0] == 0xFF:  # base-256, negative
        return int.from_bytes(field, "big", signed=True)
    text = field.split(b"\0", 1)[0].strip(b" ")
    if not text:
        return 0
    try:
        return int(text, 8)
    except ValueError:
        raise LayerRejected(f"has a malformed tar header (number {text[:20]!r})") from None


def _text(field: bytes) -> str:
    return field.split(b"\0", 1)[0].decode("utf-8", "replace")


class TarReader:
    """Entries of one tar stream in order; `data` reads the current entry's bytes."""

    def __init__(self, stream: _Stream, limits: Limits) -> None:
        self._stream = stream
        self._limits = limits
        self._buf = b""
        self._pos = 0
        self._left = 0  # data bytes of the current entry not read yet
        self._pad = 0  # padding after them
        self.entries = 0

    def _read(self, size: int) -> bytes:
        """Up to `size` bytes (fewer only at the end of the stream)."""
        end = self._pos + size
        if end <= len(self._buf):  # the common case: a header inside the buffer
            piece = self._buf[self._pos : end]
            self._pos = end
            return piece
        out = []
        while size > 0:
            if self._pos >= len(self._buf):
                self._buf, self._pos = self._stream.read(max(size, CHUNK)), 0
                if not self._buf:
                    break
            piece = self._buf[self._pos : self._pos + size]
            self._pos += len(piece)
            size -= len(piece)
            out.append(piece)
        return out[0] if len(out) == 1 else b"".join(out)

    def _skip(self, size: int) -> None:
        while size > 0:
            piece = self._read(min(size, CHUNK))
            if not piece:
                raise LayerRejected("is truncated (tar entry data ends early)")
            size -= len(piece)

    def chunks(self) -> Iterator[bytes]:
        """The rest of the current entry's data, in bounded chunks."""
        while self._left > 0:
            piece = self._read(min(self._left, CHUNK))
            if not piece:
                raise LayerRejected("is truncated (tar entry data ends early)")
            self._left -= len(piece)
            yield piece

    def data(self) -> bytes:
        """The current entry's whole data: callers check its size against a limit first."""
        return b"".join(self.chunks())

    def _block(self) -> bytes | None:
        block = self._read(BLOCK)
        if not block:
            return None
        if len(block) < BLOCK:
            raise LayerRejected("is truncated (tar header cut short)")
        return block

    def _sized(self, size: int, what: str) -> bytes:
        if size > self._limits.max_header_bytes:
            raise LayerRejected(
                f"has a {what} of {size} bytes (at most {self._limits.max_header_bytes})"
            )
        data = self._read(size)
        if len(data) < size:
            raise LayerRejected("is truncated (tar header data ends early)")
        self._skip(-size % BLOCK)
        return data

    def next(self) -> TarEntry | None:
        """The next entry, or None at the end of the archive."""
        self._skip(self._left + self._pad)
        self._left = self._pad = 0
        long_name: str | None = None
        long_link: str | None = None
        pax: dict[str, str] = {}
        while True:
            block = self._block()
            if block is None or block == ZERO_BLOCK:
                return None
            if not _checksum_ok(block):
                raise LayerRejected("has a malformed tar header (bad checksum)")
            self.entries += 1
            if self.entries > self._limits.max_entries:
                raise LayerRejected(f"has more than {self._limits.max_entries} tar entries")
            size = _number(block[124:136])
            if size < 0:
                raise LayerRejected("has a tar entry with a negative size")
            flag = block[156:157]
            if flag in (b"L", b"K"):
                name = _text(self._sized(size, "GNU long name"))
                long_name, long_link = (name, long_link) if flag == b"L" else (long_name, name)
                continue
            if flag in (b"x", b"g"):
                records = _pax(self._sized(size, "pax header"))
                if flag == b"x":
                    pax.update(records)
                continue
            break
        if "size" in pax:
            try:
                size = int(pax["size"])
            except ValueError:
                raise LayerRejected("has a malformed pax size") from None
            if size < 0:
                raise LayerRejected("has a tar entry with a negative size")
        if size > self._limits.max_layer_bytes:
            raise LayerRejected(f"has a tar entry of {size} bytes, more than the layer may hold")
        name = _text(block[0:100])
        if block[257:265] == b"ustar\x0000" and block[345]:
            name = _text(block[345:500]) + "/" + name
        name = pax.get("path", long_name if long_name is not None else name)
        linkname = ""
        if flag in (b"1", b"2"):
            link = long_link if long_link is not None else _text(block[157:257])
            linkname = pax.get("linkpath", link)
        kind = _kind(flag, name)
        if flag in _HEADER_ONLY:  # links, devices, fifos, directories: no data follows
            size = 0
        self._left, self._pad = size, -size % BLOCK
        mode = _number(block[100:108]) & 0o7777 if kind is Kind.FILE else 0
        return TarEntry(name, kind, size, mode, linkname)


def _kind(flag: bytes, name: str) -> Kind:
    if flag == b"5" or (flag in (b"\0", b"0") and name.endswith("/")):
        return Kind.DIR
    kind = _KINDS.get(flag)
    return Kind(kind) if kind else Kind.OTHER


def _pax(data: bytes) -> dict[str, str]:
    """Records "<length> <key>=<value>\\n"; LayerRejected if one is malformed."""
    records: dict[str, str] = {}
    pos = 0
    while pos < len(data):
        if data[pos] == 0:  # NUL padding after the last record
            break
        space = data.find(b" ", pos, pos + 20)
        try:
            length = int(data[pos:space]) if space > pos else 0
        except ValueError:
            length = 0
        record = data[pos : pos + length]
        if length <= space - pos or len(record) < length or not record.endswith(b"\n"):
            raise LayerRejected("has a malformed pax header record")
        key, sep, value = record[space - pos + 1 : -1].partition(b"=")
        if not sep:
            raise LayerRejected("has a malformed pax header record")
        name = key.decode("utf-8", "replace")
        if name in PAX_KEYS:  # others (times, owners, xattrs) are not kept: bounded memory
            records[name] = value.decode("utf-8", "replace")
        pos += length
    return records
