"""Push replication: local artifacts to an endpoint.

Plan: the local repositories and tags the rule's patterns select (or, for an event run,
the pushed and deleted artifacts the events name), grouped by digest and filtered by
resource kind and labels. Copy, per artifact, from a walk of it (content/walker.py, with
referrers): every manifest the destination lacks (HEAD) goes after its blobs and after
its child manifests (an index after its platform manifests), and a referrer (signature,
SBOM) after its subject; blobs the destination has are skipped, blobs this run already
put in another repository there are mounted, the rest uploaded (chunked when large,
resumed after a failure). Then the tags, unless a tag there points elsewhere and the rule
does not override. Deletions (event runs with `copy_deletions`) delete the manifest on
the destination by digest.

With `copy_deletions`, a full (manual or scheduled) run then sweeps (`sweep`): in each
destination repository the rule writes to (the destinations of the local repositories it
selects now, and those earlier runs wrote to whose source it still selects), a tag that
the tag pattern selects, whose manifest the resource and label filters take, and that no
selected source repository has, is deleted: by tag where the registry deletes tags;
else by digest, only when no other tag there points to that manifest and no index
tagged there lists it. Anything else is left alone (and said why in the run's items).
"""

from __future__ import annotations

import contextlib
import json
from collections import defaultdict
from collections.abc import Iterator

from portside.content.walker import Part, walk
from portside.digest import Digest
from portside.errors import ManifestUnknown, NameUnknown, RegistryError
from portside.remote import (
    BlobSource,
    NotFound,
    RegistryClient,
    RemoteError,
    delete_manifest,
    delete_tag,
    push_blob,
    push_manifest,
)
from portside.remote.kinds import remote_repository
from portside.replication.engine import (
    Artifact,
    Copied,
    Reporter,
    Services,
    Tally,
    record,
    selected,
)
from portside.replication.naming import Unflattenable, destination
from portside.replication.rules import Rule
from portside.replication.runs import ItemStatus, Runs
from portside.replication.throttle import limited
from portside.storage import paths

READ_CHUNK = 1024 * 1024


