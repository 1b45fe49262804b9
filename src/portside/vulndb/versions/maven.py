"""Maven version ordering, as Maven's ComparableVersion (3.x) decides it.

A version is split, lower-cased, into items at `.` and `-` and where digits meet
letters; `-` and a digit/letter change start a nested list. Numbers compare as numbers;
qualifiers rank `alpha` (`a1`) < `beta` (`b1`) < `milestone` (`m1`) < `rc` = `cr` <
`snapshot` < release (`""`, `ga`, `final`, `release`) < `sp`, and unknown qualifiers
after those, alphabetically. A number beats a qualifier or a list; a list beats a
qualifier. Trailing zeros and release qualifiers are dropped from each list
(`1.0.0 == 1`, `1-ga == 1`), and a missing item compares as such a "null" item: so
`1-alpha < 1 < 1-sp < 1.0.1` and `1.0-rc1 < 1.0`.

Like Maven's, this ordering is not transitive for odd mixes of qualifiers and nested
lists ("2.spb1" < "2rc" < "2ga-" < "2.spb1"); for the versions artifacts really carry it
is the order Maven resolves dependencies by, which is what advisories assume.
"""

from __future__ import annotations

from dataclasses import dataclass

_QUALIFIERS = ["alpha", "beta", "milestone", "rc", "snapshot", "", "sp"]
_ALIASES = {"ga": "", "final": "", "release": "", "cr": "rc"}
_RELEASE = _QUALIFIERS.index("")


def _qualifier_key(text: str) -> tuple[int, str]:
    if text in _QUALIFIERS:
        return (_QUALIFIERS.index(text), "")
    return (len(_QUALIFIERS), text)


@dataclass(frozen=True, slots=True)
class _Int:
    value: int


@dataclass(frozen=True, slots=True)
class _Str:
    value: str


def _string_item(text: str, followed_by_digit: bool) -> _Str:
    if followed_by_digit and len(text) == 1:
        text = {"a": "alpha", "b": "beta", "m": "milestone"}.get(text, text)
    return _Str(_ALIASES.get(text, text))


def _item(text: str, digits: bool, followed_by_digit: bool) -> _Int | _Str:
    return _Int(int(text)) if digits else _string_item(text, followed_by_digit)


def _is_null(item: object) -> bool:
    if isinstance(item, _Int):
        return item.value == 0
    if isinstance(item, _Str):
        return _qualifier_key(item.value) == (_RELEASE, "")
    return isinstance(item, list) and not item


def _normalize(items: list[object]) -> None:
    for index in range(len(items) - 1, -1, -1):
        if _is_null(items[index]):
            del items[index]
        elif not isinstance(items[index], list):
            break


def parse(version: str) -> list[object]:
    text = version.strip().lower()
    stack: list[list[object]] = [[]]

    def nest() -> None:
        """Start a list inside the current one (at `-`, and where digits meet letters)."""
        nested: list[object] = []
        stack[-1].append(nested)
        stack.append(nested)

    digits = False
    start = 0
    for index, char in enumerate(text):
        if char in ".-":
            segment = text[start:index]
            stack[-1].append(_item(segment, digits, False) if segment else _Int(0))
            start = index + 1
            if char == "-":
                nest()
        elif "0" <= char <= "9":
            if not digits and index > start:
                stack[-1].append(_string_item(text[start:index], True))
                start = index
                nest()
            digits = True
        else:
            if digits and index > start:
                stack[-1].append(_Int(int(text[start:index])))
                start = index
                nest()
            digits = False
    if len(text) > start:
        if not digits and stack[-1]:  # a trailing ".X" counts as "-X": 1.0.0.x1 < 1.0.0-x2
            nest()
        stack[-1].append(_item(text[start:], digits, False))
    for items in reversed(stack):
        _normalize(items)
    return stack[0]


def _compare(a: object, b: object) -> int:
    """ComparableVersion's Item.compareTo; None is a missing item."""
    if isinstance(a, _Int):
        if b is None:
            return 0 if a.value == 0 else 1
        if isinstance(b, _Int):
            return (a.value > b.value) - (a.value < b.value)
        return 1
    if isinstance(a, _Str):
        if b is None:
            ka, kb = _qualifier_key(a.value), (_RELEASE, "")
            return (ka > kb) - (ka < kb)
        if isinstance(b, _Str):
            ka, kb = _qualifier_key(a.value), _qualifier_key(b.value)
            return (ka > kb) - (ka < kb)
        return -1
    assert isinstance(a, list)
    if b is None:
        return 0 if not a else _compare(a[0], None)
    if isinstance(b, _Int):
        return -1
    if isinstance(b, _Str):
        return 1
    assert isinstance(b, list)
    for index in range(max(len(a), len(b))):
        left = a[index] if index < len(a) else None
        right = b[index] if index < len(b) else None
        found = -_compare(right, left) if left is None else _compare(left, right)
        if found:
            return found
    return 0


def compare(a: str, b: str) -> int:
    return _compare(parse(a), parse(b))
