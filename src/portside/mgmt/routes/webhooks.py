"""A project's webhooks: policies (list, create, read, change, delete), their delivery
history, a test event sent at once, and redelivery of a dead delivery.

As in Harbor, project admins (and system admins) manage webhooks; maintainers may read
policies and deliveries. A policy's secret is accepted on create and update and never
shown again (`has_secret` says whether there is one). Targets the egress rules refuse
(loopback, private, link-local, metadata addresses unless allowed in
`webhooks.*`) are a 400 naming the reason.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel, Field, StrictBool

from portside.context import Context
from portside.mgmt.paging import Paging, describe_page
from portside.mgmt.schemas import _In
from portside.mgmt.security import Caller, Ctx, Principal, require
from portside.webhooks.deliveries import Deliveries, Delivery, Status
from portside.webhooks.dispatcher import Dispatcher, egress_policy, retry_of
from portside.webhooks.payloads import EVENT_TYPES, PayloadFormat
from portside.webhooks.policies import MAX_SECRET, MAX_URL, PolicyStore, WebhookPolicy

router = APIRouter(tags=["webhooks"])

PolicyId = Annotated[int, Path(ge=1, le=2**31 - 1, description="The webhook's id.")]
DeliveryId = Annotated[int, Path(ge=1, le=2**31 - 1, description="The delivery's id.")]
_EVENTS_HELP = "Events to send: " + ", ".join(f"`{t}`" for t in EVENT_TYPES) + "."


class WebhookIn(_In):
    name: str = Field(min_length=1, max_length=64)
    target_url: str = Field(min_length=1, max_length=MAX_URL, description="Where to POST.")
    event_types: list[str] = Field(
        min_length=1, max_length=len(EVENT_TYPES), description=_EVENTS_HELP
    )
    payload_format: PayloadFormat = Field(
        default="default", description="`default` (Harbor's) or `cloudevents` (1.0, JSON)."
    )
    secret: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_SECRET,
        description="Signs each request (`X-Portside-Signature: sha256=<HMAC of the body>`).",
    )
    description: str | None = Field(default=None, max_length=1000)
    enabled: StrictBool = True


class WebhookPatch(_In):
    target_url: str | None = Field(default=None, min_length=1, max_length=MAX_URL)
    event_types: list[str] | None = Field(default=None, min_length=1, max_length=len(EVENT_TYPES))
    payload_format: PayloadFormat | None = None
    secret: str | None = Field(
        default=None, max_length=MAX_SECRET, description='A new secret; `""` removes it.'
    )
    description: str | None = Field(default=None, max_length=1000)
    enabled: StrictBool | None = None


class WebhookOut(BaseModel):
    id: int
    project: str
    name: str
    description: str | None
    enabled: bool
    target_url: str
    event_types: list[str]
    payload_format: PayloadFormat
    has_secret: bool
    created_by: str
    created_at: datetime
    updated_at: datetime


class DeliveryOut(BaseModel):
    id: int
    webhook_id: int
    event_id: int | None = Field(description="None for a test event.")
    event_type: str
    status: Status = Field(
        description="`queued`, `delivering`, `succeeded`, `failed` (will be retried at "
        "`next_attempt_at`) or `dead` (no more attempts; may be redelivered)."
    )
    attempts: int
    next_attempt_at: datetime
    response_code: int | None
    latency_ms: int | None
    error: str | None
    created_at: datetime
    updated_at: datetime


def webhook_out(policy: WebhookPolicy) -> WebhookOut:
    return WebhookOut(
        id=policy.id,
        project=policy.project,
        name=policy.name,
        description=policy.description,
        enabled=policy.enabled,
        target_url=policy.target_url,
        event_types=list(policy.event_types),
        payload_format=policy.payload_format,
        has_secret=policy.secret is not None,
        created_by=policy.created_by,
        created_at=policy.created_at,
        updated_at=policy.updated_at,
    )


def delivery_out(delivery: Delivery) -> DeliveryOut:
    return DeliveryOut(
        id=delivery.id,
        webhook_id=delivery.policy_id,
        event_id=delivery.event_id,
        event_type=delivery.event_type,
        status=delivery.status,
        attempts=delivery.attempts,
        next_attempt_at=delivery.next_attempt_at,
        response_code=delivery.response_code,
        latency_ms=delivery.latency_ms,
        error=delivery.error,
        created_at=delivery.created_at,
        updated_at=delivery.updated_at,
    )


def _policies(ctx: Context) -> PolicyStore:
    return PolicyStore(ctx.db, egress_policy(ctx.settings))


def _read(ctx: Context, caller: Principal, project: str) -> None:
    require(ctx, caller, project, "webhooks:read")


@router.get("/projects/{project}/webhooks", response_model=list[WebhookOut])
def list_webhooks(project: str, ctx: Ctx, caller: Caller) -> list[WebhookOut]:
    _read(ctx, caller, project)
    return [webhook_out(p) for p in _policies(ctx).find(project)]


@router.post("/projects/{project}/webhooks", response_model=WebhookOut, status_code=201)
def create_webhook(project: str, body: WebhookIn, ctx: Ctx, caller: Caller) -> WebhookOut:
    """Send the project's chosen events to a URL. Only events after the webhook exists
    are sent."""
    require(ctx, caller, project, "webhooks")
    policy = _policies(ctx).create(
        project,
        name=body.name,
        target_url=body.target_url,
        event_types=body.event_types,
        payload_format=body.payload_format,
        secret=body.secret,
        description=body.description,
        enabled=body.enabled,
        actor=caller.actor,
    )
    return webhook_out(policy)


@router.get("/projects/{project}/webhooks/{webhook_id}", response_model=WebhookOut)
def get_webhook(project: str, webhook_id: PolicyId, ctx: Ctx, caller: Caller) -> WebhookOut:
    _read(ctx, caller, project)
    return webhook_out(_policies(ctx).get(project, webhook_id))


@router.patch("/projects/{project}/webhooks/{webhook_id}", response_model=WebhookOut)
def update_webhook(
    project: str, webhook_id: PolicyId, body: WebhookPatch, ctx: Ctx, caller: Caller
) -> WebhookOut:
    """Change what is given; `"enabled": false` stops queuing new deliveries."""
    require(ctx, caller, project, "webhooks")
    policy = _policies(ctx).update(
        project,
        webhook_id,
        target_url=body.target_url,
        event_types=body.event_types,
        payload_format=body.payload_format,
        secret=body.secret or None,
        clear_secret=body.secret == "",
        description=body.description,
        enabled=body.enabled,
        actor=caller.actor,
    )
    return webhook_out(policy)


@router.delete("/projects/{project}/webhooks/{webhook_id}", status_code=204)
def delete_webhook(project: str, webhook_id: PolicyId, ctx: Ctx, caller: Caller) -> None:
    """Remove the webhook and its delivery history."""
    require(ctx, caller, project, "webhooks")
    _policies(ctx).delete(project, webhook_id, actor=caller.actor)


@router.get(
    "/projects/{project}/webhooks/{webhook_id}/deliveries", response_model=list[DeliveryOut]
)
def list_deliveries(
    project: str,
    webhook_id: PolicyId,
    request: Request,
    response: Response,
    ctx: Ctx,
    caller: Caller,
    paging: Paging,
    status: Annotated[Status | None, Query(description="Only deliveries in this state.")] = None,
) -> list[DeliveryOut]:
    """The webhook's deliveries, newest first."""
    _read(ctx, caller, project)
    policy = _policies(ctx).get(project, webhook_id)
    found, total = Deliveries(ctx.db, retry_of(ctx.settings)).find(
        policy.id, status=status, limit=paging.size, offset=paging.offset
    )
    describe_page(request, response, paging, total)
    return [delivery_out(d) for d in found]


@router.post(
    "/projects/{project}/webhooks/{webhook_id}/test", response_model=DeliveryOut, status_code=201
)
def test_webhook(project: str, webhook_id: PolicyId, ctx: Ctx, caller: Caller) -> DeliveryOut:
    """Send a `webhook.test` event to the target now and answer how it went (a failed
    test is recorded as a dead delivery with the error, and not retried)."""
    require(ctx, caller, project, "webhooks")
    dispatcher = Dispatcher(ctx.db, ctx.settings, f"api:{caller.identity.actor}")
    return delivery_out(dispatcher.send_test(project, webhook_id, caller.identity.actor))


@router.post(
    "/projects/{project}/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver",
    response_model=DeliveryOut,
)
def redeliver(
    project: str, webhook_id: PolicyId, delivery_id: DeliveryId, ctx: Ctx, caller: Caller
) -> DeliveryOut:
    """Queue a dead delivery again (its attempts start over); 409 for any other state."""
    require(ctx, caller, project, "webhooks")
    policy = _policies(ctx).get(project, webhook_id)
    delivery = Deliveries(ctx.db, retry_of(ctx.settings)).redeliver(
        policy, delivery_id, actor=caller.actor
    )
    return delivery_out(delivery)
