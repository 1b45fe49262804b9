"""A layer's bytes as a bounded stream of its uncompressed tar.

The compression is recognised by its magic bytes (gzip 1f 8b, zstd 28 b5 2f fd, else an
uncompressed tar, whose first block must carry the ustar/GNU magic, a valid header
checksum (old v7 tars) or be a zero block; an empty blob is an empty layer), not by the
media type a client claimed. Every read counts compressed and expanded bytes and raises
`LayerRejected` when the layer expands past `max_layer_bytes` or, after
`ratio_grace_bytes`, past `max_ratio` times what was read: so a decompression bomb costs
at most those bytes of CPU time and one read's worth of memory. Decompressors never get
more input than needed for one bounded read (gzip via zlib's max_length, zstd via its
stream reader with a bounded window), so no single call can expand without bound.
"""

from __future__ import annotations

import zlib
from typing import Protocol

import zstandard

from portside.scanning.limits import LayerRejected, Limits
from portside.scanning.tar import looks_like_tar
from portside.units import format_size

CHUNK = 256 * 1024
GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
ZSTD_MAX_WINDOW = 1 << 27  # 128 MiB: zstd's own default limit, stated rather than implied


class ByteSource(Protocol):
    """What the caller hands in: a storage driver's reader, an open file, BytesIO."""

    def read(self, size: int = -1, /) -> bytes: ...


class _Counted:
    """The compressed source, counting what was read from it."""

    def __init__(self, source: ByteSource, head: bytes) -> None:
        self._source = source
        self._head = head
        self.count = len(head)

    def read(self, size: int = -1) -> bytes:
        if self._head:
            size = size if size >= 0 else len(self._head)
            data, self._head = self._head[:size], self._head[size:]
            return data
        data = self._source.read(size if size > 0 else CHUNK)
        self.count += len(data)
        return data


def _read_head(source: ByteSource, size: int) -> bytes:
    head = b""
    while len(head) < size:
        data = source.read(size - len(head))
        if not data:
            break
        head += data
    return head


class LayerStream:
    """The uncompressed tar of one layer; `read` returns at most `size` bytes."""

    def __init__(self, source: ByteSource, limits: Limits) -> None:
        self.limits = limits
        head = _read_head(source, 512)
        self._raw = _Counted(source, head)
        self.expanded = 0
        self.compression = "none"
        self._zlib: zlib._Decompress | None = None
        self._zstd: zstandard.ZstdDecompressionReader | None = None
        self._pending = b""  # gzip input not consumed yet
        if head.startswith(GZIP_MAGIC):
            self.compression = "gzip"
            self._zlib = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif head.startswith(ZSTD_MAGIC):
            self.compression = "zstd"
            dctx = zstandard.ZstdDecompressor(max_window_size=ZSTD_MAX_WINDOW)
            self._zstd = dctx.stream_reader(
                self._raw,  # type: ignore[arg-type]  # any object with read() will do
                read_size=CHUNK,
                read_across_frames=True,
            )
        elif head and not looks_like_tar(head):
            raise LayerRejected("is neither gzip, zstd nor tar (unrecognised first bytes)")

    def read(self, size: int) -> bytes:
        if self._zstd is not None:
            try:
                data = self._zstd.read(size)
            except zstandard.ZstdError as e:
                raise LayerRejected(f"is not valid zstd ({e})") from None
        elif self._zlib is not None:
            data = self._gunzip(size)
        else:
            data = self._raw.read(size)
        self._count(len(data))
        return data

    def _gunzip(self, size: int) -> bytes:
        assert self._zlib is not None
        while True:
            if self._zlib.eof:  # a member ended: another may follow (concatenated gzip)
                rest = self._zlib.unused_data + self._pending
                self._pending = b""
                if not rest:
                    rest = self._raw.read(CHUNK)
                if not rest:
                    return b""
                self._zlib = zlib.decompressobj(16 + zlib.MAX_WBITS)
                self._pending = rest
            if not self._pending:
                self._pending = self._zlib.unconsumed_tail or self._raw.read(CHUNK)
                if not self._pending:
                    raise LayerRejected("is truncated (gzip stream ends early)")
            try:
                data = self._zlib.decompress(self._pending, size)
            except zlib.error as e:
                raise LayerRejected(f"is not valid gzip ({e})") from None
            self._pending = self._zlib.unconsumed_tail
            if data:
                return data

    def _count(self, size: int) -> None:
        self.expanded += size
        limits = self.limits
        if self.expanded > limits.max_layer_bytes:
            raise LayerRejected(f"expands past {format_size(limits.max_layer_bytes)}")
        if self.expanded > limits.ratio_grace_bytes and self.expanded > limits.max_ratio * max(
            self._raw.count, 1
        ):
            raise LayerRejected(
                f"expands more than {limits.max_ratio} times its compressed size "
                f"({format_size(self._raw.count)} to over {format_size(self.expanded)}): "
                "a decompression bomb?"
            )

    def drain(self) -> None:
        """Read to the end (what follows the tar's end marker), so a broken gzip trailer
        or trailing garbage is noticed; bounded like every read."""
        while self.read(CHUNK):
            pass

    @property
    def compressed(self) -> int:
        return self._raw.count
