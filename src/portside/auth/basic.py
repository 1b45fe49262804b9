"""HTTP Basic credentials: the one parser /v2, /auth/token and the management API share."""

from __future__ import annotations

import base64
import binascii

from portside.errors import Unauthorized


def decode_basic(credentials: str) -> tuple[str, str]:
    """(username, password) from the base64 part of a Basic header; Unauthorized if bad."""
    try:
        decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):  # ValueError: non-ASCII; UnicodeDecodeError is one
        raise Unauthorized("malformed Basic credentials") from None
    username, sep, password = decoded.partition(":")
    if not sep or not username:
        raise Unauthorized("malformed Basic credentials")
    return username, password
