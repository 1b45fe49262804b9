"""Jinja filters: sizes, times and digests as people read them."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from markupsafe import Markup, escape

_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def size(value: Any) -> str:
    if value is None:
        return "—"
    amount = float(value)
    for unit in _UNITS:
        if abs(amount) < 1024 or unit == _UNITS[-1]:
            return f"{int(amount)} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    raise AssertionError("unreachable")


def _parse(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(str(value))
        except ValueError:
            return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def ago(value: Any, now: datetime | None = None) -> str:
    """'3 minutes ago'; '—' for never."""
    moment = _parse(value)
    if moment is None:
        return "never"
    seconds = ((now or datetime.now(UTC)) - moment).total_seconds()
    future = seconds < 0
    seconds = abs(seconds)
    for unit, span in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= span:
            count = int(seconds // span)
            words = f"{count} {unit}{'s' if count != 1 else ''}"
            return f"in {words}" if future else f"{words} ago"
    return "just now"


def when(value: Any) -> Markup:
    """A <time> element: relative text, the exact UTC time in its title."""
    moment = _parse(value)
    if moment is None:
        return Markup('<span class="muted">never</span>')
    exact = moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return Markup('<time datetime="{}" title="{}">{}</time>').format(
        moment.isoformat(), exact, ago(moment)
    )


def exact_time(value: Any) -> str:
    moment = _parse(value)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if moment else "—"


def short_digest(value: Any) -> str:
    """sha256:0123456789ab (12 hex digits, as docker shows image ids)."""
    text = str(value or "")
    algorithm, _, hexdigits = text.partition(":")
    return f"{algorithm}:{hexdigits[:12]}" if hexdigits else text[:19]


def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=False, ensure_ascii=False)


def platform(value: Any) -> str:
    if not isinstance(value, dict):
        return ""
    parts = [value.get("os") or "?", value.get("architecture") or "?"]
    if value.get("variant"):
        parts.append(str(value["variant"]))
    return "/".join(str(p) for p in parts)


def nl(value: Any) -> Markup:
    """Text with line breaks kept (escaped first)."""
    return Markup("<br>").join(escape(line) for line in str(value).splitlines())


FILTERS = {
    "size": size,
    "ago": ago,
    "when": when,
    "exact_time": exact_time,
    "short_digest": short_digest,
    "pretty_json": pretty_json,
    "platform": platform,
    "nl": nl,
}