class Pusher:
    def __init__(
        self,
        services: Services,
        *,
        rule: Rule,
        client: RegistryClient,
        endpoint_kind: str,
        runs: Runs,
        job_id: int,
        reporter: Reporter,
    ) -> None:
        self.services = services
        self.rule = rule
        self.client = client
        self.endpoint_kind = endpoint_kind
        self.runs = runs
        self.job_id = job_id
        self.reporter = reporter
        self.tally = Tally(rule)
        self.known: dict[str, str] = {}  # blob digest -> a destination repository with it
        self.rate = rule.bandwidth_kbps * 1000 / 8 if rule.bandwidth_kbps else None

    # -- planning ---------------------------------------------------------------------
    def plan(self) -> list[Artifact]:
        repositories = self.rule.repository_pattern()
        tags = self.rule.tag_pattern()
        planned: list[Artifact] = []
        for repository in self.services.manifests.catalog(None, None):
            if not repositories.matches(repository):
                continue
            try:
                names = self.services.manifests.tags(repository, None, None)
            except NameUnknown:
                continue
            by_digest: dict[str, list[str]] = defaultdict(list)
            for tag in names:
                if tags.matches(tag):
                    try:
                        found = self.services.manifests.lookup(repository, tag)
                    except ManifestUnknown:
                        continue  # deleted meanwhile
                    by_digest[found.digest].append(tag)
            for digest, selected_tags in by_digest.items():
                planned.append(Artifact(repository, digest, tuple(sorted(selected_tags))))
        return planned

    def destination_of(self, repository: str) -> str:
        mapped = destination(repository, self.rule.destination_namespace, self.rule.flattening)
        return remote_repository(self.endpoint_kind, mapped)

    # -- copying ----------------------------------------------------------------------
    def run(self, artifacts: list[Artifact]) -> Tally:
        total = len(artifacts)
        self.reporter.progress(0, total, f"{total} artifacts to replicate")
        for done, artifact in enumerate(artifacts, 1):
            self.reporter.check_stop()
            self.one(artifact)
            self.reporter.progress(done, total, artifact.source)
        return self.tally

    # -- deletions (copy_deletions, full runs) ---------------------------------------
    def sweep(self) -> None:
        """Delete what the source no longer has within the rule's scope (module doc)."""
        for target, sources in sorted(self._deletion_scope().items()):
            self.reporter.check_stop()
            try:
                self._sweep(target, sorted(sources))
            except (RemoteError, RegistryError) as error:
                message = getattr(error, "message", None) or str(error)
                self.reporter.log(f"deletions in {target}: failed: {message}", "warning")
                self._record(Artifact(min(sources), ""), target, "failed", message=message)

    def _deletion_scope(self) -> dict[str, set[str]]:
        """Destination repository -> the selected local repositories mapped to it."""
        repositories = self.rule.repository_pattern()
        scope: dict[str, set[str]] = defaultdict(set)
        for repository in self.services.manifests.catalog(None, None):
            if repositories.matches(repository):
                with contextlib.suppress(Unflattenable):
                    scope[self.destination_of(repository)].add(repository)
        for source, target in self.runs.written(self.rule.id):
            if not repositories.matches(source):
                continue  # the rule no longer selects it: not ours to delete
            with contextlib.suppress(Unflattenable):
                if self.destination_of(source) == target:
                    scope[target].add(source)
        return scope

    def _sweep(self, target: str, sources: list[str]) -> None:
        tags = self.rule.tag_pattern()
        kept: set[str] = set()
        for source in sources:
            with contextlib.suppress(NameUnknown):
                kept.update(t for t in self.services.manifests.tags(source, None, None))
        try:
            there = list(self.client.tags(target))
        except NotFound:
            return  # nothing there
        digests: dict[str, str] = {}
        for tag in there:
            found = self.client.head_manifest(target, tag)
            if found is not None:
                digests[tag] = found.digest
        listed: set[str] | None = None  # manifests that indexes tagged there list
        for tag in sorted(digests):
            if not tags.matches(tag) or tag in kept:
                continue
            digest = digests[tag]
            gone = Artifact(sources[0], digest, (tag,), deleted=True)
            manifest = self.client.get_manifest(target, digest)
            if selected(self.rule, manifest.body) is not None:
                continue  # outside the rule's resource or label filters
            deleted = delete_tag(self.client, target, tag)
            if deleted is None:  # by digest only: that would take every tag on it
                others = sorted(t for t, d in digests.items() if d == digest and t != tag)
                if listed is None:
                    listed = self._listed_by_indexes(target, set(digests.values()))
                if others or digest in listed:
                    why = (
                        f"tags {', '.join(others)} point to the same manifest"
                        if others
                        else "an index tagged there lists its manifest"
                    )
                    self._record(
                        gone,
                        target,
                        "skipped",
                        message=f"tag {tag} not deleted: the registry deletes by digest only "
                        f"and {why}",
                    )
                    continue
                deleted = delete_manifest(self.client, target, digest)
            del digests[tag]
            self.reporter.log(f"{target}:{tag} deleted (gone from {', '.join(sources)})")
            self._record(
                gone, target, "deleted" if deleted else "skipped",
                message="no longer here" if deleted else "already gone there",
            )  # fmt: skip

    def _listed_by_indexes(self, target: str, digests: set[str]) -> set[str]:
        """The children of the indexes among `digests` (manifests tagged there)."""
        children: set[str] = set()
        for digest in sorted(digests):
            body = self.client.get_manifest(target, digest).body
            try:
                document = json.loads(body)
            except ValueError:
                continue
            for child in document.get("manifests") or () if isinstance(document, dict) else ():
                if isinstance(child, dict) and isinstance(child.get("digest"), str):
                    children.add(child["digest"])
        return children

    def one(self, artifact: Artifact) -> None:
        try:
            target = self.destination_of(artifact.repository)
        except Unflattenable as error:
            self._record(artifact, "-", "failed", message=str(error))
            return
        try:
            if artifact.deleted:
                gone = delete_manifest(self.client, target, artifact.digest)
                status: ItemStatus = "deleted" if gone else "skipped"
                self._record(
                    artifact, target, status, message=None if gone else "not on the destination"
                )
                return
            stored = self.services.manifests.lookup(artifact.repository, artifact.digest)
            why_not = selected(self.rule, stored.content)
            if why_not is not None:
                return  # outside the rule's filters: not an item of this run
            copied = self.copy(artifact, target)
        except (RemoteError, RegistryError, OSError) as error:
            message = getattr(error, "message", None) or str(error) or type(error).__name__
            self.reporter.log(f"{artifact.source} -> {target}: failed: {message}", "warning")
            self._record(artifact, target, "failed", message=message)
            return
        done: ItemStatus = "copied" if copied.anything else "skipped"
        self.reporter.log(
            f"{artifact.source} -> {target}: {done} ({copied.manifests} manifests, "
            f"{copied.blobs} blobs, {copied.mounted} mounted, {copied.bytes} bytes)"
        )
        self._record(artifact, target, done, copied)

    def _record(
        self,
        artifact: Artifact,
        target: str,
        status: ItemStatus,
        copied: Copied | None = None,
        message: str | None = None,
    ) -> None:
        record(
            self.runs,
            self.job_id,
            self.tally,
            artifact,
            destination=target,
            status=status,
            copied=copied,
            message=message,
        )

    def copy(self, artifact: Artifact, target: str) -> Copied:
        copied = Copied()
        parts = list(walk(self.services.db, artifact.repository, artifact.digest, referrers=True))
        for digest in _children_first(parts, artifact.digest):
            self.reporter.check_stop()
            if self.client.head_manifest(target, digest) is not None:
                continue
            stored = self.services.manifests.lookup(artifact.repository, digest)
            for blob in _blobs_of(parts, digest):
                self._blob(target, blob, copied)
            push_manifest(self.client, target, digest, stored.content, stored.media_type)
            copied.manifests += 1
        root = self.services.manifests.lookup(artifact.repository, artifact.digest)
        for tag in artifact.tags:
            there = self.client.head_manifest(target, tag)
            if there is not None and there.digest == artifact.digest:
                continue
            if there is not None and not self.rule.override:
                copied.notes.append(f"tag {tag} kept: it points to {there.digest} there")
                continue
            push_manifest(self.client, target, tag, root.content, root.media_type)
            copied.tags += 1
        return copied

    def _blob(self, target: str, blob: Part, copied: Copied) -> None:
        origin = self.known.get(blob.digest)
        pushed = push_blob(
            self.client,
            target,
            blob.digest,
            blob.size,
            self._source(blob.digest),
            mount_from=[origin] if origin else (),
        )
        self.known[blob.digest] = target
        if pushed.how == "uploaded":
            copied.blobs += 1
            copied.bytes += pushed.sent
        elif pushed.how == "mounted":
            copied.mounted += 1

    def _source(self, digest: str) -> BlobSource:
        storage, rate = self.services.storage, self.rate
        path = paths.blob_path(Digest.parse(digest))

        def open_at(offset: int) -> Iterator[bytes]:
            def read() -> Iterator[bytes]:
                reader = storage.reader(path, offset)
                try:
                    while chunk := reader.read(READ_CHUNK):
                        yield chunk
                finally:
                    reader.close()

            return limited(read(), rate)

        return open_at


def _children_first(parts: list[Part], root: str) -> list[str]:
    """The artifact's manifests in push order: an index after its children, a referrer
    after its subject (children not stored here are left to the destination: its PUT
    of the index says if it lacks one)."""
    children: dict[str, list[str]] = defaultdict(list)
    referrers: dict[str, list[str]] = defaultdict(list)
    for part in parts:
        if not part.is_manifest or part.repeated or not part.present or part.parent is None:
            continue
        (children if part.role == "child" else referrers)[part.parent].append(part.digest)
    order: list[str] = []
    seen: set[str] = set()

    def visit(digest: str) -> None:
        if digest in seen:
            return
        seen.add(digest)
        for child in children[digest]:
            visit(child)
        order.append(digest)
        for referrer in referrers[digest]:
            visit(referrer)

    visit(root)
    return order


def _blobs_of(parts: list[Part], manifest: str) -> list[Part]:
    return [p for p in parts if not p.is_manifest and p.parent == manifest and not p.external]
