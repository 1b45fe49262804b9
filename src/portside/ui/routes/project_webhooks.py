"""A project's webhooks: the policies (with each one's latest delivery), creating one,
enabling / disabling, deleting, sending a test event (its answer is the one-time
message), and a policy's delivery history with redelivery of dead deliveries.
Maintainers see webhooks and deliveries; project admins manage them.

A policy's secret goes to the API once, when it is created, and is never shown: the
API does not return it, and a refused create renders the form again without it. A
target the API refuses (a loopback or private address, say) is shown in the API's
words above the form.
"""

from __future__ import annotations

from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from portside.ui import web
from portside.ui.api import ApiError, path
from portside.ui.paging import Pager
from portside.ui.routes.project import ProjectPage, load_project, render_tab
from portside.webhooks.deliveries import STATUSES
from portside.webhooks.payloads import EVENT_TYPES, FORMATS

DELIVERIES_PAGE_SIZE = 25
FORMAT_LABELS = {"default": "Default (Harbor's)", "cloudevents": "CloudEvents 1.0"}
_BLANK = {
    "name": "",
    "target_url": "",
    "event_types": ["artifact.pushed"],
    "payload_format": "default",
    "description": "",
    "enabled": True,
}


def _hooks(project: str, *rest: str) -> str:
    return path("/projects", project, "webhooks", *rest)


def _webhook_id(value: str) -> str | None:
    """A webhook or delivery id as the API takes it (1 to 2**31 - 1), or None."""
    number = web.whole_number(value, most=2**31 - 1)
    return str(number) if number else None


async def webhooks(request: Request) -> Response:
    page = await load_project(request)
    return await _page(request, page)


async def _page(
    request: Request,
    page: ProjectPage,
    *,
    draft: dict[str, Any] | None = None,
    error: str | None = None,
    status: int = 200,
) -> Response:
    calls = web.api(request)
    found = (await calls.get(_hooks(page.name))).body
    latest: dict[int, dict[str, Any]] = {}
    for hook in found:
        recent = await calls.get(_hooks(page.name, str(hook["id"]), "deliveries"), page_size=1)
        if recent.body:
            latest[hook["id"]] = recent.body[0]
    return await render_tab(
        request,
        page,
        "project_webhooks.html",
        "webhooks",
        status=status,
        webhooks=found,
        latest=latest,
        manage=page.may("webhooks"),
        draft=draft or _BLANK,
        error=error,
        event_types=list(EVENT_TYPES),
        formats=[(f, FORMAT_LABELS.get(f, f)) for f in FORMATS],
        format_labels=FORMAT_LABELS,
    )


def _draft(form: FormData) -> dict[str, Any]:
    """The create form as sent (to show again), without the secret."""
    return {
        "name": web.text(form, "webhook_name"),
        "target_url": web.text(form, "target_url"),
        "event_types": [t for t in form.getlist("event_type") if isinstance(t, str)],
        "payload_format": web.text(form, "payload_format", "default"),
        "description": web.text(form, "description"),
        "enabled": form.get("enabled") == "on",
    }


async def create_webhook(request: Request) -> Response:
    form = await web.checked_form(request)
    page = await load_project(request)
    draft = _draft(form)
    problem = None
    if not draft["name"]:
        problem = "Enter a name for the webhook."
    elif not draft["target_url"]:
        problem = "Enter the URL to send events to."
    elif not draft["event_types"]:
        problem = "Choose at least one event to send."
    if problem:
        return await _page(request, page, draft=draft, error=problem, status=400)
    secret = form.get("secret")
    body = {
        "name": draft["name"],
        "target_url": draft["target_url"],
        "event_types": draft["event_types"],
        "payload_format": draft["payload_format"],
        "secret": secret if isinstance(secret, str) and secret else None,
        "description": draft["description"] or None,
        "enabled": draft["enabled"],
    }
    try:
        created = (await web.api(request).post(_hooks(page.name), body)).body
    except ApiError as error:
        status = error.status if error.status in (400, 403, 404, 409) else 400
        message = f"Could not create the webhook: {error.explanation}"
        return await _page(request, page, draft=draft, error=message, status=status)
    return web.redirect(
        web.project_url(page.name, "webhooks"), f"Webhook {created['name']} created."
    )


def _chosen(form: FormData) -> tuple[str, str]:
    """The webhook a row's button names: (its id for the API, its name for messages)."""
    hook = _webhook_id(web.text(form, "webhook")) or "0"
    return hook, web.text(form, "webhook_name") or f"#{hook}"


