"""A project's policies: the retention policy (its rules, a dry run of the stored policy
or of the form's draft, running it now, its schedule and recent runs) and tag
immutability rules. Members read them; project admins change them.

The retention form has a fixed number of rule rows (the rules plus one empty row; a
row whose kind is left empty is dropped), so it works without JavaScript. A failed save
or a dry run renders the page again with the form as it was sent.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from portside.content.retention.policy import COUNT_KINDS, KINDS, MAX_RULES
from portside.ui import web
from portside.ui.api import ApiError, path
from portside.ui.routes.project import ProjectPage, load_project, render_tab

PREVIEW_LIMIT = 200
RUNS_SHOWN = 5
KIND_LABELS = {
    "latest_pushed": "keep the N most recently pushed",
    "latest_pulled": "keep the N most recently pulled",
    "pushed_within_days": "keep those pushed in the last D days",
    "pulled_within_days": "keep those pulled in the last D days",
    "always": "always keep",
}
_BLANK_RULE = {
    "kind": "",
    "value": "",
    "repository_pattern": "",
    "repository_excluding": False,
    "tag_pattern": "",
    "tag_excluding": False,
    "syntax": "glob",
    "disabled": False,
}
_RULE_REF = re.compile(r"rules\[(\d+)\]")


def _schedule_path(project: str) -> str:
    return path("/schedules", f"retention:{project}")


async def policies(request: Request) -> Response:
    page = await load_project(request)
    return await _page(request, page)


async def _page(
    request: Request,
    page: ProjectPage,
    *,
    draft: dict[str, Any] | None = None,
    plan: dict[str, Any] | None = None,
    error: str | None = None,
    status: int = 200,
) -> Response:
    calls = web.api(request)
    policy = (await calls.get(path("/projects", page.name, "retention"))).body
    immutability = (await calls.get(path("/projects", page.name, "immutability-rules"))).body
    manage = page.may("settings")
    schedule = None
    runs: list[dict[str, Any]] = []
    if manage:
        try:
            schedule = (await calls.get(_schedule_path(page.name))).body
        except ApiError as missing:
            if missing.status != 404:
                raise
        runs = (
            await calls.get(path("/projects", page.name, "retention", "runs"), page_size=RUNS_SHOWN)
        ).body
    if draft is None:
        draft = {
            "remove_untagged": policy["remove_untagged"],
            "rules": [
                {**r, "value": "" if r["value"] is None else r["value"]} for r in policy["rules"]
            ],
        }
    rows = list(draft["rules"])
    if len(rows) < MAX_RULES:
        rows.append(dict(_BLANK_RULE))
    return await render_tab(
        request,
        page,
        "project_policies.html",
        "policies",
        status=status,
        policy=policy,
        draft=draft,
        rows=rows,
        kinds=[(k, KIND_LABELS[k]) for k in KINDS],
        kind_labels=KIND_LABELS,
        count_kinds=COUNT_KINDS,
        immutability=immutability,
        schedule=schedule,
        runs=runs,
        plan=plan,
        error=error,
        manage=manage,
    )


def _draft(form: FormData) -> dict[str, Any]:
    """The form's policy as rows (to show again): rows whose kind is empty are dropped."""
    rows: list[dict[str, Any]] = []
    count = web.text(form, "rows")
    for index in range(min(web.whole_number(count) or 0, MAX_RULES + 1)):
        field = f"rule-{index}-"
        if not web.text(form, field + "kind"):
            continue
        rows.append(
            {
                "kind": web.text(form, field + "kind"),
                "value": web.text(form, field + "value"),
                "repository_pattern": web.text(form, field + "repository_pattern"),
                "repository_excluding": form.get(field + "repository_excluding") == "on",
                "tag_pattern": web.text(form, field + "tag_pattern"),
                "tag_excluding": form.get(field + "tag_excluding") == "on",
                "syntax": "regex" if web.text(form, field + "syntax") == "regex" else "glob",
                "disabled": form.get(field + "disabled") == "on",
            }
        )
    return {"remove_untagged": form.get("remove_untagged") == "on", "rules": rows}


def _document(draft: dict[str, Any]) -> dict[str, Any]:
    """The API's policy document for a draft; ValueError in words for a rule whose
    number is missing (the API checks everything else)."""
    rules = []
    for number, row in enumerate(draft["rules"], 1):
        rule = {k: v for k, v in row.items() if k != "value" and v != ""}
        if row["kind"] != "always":
            value = str(row["value"])
            if web.whole_number(value, most=999_999_999) is None:
                unit = "artifacts" if row["kind"] in COUNT_KINDS else "days"
                raise ValueError(f"Rule {number}: enter the number of {unit} for {row['kind']}.")
            rule["value"] = int(value)
        rules.append(rule)
    return {"remove_untagged": draft["remove_untagged"], "rules": rules}


