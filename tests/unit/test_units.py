"""Sizes as typed in the CLI and the web UI."""

from __future__ import annotations

import pytest

from portside.units import format_size, parse_size


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("0", 0),
        ("1073741824", 1073741824),
        ("500MB", 500_000_000),
        ("10GiB", 10 * 1024**3),
        ("10 GiB", 10 * 1024**3),
        ("1.5 TiB", int(1.5 * 1024**4)),
        ("2t", 2 * 1000**4),
        ("7 kb", 7000),
    ],
)
def test_sizes_people_write(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "ten", "-1", "1 XB", "1e3", "²", "9" * 5000, "9000 PiB"])
def test_what_is_not_a_size_is_said_in_words(text: str) -> None:
    with pytest.raises(ValueError, match="size"):
        parse_size(text)


def test_formatting() -> None:
    assert format_size(None) == "-"
    assert format_size(512) == "512 B"
    assert format_size(10 * 1024**3) == "10.0 GiB"
