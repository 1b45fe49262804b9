"""A push the project quota refused is recorded as a `quota.exceeded` event.

The push's own transaction rolled back with the refusal, so the event is written in a
transaction of its own, after it: a refused push leaves nothing but this record. One
place for manifests, blob uploads and cross-repository mounts, so the event has one
shape whatever was refused.
"""

from __future__ import annotations

from portside.errors import QuotaExceeded
from portside.events import outbox
from portside.events.outbox import Actor
from portside.metadata.db import Database


def record_refusal(
    db: Database,
    actor: Actor,
    repo: str,
    digest: str,
    refused: QuotaExceeded,
    *,
    kind: str,
    tag: str | None = None,
) -> None:
    """`kind`: what was refused ("manifest", "blob" or "mount")."""
    data = {**(refused.detail or {}), "digest": digest, "kind": kind}
    if tag is not None:
        data["tag"] = tag
    with db.write() as conn:
        outbox.emit(
            conn,
            outbox.QUOTA_EXCEEDED,
            actor,
            resource=f"{repo}@{digest}",
            repository=repo,
            data=data,
        )
