"""Signatures of artifacts and their verdicts: found, verified once, stored, read.

Where signatures are found: in the artifact's repository, cosign's `sha256-<hex>.sig`
tag and any referrer (manifest whose `subject` is the artifact) that formats.py
recognises as a cosign or Notation signature.

When they are verified: lazily, on first need, then kept. Whoever first asks about an
artifact (the pull policy on a manifest GET, the signatures API, the UI) finds the
signatures without a verdict for the project's current keyset generation, verifies
them (reading only their small payload layers, digest-checked) and stores one verdict
per (artifact, signature, trusted key of the signature's kind), with the reason, in
one write transaction. Later requests only read the stored verdicts: verification never
runs again for that signature until the project's keys or trust policy change (which
bumps `keyset_generation` and makes every verdict stale) or a new signature arrives.
So a pull right after `cosign sign` sees the new signature at once (no background
worker to wait for), and a manifest GET pays for cryptography at most once per
signature and key set. In read-only mode (portside.readonly) verdicts are judged for
the request and not stored: nothing changes while a registry is being copied. Verdicts
are per repository: a signature is trusted only in the repository it was pushed to.

Invariants: a verdict row is written only by `_ensure`, for the generation it read the
keys under; verified=True only if verify.verify() said so for a key the project trusted
under that generation.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Connection, delete, select

from portside.digest import Digest
from portside.errors import RegistryError
from portside.metadata import schema as s
from portside.metadata.db import Database, utcnow
from portside.signatures import formats
from portside.signatures.keys import TrustedKey, TrustPolicy, project_keys, trust_policy
from portside.signatures.verify import Target, Verdict, verify
from portside.storage.base import StorageDriver
from portside.storage.paths import blob_path

_IN_CHUNK = 200  # digests per IN (...) query


@dataclass(frozen=True, slots=True)
class KeyVerdict:
    key: str | None  # the trusted key's name; None when no key applied
    verified: bool
    reason: str


@dataclass(frozen=True, slots=True)
class SignatureReport:
    """One signature of an artifact and what verifying it found."""

    artifact: str
    signature_digest: str  # the signature artifact's manifest
    layer: int
    format: str
    via: str  # "tag" (cosign's sha256-<hex>.sig) or "referrer"
    tag: str | None
    signer: str | None
    verdicts: list[KeyVerdict]

    @property
    def verified(self) -> bool:
        return any(v.verified for v in self.verdicts)

    @property
    def verified_by(self) -> str | None:
        for verdict in self.verdicts:
            if verdict.verified:
                return verdict.key
        return None


@dataclass(frozen=True, slots=True)
class Trust:
    """The pull policy's question: is the artifact signed by a trusted key?"""

    signed: bool
    detail: str


@dataclass(frozen=True, slots=True)
class _SignatureArtifact:
    artifact: str
    digest: str
    content: bytes
    via: str
    tag: str | None


@dataclass(frozen=True, slots=True)
class _Project:
    repository_id: int
    generation: int
    keys: list[TrustedKey]
    policy: TrustPolicy


_Snapshot = tuple[_Project, list[_SignatureArtifact], list[Any]]


