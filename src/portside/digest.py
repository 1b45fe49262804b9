"""Content digests: parsing `alg:hex`, and hashing streams with the matching algorithm."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from portside.errors import DigestInvalid

if TYPE_CHECKING:
    from hashlib import _Hash

# Algorithm -> length of its lowercase hex encoding (OCI image-spec "Registered algorithms").
ALGORITHMS: dict[str, int] = {"sha256": 64, "sha512": 128}
_LOWER_HEX = re.compile(r"[0-9a-f]+")
_GRAMMAR = re.compile(r"[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+")
_VALID = re.compile(r"sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128}")


@dataclass(frozen=True, slots=True)
class Digest:
    algorithm: str
    hex: str

    @classmethod
    def parse(cls, text: str) -> Digest:
        """Parse and validate a digest string; raise DIGEST_INVALID with the reason otherwise."""
        valid = _VALID.fullmatch(text)
        if valid is not None:  # the common case, in one regex
            algorithm, _, encoded = text.partition(":")
            return cls(algorithm, encoded)
        if not _GRAMMAR.fullmatch(text):
            raise DigestInvalid(f"invalid digest {text[:200]!r}: expected 'algorithm:hex'")
        algorithm, _, encoded = text.partition(":")
        length = ALGORITHMS.get(algorithm)
        if length is None:
            raise DigestInvalid(f"unsupported digest algorithm {algorithm!r}: use sha256 or sha512")
        if len(encoded) != length or not _LOWER_HEX.fullmatch(encoded):
            raise DigestInvalid(
                f"invalid {algorithm} digest: expected {length} lowercase hex characters"
            )
        return cls(algorithm, encoded)

    @classmethod
    def of(cls, data: bytes, algorithm: str = "sha256") -> Digest:
        return cls(algorithm, hashlib.new(algorithm, data).hexdigest())

    def hasher(self) -> _Hash:
        return hashlib.new(self.algorithm)

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hex}"


def is_valid_digest(text: str) -> bool:
    """True if `Digest.parse(text)` would succeed."""
    return _VALID.fullmatch(text) is not None


def is_digest(reference: str) -> bool:
    """True if a manifest reference is meant as a digest (it contains ':'; tags cannot)."""
    return ":" in reference
