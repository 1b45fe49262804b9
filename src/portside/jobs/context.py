"""What a running job is given: its parameters, the services, and ways to report
progress, write to its log and notice a stop request."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from portside.context import Context


class JobStopped(Exception):
    """Raised by `JobContext.check_stop()` when someone asked the job to stop."""


class JobFailed(Exception):
    """A job ends failed with this message (bad parameters, missing project...). A job
    that did work before failing passes `result` (its summary), kept as a succeeded
    job's would be."""

    def __init__(self, message: str, *, result: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.result = result


@dataclass
class JobContext:
    job_id: int
    kind: str
    params: dict[str, Any]
    project: str | None
    created_by: str
    services: Context
    _log: Callable[[str, str], None]
    _progress: Callable[[int, int | None, str | None], None]
    _stop_requested: Callable[[], bool]

    def log(self, message: str, level: str = "info") -> None:
        """Append a line to the job's log (kept in the database with the job)."""
        self._log(level, message)

    def progress(self, done: int, total: int | None = None, message: str | None = None) -> None:
        self._progress(done, total, message)

    def check_stop(self) -> None:
        """Call between units of work: raises JobStopped if a stop was requested. Work
        done so far stays done; a job must leave consistent state at every such point."""
        if self._stop_requested():
            raise JobStopped


JobFunction = Callable[[JobContext], dict[str, Any]]
"""A job kind: does the work and returns its summary (kept as the job's result)."""
