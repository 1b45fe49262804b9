"""Digest.parse against the OCI image-spec digest grammar and registered algorithms."""

from __future__ import annotations

import hashlib
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portside.digest import Digest, is_digest
from portside.errors import DigestInvalid

# OCI image-spec descriptor.md: digest grammar and the registered algorithms' encodings.
GRAMMAR = re.compile(r"[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+")
REGISTERED = {"sha256": re.compile(r"[a-f0-9]{64}"), "sha512": re.compile(r"[a-f0-9]{128}")}


def spec_accepts(text: str) -> bool:
    if not GRAMMAR.fullmatch(text):
        return False
    algorithm, _, encoded = text.partition(":")
    pattern = REGISTERED.get(algorithm)
    return pattern is not None and pattern.fullmatch(encoded) is not None


SHA256_EMPTY = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def test_parse_sha256() -> None:
    digest = Digest.parse(SHA256_EMPTY)
    assert digest.algorithm == "sha256"
    assert digest.hex == SHA256_EMPTY[7:]
    assert str(digest) == SHA256_EMPTY


def test_parse_sha512() -> None:
    text = "sha512:" + hashlib.sha512(b"x").hexdigest()
    digest = Digest.parse(text)
    assert digest.algorithm == "sha512"
    assert str(digest) == text


def test_of() -> None:
    assert str(Digest.of(b"")) == SHA256_EMPTY
    assert str(Digest.of(b"abc", "sha512")) == "sha512:" + hashlib.sha512(b"abc").hexdigest()
    assert Digest.of(b"abc") == Digest.parse("sha256:" + hashlib.sha256(b"abc").hexdigest())


def test_hasher_matches_algorithm() -> None:
    for algorithm in ("sha256", "sha512"):
        digest = Digest.of(b"data", algorithm)
        hasher = digest.hasher()
        hasher.update(b"data")
        assert hasher.hexdigest() == digest.hex


@pytest.mark.parametrize(
    "text",
    [
        "",
        "sha256",
        "sha256:",
        ":" + "a" * 64,
        "md5:d41d8cd98f00b204e9800998ecf8427e",
        "sha1:da39a3ee5e6b4b0d3255bfef95601890afd80709",
        "sha256:" + "a" * 63,
        "sha256:" + "a" * 65,
        "sha256:" + "A" * 64,
        "sha256:" + "g" * 64,
        "SHA256:" + "a" * 64,
        "sha512:" + "a" * 64,
        "sha256:" + "a" * 128,
        "sha256:" + "a" * 64 + "\n",
        "sha256:" + "a" * 64 + " ",
        " sha256:" + "a" * 64,
        "sha256::" + "a" * 64,
        "sha256+b64u:" + "a" * 64,
        "sha256:" + "a" * 32 + "/" + "a" * 31,
    ],
)
def test_parse_rejects(text: str) -> None:
    with pytest.raises(DigestInvalid) as raised:
        Digest.parse(text)
    assert raised.value.code == "DIGEST_INVALID"
    assert raised.value.status == 400
    assert raised.value.message


def test_unsupported_algorithm_message_names_it() -> None:
    with pytest.raises(DigestInvalid) as raised:
        Digest.parse("md5:d41d8cd98f00b204e9800998ecf8427e")
    assert "md5" in raised.value.message


def test_is_digest() -> None:
    assert is_digest(SHA256_EMPTY)
    assert is_digest("anything:else")
    assert not is_digest("latest")


digest_like = st.builds(
    lambda alg, enc: f"{alg}:{enc}",
    st.sampled_from(["sha256", "sha512", "md5", "sha256+b64", "SHA256", "a.b", "", "sha-256"]),
    st.text("0123456789abcdefABCDEFxyz=_-:\n ", min_size=0, max_size=130),
)
valid_digests = st.one_of(
    st.binary().map(lambda b: "sha256:" + hashlib.sha256(b).hexdigest()),
    st.binary().map(lambda b: "sha512:" + hashlib.sha512(b).hexdigest()),
)


@given(st.one_of(st.text(max_size=150), digest_like, valid_digests))
def test_parse_agrees_with_spec(text: str) -> None:
    try:
        digest = Digest.parse(text)
    except DigestInvalid:
        assert not spec_accepts(text), text
    else:
        assert spec_accepts(text), text
        assert str(digest) == text


@given(valid_digests)
def test_valid_digests_roundtrip(text: str) -> None:
    assert str(Digest.parse(text)) == text
