"""Read-only views of repositories and artifacts for the management API and the UI:
counts, sizes, tags, platforms and times, paginated and sorted in SQL."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, exists, func, literal, not_, or_, select

from portside.digest import Digest
from portside.metadata import schema as s
from portside.metadata.db import Database
from portside.storage.base import StorageDriver
from portside.storage.paths import blob_path

IMAGE_CONFIG_TYPES = frozenset(
    {
        "application/vnd.oci.image.config.v1+json",
        "application/vnd.docker.container.image.v1+json",
    }
)
INDEX_TYPES = frozenset(
    {
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    }
)
_CONFIG_READ_LIMIT = 1024 * 1024


@dataclass(frozen=True, slots=True)
class RepositorySummary:
    name: str
    project: str
    artifact_count: int
    tag_count: int
    size: int  # bytes of the distinct blobs the repository links
    pushed_at: datetime | None
    pulled_at: datetime | None


@dataclass(frozen=True, slots=True)
class Platform:
    os: str | None
    architecture: str | None
    variant: str | None = None


@dataclass(slots=True)
class ArtifactSummary:
    digest: str
    media_type: str
    artifact_type: str | None
    subject: str | None
    size: int  # the manifest plus every blob it (or, for an index, its children) lists
    tags: list[str]
    pushed_at: datetime
    pulled_at: datetime | None
    platforms: list[Platform] = field(default_factory=list)
    kind: str = "image"  # image, index or artifact

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES


@dataclass(frozen=True, slots=True)
class Attached:
    """An artifact shown under another: a platform manifest of an index ("child"), a
    referrer ("referrer": signature, SBOM, attestation...) or one of cosign's tag-scheme
    artifacts ("tag": `sha256-<hex>.sig|.att|.sbom`)."""

    relation: str
    artifact: ArtifactSummary


# cosign's tag scheme: sha256-<hex>.sig (signatures), .att (attestations), .sbom.
_COSIGN_SUFFIXES = (".sig", ".att", ".sbom")


def cosign_tags(digest: str) -> list[str]:
    algorithm, _, hex_part = digest.partition(":")
    return [f"{algorithm}-{hex_part}{suffix}" for suffix in _COSIGN_SUFFIXES]


REPOSITORY_SORTS = {"name", "pushed_at", "pulled_at", "size", "artifact_count"}
ARTIFACT_SORTS = {"pushed_at", "pulled_at", "size", "digest"}


class Browser:
    def __init__(self, db: Database, storage: StorageDriver) -> None:
        self.db = db
        self.storage = storage

    # -- repositories -----------------------------------------------------------------
    def repositories(
        self,
        *,
        projects: list[str] | None,
        search: str | None = None,
        name: str | None = None,
        sort: str = "name",
        descending: bool = False,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[list[RepositorySummary], int]:
        r, m, t, rb, b = s.repositories, s.manifests, s.tags, s.repository_blobs, s.blobs
        artifact_count = select(func.count()).where(m.c.repository_id == r.c.id).scalar_subquery()
        conditions: list[ColumnElement[bool]] = [artifact_count > 0]
        if projects is not None:
            conditions.append(r.c.project.in_(projects))
        if search:
            conditions.append(r.c.name.contains(search, autoescape=True))
        if name is not None:
            conditions.append(r.c.name == name)
        columns = {
            "artifact_count": artifact_count,
            "tag_count": select(func.count()).where(t.c.repository_id == r.c.id).scalar_subquery(),
            "size": select(func.coalesce(func.sum(b.c.size), 0))
            .select_from(rb.join(b, b.c.digest == rb.c.digest))
            .where(rb.c.repository_id == r.c.id)
            .scalar_subquery(),
            "pushed_at": select(func.max(m.c.pushed_at))
            .where(m.c.repository_id == r.c.id)
            .scalar_subquery(),
            "pulled_at": select(func.max(m.c.last_pulled_at))
            .where(m.c.repository_id == r.c.id)
            .scalar_subquery(),
        }
        query: Select[Any] = select(
            r.c.name, r.c.project, *(c.label(n) for n, c in columns.items())
        ).where(*conditions)
        order = r.c.name if sort == "name" else columns[sort]
        query = query.order_by(order.desc() if descending else order.asc(), r.c.name)
        with self.db.read() as conn:
            total = conn.execute(
                select(func.count()).select_from(r).where(*conditions)
            ).scalar_one()
            rows = conn.execute(query.limit(limit).offset(offset)).all()
        return [
            RepositorySummary(
                row.name,
                row.project,
                int(row.artifact_count),
                int(row.tag_count),
                int(row.size),
                row.pushed_at,
                row.pulled_at,
            )
            for row in rows
        ], int(total)

    def repository(self, name: str) -> RepositorySummary | None:
        found, _ = self.repositories(projects=None, name=name, limit=1)
        return found[0] if found else None

    # -- artifacts --------------------------------------------------------------------
    def artifacts(
        self,
        repository: str,
        *,
        digest: str | None = None,
        digests: list[str] | None = None,
        tag: str | None = None,
        sort: str = "pushed_at",
        descending: bool = True,
        limit: int = 50,
        offset: int = 0,
        top_level: bool = False,
    ) -> tuple[list[ArtifactSummary], int]:
        """A page of the repository's artifacts; with `top_level`, without those shown
        under another (see attached())."""
        m, r, t = s.manifests, s.repositories, s.tags
        conditions: list[ColumnElement[bool]] = [r.c.name == repository]
        if digest:
            conditions.append(m.c.digest == digest)
        if digests is not None:
            conditions.append(m.c.digest.in_(digests))
        if top_level:
            conditions.append(not_(_belongs_elsewhere()))
        if tag:
            conditions.append(
                m.c.id.in_(select(t.c.manifest_id).where(t.c.name.contains(tag, autoescape=True)))
            )
        size = self._size_expression()
        order = {
            "pushed_at": m.c.pushed_at,
            "pulled_at": m.c.last_pulled_at,
            "digest": m.c.digest,
            "size": size,
        }[sort]
        base = select(m.c.id).join(r, r.c.id == m.c.repository_id).where(*conditions)
        query = (
            select(
                m.c.id,
                m.c.digest,
                m.c.media_type,
                m.c.artifact_type,
                m.c.subject_digest,
                m.c.content,
                m.c.pushed_at,
                m.c.last_pulled_at,
                size.label("size"),
            )
            .join(r, r.c.id == m.c.repository_id)
            .where(*conditions)
            .order_by(order.desc() if descending else order.asc(), m.c.digest)
            .limit(limit)
            .offset(offset)
        )
        with self.db.read() as conn:
            total = conn.execute(select(func.count()).select_from(base.subquery())).scalar_one()
            rows = conn.execute(query).all()
            tags: dict[int, list[str]] = {}
            for tag_row in conn.execute(
                select(t.c.manifest_id, t.c.name)
                .where(t.c.manifest_id.in_([row.id for row in rows]))
                .order_by(t.c.name)
            ):
                tags.setdefault(int(tag_row.manifest_id), []).append(tag_row.name)
        result = []
        for row in rows:
            artifact = ArtifactSummary(
                row.digest,
                row.media_type,
                row.artifact_type,
                row.subject_digest,
                int(row.size),
                tags.get(int(row.id), []),
                row.pushed_at,
                row.last_pulled_at,
            )
            self._describe(artifact, row.content)
            result.append(artifact)
        return result, int(total)

    def attached(self, repository: str, roots: list[ArtifactSummary]) -> dict[str, list[Attached]]:
        """What belongs under each of `roots`: an index's platform manifests, referrers and
        cosign's tag-scheme artifacts, of the root and of its platform manifests (`cosign
        sign --recursive` signs each). A constant number of queries for the whole page."""
        found: dict[str, list[Attached]] = {root.digest: [] for root in roots}
        if not roots:
            return found
        m, mc, t, r = s.manifests, s.manifest_children, s.tags, s.repositories
        relations: list[tuple[str, str, str]] = []  # (root, relation, attached digest)
        owner = {digest: digest for digest in found}  # root or platform manifest -> root
        with self.db.read() as conn:
            repo_id = conn.execute(
                select(r.c.id).where(r.c.name == repository)
            ).scalar_one_or_none()
            if repo_id is None:
                return found
            for row in conn.execute(
                select(m.c.digest, mc.c.child_digest)
                .join(mc, mc.c.manifest_id == m.c.id)
                .where(m.c.repository_id == repo_id, m.c.digest.in_(list(found)))
            ):
                relations.append((row.digest, "child", row.child_digest))
                owner.setdefault(row.child_digest, row.digest)
            described = list(owner)
            for row in conn.execute(
                select(m.c.subject_digest, m.c.digest).where(
                    m.c.repository_id == repo_id, m.c.subject_digest.in_(described)
                )
            ):
                relations.append((owner[row.subject_digest], "referrer", row.digest))
            by_tag = {name: digest for digest in described for name in cosign_tags(digest)}
            for row in conn.execute(
                select(t.c.name, m.c.digest)
                .join(m, m.c.id == t.c.manifest_id)
                .where(t.c.repository_id == repo_id, t.c.name.in_(list(by_tag)))
            ):
                relations.append((owner[by_tag[row.name]], "tag", row.digest))
        wanted = sorted({digest for _, _, digest in relations})
        summaries, _ = self.artifacts(
            repository, digests=wanted, sort="pushed_at", descending=False, limit=len(wanted) or 1
        )
        by_digest = {a.digest: a for a in summaries}
        seen: set[tuple[str, str]] = set()
        for root, relation, digest in relations:
            if digest in by_digest and (root, digest) not in seen:
                seen.add((root, digest))
                found[root].append(Attached(relation, by_digest[digest]))
        order = {"child": 0, "tag": 1, "referrer": 2}
        for items in found.values():
            items.sort(key=lambda x: (order[x.relation], x.artifact.pushed_at, x.artifact.digest))
        return found

    def _size_expression(self) -> Any:
        """Manifest bytes + its blobs; for an index, + its children's manifests and blobs."""
        m, mb, mc, b = s.manifests, s.manifest_blobs, s.manifest_children, s.blobs
        own_blobs = (
            select(func.coalesce(func.sum(b.c.size), 0))
            .select_from(mb.join(b, b.c.digest == mb.c.digest))
            .where(mb.c.manifest_id == m.c.id)
            .scalar_subquery()
        )
        child = m.alias("child")
        child_blob = mb.alias("child_blob")
        children = (
            select(func.coalesce(func.sum(child.c.size), 0))
            .select_from(mc.join(child, child.c.digest == mc.c.child_digest))
            .where(mc.c.manifest_id == m.c.id, child.c.repository_id == m.c.repository_id)
            .scalar_subquery()
        )
        children_blobs = (
            select(func.coalesce(func.sum(b.c.size), 0))
            .select_from(
                mc.join(child, child.c.digest == mc.c.child_digest)
                .join(child_blob, child_blob.c.manifest_id == child.c.id)
                .join(b, b.c.digest == child_blob.c.digest)
            )
            .where(mc.c.manifest_id == m.c.id, child.c.repository_id == m.c.repository_id)
            .scalar_subquery()
        )
        return m.c.size + own_blobs + children + children_blobs

    def _describe(self, artifact: ArtifactSummary, content: bytes) -> None:
        """Kind and platforms from the manifest (and, for an image, its config blob)."""
        try:
            document = json.loads(content)
        except ValueError:
            return
        if artifact.is_index:
            artifact.kind = "index"
            for entry in document.get("manifests") or []:
                platform = entry.get("platform") if isinstance(entry, dict) else None
                if isinstance(platform, dict):
                    artifact.platforms.append(_platform(platform))
            return
        config = document.get("config")
        config_type = config.get("mediaType") if isinstance(config, dict) else None
        special = _cosign_layer_type(document.get("layers"))
        if special is not None and artifact.artifact_type in (None, config_type):
            # cosign's signature/attestation images carry an image config: by their
            # layers they are a signature or attestation, not an image to run.
            artifact.kind = "artifact"
            artifact.artifact_type = special
            return
        # The stored artifact type of an image is its config media type (the referrers
        # API's fallback); anything else is an artifact (Helm chart, signature, SBOM...).
        if config_type not in IMAGE_CONFIG_TYPES or artifact.artifact_type not in (
            None,
            config_type,
        ):
            artifact.kind = "artifact"
            if not artifact.artifact_type and isinstance(config_type, str):
                artifact.artifact_type = config_type
            return
        assert isinstance(config, dict)
        image_config = self.read_config(config)
        if image_config is not None:
            artifact.platforms.append(_platform(image_config))

    def read_config(self, descriptor: dict[str, Any]) -> dict[str, Any] | None:
        """The parsed config blob of an image, if small and readable."""
        size = descriptor.get("size")
        if not isinstance(size, int) or size > _CONFIG_READ_LIMIT:
            return None
        try:
            digest = Digest.parse(str(descriptor.get("digest")))
            data = self.storage.get(blob_path(digest))
            parsed = json.loads(data)
        except Exception:
            return None
        return parsed if isinstance(parsed, dict) else None


def _cosign_layer_type(layers: Any) -> str | None:
    """The media type shared by every layer, if it is one of cosign's (simple-signing
    payloads, DSSE attestation envelopes)."""
    if not isinstance(layers, list) or not layers:
        return None
    types = {layer.get("mediaType") for layer in layers if isinstance(layer, dict)}
    if len(types) != 1:
        return None
    (found,) = types
    cosign = ("application/vnd.dev.cosign.", "application/vnd.dsse.envelope")
    return found if isinstance(found, str) and found.startswith(cosign) else None


def _is_cosign_tag(name: ColumnElement[str]) -> ColumnElement[bool]:
    return and_(
        name.like("sha256-%"), or_(*(name.like(f"%{suffix}") for suffix in _COSIGN_SUFFIXES))
    )


def _belongs_elsewhere() -> ColumnElement[bool]:
    """A manifest shown under another artifact of its repository, not on its own: it
    carries no tag of its own (cosign's tag-scheme tags do not count), and it is a
    platform manifest of an index, a referrer of an artifact, or cosign's tag-scheme
    artifact of one, that artifact being in the repository."""
    m, mc, t = s.manifests, s.manifest_children, s.tags
    parent = m.alias("parent")
    subject = m.alias("subject")
    named = m.alias("named")
    own_tag = t.alias("own_tag")
    scheme_tag = t.alias("scheme_tag")
    is_child = exists(
        select(parent.c.id)
        .select_from(mc.join(parent, parent.c.id == mc.c.manifest_id))
        .where(mc.c.child_digest == m.c.digest, parent.c.repository_id == m.c.repository_id)
    )
    is_referrer = exists(
        select(subject.c.id).where(
            subject.c.repository_id == m.c.repository_id, subject.c.digest == m.c.subject_digest
        )
    )
    is_cosign_artifact = exists(
        select(named.c.id)
        .select_from(scheme_tag.join(named, named.c.repository_id == scheme_tag.c.repository_id))
        .where(
            scheme_tag.c.manifest_id == m.c.id,
            _is_cosign_tag(scheme_tag.c.name),
            named.c.digest == literal("sha256:") + func.substr(scheme_tag.c.name, 8, 64),
        )
    )
    tagged = exists(
        select(own_tag.c.name).where(
            own_tag.c.manifest_id == m.c.id, not_(_is_cosign_tag(own_tag.c.name))
        )
    )
    return and_(not_(tagged), or_(is_child, is_referrer, is_cosign_artifact))


def _platform(source: dict[str, Any]) -> Platform:
    def text(key: str) -> str | None:
        value = source.get(key)
        return value if isinstance(value, str) else None

    return Platform(text("os"), text("architecture"), text("variant"))
