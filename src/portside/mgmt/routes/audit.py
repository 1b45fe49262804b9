"""The system-wide audit log (administrators)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from portside.mgmt.paging import Paging, describe_page
from portside.mgmt.routes import convert
from portside.mgmt.schemas import AuditOut
from portside.mgmt.security import Admin, Ctx

router = APIRouter(tags=["audit"])


@router.get("/audit-logs", response_model=list[AuditOut])
def audit_logs(
    request: Request,
    response: Response,
    ctx: Ctx,
    caller: Admin,
    paging: Paging,
    actor: Annotated[str | None, Query(max_length=255)] = None,
    action: Annotated[str | None, Query(max_length=32)] = None,
    resource: Annotated[str | None, Query(max_length=512, description="Contains.")] = None,
    project: Annotated[str | None, Query(max_length=255)] = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[AuditOut]:
    """Newest first."""
    entries, total = ctx.audit.find(
        projects=[project] if project else None,
        actor=actor,
        action=action,
        resource=resource,
        since=since,
        until=until,
        limit=paging.size,
        offset=paging.offset,
    )
    describe_page(request, response, paging, total)
    return [convert.audit(e) for e in entries]
