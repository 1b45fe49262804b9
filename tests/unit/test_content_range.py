"""parse_content_range (content/uploads.py): the upload chunk range `<start>-<end>`."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from portside.content.uploads import ContentRange, parse_content_range
from portside.errors import RegistryError


@pytest.mark.parametrize(
    ("value", "start", "end"),
    [
        ("0-0", 0, 0),
        ("0-99", 0, 99),
        ("100-199", 100, 199),
        (" 5-9 ", 5, 9),
        ("bytes 0-99/*", 0, 99),
        ("bytes 0-99/100", 0, 99),
        ("bytes=0-99", 0, 99),
    ],
)
def test_parse(value: str, start: int, end: int) -> None:
    assert parse_content_range(value) == ContentRange(start, end)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "abc",
        "5",
        "-5",
        "5-",
        "a-b",
        "1-x",
        "x-1",
        "1.0-2",
        "+1-2",
        "\u00b2-3",
        "0-\u00b2",
        "--",
    ],
)
def test_invalid(value: str) -> None:
    with pytest.raises(RegistryError) as raised:
        parse_content_range(value)
    assert raised.value.status in (400, 416)


def test_end_before_start() -> None:
    with pytest.raises(RegistryError) as raised:
        parse_content_range("9-3")
    assert raised.value.status in (400, 416)


@given(st.text(max_size=30))
@example("\u00b2-3")
@example("1-\u00b2")
def test_never_crashes(value: str) -> None:
    parsed = outcome(value)
    if isinstance(parsed, RegistryError):
        assert parsed.status in (400, 416)
    else:
        assert 0 <= parsed.start <= parsed.end


def outcome(value: str) -> ContentRange | RegistryError:
    try:
        return parse_content_range(value)
    except RegistryError as error:
        return error


@given(st.integers(0, 2**63), st.integers(0, 2**40))
def test_roundtrip(start: int, length: int) -> None:
    assert parse_content_range(f"{start}-{start + length}") == ContentRange(start, start + length)
