"""Registry bearer tokens (Docker token authentication): issuing and strict verification.

Verification pins the algorithm per trusted issuer, checks the signature, `exp`, `nbf`,
`iat`, issuer and audience, and refuses tokens whose header tries to bring its own key
(`jwk`, `jku`, `x5c`, `x5u`) — so `alg=none` and key-confusion tricks fail. Verified tokens
are cached by their exact text until they expire: the hot paths then pay a dict lookup,
not an ECDSA verification, per request.
"""

from __future__ import annotations

import os
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from portside.auth.scopes import Access

if TYPE_CHECKING:
    from portside.auth.keys import SigningKey

LEEWAY_SECONDS = 10
_CACHE_SIZE = 10_000
_FORBIDDEN_HEADERS = ("jwk", "jku", "x5c", "x5u", "crit")


class TokenInvalid(Exception):
    """Why a bearer token was refused (for logs; clients only see a 401)."""


@dataclass(frozen=True, slots=True)
class TrustedIssuer:
    issuer: str
    audience: str
    algorithm: str
    key: Any  # public key object
    kid: str | None = None
    external: bool = False


@dataclass(frozen=True, slots=True)
class VerifiedToken:
    subject: str
    expires_at: float
    grants: dict[tuple[str, str], frozenset[str]]
    external: bool

    def allows(self, resource_type: str, name: str, action: str) -> bool:
        return action in self.grants.get((resource_type, name), frozenset())

    def actions(self, resource_type: str, name: str) -> frozenset[str]:
        return self.grants.get((resource_type, name), frozenset())


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str
    expires_in: int
    issued_at: datetime


class TokenIssuer:
    def __init__(self, key: SigningKey, issuer: str, audience: str, lifetime: int) -> None:
        self.key = key
        self.issuer = issuer
        self.audience = audience
        self.lifetime = lifetime

    def trusted(self) -> TrustedIssuer:
        return TrustedIssuer(
            self.issuer, self.audience, self.key.algorithm, self.key.public_key, self.key.kid
        )

    def issue(self, subject: str, access: list[Access]) -> IssuedToken:
        import jwt

        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": subject,
            "aud": self.audience,
            "exp": now + self.lifetime,
            "nbf": now - 1,
            "iat": now,
            "jti": os.urandom(16).hex(),
            "access": [a.claim() for a in access],
        }
        token = jwt.encode(
            claims,
            self.key.private_key,
            algorithm=self.key.algorithm,
            headers={"kid": self.key.kid},
        )
        return IssuedToken(token, self.lifetime, datetime.fromtimestamp(now, UTC))


def _grants(claim: Any) -> dict[tuple[str, str], frozenset[str]]:
    if claim is None:
        return {}
    if not isinstance(claim, list):
        raise TokenInvalid("access claim is not a list")
    grants: dict[tuple[str, str], frozenset[str]] = {}
    for entry in claim:
        if not isinstance(entry, dict):
            raise TokenInvalid("access entry is not an object")
        kind, name, actions = entry.get("type"), entry.get("name"), entry.get("actions")
        if not isinstance(kind, str) or not isinstance(name, str) or not isinstance(actions, list):
            raise TokenInvalid("access entry needs type, name and actions")
        if not all(isinstance(a, str) for a in actions):
            raise TokenInvalid("access actions must be strings")
        expanded = {"pull", "push", "delete"} if kind == "repository" and "*" in actions else set()
        grants[(kind, name)] = grants.get((kind, name), frozenset()) | set(actions) | expanded
    return grants


class TokenVerifier:
    def __init__(self, issuers: list[TrustedIssuer]) -> None:
        self._issuers = {issuer.issuer: issuer for issuer in issuers}
        self._cache: OrderedDict[str, VerifiedToken] = OrderedDict()

    def verify(self, token: str) -> VerifiedToken:
        cached = self._cache.get(token)
        now = time.time()
        if cached is not None:
            if cached.expires_at + LEEWAY_SECONDS > now:
                return cached
            del self._cache[token]
        verified = self._verify(token)
        self._cache[token] = verified
        if len(self._cache) > _CACHE_SIZE:
            self._cache.popitem(last=False)
        return verified

    def _verify(self, token: str) -> VerifiedToken:
        import jwt  # loaded with the first token, not by an open registry

        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as error:
            raise TokenInvalid(f"malformed token: {error}") from error
        for name in _FORBIDDEN_HEADERS:
            if name in header:
                raise TokenInvalid(f"token header carries {name!r}")
        issuer = unverified.get("iss")
        trusted = self._issuers.get(issuer) if isinstance(issuer, str) else None
        if trusted is None:
            raise TokenInvalid("unknown issuer")
        if header.get("alg") != trusted.algorithm:
            raise TokenInvalid(f"algorithm {header.get('alg')!r} is not {trusted.algorithm}")
        if trusted.kid is not None and header.get("kid") not in (None, trusted.kid):
            raise TokenInvalid("unknown key id")
        try:
            claims = jwt.decode(
                token,
                trusted.key,
                algorithms=[trusted.algorithm],
                audience=trusted.audience,
                issuer=trusted.issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iat", "iss", "aud"]},
            )
        except jwt.PyJWTError as error:
            raise TokenInvalid(str(error)) from error
        subject = claims.get("sub", "")
        if not isinstance(subject, str):
            raise TokenInvalid("sub is not a string")
        return VerifiedToken(
            subject, float(claims["exp"]), _grants(claims.get("access")), trusted.external
        )
