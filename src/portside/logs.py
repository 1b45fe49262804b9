"""structlog set-up: JSON lines (or console) on stderr, one call per process."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from typing import Any

import structlog

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


def configure(level: str, fmt: str) -> None:
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=structlog.WriteLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )


class AccessLog:
    """The per-request log line, written without structlog's processor chain.

    At tens of thousands of requests per second the generic chain costs more than the
    request itself, so the line is formatted directly (same keys as structlog's JSON) and
    written through a buffer that is flushed at least every FLUSH_SECONDS. A killed
    process can lose at most that much access log; everything else logs unbuffered.
    """

    FLUSH_SECONDS = 0.5

    def __init__(self, fmt: str, stream: Any = None) -> None:
        self._json = fmt == "json"
        self._stream = stream or sys.stderr
        self._pending: list[str] = []
        self._flush_scheduled = False

    def write(self, **fields: Any) -> None:
        now = time.time()
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1e6):06d}Z"
        if self._json:
            line = json.dumps(
                {**fields, "event": "http.request", "level": "info", "timestamp": stamp}
            )
        else:
            line = f"{stamp} [info     ] http.request " + " ".join(
                f"{k}={v}" for k, v in fields.items()
            )
        self._pending.append(line)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            try:
                asyncio.get_running_loop().call_later(self.FLUSH_SECONDS, self.flush)
            except RuntimeError:
                self.flush()

    def flush(self) -> None:
        self._flush_scheduled = False
        if self._pending:
            lines, self._pending = self._pending, []
            self._stream.write("\n".join(lines) + "\n")
            self._stream.flush()
