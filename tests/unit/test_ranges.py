"""parse_range (api/blobs.py): single byte ranges per RFC 9110 section 14."""

from __future__ import annotations

import re

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from portside.api.blobs import parse_range
from portside.errors import RangeUnsatisfiable

SIZE = 100


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-9", (0, 9)),
        ("bytes=0-0", (0, 0)),
        ("bytes=99-99", (99, 99)),
        ("bytes=10-", (10, 99)),
        ("bytes=0-", (0, 99)),
        ("bytes=-10", (90, 99)),
        ("bytes=-100", (0, 99)),
        ("bytes=-1000", (0, 99)),
        ("bytes=50-1000", (50, 99)),
        ("Bytes=1-2", (1, 2)),
    ],
)
def test_satisfiable(header: str, expected: tuple[int, int]) -> None:
    assert parse_range(header, SIZE) == expected


@pytest.mark.parametrize("header", ["bytes=100-", "bytes=100-200", "bytes=1000-", "bytes=-0"])
def test_unsatisfiable(header: str) -> None:
    with pytest.raises(RangeUnsatisfiable) as raised:
        parse_range(header, SIZE)
    assert raised.value.status == 416
    assert raised.value.headers["Content-Range"] == f"bytes */{SIZE}"


@pytest.mark.parametrize("header", ["bytes=0-", "bytes=-1", "bytes=0-0"])
def test_empty_representation_is_unsatisfiable(header: str) -> None:
    with pytest.raises(RangeUnsatisfiable) as raised:
        parse_range(header, 0)
    assert raised.value.headers["Content-Range"] == "bytes */0"


@pytest.mark.parametrize(
    "header",
    [
        "bytes=0-1,3-4",
        "bytes=0-1, 5-",
        "items=0-1",
        "bytes",
        "bytes=",
        "bytes=-",
        "bytes=abc",
        "bytes=1-x",
        "bytes=x-1",
        "bytes=1x-2",
        "bytes=1.5-2",
        "bytes=+1-2",
        "bytes=0x1-2",
        "bytes=--1",
        "bytes=1--2",
        "bytes=\u00b2-3",
        "bytes=1-\u00b2",
        "=0-1",
    ],
)
def test_ignored(header: str) -> None:
    """Several ranges, another unit, or a range that does not parse: serve it all."""
    assert parse_range(header, SIZE) is None


def test_last_before_first_is_ignored_or_rejected() -> None:
    try:
        result = parse_range("bytes=5-3", SIZE)
    except RangeUnsatisfiable:
        return
    assert result is None


RANGE = re.compile(r"bytes=(?:([0-9]+)-([0-9]*)|-([0-9]+))", re.IGNORECASE)


def reference(header: str, size: int) -> tuple[int, int] | str | None:
    """A straightforward RFC 9110 reading: "416" for unsatisfiable, None for ignored."""
    match = RANGE.fullmatch(header.strip())
    if match is None:
        return None
    first, last, suffix = match.groups()
    if suffix is not None:
        n = int(suffix)
        return "416" if n == 0 or size == 0 else (max(size - n, 0), size - 1)
    start = int(first)
    if last and int(last) < start:
        return "invalid"
    if start >= size:
        return "416"
    return start, min(int(last), size - 1) if last else size - 1


range_text = st.one_of(
    st.builds(
        "bytes={}-{}".format,
        st.one_of(
            st.integers(0, 300).map(str), st.just(""), st.text("0123456789x+-. ", max_size=4)
        ),
        st.one_of(
            st.integers(0, 300).map(str), st.just(""), st.text("0123456789x+-. ", max_size=4)
        ),
    ),
    st.text(max_size=20),
)


@given(range_text, st.integers(0, 200))
@example("bytes=x-1", 10)
@example("bytes=\u00b2-1", 10)
def test_parse_range_never_crashes_and_matches_rfc(header: str, size: int) -> None:
    expected = reference(header, size)
    result = outcome(header, size)
    if isinstance(result, RangeUnsatisfiable):
        assert expected in ("416", "invalid"), (header, size, expected)
        assert result.headers["Content-Range"] == f"bytes */{size}"
        return
    assert expected != "416", (header, size, result)
    if expected == "invalid":
        assert result is None
        return
    assert result == expected, (header, size)
    if result is not None:
        start, end = result
        assert 0 <= start <= end < size


def outcome(header: str, size: int) -> tuple[int, int] | RangeUnsatisfiable | None:
    """parse_range's result, or the 416 it raised (any other exception propagates)."""
    try:
        return parse_range(header, size)
    except RangeUnsatisfiable as error:
        return error
