"""The vulnerability database's status: per source, its last import and counts; the
generation scans record. Any signed-in user or robot may read it (it says what data
scans use, nothing about projects); anonymous callers only while authentication is off.
"""

from __future__ import annotations

from fastapi import APIRouter

from portside.auth.errors import Unauthenticated
from portside.mgmt.schemas import VulndbStatusOut
from portside.mgmt.security import Caller, Ctx
from portside.vulndb import status

router = APIRouter(tags=["vulndb"])


@router.get("/vulndb", response_model=VulndbStatusOut)
def vulndb_status(ctx: Ctx, caller: Caller) -> VulndbStatusOut:
    """`generation` (null until something is imported), total `advisories`, `sources`
    (name, format, import_id, imported_at, advisories, packages) and `failures` (sources
    whose latest import failed, with the error)."""
    if not caller.signed_in and ctx.auth.enabled():
        raise Unauthenticated("sign in first")
    return VulndbStatusOut.model_validate(status(ctx.db).document())
