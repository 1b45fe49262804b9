"""Jobs: the history (administrators), starting garbage collection, its schedule, and
one job's page with its log at `/jobs/{id}` — for anybody the API shows the job to
(administrators; a project's jobs also to whoever may change the project's settings).
The page reloads itself every 3 seconds while the job is queued or running."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from portside.jobs.kinds import KINDS
from portside.ui import web
from portside.ui.api import Api, ApiError
from portside.ui.filters import size
from portside.ui.paging import Pager

PAGE_SIZE = 25
LOG_PAGE = 2000  # log lines per page of a job's page
STATUSES = ("queued", "running", "succeeded", "failed", "stopped")
ACTIVE = ("queued", "running")
MAX_JOB_ID = 2**31 - 1


def job_url(job_id: int) -> str:
    return f"/jobs/{int(job_id)}"


def _time(value: Any) -> datetime | None:
    if not value:
        return None
    moment = datetime.fromisoformat(str(value))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def duration_text(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s" if seconds < 10 else f"{int(seconds)} s"
    minutes, rest = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def _duration(job: dict[str, Any]) -> str:
    started = _time(job.get("started_at"))
    if started is None:
        return ""
    finished = _time(job.get("finished_at")) or datetime.now(UTC)
    return duration_text(max(0.0, (finished - started).total_seconds()))


def summary(job: dict[str, Any]) -> str:
    """One line on what the job did (or why it failed)."""
    if job.get("error"):
        first = str(job["error"]).strip().splitlines()
        return first[0][:200] if first else "failed"
    result = job.get("result")
    if not isinstance(result, dict):
        return ""
    if isinstance(result.get("summary"), str):
        return str(result["summary"])[:300]
    planned = result.get("planned")
    if result.get("dry_run") and isinstance(planned, dict):
        return (
            f"dry run: would delete {planned.get('manifests', 0)} manifests, "
            f"{planned.get('links', 0)} links and {planned.get('blobs', 0)} blobs, "
            f"freeing {size(planned.get('bytes', 0))}"
        )
    text = json.dumps(result, ensure_ascii=False, separators=(", ", ": "))
    return text if len(text) <= 200 else text[:199] + "…"


def _decorated(job: dict[str, Any]) -> dict[str, Any]:
    return {
        **job,
        "url": job_url(job["id"]),
        "duration": _duration(job),
        "summary": summary(job),
        "active": job["status"] in ACTIVE,
    }


async def _gc_schedule(calls: Api) -> dict[str, Any] | None:
    try:
        found: dict[str, Any] = (await calls.get("/schedules/gc")).body
    except ApiError as error:
        if error.status == 404:
            return None
        raise
    return found


async def list_jobs(request: Request) -> Response:
    kind = request.query_params.get("kind", "")
    status = request.query_params.get("status", "")
    project = request.query_params.get("project", "").strip()[:255]
    kind = kind if kind in KINDS else ""
    status = status if status in STATUSES else ""
    pager = Pager.from_request(request, PAGE_SIZE)
    calls = web.api(request)
    problem = None
    try:
        answer = await calls.get(
            "/jobs",
            kind=kind or None,
            status=status or None,
            project=project or None,
            page=pager.number,
            page_size=pager.size,
        )
    except ApiError as error:
        if not project or error.status not in (400, 404):
            raise
        jobs: list[dict[str, Any]] = []
        problem = error.explanation
    else:
        jobs = [_decorated(j) for j in answer.body]
        pager.total = answer.total or 0
    return await web.render(
        request,
        "admin_jobs.html",
        tab="jobs",
        jobs=jobs,
        problem=problem,
        kinds=sorted(KINDS),
        statuses=STATUSES,
        kind=kind,
        state=status,
        project=project,
        pager=pager,
        schedule=await _gc_schedule(calls),
    )


def _gc_params(form: FormData) -> dict[str, Any]:
    """GC parameters from the form's checkboxes and grace period (hours); ValueError
    for a grace period that is not a number."""
    params: dict[str, Any] = {
        "dry_run": form.get("dry_run") == "on",
        "delete_untagged": form.get("delete_untagged") == "on",
    }
    grace = web.text(form, "grace_hours")
    if grace:
        try:
            hours = float(grace)
        except ValueError:
            raise ValueError("The grace period must be a number of hours.") from None
        if not math.isfinite(hours) or hours < 0:
            raise ValueError("The grace period must be a number of hours, 0 or more.")
        params["grace_period_seconds"] = round(hours * 3600, 3)
    return params


async def start_gc(request: Request) -> Response:
    form = await web.checked_form(request)
    try:
        params = _gc_params(form)
    except ValueError as error:
        return web.redirect("/admin/jobs#gc", str(error), error=True)
    try:
        answer = await web.api(request).post("/jobs", {"kind": "gc", "params": params})
    except ApiError as error:
        return web.redirect(
            "/admin/jobs#gc",
            f"Could not start garbage collection: {error.explanation}",
            error=True,
        )
    job = answer.body
    what = "A garbage collection dry run" if params["dry_run"] else "Garbage collection"
    return web.redirect(job_url(job["id"]), f"{what} is queued as job {job['id']}.")


async def set_schedule(request: Request) -> Response:
    form = await web.checked_form(request)
    try:
        params = _gc_params(form)
    except ValueError as error:
        return web.redirect("/admin/jobs#schedule", str(error), error=True)
    body = {
        "cron": web.text(form, "cron"),
        "params": params,
        "enabled": form.get("enabled") == "on",
    }
    try:
        await web.api(request).put("/schedules/gc", body)
    except ApiError as error:
        return web.redirect(
            "/admin/jobs#schedule", f"Could not save the schedule: {error.explanation}", error=True
        )
    return web.redirect("/admin/jobs#schedule", "Garbage collection schedule saved.")


async def delete_schedule(request: Request) -> Response:
    await web.checked_form(request)
    try:
        await web.api(request).delete("/schedules/gc")
    except ApiError as error:
        return web.redirect(
            "/admin/jobs#schedule",
            f"Could not delete the schedule: {error.explanation}",
            error=True,
        )
    return web.redirect(
        "/admin/jobs#schedule", "Garbage collection schedule deleted: GC runs only when started."
    )


def _job_id(request: Request) -> int:
    job_id: int = request.path_params["job_id"]
    if not 1 <= job_id <= MAX_JOB_ID:
        raise web.PageError(404, "Not found", f"There is no job {job_id}.")
    return job_id


async def admin_job(request: Request) -> Response:
    return web.redirect(job_url(_job_id(request)))


async def show_job(request: Request) -> Response:
    job_id = _job_id(request)
    calls = web.api(request)
    job = _decorated((await calls.get(f"/jobs/{job_id}")).body)
    raw = request.query_params.get("after", "0")
    after = web.whole_number(raw, most=MAX_JOB_ID) or 0
    lines = (await calls.get(f"/jobs/{job_id}/log", after=after, limit=LOG_PAGE)).body
    for line in lines:
        moment = _time(line["at"])
        line["time"] = moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if moment else ""
    who = await web.visitor(request)
    if who.is_admin:
        back = ("/admin/jobs", "Jobs")
    elif job["project"]:
        back = (web.project_url(job["project"]), job["project"])
    else:
        back = ("/projects", "Projects")
    return await web.render(
        request,
        "job.html",
        job=job,
        lines=lines,
        after=after,
        later=lines[-1]["id"] if len(lines) == LOG_PAGE else None,
        back=back,
        kind_description=KINDS[job["kind"]].description if job["kind"] in KINDS else "",
    )


async def stop_job(request: Request) -> Response:
    await web.checked_form(request)
    job_id = _job_id(request)
    calls = web.api(request)
    try:
        before = (await calls.get(f"/jobs/{job_id}")).body["status"]
        status = (await calls.post(f"/jobs/{job_id}/stop")).body["status"]
    except ApiError as error:
        return web.redirect(
            job_url(job_id), f"Could not stop the job: {error.explanation}", error=True
        )
    if before not in ACTIVE:
        message = f"Job {job_id} had already finished ({before})."
    elif status == "stopped":
        message = f"Job {job_id} is stopped."
    elif status == "running":
        message = f"Job {job_id} was asked to stop; it stops at its next check point."
    else:
        message = f"Job {job_id} finished before it could be stopped ({status})."
    return web.redirect(job_url(job_id), message)


routes: list[BaseRoute] = [
    Route("/admin/jobs", list_jobs, methods=["GET"]),
    Route("/admin/jobs/gc", start_gc, methods=["POST"]),
    Route("/admin/jobs/schedule", set_schedule, methods=["POST"]),
    Route("/admin/jobs/schedule/delete", delete_schedule, methods=["POST"]),
    Route("/admin/jobs/{job_id:int}", admin_job, methods=["GET"]),
    Route("/jobs/{job_id:int}", show_job, methods=["GET"]),
    Route("/jobs/{job_id:int}/stop", stop_job, methods=["POST"]),
]
