"""Errors of account, project and robot management, each with the HTTP status the
management API answers with. The CLI prints their message."""

from __future__ import annotations

from typing import ClassVar


class ManagementError(Exception):
    status: ClassVar[int] = 400
    code: ClassVar[str] = "INVALID"

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


class Invalid(ManagementError):
    status, code = 400, "INVALID"


class Unauthenticated(ManagementError):
    status, code = 401, "UNAUTHORIZED"


class Forbidden(ManagementError):
    status, code = 403, "FORBIDDEN"


class Missing(ManagementError):
    status, code = 404, "NOT_FOUND"


class Exists(ManagementError):
    status, code = 409, "CONFLICT"
