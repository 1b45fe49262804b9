"""What the outgoing registry client raises. Every failure is a `RemoteError` whose
message says what happened in words an administrator can act on:

    RemoteError                  a request failed (`status` is the HTTP status, if any)
    ├── Unreachable              no answer: refused by the egress policy, DNS, connect,
    │                            TLS, timeout, connection cut (after the retries)
    ├── AuthFailed               the peer refused our credentials (401 after auth, 403)
    ├── NotFound                 the repository, manifest, blob or upload is not there
    └── DigestMismatch           the bytes received do not hash to the digest asked for
"""

from __future__ import annotations


class RemoteError(Exception):
    def __init__(self, message: str, *, status: int | None = None, code: str | None = None):
        super().__init__(message)
        self.status = status
        self.code = code  # the OCI error code from the answer's body, if it had one


class Unreachable(RemoteError):
    """No usable answer; `refused` is True when the egress policy forbade the target."""

    def __init__(self, message: str, *, refused: bool = False) -> None:
        super().__init__(message)
        self.refused = refused


class AuthFailed(RemoteError):
    pass


class NotFound(RemoteError):
    pass


class DigestMismatch(RemoteError):
    pass
