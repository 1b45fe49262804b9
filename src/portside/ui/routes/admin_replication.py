"""Administration pages for replication: rules (list, add, change, run, delete) and runs
(list, one run with its per-artifact results). Everything goes through the management
API, which lets only system administrators in."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from portside.replication.rules import DIRECTIONS, RESOURCES, TRIGGERS
from portside.ui import web
from portside.ui.api import ApiError, path


def rule_url(name: str, action: str = "") -> str:
    return f"/admin/replication/rules/{quote(name, safe='')}" + (f"/{action}" if action else "")


def run_url(run_id: int) -> str:
    return f"/admin/replication/runs/{run_id}"


CHOICES = {"directions": DIRECTIONS, "resources": RESOURCES, "triggers": TRIGGERS}


def _fields(form: FormData) -> dict[str, Any]:
    labels = [line.strip() for line in web.text(form, "labels").splitlines() if line.strip()]
    bandwidth = web.whole_number(web.text(form, "bandwidth_kbps") or None, most=10**8)
    return {
        "endpoint": web.text(form, "endpoint"),
        "repositories": web.text(form, "repositories") or "**",
        "tags": web.text(form, "tags") or "**",
        "labels": labels,
        "resources": web.text(form, "resources") or "all",
        "destination_namespace": web.text(form, "destination_namespace"),
        "flattening": _flattening(web.text(form, "flattening")),
        "override": form.get("override") == "on",
        "copy_deletions": form.get("copy_deletions") == "on",
        "bandwidth_kbps": bandwidth or 0,
        "trigger": web.text(form, "trigger") or "manual",
        "cron": web.text(form, "cron"),
        "enabled": form.get("enabled") == "on",
        "description": web.text(form, "description"),
    }


def _flattening(value: str) -> int:
    """The select's value (-1..3); anything else is sent as 1, Harbor's default."""
    return {"-1": -1, "0": 0, "1": 1, "2": 2, "3": 3}.get(value, 1)


async def overview(request: Request) -> Response:
    calls = web.api(request)
    rules = (await calls.get("/replication/rules")).body
    endpoints = (await calls.get("/endpoints")).body
    runs = (await calls.get("/replication/runs", page_size=20)).body
    return await web.render(
        request,
        "admin_replication.html",
        tab="replication",
        rules=rules,
        endpoints=endpoints,
        runs=runs,
        rule_url=rule_url,
        run_url=run_url,
        choices=CHOICES,
    )


async def create_rule(request: Request) -> Response:
    form = await web.checked_form(request)
    name = web.text(form, "name")
    body = {"name": name, "direction": web.text(form, "direction"), **_fields(form)}
    body["destination_namespace"] = body["destination_namespace"] or None
    body["cron"] = body["cron"] or None
    body["description"] = body["description"] or None
    try:
        await web.api(request).post("/replication/rules", body)
    except ApiError as error:
        return web.redirect(
            "/admin/replication#new-rule",
            f"Could not add the rule: {error.explanation}",
            error=True,
        )
    return web.redirect(rule_url(name), f"Rule {name} added.")


async def show_rule(request: Request) -> Response:
    name = request.path_params["name"]
    calls = web.api(request)
    found = (await calls.get(path("/replication/rules", name))).body
    endpoints = (await calls.get("/endpoints")).body
    runs = (await calls.get("/replication/runs", rule=name, page_size=20)).body
    return await web.render(
        request,
        "admin_replication_rule.html",
        tab="replication",
        rule=found,
        endpoints=endpoints,
        runs=runs,
        rule_url=rule_url,
        run_url=run_url,
        choices=CHOICES,
    )


async def update_rule(request: Request) -> Response:
    form = await web.checked_form(request)
    name = request.path_params["name"]
    try:
        await web.api(request).patch(path("/replication/rules", name), _fields(form))
    except ApiError as error:
        return web.redirect(
            rule_url(name), f"Could not change {name}: {error.explanation}", error=True
        )
    return web.redirect(rule_url(name), f"Rule {name} saved.")


async def run_rule(request: Request) -> Response:
    await web.checked_form(request)
    name = request.path_params["name"]
    try:
        run = (await web.api(request).post(path("/replication/rules", name, "runs"), {})).body
    except ApiError as error:
        return web.redirect(
            rule_url(name), f"Could not start a run: {error.explanation}", error=True
        )
    return web.redirect(run_url(int(run["id"])), f"Run {run['id']} of {name} queued.")


async def delete_rule(request: Request) -> Response:
    await web.checked_form(request)
    name = request.path_params["name"]
    try:
        await web.api(request).delete(path("/replication/rules", name))
    except ApiError as error:
        return web.redirect(
            rule_url(name), f"Could not delete {name}: {error.explanation}", error=True
        )
    return web.redirect("/admin/replication", f"Rule {name} deleted.")


async def show_run(request: Request) -> Response:
    run_id = web.whole_number(request.path_params["run_id"], most=2**31 - 1)
    if run_id is None:
        raise web.PageError(404, "Not found", "There is no such replication run.")
    run = (await web.api(request).get(f"/replication/runs/{run_id}")).body
    return await web.render(
        request,
        "admin_replication_run.html",
        tab="replication",
        run=run,
        rule_url=rule_url,
    )


routes: list[BaseRoute] = [
    Route("/admin/replication", overview, methods=["GET"]),
    Route("/admin/replication/rules", create_rule, methods=["POST"]),
    Route("/admin/replication/rules/{name}", show_rule, methods=["GET"]),
    Route("/admin/replication/rules/{name}", update_rule, methods=["POST"]),
    Route("/admin/replication/rules/{name}/run", run_rule, methods=["POST"]),
    Route("/admin/replication/rules/{name}/delete", delete_rule, methods=["POST"]),
    Route("/admin/replication/runs/{run_id}", show_run, methods=["GET"]),
]