class SignatureService:
    def __init__(self, db: Database, storage: StorageDriver, *, read_only: bool = False) -> None:
        self.db = db
        self.storage = storage
        self.read_only = read_only  # portside.readonly: verdicts are judged, not stored

    # -- reading --------------------------------------------------------------------
    def reports(self, repo: str, digests: Iterable[str]) -> dict[str, list[SignatureReport]]:
        """Every signature of each artifact with its verdicts (computed if missing)."""
        wanted = sorted(set(digests))
        found: dict[str, list[SignatureReport]] = {d: [] for d in wanted}
        if not wanted:
            return found
        snapshot = self._read(repo, wanted)
        if snapshot is None:
            return found
        new = self._ensure(snapshot)
        if new and self.read_only:  # judged, not stored (portside.readonly)
            snapshot = (snapshot[0], snapshot[1], snapshot[2] + [SimpleNamespace(**r) for r in new])
        elif new:
            snapshot = self._read(repo, wanted) or snapshot  # with the verdicts just stored
        project, artifacts, rows = snapshot
        names = {key.id: key.name for key in project.keys}
        by_signature: dict[tuple[str, str, int], list[Any]] = {}
        for row in rows:
            key = (row.artifact_digest, row.signature_digest, row.layer)
            by_signature.setdefault(key, []).append(row)
        for artifact in artifacts:
            for (digest, signature, layer), group in sorted(by_signature.items()):
                if digest != artifact.artifact or signature != artifact.digest:
                    continue
                found[digest].append(
                    SignatureReport(
                        artifact=digest,
                        signature_digest=signature,
                        layer=layer,
                        format=group[0].format,
                        via=artifact.via,
                        tag=artifact.tag,
                        signer=next((r.signer for r in group if r.signer), None),
                        verdicts=[
                            KeyVerdict(
                                names.get(r.key_id) if r.key_id is not None else None,
                                bool(r.verified),
                                r.reason,
                            )
                            for r in group
                        ],
                    )
                )
        return found

    def trusted(self, repo: str, digest: str) -> Trust:
        """Is the artifact, or an index in the repository that contains it, signed by
        a key the project trusts (a verified verdict under the current keys)?"""
        with self.db.read() as conn:
            parents = _parents(conn, repo, digest)
        candidates = [digest, *parents]
        reports = self.reports(repo, candidates)
        reasons: list[str] = []
        for candidate in candidates:
            for report in reports[candidate]:
                if report.verified:
                    by = report.verified_by
                    where = "" if candidate == digest else f" (on its index {candidate})"
                    return Trust(True, f"{report.format} signature verified by key {by!r}{where}")
                reasons += [v.reason for v in report.verdicts]
        if not reasons:
            return Trust(False, "the artifact has no signature")
        return Trust(False, "no signature is verified by a trusted key: " + reasons[0])

    # -- verifying ------------------------------------------------------------------
    def _read(self, repo: str, digests: list[str]) -> _Snapshot | None:
        """The repository's project with its keys, the artifacts' signature manifests
        and their verdicts under the current generation (one read transaction)."""
        with self.db.read() as conn:
            project = _project(conn, repo)
            if project is None:
                return None
            artifacts = _signature_artifacts(conn, project.repository_id, digests)
            rows = _verdict_rows(conn, project, digests) if artifacts else []
        return project, artifacts, rows

    def _ensure(self, snapshot: _Snapshot) -> list[dict[str, Any]]:
        """Verify the signatures without a verdict in the snapshot and store their
        verdicts (in read-only mode only return them); the new verdict rows."""
        project, artifacts, stored = snapshot
        done = {(r.artifact_digest, r.signature_digest) for r in stored}
        todo = [a for a in artifacts if (a.artifact, a.digest) not in done]
        if not todo:
            return []
        with self.db.read() as conn:
            targets = _targets(conn, project.repository_id, {a.artifact for a in todo})
        now = utcnow()
        rows: list[dict[str, Any]] = []
        for artifact in todo:
            target = targets.get(artifact.artifact)
            if target is None:
                continue
            for layer, envelope in self._envelopes(artifact):
                for key, verdict in _judge(envelope, project, target):
                    rows.append(
                        {
                            "repository_id": project.repository_id,
                            "artifact_digest": artifact.artifact,
                            "signature_digest": artifact.digest,
                            "layer": layer,
                            "format": envelope.format,
                            "key_id": key,
                            "generation": project.generation,
                            "verified": verdict.verified,
                            "reason": verdict.reason[:2000],
                            "signer": verdict.signer,
                            "checked_at": now,
                        }
                    )
        if self.read_only or not rows:
            return rows
        v = s.signature_verdicts
        with self.db.write() as conn:
            for artifact in todo:
                conn.execute(
                    delete(v).where(
                        v.c.repository_id == project.repository_id,
                        v.c.artifact_digest == artifact.artifact,
                        v.c.signature_digest == artifact.digest,
                    )
                )
            conn.execute(v.insert(), rows)
        return rows

    def _envelopes(self, artifact: _SignatureArtifact) -> list[tuple[int, formats.Envelope]]:
        try:
            manifest = json.loads(artifact.content)
        except ValueError:
            return []
        kind, layers = formats.signature_layers(manifest if isinstance(manifest, dict) else {})
        found = []
        for layer in layers:
            data = self._layer_bytes(layer)
            if data is None:
                envelope = formats.Envelope(
                    "notation" if kind == "notation" else "cosign",
                    layer.index,
                    problem="the signature layer cannot be read",
                )
            elif kind == "notation":
                envelope = formats.read_notation(layer, data)
            elif kind == "sigstore":
                envelope = formats.read_bundle(layer, data)
            else:
                envelope = formats.read_cosign(layer, data)
            found.append((layer.index, envelope))
        return found

    def _layer_bytes(self, layer: formats.Layer) -> bytes | None:
        """The layer's bytes, if small and exactly the content its digest names."""
        if not 0 <= layer.size <= formats.MAX_LAYER_BYTES:
            return None
        try:
            digest = Digest.parse(layer.digest)
            data = self.storage.get(blob_path(digest))
        except (RegistryError, OSError, KeyError):
            return None
        except Exception:  # a driver's own "not found" error: unreadable all the same
            return None
        if len(data) != layer.size or Digest.of(data, digest.algorithm) != digest:
            return None
        return data


