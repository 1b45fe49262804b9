"""Layers built in memory for the scanner's tests: real tar streams (Python's tarfile),
compressed with gzip or zstd, and hand-made headers for the malformed ones."""

from __future__ import annotations

import gzip
import io
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass

import zstandard


@dataclass(frozen=True)
class E:
    """One entry: kind is file, dir, symlink, hardlink, char, fifo."""

    name: str
    data: bytes = b""
    kind: str = "file"
    link: str = ""
    mode: int = 0o644


def file(name: str, data: bytes | str, mode: int = 0o644) -> E:
    return E(name, data.encode() if isinstance(data, str) else data, mode=mode)


def symlink(name: str, target: str) -> E:
    return E(name, kind="symlink", link=target)


def hardlink(name: str, target: str) -> E:
    return E(name, kind="hardlink", link=target)


def directory(name: str) -> E:
    return E(name, kind="dir", mode=0o755)


TYPES = {
    "file": tarfile.REGTYPE,
    "dir": tarfile.DIRTYPE,
    "symlink": tarfile.SYMTYPE,
    "hardlink": tarfile.LNKTYPE,
    "char": tarfile.CHRTYPE,
    "fifo": tarfile.FIFOTYPE,
}


def tar(entries: Iterable[E], fmt: int = tarfile.PAX_FORMAT) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=fmt) as archive:
        for entry in entries:
            info = tarfile.TarInfo(entry.name)
            info.type = TYPES[entry.kind]
            info.mode = entry.mode
            info.linkname = entry.link
            if entry.kind == "file":
                info.size = len(entry.data)
                archive.addfile(info, io.BytesIO(entry.data))
            else:
                archive.addfile(info)
    return out.getvalue()


def compress(data: bytes, how: str) -> bytes:
    if how == "gzip":
        return gzip.compress(data, compresslevel=1, mtime=0)
    if how == "zstd":
        return zstandard.ZstdCompressor(level=3).compress(data)
    return data


def layer(entries: Iterable[E], how: str = "gzip") -> io.BytesIO:
    return io.BytesIO(compress(tar(entries), how))


def image(*layers: Iterable[E], how: str = "gzip") -> list[tuple[str, io.BytesIO]]:
    return [(f"sha256:{n:064x}", layer(entries, how)) for n, entries in enumerate(layers, 1)]


def header(
    name: bytes = b"file",
    size: bytes = b"00000000000",
    typeflag: bytes = b"0",
    linkname: bytes = b"",
    *,
    checksum: bool = True,
) -> bytes:
    """A ustar header block with chosen raw fields (for malformed archives)."""
    block = bytearray(512)
    block[0 : len(name)] = name[:100]
    block[100:108] = b"0000644\0"
    block[108:116] = b"0000000\0"
    block[116:124] = b"0000000\0"
    block[124 : 124 + len(size)] = size[:12]
    block[136:148] = b"00000000000\0"
    block[156:157] = typeflag
    block[157 : 157 + len(linkname)] = linkname[:100]
    block[257:265] = b"ustar\x0000"
    block[148:156] = b" " * 8
    if checksum:
        block[148:156] = b"%06o\0 " % sum(block)
    return bytes(block)