def _in_words(error: ApiError) -> str:
    """The API's message with `rules[0]` as the form's `rule 1`."""
    return _RULE_REF.sub(lambda found: f"rule {int(found.group(1)) + 1}", error.explanation)


async def save_retention(request: Request) -> Response:
    """Save the form's policy, or (action=preview) show what it would delete now."""
    form = await web.checked_form(request)
    page = await load_project(request)
    preview = web.text(form, "action") == "preview"
    draft = _draft(form)
    try:
        document = _document(draft)
    except ValueError as invalid:
        return await _page(request, page, draft=draft, error=str(invalid), status=400)
    calls = web.api(request)
    retention = path("/projects", page.name, "retention")
    try:
        if preview:
            plan = (
                await calls.call(
                    "POST", retention + "/preview", params={"limit": PREVIEW_LIMIT}, body=document
                )
            ).body
            return await _page(request, page, draft=draft, plan=plan)
        await calls.put(retention, document)
    except ApiError as error:
        verb = "run the dry run" if preview else "save the policy"
        message = f"Could not {verb}: {_in_words(error)}"
        status = error.status if error.status in (400, 403, 404, 409) else 400
        return await _page(request, page, draft=draft, error=message, status=status)
    return web.redirect(web.project_url(page.name, "policies"), "Retention policy saved.")


async def run_retention(request: Request) -> Response:
    await web.checked_form(request)
    name = request.path_params["name"]
    back = web.project_url(name, "policies")
    try:
        job = (await web.api(request).post(path("/projects", name, "retention", "runs"), {})).body
    except ApiError as error:
        return web.redirect(back, f"Could not start retention: {error.explanation}", error=True)
    return web.redirect(
        back + "#runs", f"Retention job {job['id']} started; see its status under Recent runs."
    )


async def save_schedule(request: Request) -> Response:
    form = await web.checked_form(request)
    name = request.path_params["name"]
    back = web.project_url(name, "policies") + "#schedule"
    cron = web.text(form, "cron")
    calls = web.api(request)
    try:
        if not cron:
            try:
                await calls.delete(_schedule_path(name))
            except ApiError as missing:
                if missing.status != 404:
                    raise
            return web.redirect(back, "Retention no longer runs on a schedule.")
        body = {"cron": cron, "enabled": form.get("enabled") == "on", "params": {}}
        await calls.put(_schedule_path(name), body)
    except ApiError as error:
        return web.redirect(back, f"Could not save the schedule: {error.explanation}", error=True)
    return web.redirect(back, f"Retention schedule saved ({cron}, UTC).")


async def add_immutability(request: Request) -> Response:
    form = await web.checked_form(request)
    name = request.path_params["name"]
    back = web.project_url(name, "policies") + "#immutability"
    body = {
        "tag_pattern": web.text(form, "tag_pattern"),
        "repository_pattern": web.text(form, "repository_pattern") or None,
        "syntax": "regex" if web.text(form, "syntax") == "regex" else "glob",
    }
    try:
        await web.api(request).post(path("/projects", name, "immutability-rules"), body)
    except ApiError as error:
        return web.redirect(back, f"Could not add the rule: {error.explanation}", error=True)
    return web.redirect(back, f"Tags matching {body['tag_pattern']} are now immutable.")


def _rule_id(form: FormData) -> str:
    rule = web.text(form, "rule")
    return rule if web.whole_number(rule, most=9_999_999_999) is not None else "0"


async def change_immutability(request: Request) -> Response:
    form = await web.checked_form(request)
    name = request.path_params["name"]
    back = web.project_url(name, "policies") + "#immutability"
    rule = path("/projects", name, "immutability-rules", _rule_id(form))
    delete = web.text(form, "action") == "delete"
    disabled = web.text(form, "disabled") == "true"
    try:
        if delete:
            await web.api(request).delete(rule)
        else:
            await web.api(request).patch(rule, {"disabled": disabled})
    except ApiError as error:
        return web.redirect(back, f"Could not change the rule: {error.explanation}", error=True)
    done = "deleted" if delete else "disabled" if disabled else "enabled"
    return web.redirect(back, f"Immutability rule {done}.")


routes: list[BaseRoute] = [
    Route("/projects/{name}/policies", policies, methods=["GET"]),
    Route("/projects/{name}/policies/retention", save_retention, methods=["POST"]),
    Route("/projects/{name}/policies/run", run_retention, methods=["POST"]),
    Route("/projects/{name}/policies/schedule", save_schedule, methods=["POST"]),
    Route("/projects/{name}/policies/immutability", add_immutability, methods=["POST"]),
    Route("/projects/{name}/policies/immutability/change", change_immutability, methods=["POST"]),
]
