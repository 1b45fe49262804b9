"""Registry endpoints (other registries to replicate with or cache from): list, create,
read, change, delete, and test the connection. System administrators only.

A password or token is accepted on create and update and never returned
(`has_credentials` says whether there is one); storing one needs
`secrets.encryption_key`. URLs the egress rules refuse (loopback, private, link-local,
metadata addresses unless `endpoints.*` allows them) are a 400 naming the reason.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field, StrictBool

from portside.context import Context
from portside.endpoints.store import MAX_CA, MAX_SECRET, MAX_URL, Endpoint, EndpointStore
from portside.mgmt.schemas import _In
from portside.mgmt.security import Admin, Ctx
from portside.remote.kinds import KINDS, EndpointKind

router = APIRouter(tags=["endpoints"])

EndpointName = Annotated[str, Path(min_length=1, max_length=64, description="The endpoint.")]
_KINDS_HELP = "Type: " + ", ".join(f"`{k}` ({v.label})" for k, v in KINDS.items()) + "."


class EndpointIn(_In):
    name: str = Field(min_length=1, max_length=64)
    type: EndpointKind = Field(description=_KINDS_HELP)
    url: str | None = Field(
        default=None,
        max_length=MAX_URL,
        description="The registry's root URL (default for docker-hub and ghcr).",
    )
    username: str | None = Field(default=None, max_length=255)
    password: str | None = Field(
        default=None, max_length=MAX_SECRET, description="Password or token (stored encrypted)."
    )
    verify_tls: StrictBool = True
    ca_bundle: str | None = Field(
        default=None, max_length=MAX_CA, description="PEM CA certificates to trust (this endpoint)."
    )
    description: str | None = Field(default=None, max_length=1000)


class EndpointPatch(_In):
    type: EndpointKind | None = None
    url: str | None = Field(default=None, max_length=MAX_URL)
    username: str | None = Field(default=None, max_length=255)
    password: str | None = Field(
        default=None, max_length=MAX_SECRET, description='New password or token; `""`: none.'
    )
    verify_tls: StrictBool | None = None
    ca_bundle: str | None = Field(default=None, max_length=MAX_CA, description='`""` removes it.')
    description: str | None = Field(default=None, max_length=1000)


class EndpointOut(BaseModel):
    id: int
    name: str
    type: str
    url: str
    username: str | None
    has_credentials: bool
    verify_tls: bool
    ca_bundle: str | None
    description: str | None
    created_by: str
    created_at: datetime
    updated_at: datetime


class TestOut(BaseModel):
    ok: bool
    message: str
    status: int | None = Field(description="HTTP status of GET /v2/, if it answered.")
    auth: str = Field(description="`none`, `basic` or `bearer` (what the registry asked).")


def endpoint_out(endpoint: Endpoint) -> EndpointOut:
    return EndpointOut(
        id=endpoint.id,
        name=endpoint.name,
        type=endpoint.kind,
        url=endpoint.url,
        username=endpoint.username,
        has_credentials=endpoint.has_credentials,
        verify_tls=endpoint.verify_tls,
        ca_bundle=endpoint.ca_pem,
        description=endpoint.description,
        created_by=endpoint.created_by,
        created_at=endpoint.created_at,
        updated_at=endpoint.updated_at,
    )


def _store(ctx: Context) -> EndpointStore:
    return EndpointStore(ctx.db, ctx.settings)


@router.get("/endpoints", response_model=list[EndpointOut])
def list_endpoints(ctx: Ctx, caller: Admin) -> list[EndpointOut]:
    return [endpoint_out(e) for e in _store(ctx).find()]


@router.post("/endpoints", response_model=EndpointOut, status_code=201)
def create_endpoint(body: EndpointIn, ctx: Ctx, caller: Admin) -> EndpointOut:
    """Register a registry. Credentials need `secrets.encryption_key` configured."""
    endpoint = _store(ctx).create(
        name=body.name,
        kind=body.type,
        url=body.url,
        username=body.username,
        password=body.password,
        verify_tls=body.verify_tls,
        ca_pem=body.ca_bundle,
        description=body.description,
        actor=caller.actor,
    )
    return endpoint_out(endpoint)


@router.get("/endpoints/{name}", response_model=EndpointOut)
def get_endpoint(name: EndpointName, ctx: Ctx, caller: Admin) -> EndpointOut:
    return endpoint_out(_store(ctx).get(name))


@router.patch("/endpoints/{name}", response_model=EndpointOut)
def update_endpoint(
    name: EndpointName, body: EndpointPatch, ctx: Ctx, caller: Admin
) -> EndpointOut:
    """Change what is given; `"password": ""` makes the endpoint anonymous."""
    endpoint = _store(ctx).update(
        name,
        kind=body.type,
        url=body.url,
        username=body.username,
        password=body.password or None,
        clear_credentials=body.password == "",
        verify_tls=body.verify_tls,
        ca_pem=body.ca_bundle,
        description=body.description,
        actor=caller.actor,
    )
    return endpoint_out(endpoint)


@router.delete("/endpoints/{name}", status_code=204)
def delete_endpoint(name: EndpointName, ctx: Ctx, caller: Admin) -> None:
    """Remove an endpoint; 409 while replication rules use it."""
    _store(ctx).delete(name, actor=caller.actor)


@router.post("/endpoints/{name}/test", response_model=TestOut)
def test_endpoint(name: EndpointName, ctx: Ctx, caller: Admin) -> TestOut:
    """GET /v2/ with the endpoint's credentials (answering its auth challenge): `ok` and
    a message saying what worked or what failed (DNS, refused address, connection, TLS,
    credentials, not a registry)."""
    store = _store(ctx)
    ping = store.test(store.get(name))
    return TestOut(ok=ping.ok, message=ping.message, status=ping.status, auth=ping.auth)
