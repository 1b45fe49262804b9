"""A per-rule bandwidth limit: a stream of chunks slowed to at most a rate, measured
over the whole stream (a token bucket that starts empty: bursts never exceed one
chunk)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator


def limited(
    chunks: Iterator[bytes],
    bytes_per_second: float | None,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[bytes]:
    if not bytes_per_second:
        yield from chunks
        return
    started = clock()
    sent = 0
    try:
        for chunk in chunks:
            sent += len(chunk)
            ahead = sent / bytes_per_second - (clock() - started)
            if ahead > 0:
                sleep(ahead)
            yield chunk
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