async def set_state(request: Request) -> Response:
    form = await web.checked_form(request)
    name = request.path_params["name"]
    back = web.project_url(name, "webhooks")
    hook, label = _chosen(form)
    enabled = web.text(form, "enabled") == "true"
    try:
        await web.api(request).patch(_hooks(name, hook), {"enabled": enabled})
    except ApiError as error:
        return web.redirect(back, f"Could not change {label}: {error.explanation}", error=True)
    return web.redirect(back, f"Webhook {label} {'enabled' if enabled else 'disabled'}.")


async def delete_webhook(request: Request) -> Response:
    form = await web.checked_form(request)
    name = request.path_params["name"]
    back = web.project_url(name, "webhooks")
    hook, label = _chosen(form)
    try:
        await web.api(request).delete(_hooks(name, hook))
    except ApiError as error:
        return web.redirect(back, f"Could not delete {label}: {error.explanation}", error=True)
    return web.redirect(back, f"Webhook {label} deleted.")


def test_message(label: str, delivery: dict[str, Any]) -> tuple[str, bool]:
    """The one-time message for a test delivery: (words, whether it failed)."""
    code = delivery.get("response_code")
    latency = delivery.get("latency_ms")
    answer = " ".join(
        part
        for part in (
            f"HTTP {code}" if code is not None else "",
            f"in {latency} ms" if latency is not None else "",
        )
        if part
    )
    if delivery.get("status") == "succeeded":
        return f"Test event delivered to {label}: {answer or 'accepted'}.", False
    reason = delivery.get("error") or answer or delivery.get("status", "not delivered")
    if answer and delivery.get("error"):
        reason = f"{reason} ({answer})"
    return f"Test event to {label} failed: {reason}", True


async def send_test(request: Request) -> Response:
    form = await web.checked_form(request)
    name = request.path_params["name"]
    back = web.project_url(name, "webhooks")
    hook, label = _chosen(form)
    try:
        delivery = (await web.api(request).post(_hooks(name, hook, "test"))).body
    except ApiError as error:
        return web.redirect(
            back, f"Could not send a test event to {label}: {error.explanation}", error=True
        )
    message, failed = test_message(label, delivery)
    return web.redirect(back, message, error=failed)


# -- deliveries --------------------------------------------------------------------------


def _hook_in_path(request: Request) -> str:
    hook = _webhook_id(request.path_params["webhook_id"])
    if hook is None:
        raise web.PageError(404, "Not found", "There is no such webhook in this project.")
    return hook


async def deliveries(request: Request) -> Response:
    page = await load_project(request)
    hook = _hook_in_path(request)
    status = request.query_params.get("status", "")
    if status not in STATUSES:
        status = ""
    pager = Pager.from_request(request, DELIVERIES_PAGE_SIZE)
    calls = web.api(request)
    webhook = (await calls.get(_hooks(page.name, hook))).body
    answer = await calls.get(
        _hooks(page.name, hook, "deliveries"),
        status=status or None,
        page=pager.number,
        page_size=pager.size,
    )
    pager.total = answer.total or 0
    return await render_tab(
        request,
        page,
        "project_webhook_deliveries.html",
        "webhooks",
        webhook=webhook,
        deliveries=answer.body,
        chosen=status,
        statuses=STATUSES,
        pager=pager,
        manage=page.may("webhooks"),
    )


async def redeliver(request: Request) -> Response:
    form = await web.checked_form(request)
    name = request.path_params["name"]
    hook = _hook_in_path(request)
    back = web.project_url(name, f"webhooks/{hook}/deliveries")
    delivery = _webhook_id(web.text(form, "delivery")) or "0"
    try:
        await web.api(request).post(_hooks(name, hook, "deliveries", delivery, "redeliver"))
    except ApiError as error:
        return web.redirect(
            back, f"Could not redeliver delivery {delivery}: {error.explanation}", error=True
        )
    return web.redirect(back, f"Delivery {delivery} queued again; it is sent shortly.")


routes: list[BaseRoute] = [
    Route("/projects/{name}/webhooks", webhooks, methods=["GET"]),
    Route("/projects/{name}/webhooks", create_webhook, methods=["POST"]),
    Route("/projects/{name}/webhooks/state", set_state, methods=["POST"]),
    Route("/projects/{name}/webhooks/delete", delete_webhook, methods=["POST"]),
    Route("/projects/{name}/webhooks/test", send_test, methods=["POST"]),
    Route("/projects/{name}/webhooks/{webhook_id}/deliveries", deliveries, methods=["GET"]),
    Route(
        "/projects/{name}/webhooks/{webhook_id}/deliveries/redeliver", redeliver, methods=["POST"]
    ),
]
