"""The kinds of job there are, their parameters, and where their code lives (imported
when a job of that kind first runs, so a worker loads only what it uses)."""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from portside.jobs.context import JobContext, JobFunction


class ParamsError(ValueError):
    """Parameters a job kind does not accept; the message names the parameter."""


def _flag(params: dict[str, Any], name: str, default: bool = False) -> bool:
    value = params.get(name, default)
    if not isinstance(value, bool):
        raise ParamsError(f"{name} must be true or false")
    return value


def _number(params: dict[str, Any], name: str, default: float, high: float) -> float:
    value = params.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= high:
        raise ParamsError(f"{name} must be a number from 0 to {high:g}")
    return float(value)


def _only(params: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise ParamsError(
            f"unknown parameter {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})"
        )


def _gc_params(params: dict[str, Any]) -> dict[str, Any]:
    _only(params, {"dry_run", "grace_period_seconds", "delete_untagged"})
    return {
        "dry_run": _flag(params, "dry_run"),
        "grace_period_seconds": _number(params, "grace_period_seconds", 7200, 365 * 86400),
        "delete_untagged": _flag(params, "delete_untagged"),
    }


def _retention_params(params: dict[str, Any]) -> dict[str, Any]:
    _only(params, {"dry_run"})
    return {"dry_run": _flag(params, "dry_run")}


def _vulndb_params(params: dict[str, Any]) -> dict[str, Any]:
    _only(params, {"force"})
    return {"force": _flag(params, "force")}


def _eviction_params(params: dict[str, Any]) -> dict[str, Any]:
    _only(params, {"dry_run", "project", "protect_seconds", "grace_period_seconds"})
    project = params.get("project")
    if project is not None and not isinstance(project, str):
        raise ParamsError("project must be a project name")
    return {
        "dry_run": _flag(params, "dry_run"),
        "project": project,
        "protect_seconds": _number(params, "protect_seconds", 600, 365 * 86400),
        "grace_period_seconds": _number(params, "grace_period_seconds", 7200, 365 * 86400),
    }


def _scan_params(params: dict[str, Any]) -> dict[str, Any]:
    _only(params, {"scan_id"})
    value = params.get("scan_id")
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ParamsError("scan_id must be a scan's id (start scans through the scans API)")
    return {"scan_id": value}


def _probe_params(params: dict[str, Any]) -> dict[str, Any]:
    _only(params, {"seconds"})
    return {"seconds": _number(params, "seconds", 0, 3600)}


def _replication_params(params: dict[str, Any]) -> dict[str, Any]:
    from portside.jobs.replication import params as checked

    return checked(params)


def probe(job: JobContext) -> dict[str, Any]:
    """A job that does nothing for `seconds` (checking in every 0.2 s): shows that
    workers pick up, report on and stop jobs."""
    seconds = float(job.params["seconds"])
    deadline = time.monotonic() + seconds
    steps = 0
    while time.monotonic() < deadline:
        job.check_stop()
        time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
        steps += 1
        job.progress(min(int(seconds), int(steps * 0.2)), int(seconds))
    job.log(f"waited {seconds:g} s")
    return {"seconds": seconds}


@dataclass(frozen=True, slots=True)
class Kind:
    name: str
    target: str  # "module:function"
    params: Callable[[dict[str, Any]], dict[str, Any]]
    per_project: bool
    description: str
    exclusive: bool = True  # one queued or running job of the kind (per project) at once

    def function(self) -> JobFunction:
        module, _, attribute = self.target.partition(":")
        found: JobFunction = getattr(importlib.import_module(module), attribute)
        return found


KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind(
            "gc",
            "portside.jobs.gc:run_gc",
            _gc_params,
            per_project=False,
            description="garbage collection: delete blobs and links no manifest needs",
        ),
        Kind(
            "retention",
            "portside.jobs.retention:run_retention",
            _retention_params,
            per_project=True,
            description="apply a project's retention policy",
        ),
        Kind(
            "vulndb_import",
            "portside.jobs.vulndb:run_vulndb_import",
            _vulndb_params,
            per_project=False,
            description="import the vulnerability database sources that changed "
            "(vulndb.sources; force: all of them)",
        ),
        Kind(
            "replication",
            "portside.jobs.replication:run_replication",
            _replication_params,
            per_project=False,
            description="run a replication rule (copy artifacts to or from an endpoint)",
            exclusive=False,  # runs of different rules go side by side
        ),
        Kind(
            "proxy-evict",
            "portside.jobs.proxy:run_eviction",
            _eviction_params,
            per_project=False,
            description="evict least-recently-pulled artifacts of proxy caches over their "
            "size limit, then reclaim their blobs",
        ),
        Kind(
            "scan",
            "portside.jobs.scan:run_scan",
            _scan_params,
            per_project=True,
            description="scan an artifact for vulnerabilities",
            exclusive=False,  # scans of different artifacts go side by side
        ),
        Kind(
            "probe",
            "portside.jobs.kinds:probe",
            _probe_params,
            per_project=False,
            description="do nothing for a while (checks that workers run jobs)",
        ),
    )
}


def kind(name: str) -> Kind:
    found = KINDS.get(name)
    if found is None:
        raise ParamsError(f"unknown job kind {name!r} (known: {', '.join(sorted(KINDS))})")
    return found
