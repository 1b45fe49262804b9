"""Sizes as people write and read them: `500MB`, `10GiB`, `2T` or plain bytes in;
`1.5 GiB` out. Shared by the CLI and the web UI."""

from __future__ import annotations

import re

MAX_SIZE = 2**63  # what the database's BIGINT holds
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([kmgtp]?)(i?)b?", re.IGNORECASE)


def parse_size(text: str) -> int:
    """Bytes; decimal units are powers of 1000, `Ki`/`Mi`/... of 1024. ValueError in
    words for anything else."""
    match = _SIZE.fullmatch(text.strip())
    if not match:
        raise ValueError(f"{text.strip()!r} is not a size such as 500MB, 10GiB or 1073741824")
    number, unit, binary = match.groups()
    power = "kmgtp".index(unit.lower()) + 1 if unit else 0
    size = float(number) * (1024 if binary else 1000) ** power
    if not size < MAX_SIZE:  # also inf, from a number too long for a float
        raise ValueError(f"{text.strip()[:40]!r} is too large a size (at most 8 EiB)")
    return int(size)


def format_size(size: int | None) -> str:
    if size is None:
        return "-"
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return str(size)
