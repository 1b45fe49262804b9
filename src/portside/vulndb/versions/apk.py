"""Alpine package version ordering, as apk-tools 2.14/3 (`apk version -t`) decides it.

A version is `digits{.digits}[letter]{_suffix[digits]}[~hash][-r<digits>]`, e.g.
"1.2.3a_rc2-r1". It is read as tokens, each compared with the token in the same place
of the other version: numbers as numbers, except that a dotted number with a leading
zero in either version compares as a string (`1.01 < 1.1`, `1.001 < 1.01`); a letter by
its character; a suffix by its rank (`_alpha < _beta < _pre < _rc < (none) < _cvs <
_svn < _git < _hg < _p`); a commit hash as a string. When all shared tokens are equal
and one version goes on, it is the greater one unless it goes on with a pre-release
suffix; otherwise, of two different next tokens, the earlier kind in the grammar is the
greater (`1.0_rc1 < 1.0 < 1.0-r1 < 1.0_p1 < 1.0.1`, `1.0a < 1.0.1`).
"""

from __future__ import annotations

from dataclasses import dataclass

from portside.vulndb.versions.errors import VersionError

# Token kinds, in grammar order: each token may only be followed by a later kind,
# except that digits may follow digits and suffixes may follow suffix numbers.
INITIAL, DIGIT, LETTER, SUFFIX, SUFFIX_NO, HASH, REVISION, END, INVALID = range(9)
# Suffix ranks; NONE (no suffix) sits between the pre-release and the post-release ones.
_SUFFIXES = {"alpha": 0, "beta": 1, "pre": 2, "rc": 3, "cvs": 5, "svn": 6, "git": 7, "hg": 8}
_SUFFIXES["p"] = 9
_NONE = 4
_HEX = frozenset("0123456789abcdefABCDEF")


@dataclass(slots=True)
class _Token:
    kind: int
    text: str = ""
    rank: int = 0


def _span(text: str, at: int, allowed: frozenset[str] | str) -> int:
    end = at
    while end < len(text) and text[end] in allowed:
        end += 1
    return end


_DIGITS = "0123456789"
_LOWER = "abcdefghijklmnopqrstuvwxyz"


def _tokens(version: str) -> list[_Token]:
    """Every token of `version`, ending with END or INVALID."""
    text, at = version, _span(version, 0, _DIGITS)
    tokens = [_Token(INITIAL if at else INVALID, text[:at])]
    while tokens[-1].kind < END:
        previous = tokens[-1].kind
        if at >= len(text):
            tokens.append(_Token(END))
            break
        char = text[at]
        token = _Token(INVALID)
        if "a" <= char <= "z" and previous <= DIGIT:
            token = _Token(LETTER, char)
            at += 1
        elif (char == "." and previous <= DIGIT) or ("0" <= char <= "9"):
            if char == ".":
                at += 1
            kind = {INITIAL: DIGIT, DIGIT: DIGIT, SUFFIX: SUFFIX_NO}.get(previous, INVALID)
            end = _span(text, at, _DIGITS)
            if kind != INVALID and end > at:
                token = _Token(kind, text[at:end])
            at = end
        elif char == "_" and previous <= SUFFIX_NO:
            end = _span(text, at + 1, _LOWER)
            rank = _SUFFIXES.get(text[at + 1 : end])
            if rank is not None:
                token = _Token(SUFFIX, text[at + 1 : end], rank)
            at = end
        elif char == "~" and previous < HASH:
            end = _span(text, at + 1, _HEX)
            if end > at + 1:
                token = _Token(HASH, text[at + 1 : end])
            at = end
        elif char == "-" and previous < REVISION and text.startswith("-r", at):
            end = _span(text, at + 2, _DIGITS)
            if end > at + 2:
                token = _Token(REVISION, text[at + 2 : end])
            at = end
        tokens.append(token)
    return tokens


def validate(version: str) -> list[_Token]:
    tokens = _tokens(version)
    if tokens[-1].kind != END:
        raise VersionError(f"apk version {version!r} is not valid")
    return tokens


def _compare_token(a: _Token, b: _Token) -> int:
    if a.kind in (LETTER, HASH) or (a.kind == DIGIT and (a.text[0] == "0" or b.text[0] == "0")):
        return (a.text > b.text) - (a.text < b.text)
    if a.kind == SUFFIX:
        na, nb = a.rank, b.rank
    else:
        na, nb = int(a.text), int(b.text)
    return (na > nb) - (na < nb)


def compare(a: str, b: str) -> int:
    """-1, 0 or 1 as `a` sorts before, with or after `b`."""
    ta, tb = validate(a), validate(b)
    index = 0
    while ta[index].kind == tb[index].kind and ta[index].kind < END:
        found = _compare_token(ta[index], tb[index])
        if found:
            return found
        index += 1
    na, nb = ta[index], tb[index]
    if na.kind == nb.kind:
        return 0
    if na.kind == SUFFIX and na.rank < _NONE:
        return -1
    if nb.kind == SUFFIX and nb.rank < _NONE:
        return 1
    return -1 if na.kind > nb.kind else 1