def _judge(
    envelope: formats.Envelope, project: _Project, target: Target
) -> list[tuple[int | None, Verdict]]:
    """One verdict per trusted key of the signature's kind (or one with no key)."""
    if envelope.problem:
        return [(None, Verdict(False, envelope.problem))]
    keys = [k for k in project.keys if k.kind == envelope.format]
    if not keys:
        reason = f"the project trusts no {envelope.format} keys"
        return [(None, Verdict(False, reason, envelope.signer))]
    return [(key.id, verify(envelope, key, target, project.policy)) for key in keys]


def _project(conn: Connection, repo: str) -> _Project | None:
    r, p = s.repositories, s.projects
    row = conn.execute(
        select(
            r.c.id,
            p.c.id.label("project_id"),
            p.c.keyset_generation,
            p.c.notation_level,
            p.c.notation_identities,
        )
        .select_from(r.outerjoin(p, p.c.name == r.c.project))
        .where(r.c.name == repo)
    ).first()
    if row is None:
        return None
    if row.project_id is None:
        return _Project(int(row.id), 0, [], TrustPolicy())
    return _Project(
        int(row.id),
        int(row.keyset_generation),
        project_keys(conn, int(row.project_id)),
        trust_policy(row),
    )


def _chunks(items: list[str]) -> Iterable[list[str]]:
    for start in range(0, len(items), _IN_CHUNK):
        yield items[start : start + _IN_CHUNK]


def _signature_artifacts(
    conn: Connection, repository_id: int, digests: list[str]
) -> list[_SignatureArtifact]:
    """The signature manifests of the artifacts: referrers, then cosign tags."""
    m, t = s.manifests, s.tags
    found: list[_SignatureArtifact] = []
    for chunk in _chunks(digests):
        for row in conn.execute(
            select(m.c.digest, m.c.content, m.c.subject_digest)
            .where(m.c.repository_id == repository_id, m.c.subject_digest.in_(chunk))
            .order_by(m.c.pushed_at, m.c.digest)
        ):
            content = bytes(row.content)
            found.append(
                _SignatureArtifact(row.subject_digest, row.digest, content, "referrer", None)
            )
        tags = {formats.sig_tag(d): d for d in chunk}
        tags.pop(None, None)
        for row in conn.execute(
            select(t.c.name, m.c.digest, m.c.content)
            .join(m, m.c.id == t.c.manifest_id)
            .where(t.c.repository_id == repository_id, t.c.name.in_(list(tags)))
        ):
            found.append(
                _SignatureArtifact(tags[row.name], row.digest, bytes(row.content), "tag", row.name)
            )
    return [a for a in found if _is_signature(a.content)]


def _is_signature(content: bytes) -> bool:
    try:
        manifest = json.loads(content)
    except ValueError:
        return False
    return isinstance(manifest, dict) and formats.is_signature_manifest(manifest)


def _verdict_rows(conn: Connection, project: _Project, digests: list[str]) -> list[Any]:
    v = s.signature_verdicts
    rows: list[Any] = []
    for chunk in _chunks(digests):
        rows += conn.execute(
            select(v)
            .where(
                v.c.repository_id == project.repository_id,
                v.c.artifact_digest.in_(chunk),
                v.c.generation == project.generation,
            )
            .order_by(v.c.signature_digest, v.c.layer, v.c.id)
        ).all()
    return rows


def _targets(conn: Connection, repository_id: int, digests: set[str]) -> dict[str, Target]:
    m = s.manifests
    found: dict[str, Target] = {}
    for chunk in _chunks(sorted(digests)):
        for row in conn.execute(
            select(m.c.digest, m.c.size, m.c.media_type).where(
                m.c.repository_id == repository_id, m.c.digest.in_(chunk)
            )
        ):
            found[row.digest] = Target(row.digest, int(row.size), row.media_type)
    return found


def _parents(conn: Connection, repo: str, digest: str) -> list[str]:
    """Indexes in the repository that list the manifest as a child."""
    m, c, r = s.manifests, s.manifest_children, s.repositories
    return list(
        conn.execute(
            select(m.c.digest)
            .join(c, c.c.manifest_id == m.c.id)
            .join(r, r.c.id == m.c.repository_id)
            .where(r.c.name == repo, c.c.child_digest == digest)
            .order_by(m.c.digest)
        ).scalars()
    )
