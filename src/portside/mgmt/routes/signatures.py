"""Signatures of artifacts, a project's trusted keys and its pull policy.

- GET  /repositories/<name>/-/artifacts/<reference>/signatures (pull): each signature
  with the verdict per trusted key (verified on first need, then stored).
- GET  /projects/<p>/trusted-keys (list), POST (keys: project admins and maintainers),
  DELETE /projects/<p>/trusted-keys/<key> (keys).
- GET  /projects/<p>/pull-policy (list), PATCH (settings: project admins).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from portside.metadata.db import as_utc
from portside.mgmt.routes.repositories import RepositoryName, _name, stored_artifact
from portside.mgmt.schemas import _In
from portside.mgmt.security import Caller, Ctx, require, require_repository
from portside.signatures.keys import PolicySettings, PullPolicySettings, TrustedKey, TrustedKeys
from portside.signatures.service import SignatureReport

router = APIRouter(tags=["signatures"])


class KeyVerdictOut(BaseModel):
    key: str | None = Field(description="The trusted key; null when no key applied.")
    verified: bool
    reason: str


class SignatureOut(BaseModel):
    signature_digest: str = Field(description="The signature artifact's manifest.")
    layer: int = Field(description="Which signature of that manifest (cosign adds layers).")
    format: Literal["cosign", "notation"]
    via: Literal["tag", "referrer"]
    tag: str | None
    signer: str | None = Field(description="Notation: the signing certificate's subject.")
    verified: bool
    verified_by: str | None
    verdicts: list[KeyVerdictOut]


class TrustedKeyIn(_In):
    name: str = Field(min_length=1, max_length=64)
    pem: str = Field(
        min_length=1,
        max_length=16384,
        description="A cosign public key (ECDSA P-256 or Ed25519) or a Notation X.509 "
        "certificate, PEM.",
    )


class TrustedKeyOut(BaseModel):
    name: str
    kind: Literal["cosign", "notation"]
    algorithm: str
    fingerprint: str = Field(description="SHA-256 of the DER public key or certificate.")
    subject: str | None = Field(description="Notation certificates: their subject.")
    pem: str
    created_by: str
    created_at: datetime | None


class PullPolicyOut(BaseModel):
    require_signed: bool = Field(
        description="Refuse manifest GETs of artifacts without a signature verified by a "
        "trusted key."
    )
    notation_level: Literal["strict", "permissive", "audit"]
    notation_identities: list[str]


class PullPolicyPatch(_In):
    require_signed: bool | None = None
    notation_level: Literal["strict", "permissive", "audit"] | None = None
    notation_identities: list[str] | None = Field(default=None, max_length=100)


def signature_out(report: SignatureReport) -> SignatureOut:
    return SignatureOut(
        signature_digest=report.signature_digest,
        layer=report.layer,
        format=report.format,  # type: ignore[arg-type]
        via=report.via,  # type: ignore[arg-type]
        tag=report.tag,
        signer=report.signer,
        verified=report.verified,
        verified_by=report.verified_by,
        verdicts=[
            KeyVerdictOut(key=v.key, verified=v.verified, reason=v.reason) for v in report.verdicts
        ],
    )


def key_out(key: TrustedKey) -> TrustedKeyOut:
    return TrustedKeyOut(
        name=key.name,
        kind=key.kind,  # type: ignore[arg-type]
        algorithm=key.algorithm,
        fingerprint=key.fingerprint,
        subject=key.subject,
        pem=key.pem,
        created_by=key.created_by,
        created_at=as_utc(key.created_at) if key.created_at else None,
    )


def policy_out(settings: PullPolicySettings) -> PullPolicyOut:
    return PullPolicyOut(
        require_signed=settings.require_signed,
        notation_level=settings.notation_level,  # type: ignore[arg-type]
        notation_identities=list(settings.notation_identities),
    )


@router.get(
    "/repositories/{name:path}/-/artifacts/{reference}/signatures",
    response_model=list[SignatureOut],
)
def list_signatures(
    name: RepositoryName, reference: str, ctx: Ctx, caller: Caller
) -> list[SignatureOut]:
    name = _name(name)
    require_repository(ctx, caller, name, "pull")
    stored = stored_artifact(ctx, name, reference)
    reports = ctx.signatures.reports(name, [stored.digest])[stored.digest]
    return [signature_out(r) for r in reports]


@router.get("/projects/{name}/trusted-keys", response_model=list[TrustedKeyOut])
def list_keys(name: str, ctx: Ctx, caller: Caller) -> list[TrustedKeyOut]:
    require(ctx, caller, name, "list")
    return [key_out(k) for k in TrustedKeys(ctx.db).list(name)]


@router.post("/projects/{name}/trusted-keys", response_model=TrustedKeyOut, status_code=201)
def add_key(name: str, body: TrustedKeyIn, ctx: Ctx, caller: Caller) -> TrustedKeyOut:
    require(ctx, caller, name, "keys")
    return key_out(TrustedKeys(ctx.db).add(name, body.name, body.pem, actor=caller.actor))


@router.delete("/projects/{name}/trusted-keys/{key}", status_code=204)
def remove_key(name: str, key: str, ctx: Ctx, caller: Caller) -> None:
    require(ctx, caller, name, "keys")
    TrustedKeys(ctx.db).remove(name, key, actor=caller.actor)


@router.get("/projects/{name}/pull-policy", response_model=PullPolicyOut)
def get_policy(name: str, ctx: Ctx, caller: Caller) -> PullPolicyOut:
    require(ctx, caller, name, "list")
    return policy_out(PolicySettings(ctx.db).get(name))


@router.patch("/projects/{name}/pull-policy", response_model=PullPolicyOut)
def update_policy(name: str, body: PullPolicyPatch, ctx: Ctx, caller: Caller) -> PullPolicyOut:
    require(ctx, caller, name, "settings")
    updated = PolicySettings(ctx.db).update(
        name,
        require_signed=body.require_signed,
        notation_level=body.notation_level,
        notation_identities=body.notation_identities,
        actor=caller.actor,
    )
    return policy_out(updated)
