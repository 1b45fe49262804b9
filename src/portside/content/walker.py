"""What an artifact consists of, walked from the stored manifests: the manifest itself,
its config and layers, an index's child manifests (recursively) and, if asked, its
referrers (recursively: the signature of an SBOM of an image), each with its depth and
role. For replication, scanning and the UI.

`walk` is a generator: it reads one manifest, or one chunk of an index's children, per
short read transaction, and holds at most a chunk of child manifests per level of
nesting, so a huge index is never loaded at once and no connection stays open between
items. Manifests are parsed with oci.manifest (as validated at push). Each manifest is
visited once per walk (a digest reached twice, e.g. listed by two indexes or a cycle,
is yielded again with `repeated=True` and not descended), and nothing deeper than
`max_depth` is descended.

Order: depth first. A manifest, then (for an image) its config and layers, or (for an
index) each child manifest followed by its own parts; then the manifest's referrers,
oldest first, each followed by its parts.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import select

from portside.errors import ManifestUnknown
from portside.metadata import schema as s
from portside.metadata.db import Database
from portside.oci.manifest import ParsedManifest, parse_manifest

Role = Literal["manifest", "child", "referrer", "config", "layer"]
MAX_DEPTH = 16
_CHUNK = 100


@dataclass(frozen=True, slots=True)
class Part:
    """One descriptor of the artifact. Manifests (`manifest` for the one walked,
    `child`, `referrer`) carry their artifact type; blobs (`config`, `layer`) may be
    foreign (`external`: a layer with URLs, not stored here)."""

    role: Role
    media_type: str
    digest: str
    size: int
    depth: int  # 0: the manifest walked and its blobs; +1 per index or referrer step
    parent: str | None  # the manifest it belongs to (the subject, for a referrer)
    artifact_type: str | None = None
    present: bool = True  # a child manifest this repository does not have: False
    repeated: bool = False  # a manifest already yielded in this walk (not descended)
    external: bool = False

    @property
    def is_manifest(self) -> bool:
        return self.role in ("manifest", "child", "referrer")


@dataclass(frozen=True, slots=True)
class _Stored:
    digest: str
    media_type: str
    size: int
    content: bytes


def walk(
    db: Database,
    repository: str,
    digest: str,
    *,
    referrers: bool = False,
    max_depth: int = MAX_DEPTH,
) -> Iterator[Part]:
    """Yield the parts of the artifact `repository@digest` (see the module docstring).
    ManifestUnknown, before the first item, if there is no such manifest."""
    repo_id = _repository_id(db, repository)
    root = _fetch(db, repo_id, [digest]).get(digest) if repo_id is not None else None
    if repo_id is None or root is None:
        raise ManifestUnknown(f"no manifest {digest} in {repository}", detail={"digest": digest})
    return _Walk(db, repo_id, referrers, max_depth).manifest(root, "manifest", 0, None)


class _Walk:
    def __init__(self, db: Database, repo_id: int, referrers: bool, max_depth: int) -> None:
        self.db = db
        self.repo_id = repo_id
        self.referrers = referrers
        self.max_depth = max_depth
        self.seen: set[str] = set()

    def manifest(
        self, stored: _Stored, role: Role, depth: int, parent: str | None
    ) -> Iterator[Part]:
        parsed = parse_manifest(stored.content, stored.media_type)
        repeated = stored.digest in self.seen
        self.seen.add(stored.digest)
        yield Part(
            role,
            stored.media_type,
            stored.digest,
            stored.size,
            depth,
            parent,
            parsed.artifact_type,
            repeated=repeated,
        )
        if repeated:
            return
        yield from self._blobs(parsed, stored.digest, depth)
        if depth < self.max_depth:
            yield from self._children(parsed, stored.digest, depth + 1)
            if self.referrers:
                yield from self._referrers(stored.digest, depth + 1)

    def _blobs(self, parsed: ParsedManifest, digest: str, depth: int) -> Iterator[Part]:
        for number, blob in enumerate(parsed.blobs):
            role: Role = "config" if number == 0 and parsed.config is not None else "layer"
            yield Part(
                role,
                blob.media_type,
                str(blob.digest),
                blob.size,
                depth,
                digest,
                external=blob.has_urls,
            )

    def _children(self, parsed: ParsedManifest, digest: str, depth: int) -> Iterator[Part]:
        children = parsed.children
        for start in range(0, len(children), _CHUNK):
            chunk = children[start : start + _CHUNK]
            stored = _fetch(self.db, self.repo_id, [str(c.digest) for c in chunk])
            for child in chunk:
                found = stored.get(str(child.digest))
                if found is None:
                    yield Part(
                        "child",
                        child.media_type,
                        str(child.digest),
                        child.size,
                        depth,
                        digest,
                        present=False,
                    )
                else:
                    yield from self.manifest(found, "child", depth, digest)

    def _referrers(self, subject: str, depth: int) -> Iterator[Part]:
        m = s.manifests
        after: tuple[Any, str] | None = None
        while True:
            query = (
                select(m.c.pushed_at, m.c.digest, m.c.media_type, m.c.size, m.c.content)
                .where(m.c.repository_id == self.repo_id, m.c.subject_digest == subject)
                .order_by(m.c.pushed_at, m.c.digest)
                .limit(_CHUNK)
            )
            if after is not None:
                query = query.where(
                    (m.c.pushed_at > after[0])
                    | ((m.c.pushed_at == after[0]) & (m.c.digest > after[1]))
                )
            with self.db.read() as conn:
                rows = conn.execute(query).all()
            for row in rows:
                stored = _Stored(row.digest, row.media_type, int(row.size), bytes(row.content))
                yield from self.manifest(stored, "referrer", depth, subject)
            if len(rows) < _CHUNK:
                return
            after = (rows[-1].pushed_at, rows[-1].digest)


def _repository_id(db: Database, repository: str) -> int | None:
    r = s.repositories
    with db.read() as conn:
        found = conn.execute(select(r.c.id).where(r.c.name == repository)).scalar_one_or_none()
    return None if found is None else int(found)


def _fetch(db: Database, repo_id: int, digests: Sequence[str]) -> dict[str, _Stored]:
    m = s.manifests
    with db.read() as conn:
        rows = conn.execute(
            select(m.c.digest, m.c.media_type, m.c.size, m.c.content).where(
                m.c.repository_id == repo_id, m.c.digest.in_(list(digests))
            )
        ).all()
    return {
        row.digest: _Stored(row.digest, row.media_type, int(row.size), bytes(row.content))
        for row in rows
    }
