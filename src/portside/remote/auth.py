"""Authenticating to a peer registry: the challenge in `WWW-Authenticate`, and Docker
token auth's tokens cached per scope until they expire.

A peer that wants Basic says `Basic realm=...`; we then send the credentials with every
request. A peer that wants a token says `Bearer realm="https://auth.example/token",
service="registry.example",scope="repository:app:pull"`; we ask the realm for a token for
the scopes the request needs (with Basic credentials, or anonymously) and send it as
`Authorization: Bearer`. Tokens are kept per (realm, service, scopes) until shortly
before `expires_in` runs out (60 s when the token server does not say, as the spec
defaults), so a run of thousands of requests fetches a handful of tokens.
"""

from __future__ import annotations

import base64
import re
import threading
import time
from dataclasses import dataclass

_PARAM = re.compile(r'\s*([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,"]*))\s*,?')
_SCHEME = re.compile(r"\s*([A-Za-z][A-Za-z0-9_-]*)(?:\s+|$)")
DEFAULT_LIFETIME = 60.0  # seconds, when the token server gives no expires_in
_MARGIN = 0.9  # renew once this share of a token's lifetime has passed


@dataclass(frozen=True, slots=True)
class Credentials:
    username: str
    password: str

    def basic(self) -> str:
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode("ascii")


@dataclass(frozen=True, slots=True)
class Challenge:
    scheme: str  # lowercased: "bearer" or "basic" (others are not ours to answer)
    params: dict[str, str]

    @property
    def realm(self) -> str | None:
        return self.params.get("realm")

    @property
    def service(self) -> str | None:
        return self.params.get("service")

    @property
    def scopes(self) -> tuple[str, ...]:
        return tuple(self.params.get("scope", "").split())


def parse_challenges(header: str) -> list[Challenge]:
    """The challenges in one `WWW-Authenticate` value (RFC 9110 section 11.6.1; several
    may be listed, separated by commas)."""
    found: list[Challenge] = []
    rest = header
    while rest.strip():
        scheme_match = _SCHEME.match(rest)
        if scheme_match is None:
            break
        rest = rest[scheme_match.end() :]
        params: dict[str, str] = {}
        while True:
            param = _PARAM.match(rest)
            if param is None:
                break
            key, quoted, bare = param.groups()
            value = quoted if quoted is not None else bare
            params[key.lower()] = re.sub(r"\\(.)", r"\1", value)
            rest = rest[param.end() :]
        found.append(Challenge(scheme_match.group(1).lower(), params))
        rest = rest.lstrip(", ")
    return found


def pick_challenge(headers: list[str]) -> Challenge | None:
    """Bearer if offered (it scopes access), else Basic, else None."""
    challenges = [c for h in headers for c in parse_challenges(h)]
    for scheme in ("bearer", "basic"):
        for challenge in challenges:
            if challenge.scheme == scheme and (scheme == "basic" or challenge.realm):
                return challenge
    return None


@dataclass(frozen=True, slots=True)
class Token:
    value: str
    expires_at: float  # time.monotonic()


class TokenCache:
    """Tokens by (realm, service, scopes); thread-safe (a run copies in threads)."""

    def __init__(self) -> None:
        self._tokens: dict[tuple[str, str, tuple[str, ...]], Token] = {}
        self._lock = threading.Lock()

    def get(self, realm: str, service: str, scopes: tuple[str, ...]) -> str | None:
        with self._lock:
            token = self._tokens.get((realm, service, scopes))
            if token is None or token.expires_at <= time.monotonic():
                return None
            return token.value

    def put(
        self,
        realm: str,
        service: str,
        scopes: tuple[str, ...],
        value: str,
        expires_in: float | None,
    ) -> None:
        lifetime = expires_in if expires_in and expires_in > 0 else DEFAULT_LIFETIME
        with self._lock:
            self._tokens[(realm, service, scopes)] = Token(
                value, time.monotonic() + lifetime * _MARGIN
            )

    def drop(self, realm: str, service: str, scopes: tuple[str, ...]) -> None:
        with self._lock:
            self._tokens.pop((realm, service, scopes), None)


def repository_scope(repository: str, *actions: str) -> str:
    return f"repository:{repository}:{','.join(actions)}"
