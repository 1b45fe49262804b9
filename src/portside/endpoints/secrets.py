"""Encryption of stored credentials (endpoint passwords and tokens).

The key is `secrets.encryption_key`, a Fernet key (AES-128-CBC + HMAC-SHA256, from
`cryptography`). Without a key nothing can be encrypted, and storing credentials is
refused with an error naming the setting: a password is never kept in the clear. A
stored secret that the configured key cannot decrypt (the key was changed) is an error
naming the same setting, not garbage sent to a peer.
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken

from portside.auth.errors import Invalid

KEY_SETTING = "secrets.encryption_key"


class SecretUnreadable(Exception):
    """A stored secret the configured key does not open."""


def new_key() -> str:
    return Fernet.generate_key().decode("ascii")


class Cipher:
    def __init__(self, key: str | None) -> None:
        self._fernet = Fernet(key.encode("ascii")) if key else None

    @property
    def available(self) -> bool:
        return self._fernet is not None

    def encrypt(self, secret: str) -> str:
        if self._fernet is None:
            raise Invalid(
                f"cannot store credentials: no encryption key is configured; set "
                f"`{KEY_SETTING}` (make one with `portside endpoint new-key`) and restart"
            )
        return self._fernet.encrypt(secret.encode("utf-8")).decode("ascii")

    def decrypt(self, stored: str) -> str:
        if self._fernet is None:
            raise SecretUnreadable(
                f"stored credentials cannot be read: `{KEY_SETTING}` is not configured"
            )
        try:
            return self._fernet.decrypt(stored.encode("ascii")).decode("utf-8")
        except (InvalidToken, ValueError):
            raise SecretUnreadable(
                f"stored credentials cannot be read with the configured `{KEY_SETTING}` "
                "(was the key changed?); set the endpoint's credentials again"
            ) from None
