"""When to try a request again and how long to wait: connection failures, 429 and 5xx
answers are retried with exponential backoff and full jitter, a `Retry-After` (seconds or
an HTTP date) is honoured up to `max_wait`, and the number of attempts is bounded."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

RETRIED_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 5  # in all, the first included
    base_seconds: float = 0.5
    max_wait: float = 30.0

    def wait(self, attempt: int, retry_after: str | None = None) -> float:
        """Seconds to wait after failed attempt number `attempt` (1 = the first)."""
        asked = parse_retry_after(retry_after)
        if asked is not None:
            return min(asked, self.max_wait)
        ceiling = min(self.max_wait, self.base_seconds * 2 ** (attempt - 1))
        return random.uniform(0, ceiling)  # noqa: S311 - jitter, not a secret


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """`Retry-After` in seconds (RFC 9110: delay-seconds or an HTTP date), None if absent
    or unreadable; a date in the past is 0."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
