"""Repository names and tags against the distribution spec's regular expressions."""

from __future__ import annotations

import re

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from portside.errors import NameInvalid, TagInvalid
from portside.reference import is_valid_tag, validate_name, validate_tag

# OCI distribution spec, "Pulling manifests": <name> and <reference> (tag) grammars.
SPEC_NAME = re.compile(r"[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*")
SPEC_TAG = re.compile(r"[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}")
NAME_LIMIT = 255


def spec_name(name: str) -> bool:
    return len(name) <= NAME_LIMIT and SPEC_NAME.fullmatch(name) is not None


def name_ok(name: str) -> bool:
    try:
        assert validate_name(name) == name
    except NameInvalid:
        return False
    return True


def tag_ok(tag: str) -> bool:
    try:
        assert validate_tag(tag) == tag
    except TagInvalid:
        assert not is_valid_tag(tag)
        return False
    assert is_valid_tag(tag)
    return True


@pytest.mark.parametrize(
    "name",
    ["a", "0", "library/ubuntu", "a/b/c/d", "a-b", "a--b", "a_b", "a__b", "a.b", "x" * 255],
)
def test_valid_names(name: str) -> None:
    assert name_ok(name)


@pytest.mark.parametrize(
    "name",
    [
        "",
        "A",
        "library/Ubuntu",
        "a..b",
        "a___b",
        "a._b",
        "-a",
        "a-",
        "_a",
        "a_",
        ".a",
        "/a",
        "a/",
        "a//b",
        "a b",
        "a\n",
        "\na",
        "a\nb",
        "é",
        "x" * 256,
        "/".join(["abc"] * 64) + "/abcd",  # 260 characters of valid components
    ],
)
def test_invalid_names(name: str) -> None:
    assert not name_ok(name)


def test_name_error_is_name_invalid() -> None:
    with pytest.raises(NameInvalid) as raised:
        validate_name("Bad")
    assert raised.value.code == "NAME_INVALID"
    assert raised.value.status == 400


@pytest.mark.parametrize("tag", ["latest", "v1.0.0", "_x", "0", "A" * 128, "a-b_c.d", "UPPER"])
def test_valid_tags(tag: str) -> None:
    assert tag_ok(tag)


@pytest.mark.parametrize(
    "tag", ["", ".a", "-a", "A" * 129, "a+b", "a:b", "a/b", "a b", "latest\n", "\nlatest", "é"]
)
def test_invalid_tags(tag: str) -> None:
    assert not tag_ok(tag)


def test_tag_error_is_tag_invalid() -> None:
    with pytest.raises(TagInvalid) as raised:
        validate_tag("-bad")
    assert raised.value.code == "TAG_INVALID"
    assert raised.value.status == 400


name_alphabet = st.sampled_from(list("ab09._-/A \n"))
tag_alphabet = st.sampled_from(list("aZ09._-+:/ \n"))


@given(st.one_of(st.text(name_alphabet, max_size=20), st.text(max_size=20)))
@example("a\n")
@example("a/b\n")
def test_validate_name_agrees_with_spec(name: str) -> None:
    assert name_ok(name) == spec_name(name), repr(name)


@st.composite
def spec_names(draw: st.DrawFn) -> str:
    """Names built from the spec grammar: components of alphanumerics joined by separators."""
    components = []
    for _ in range(draw(st.integers(1, 4))):
        words = draw(st.lists(st.text("az09", min_size=1, max_size=5), min_size=1, max_size=3))
        component = words[0]
        for word in words[1:]:
            component += draw(st.sampled_from([".", "_", "__", "-", "---"])) + word
        components.append(component)
    return "/".join(components)


@given(spec_names())
def test_spec_names_are_valid(name: str) -> None:
    assert name_ok(name), repr(name)


@given(st.one_of(st.text(tag_alphabet, max_size=140), st.text(max_size=20)))
@example("latest\n")
def test_validate_tag_agrees_with_spec(tag: str) -> None:
    assert tag_ok(tag) == (SPEC_TAG.fullmatch(tag) is not None), repr(tag)


@given(st.from_regex(SPEC_TAG, fullmatch=True))
def test_spec_tags_are_valid(tag: str) -> None:
    assert tag_ok(tag), repr(tag)
