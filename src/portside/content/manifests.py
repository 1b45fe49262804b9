"""Manifests and tags: put with reference checks, get by tag or digest, delete, list,
referrers. Stored bytes are returned exactly as pushed.

Every change raises its event (events.outbox) in its own transaction: `artifact.pushed`
and `tag.moved` with a push, `tag.moved` when a tag is set, `tag.deleted`,
`repository.deleted`; a push refused by the quota leaves `quota.exceeded`. Pulls are
events too, written in batches (events.batch) since a pull has no transaction."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, delete, func, select
from sqlalchemy.exc import IntegrityError

from portside.content import quota
from portside.content.deletion import Policy, delete_manifest
from portside.content.hotpath import MISS, HotQueries
from portside.content.immutability import check_delete, check_move
from portside.content.refusals import record_refusal
from portside.digest import Digest, is_digest, is_valid_digest
from portside.errors import (
    DigestInvalid,
    ManifestBlobUnknown,
    ManifestTooLarge,
    ManifestUnknown,
    NameUnknown,
    QuotaExceeded,
)
from portside.events import outbox
from portside.events.batch import EventBuffer
from portside.events.outbox import SYSTEM, Actor
from portside.metadata import schema as s
from portside.metadata.db import Database, repository_id, utcnow
from portside.oci.manifest import ParsedManifest, parse_manifest
from portside.reference import is_valid_tag, project_of, validate_tag

# last_pulled_at is written at most this often per manifest, to keep pulls read-only.
PULL_TIME_RESOLUTION = timedelta(minutes=1)
_PULL_NOTES_MAX = 100_000


@dataclass(frozen=True, slots=True)
class StoredManifest:
    id: int
    digest: str
    media_type: str
    content: bytes
    subject: str | None = None
    last_pulled_at: datetime | str | None = None
    policed: bool = False  # its project has a pull policy on (content.pull_policy)


@dataclass(frozen=True, slots=True)
class PutResult:
    digest: str
    subject: str | None


class ManifestService:
    def __init__(
        self,
        db: Database,
        hot: HotQueries,
        max_bytes: int,
        *,
        pulls: EventBuffer | None = None,
        read_only: bool = False,
    ) -> None:
        self.db = db
        self.read_only = read_only  # portside.readonly: a pull writes nothing
        self.hot = hot
        self._pull_noted: dict[int, float] = {}
        self.max_bytes = max_bytes
        self.pulls = pulls  # None: pulls raise no event (audit.record_pulls off)

    # -- read -------------------------------------------------------------------------
    # A pull is: cached() on the event loop (memory and one SQLite probe, see
    # content.hotpath); on a miss lookup() on the blocking-work pool; then, at most once
    # a minute per manifest, record_pull() on the pool.
    def cached(self, repo: str, reference: str) -> tuple[int | None, StoredManifest | None]:
        """(cache version, the manifest if the validated cache has it); never blocks."""
        by_digest = _check_reference(reference)
        name = "manifest_by_digest" if by_digest else "manifest_by_tag"
        version, row = self.hot.cached(name, repo, reference)
        return version, (None if row is MISS else _stored(row))

    def lookup(self, repo: str, reference: str, version: int | None = None) -> StoredManifest:
        """The manifest from the database (filling the cache under `version`)."""
        by_digest = _check_reference(reference)
        row = self.hot.manifest(repo, reference, by_digest=by_digest, version=version)
        if row is None:
            raise ManifestUnknown(detail={"reference": reference[:200]})
        return _stored(row)

    def get(self, repo: str, reference: str, *, pulled_by: Actor | None) -> StoredManifest:
        """The manifest; with `pulled_by` (a GET, not a HEAD) it counts as pulled: its
        last_pulled_at is kept current and an `artifact.pulled` event is buffered.
        Blocking: the /v2 handler uses cached/lookup/pulled on and off the loop."""
        manifest = self.lookup(repo, reference)
        if pulled_by is not None and self.pulled(repo, reference, manifest, pulled_by):
            self.record_pull(manifest)
        return manifest

    def pulled(self, repo: str, reference: str, manifest: StoredManifest, actor: Actor) -> bool:
        """Count a pull: buffer its `artifact.pulled` event (memory; events.batch writes
        it later, on the pool) and say whether last_pulled_at is due a write
        (record_pull, on the pool). Never blocks."""
        if self.pulls is not None:
            digest = manifest.digest

            def build(count: int, at: datetime) -> dict[str, Any]:
                return outbox.event_row(
                    outbox.ARTIFACT_PULLED,
                    actor,
                    resource=f"{repo}@{digest}",
                    repository=repo,
                    data={"digest": digest, "reference": reference, "count": count},
                    at=at,
                )

            self.pulls.count((repo, reference, digest, actor), build)
        return self.pull_write_due(manifest)

    def pull_write_due(self, manifest: StoredManifest) -> bool:
        """Does this pull have to set last_pulled_at? At most once per
        PULL_TIME_RESOLUTION per manifest; the in-process note of recent writes only
        saves work: the database has the truth. Memory only, never blocks."""
        if self.read_only:
            return False
        manifest_id, last = manifest.id, manifest.last_pulled_at
        now_seconds = time.monotonic()
        noted = self._pull_noted.get(manifest_id)
        if noted is not None and now_seconds - noted < PULL_TIME_RESOLUTION.total_seconds():
            return False
        now = utcnow()
        if isinstance(last, str):  # raw SQLite rows carry the ISO text
            last = datetime.fromisoformat(last)
        if last is not None:
            if last.tzinfo is None:  # SQLite hands back naive datetimes
                last = last.replace(tzinfo=now.tzinfo)
            if now - last < PULL_TIME_RESOLUTION:
                self._note_pull(manifest_id, now_seconds - (now - last).total_seconds())
                return False
        return True

    def record_pull(self, manifest: StoredManifest) -> None:
        """Set last_pulled_at now (a write transaction: run it on the pool)."""
        # Noted first: pulls arriving while this write runs need not write too.
        self._note_pull(manifest.id, time.monotonic())
        try:
            with self.db.write() as conn:
                conn.execute(
                    s.manifests.update()
                    .where(s.manifests.c.id == manifest.id)
                    .values(last_pulled_at=utcnow())
                )
        except BaseException:
            self._pull_noted.pop(manifest.id, None)
            raise

    def _note_pull(self, manifest_id: int, at: float) -> None:
        if len(self._pull_noted) >= _PULL_NOTES_MAX:
            self._pull_noted.clear()
        self._pull_noted[manifest_id] = at

    # -- write ------------------------------------------------------------------------
    def put(
        self,
        repo: str,
        reference: str,
        body: bytes,
        content_type: str | None,
        actor: Actor,
        *,
        check_references: bool = True,
    ) -> PutResult:
        """Store a manifest (by tag or digest; the digest is verified). Without
        `check_references` (the proxy cache, storing an upstream's manifest whose blobs
        and children are fetched on their first request) its blobs and children need not
        be in the repository yet."""
        if len(body) > self.max_bytes:
            raise ManifestTooLarge(f"manifest is {len(body)} bytes; the limit is {self.max_bytes}")
        tag: str | None = None
        if is_digest(reference):
            wanted = Digest.parse(reference)
            digest = Digest.of(body, wanted.algorithm)
            if digest != wanted:
                raise DigestInvalid(
                    f"manifest digest is {digest}, not {reference}", detail={"digest": reference}
                )
        else:
            tag = validate_tag(reference)
            digest = Digest.of(body)
        parsed = parse_manifest(body, content_type)
        for attempt in range(3):
            try:
                with self.db.write() as conn:
                    self._store(
                        conn,
                        repo=repo,
                        digest=str(digest),
                        tag=tag,
                        body=body,
                        parsed=parsed,
                        actor=actor,
                        check_references=check_references,
                    )
                break
            except IntegrityError:
                # A concurrent push of the same manifest or tag won the race; re-check.
                if attempt == 2:
                    raise
            except QuotaExceeded as refused:
                # The push rolled back; its refusal is recorded in a transaction of its own.
                record_refusal(self.db, actor, repo, str(digest), refused, kind="manifest", tag=tag)
                raise
        return PutResult(str(digest), str(parsed.subject.digest) if parsed.subject else None)

    def _store(
        self,
        conn: Connection,
        *,
        repo: str,
        digest: str,
        tag: str | None,
        body: bytes,
        parsed: ParsedManifest,
        actor: Actor,
        check_references: bool = True,
    ) -> None:
        repo_id, limit = self.db.ensure_push_repository(conn, repo)
        held = quota.hold(conn, project_of(repo), limit)  # before the references' locks
        if check_references:
            self._check_references(conn, repo_id, parsed)
        m = s.manifests
        now = utcnow()
        # Locked (FOR NO KEY UPDATE, as the pushed_at update below would lock it anyway;
        # a FOR SHARE here would deadlock two pushes of the same manifest upgrading it):
        # GC deleting this untagged manifest meanwhile either finishes first (then we
        # insert it anew) or waits and then sees our tag or fresh pushed_at.
        manifest_id = conn.execute(
            select(m.c.id)
            .where(m.c.repository_id == repo_id, m.c.digest == digest)
            .with_for_update(key_share=True)
        ).scalar_one_or_none()
        new = manifest_id is None
        if manifest_id is None:
            quota.admit_bytes(conn, held, len(body))
            manifest_id = conn.execute(
                m.insert()
                .values(
                    repository_id=repo_id,
                    digest=digest,
                    media_type=parsed.media_type,
                    artifact_type=parsed.artifact_type,
                    subject_digest=str(parsed.subject.digest) if parsed.subject else None,
                    annotations=json.dumps(parsed.annotations) if parsed.annotations else None,
                    size=len(body),
                    content=body,
                    pushed_at=now,
                )
                .returning(m.c.id)
            ).scalar_one()
            blob_digests = {str(d.digest) for d in parsed.blobs if not d.has_urls}
            if blob_digests:
                conn.execute(
                    s.manifest_blobs.insert(),
                    [{"manifest_id": manifest_id, "digest": d} for d in sorted(blob_digests)],
                )
            child_digests = {str(d.digest) for d in parsed.children}
            if child_digests:
                conn.execute(
                    s.manifest_children.insert(),
                    [
                        {"manifest_id": manifest_id, "child_digest": d}
                        for d in sorted(child_digests)
                    ],
                )
        else:
            conn.execute(m.update().where(m.c.id == manifest_id).values(pushed_at=now))
        previous = None
        if tag is not None:
            previous = _set_tag(conn, repo, repo_id, tag, manifest_id, now=now)
        # Last, after every check that could refuse the push (an id taken by a
        # transaction that rolls back is a gap consumers wait at on PostgreSQL).
        pushed = {
            "digest": digest,
            "media_type": parsed.media_type,
            "artifact_type": parsed.artifact_type,
            "size": len(body),
            "tag": tag,
            "new": new,
        }
        resource = f"{repo}@{digest}"
        outbox.emit(
            conn, outbox.ARTIFACT_PUSHED, actor, resource=resource, repository=repo, data=pushed
        )
        if tag is not None and previous != digest:
            _tag_moved(conn, actor, repo=repo, tag=tag, digest=digest, previous=previous, push=True)

    def add_tag(self, repo: str, tag: str, digest: str, actor: Actor) -> None:
        """Point a tag at a manifest already in the repository (management API)."""
        validate_tag(tag)
        with self.db.write() as conn:
            repo_id = repository_id(conn, repo)
            manifest_id = None
            if repo_id is not None:
                manifest_id = conn.execute(
                    select(s.manifests.c.id).where(
                        s.manifests.c.repository_id == repo_id, s.manifests.c.digest == digest
                    )
                ).scalar_one_or_none()
            if repo_id is None or manifest_id is None:
                raise ManifestUnknown(detail={"digest": digest})
            previous = _set_tag(conn, repo, repo_id, tag, manifest_id, now=utcnow())
            if previous != digest:
                _tag_moved(
                    conn, actor, repo=repo, tag=tag, digest=digest, previous=previous, push=False
                )

    def delete_repository(self, repo: str, actor: Actor) -> bool:
        """Remove a repository with its manifests, tags, blob links and uploads. Blob
        bytes stay until garbage collection finds them unreferenced. Refused if an
        immutability rule protects one of its tags."""
        with self.db.write() as conn:
            # Locked first (PostgreSQL): a tag pushed meanwhile waits, so none escapes the
            # check below.
            repo_id = conn.execute(
                select(s.repositories.c.id).where(s.repositories.c.name == repo).with_for_update()
            ).scalar_one_or_none()
            tags: list[str] = []
            if repo_id is not None:
                tags = list(
                    conn.execute(
                        select(s.tags.c.name).where(s.tags.c.repository_id == repo_id)
                    ).scalars()
                )
                check_delete(conn, repo, tags, f"repository {repo}")
            deleted = conn.execute(
                delete(s.repositories).where(s.repositories.c.name == repo)
            ).rowcount
            if deleted:
                outbox.emit(
                    conn,
                    outbox.REPOSITORY_DELETED,
                    actor,
                    resource=repo,
                    repository=repo,
                    data={"tags": sorted(tags)},
                )
        return bool(deleted)

    def _check_references(self, conn: Connection, repo_id: int, parsed: ParsedManifest) -> None:
        link, m = s.repository_blobs, s.manifests
        blobs = {str(d.digest) for d in parsed.blobs if not d.has_urls}
        missing = _first_missing(conn, link.c.digest, link.c.repository_id, repo_id, blobs)
        if missing:
            raise ManifestBlobUnknown(
                f"blob {missing} is not in this repository", detail={"digest": missing}
            )
        children = {str(d.digest) for d in parsed.children}
        missing = _first_missing(conn, m.c.digest, m.c.repository_id, repo_id, children)
        if missing:
            raise ManifestBlobUnknown(
                f"child manifest {missing} is not in this repository", detail={"digest": missing}
            )

    # -- delete -----------------------------------------------------------------------
    def delete(self, repo: str, reference: str, *, actor: Actor = SYSTEM) -> None:
        """By digest: the manifest, its tags and what only it kept (content.deletion). By
        tag: only the tag (untag)."""
        with self.db.write() as conn:
            repo_id = repository_id(conn, repo)
            if is_digest(reference):
                Digest.parse(reference)
                delete_manifest(conn, repo, repo_id, reference, actor=actor, policy=Policy.api())
                return
            validate_tag(reference)
            untagged = None
            if repo_id is not None:
                check_delete(conn, repo, _existing_tag(conn, repo_id, reference))
                untagged = conn.execute(
                    delete(s.tags)
                    .where(s.tags.c.repository_id == repo_id, s.tags.c.name == reference)
                    .returning(s.tags.c.manifest_id)
                ).scalar_one_or_none()
            if untagged is None:
                raise ManifestUnknown(f"tag {reference!r} not found", detail={"tag": reference})
            digest = conn.execute(
                select(s.manifests.c.digest).where(s.manifests.c.id == untagged)
            ).scalar_one()
            outbox.emit(
                conn,
                outbox.TAG_DELETED,
                actor,
                resource=f"{repo}:{reference}",
                repository=repo,
                data={"tag": reference, "digest": digest},
            )

    # -- listing ----------------------------------------------------------------------
    def tags(self, repo: str, limit: int | None, last: str | None) -> list[str]:
        with self.db.read() as conn:
            repo_id = repository_id(conn, repo)
            if repo_id is None:
                raise NameUnknown(detail={"name": repo})
            query = select(s.tags.c.name).where(s.tags.c.repository_id == repo_id)
            if last:
                query = query.where(s.tags.c.name > last)
            query = query.order_by(s.tags.c.name)
            if limit is not None:
                query = query.limit(limit)
            names = list(conn.execute(query).scalars())
            if not names and not last:
                has_content = conn.execute(
                    select(func.count())
                    .select_from(s.manifests)
                    .where(s.manifests.c.repository_id == repo_id)
                ).scalar_one()
                if not has_content:
                    raise NameUnknown(detail={"name": repo})
            return names

    def catalog(
        self, limit: int | None, last: str | None, projects: list[str] | None = None
    ) -> list[str]:
        """Repository names with content, in order; only in `projects` if given."""
        r = s.repositories
        query = select(r.c.name).where(
            select(s.manifests.c.id).where(s.manifests.c.repository_id == r.c.id).exists()
        )
        if projects is not None:
            query = query.where(r.c.project.in_(projects))
        if last:
            query = query.where(r.c.name > last)
        query = query.order_by(r.c.name)
        if limit is not None:
            query = query.limit(limit)
        with self.db.read() as conn:
            return list(conn.execute(query).scalars())

    def referrers(self, repo: str, subject: str, artifact_type: str | None) -> list[dict[str, Any]]:
        m = s.manifests
        query = (
            select(m.c.digest, m.c.media_type, m.c.size, m.c.artifact_type, m.c.annotations)
            .join(s.repositories, s.repositories.c.id == m.c.repository_id)
            .where(and_(s.repositories.c.name == repo, m.c.subject_digest == subject))
            .order_by(m.c.pushed_at, m.c.digest)
        )
        if artifact_type is not None:
            query = query.where(m.c.artifact_type == artifact_type)
        with self.db.read() as conn:
            rows = conn.execute(query).all()
        result: list[dict[str, Any]] = []
        for row in rows:
            descriptor: dict[str, Any] = {
                "mediaType": row.media_type,
                "digest": row.digest,
                "size": row.size,
            }
            if row.artifact_type:
                descriptor["artifactType"] = row.artifact_type
            if row.annotations:
                descriptor["annotations"] = json.loads(row.annotations)
            result.append(descriptor)
        return result


def _first_missing(
    conn: Connection,
    digest_column: ColumnElement[str],
    repo_column: ColumnElement[int],
    repo_id: int,
    wanted: set[str],
) -> str | None:
    """The smallest of `wanted` digests that the repository does not have, if any."""
    if not wanted:
        return None
    # FOR SHARE (PostgreSQL): garbage collection deletes a link or manifest only after
    # locking it FOR UPDATE and re-checking for users, so it waits for this transaction
    # and then sees the new manifest. SQLite serialises writers and needs no lock.
    found = set(
        conn.execute(
            select(digest_column)
            .where(repo_column == repo_id, digest_column.in_(wanted))
            .with_for_update(read=True)
        ).scalars()
    )
    missing = sorted(wanted - found)
    return missing[0] if missing else None


def _existing_tag(conn: Connection, repo_id: int, tag: str) -> list[str]:
    """[tag] if the repository has it (its row locked until the transaction ends), else []."""
    t = s.tags
    found = conn.execute(
        select(t.c.name).where(t.c.repository_id == repo_id, t.c.name == tag).with_for_update()
    ).scalar_one_or_none()
    return [] if found is None else [found]


def _set_tag(
    conn: Connection, repo: str, repo_id: int, tag: str, manifest_id: int, *, now: datetime
) -> str | None:
    """Point a tag at a manifest; returns the digest it pointed at before (None for a new
    tag). Only moving an existing tag to another manifest loads the project's
    immutability rules: a new tag, or the same digest pushed again, costs one primary-key
    lookup. The row stays locked (PostgreSQL) until the write commits."""
    t, m = s.tags, s.manifests
    where = (t.c.repository_id == repo_id, t.c.name == tag)
    # The tag row alone is locked: a join to manifests here would, on PostgreSQL, re-check
    # a row moved meanwhile by another push against this statement's snapshot, in which
    # that push's new manifest does not exist yet, drop the row and try to INSERT a tag
    # that exists (a 500 when several pushes raced for one tag).
    current = conn.execute(select(t.c.manifest_id).where(*where).with_for_update()).scalar()
    if current is None:
        conn.execute(
            t.insert().values(
                repository_id=repo_id, name=tag, manifest_id=manifest_id, updated_at=now
            )
        )
        return None
    if current != manifest_id:
        check_move(conn, repo, tag)
    previous = conn.execute(select(m.c.digest).where(m.c.id == current)).scalar_one()
    conn.execute(t.update().where(*where).values(manifest_id=manifest_id, updated_at=now))
    return str(previous)


def _tag_moved(
    conn: Connection,
    actor: Actor,
    *,
    repo: str,
    tag: str,
    digest: str,
    previous: str | None,
    push: bool,
) -> None:
    """`tag.moved`: a tag created, or pointed at another manifest (`previous`). `push`
    marks a tag set by the manifest PUT that also raised `artifact.pushed`."""
    data: dict[str, Any] = {"tag": tag, "digest": digest, "push": push}
    if previous is not None:
        data["previous"] = previous
    outbox.emit(conn, outbox.TAG_MOVED, actor, resource=f"{repo}:{tag}", repository=repo, data=data)


def _check_reference(reference: str) -> bool:
    """True if the reference is a digest. A reference that is neither a valid tag nor a
    valid digest names no manifest: 404 like any missing one, as Distribution and the
    conformance tests expect."""
    by_digest = is_digest(reference)
    if not (is_valid_digest(reference) if by_digest else is_valid_tag(reference)):
        raise ManifestUnknown(detail={"reference": reference[:200]})
    return by_digest


def _stored(row: Any) -> StoredManifest:
    manifest_id, digest, media_type, content, last_pulled_at, policed = row
    return StoredManifest(
        manifest_id,
        digest,
        media_type,
        bytes(content),
        last_pulled_at=last_pulled_at,
        policed=policed,
    )
