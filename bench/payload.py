"""Synthetic blob content: unique per nonce, generated on the fly from one random segment."""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Iterator

MiB = 1 << 20
GiB = 1 << 30
SEGMENT = 8 * MiB

_BASE: bytes | None = None


def _base() -> bytes:
    global _BASE  # noqa: PLW0603 - one random segment shared (read-only) by every payload
    if _BASE is None:
        _BASE = os.urandom(SEGMENT)
    return _BASE


class Payload:
    """`size` bytes cut in 8 MiB segments; each segment starts with (nonce, index).

    The data is never held in memory in full: `segments()` patches a private 8 MiB
    buffer in place and yields it, so a consumer must finish with one segment before
    asking for the next one.
    """

    def __init__(self, size: int, nonce: int) -> None:
        self.size = size
        self.nonce = nonce
        self._buf = bytearray(_base())
        self._digest: str | None = None

    def segments(self) -> Iterator[memoryview]:
        mv = memoryview(self._buf)
        offset = 0
        index = 0
        while offset < self.size:
            n = min(SEGMENT, self.size - offset)
            struct.pack_into("<QQ", self._buf, 0, self.nonce, index)
            yield mv[:n]
            offset += n
            index += 1

    @property
    def digest(self) -> str:
        if self._digest is None:
            h = hashlib.sha256()
            for seg in self.segments():
                h.update(seg)
            self._digest = "sha256:" + h.hexdigest()
        return self._digest


def small_blob(data: bytes) -> tuple[bytes, str]:
    return data, "sha256:" + hashlib.sha256(data).hexdigest()
