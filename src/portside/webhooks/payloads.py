"""What a webhook request says: an outbox event rendered in the policy's payload format.

`default` is Harbor's format (`type`, `occur_at`, `operator`, `event_data` with
`resources` and `repository`); `cloudevents` is a CloudEvents 1.0 JSON event in
structured mode, whose `data` is the same `event_data`.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal

from portside.events import outbox
from portside.events.outbox import Event

PayloadFormat = Literal["default", "cloudevents"]
FORMATS: tuple[PayloadFormat, ...] = ("default", "cloudevents")
TEST_EVENT = "webhook.test"

# The events a policy may subscribe to, with the type Harbor's default format names
# them by (tag events are Portside's own: Harbor reports tags only with pushes).
EVENT_TYPES: dict[str, str] = {
    outbox.ARTIFACT_PUSHED: "PUSH_ARTIFACT",
    outbox.ARTIFACT_PULLED: "PULL_ARTIFACT",
    outbox.ARTIFACT_DELETED: "DELETE_ARTIFACT",
    outbox.TAG_MOVED: "MOVE_TAG",
    outbox.TAG_DELETED: "DELETE_TAG",
    outbox.QUOTA_EXCEEDED: "QUOTA_EXCEED",
    outbox.SCAN_COMPLETED: "SCANNING_COMPLETED",
    outbox.SCAN_FAILED: "SCANNING_FAILED",
    outbox.REPLICATION_COMPLETED: "REPLICATION",
}
_HARBOR_NAMES = {**EVENT_TYPES, TEST_EVENT: "TEST_WEBHOOK"}

CONTENT_TYPES: dict[PayloadFormat, str] = {
    "default": "application/json",
    "cloudevents": "application/cloudevents+json",
}


def _registry_host(public_url: str) -> str:
    return public_url.split("://", 1)[-1].rstrip("/")


def event_data(event: Event, *, public_url: str, public: bool | None) -> dict[str, Any]:
    """Harbor's `event_data`: the artifacts concerned and their repository."""
    data: dict[str, Any] = {}
    if event.repository:
        host = _registry_host(public_url)
        digest = event.data.get("digest")
        tags: list[str] = []
        if isinstance(event.data.get("tags"), list):
            tags = [str(t) for t in event.data["tags"]]
        elif event.data.get("tag"):
            tags = [str(event.data["tag"])]
        resources: list[dict[str, Any]] = []
        listed: list[str | None] = [*tags] if tags else [None]
        for tag in listed:
            resource: dict[str, Any] = {"digest": digest}
            if tag is not None:
                resource["tag"] = tag
            reference = f":{tag}" if tag is not None else f"@{digest}" if digest else ""
            resource["resource_url"] = f"{host}/{event.repository}{reference}"
            resources.append(resource)
        namespace, _, name = event.repository.partition("/")
        data["resources"] = resources
        data["repository"] = {
            "name": name or namespace,
            "namespace": namespace,
            "repo_full_name": event.repository,
            "repo_type": "public" if public else "private",
        }
    if not event.type.startswith("artifact.") or not event.repository:
        data["custom_attributes"] = dict(event.data)
    return data


def render(
    event: Event,
    payload_format: PayloadFormat,
    *,
    public_url: str,
    public: bool | None,
    event_id: str | None = None,
) -> str:
    """The request body for `event` in `payload_format` (compact JSON); `event_id`
    replaces the event's id (test events have none)."""
    data = event_data(event, public_url=public_url, public=public)
    body: dict[str, Any]
    if payload_format == "cloudevents":
        body = {
            "specversion": "1.0",
            "id": event_id or str(event.id),
            "source": f"/projects/{event.project}" if event.project else "/",
            "type": f"portside.{event.type}",
            "datacontenttype": "application/json",
            "time": _rfc3339(event.occurred_at),
            "subject": event.resource,
            "operator": event.actor,
            "data": data,
        }
    else:
        body = {
            "type": _HARBOR_NAMES.get(event.type, event.type.upper().replace(".", "_")),
            "occur_at": int(event.occurred_at.timestamp()),
            "operator": event.actor,
            "event_data": data,
        }
    return json.dumps(body, separators=(",", ":"), sort_keys=True)


def _rfc3339(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")
