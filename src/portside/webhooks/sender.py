"""One webhook request: the headers (event, idempotency id, timestamp, signature) and a
POST through the egress guard, turned into an Outcome for the delivery history.

Signature: with a secret, `X-Portside-Signature: sha256=<hex>` is the HMAC-SHA256 of the
exact body bytes under the secret. `X-Portside-Timestamp` is when the request was sent
(Unix seconds); `X-Portside-Event-Id` is the same on every attempt of a delivery, so a
receiver can drop repeats.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from importlib.metadata import version

import httpx

from portside.egress import EgressPolicy, Refused, send
from portside.webhooks.deliveries import Delivery, Outcome
from portside.webhooks.payloads import CONTENT_TYPES
from portside.webhooks.policies import WebhookPolicy

SIGNATURE_HEADER = "X-Portside-Signature"
TIMESTAMP_HEADER = "X-Portside-Timestamp"
EVENT_ID_HEADER = "X-Portside-Event-Id"
EVENT_TYPE_HEADER = "X-Portside-Event"
DELIVERY_HEADER = "X-Portside-Delivery"


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def event_id_of(delivery: Delivery) -> str:
    return str(delivery.event_id) if delivery.event_id is not None else f"test-{delivery.id}"


def headers_for(policy: WebhookPolicy, delivery: Delivery, body: bytes) -> dict[str, str]:
    headers = {
        "Content-Type": CONTENT_TYPES[policy.payload_format],
        "User-Agent": f"portside-webhooks/{version('portside')}",
        EVENT_TYPE_HEADER: delivery.event_type,
        EVENT_ID_HEADER: event_id_of(delivery),
        DELIVERY_HEADER: str(delivery.id),
        TIMESTAMP_HEADER: str(int(time.time())),
    }
    if policy.secret:
        headers[SIGNATURE_HEADER] = signature(policy.secret, body)
    return headers


def attempt(egress: EgressPolicy, policy: WebhookPolicy, delivery: Delivery) -> Outcome:
    """POST the delivery's body to the policy's target; never raises for the target's
    sake (a refusal, a network error or a non-2xx answer is a failed Outcome)."""
    body = delivery.payload.encode()
    started = time.monotonic()
    try:
        sent = send(
            egress,
            "POST",
            policy.target_url,
            content=body,
            headers=headers_for(policy, delivery, body),
        )
    except Refused as refused:
        return Outcome(False, None, _ms(started), f"refused: {refused}")
    except httpx.HTTPError as error:
        return Outcome(False, None, _ms(started), f"{type(error).__name__}: {error}")
    latency = round(sent.seconds * 1000)
    if 200 <= sent.status < 300:
        return Outcome(True, sent.status, latency, None)
    answer = sent.body[:500].decode("utf-8", "replace").strip()
    return Outcome(
        False, sent.status, latency, f"HTTP {sent.status}" + (f": {answer}" if answer else "")
    )


def _ms(started: float) -> int:
    return round((time.monotonic() - started) * 1000)
