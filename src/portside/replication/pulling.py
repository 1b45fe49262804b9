"""Pull replication: an endpoint's artifacts into Portside.

Plan: the endpoint's repositories the rule's pattern selects (from its catalog; a
pattern without wildcards names one repository, for registries without a catalog such
as Docker Hub), their tags the tag pattern selects, grouped by digest. Copy, per
artifact, from the remote manifests: each manifest this registry lacks goes after its
blobs and child manifests, then its referrers (from the endpoint's referrers API or tag
scheme) after it; blobs already in the local repository are skipped, others streamed in
through the normal content services (digest verified, quota, events), then the tags,
unless a local tag points elsewhere and the rule does not override. Immutability rules
apply to the tags as to any push.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from sqlalchemy import select

from portside.digest import Digest
from portside.errors import BlobUnknown, ManifestUnknown, RegistryError
from portside.metadata import schema as s
from portside.reference import project_of
from portside.remote import Manifest, NotFound, RegistryClient, RemoteError
from portside.replication.engine import (
    MAX_REFERRER_DEPTH,
    Artifact,
    Copied,
    Reporter,
    Services,
    Tally,
    actor_of,
    record,
    selected,
)
from portside.replication.naming import Unflattenable, destination
from portside.replication.rules import Rule
from portside.replication.runs import ItemStatus, Runs
from portside.replication.throttle import limited

_WILDCARD = re.compile(r"[*?\[\]{}]")


class PullFailed(Exception):
    pass


class Puller:
    def __init__(
        self,
        services: Services,
        *,
        rule: Rule,
        client: RegistryClient,
        runs: Runs,
        job_id: int,
        reporter: Reporter,
    ) -> None:
        self.services = services
        self.rule = rule
        self.client = client
        self.runs = runs
        self.job_id = job_id
        self.reporter = reporter
        self.tally = Tally(rule)
        self.actor = actor_of(rule)
        self.rate = rule.bandwidth_kbps * 1000 / 8 if rule.bandwidth_kbps else None

    # -- planning ---------------------------------------------------------------------
    def repositories(self) -> list[str]:
        pattern = self.rule.repository_pattern()
        if not _WILDCARD.search(self.rule.repositories):
            return [self.rule.repositories]
        return [name for name in self.client.catalog() if pattern.matches(name)]

    def plan(self) -> list[Artifact]:
        tags = self.rule.tag_pattern()
        planned: list[Artifact] = []
        for repository in self.repositories():
            by_digest: dict[str, list[str]] = {}
            try:
                names = [t for t in self.client.tags(repository) if tags.matches(t)]
            except NotFound:
                self.reporter.log(f"{repository}: not on the endpoint", "warning")
                continue
            for tag in names:
                if tag.startswith(("sha256-", "sha512-")):
                    continue  # referrers tag-scheme indexes come along with their subjects
                found = self.client.head_manifest(repository, tag)
                if found is not None:
                    by_digest.setdefault(found.digest, []).append(tag)
            for digest, chosen in by_digest.items():
                planned.append(Artifact(repository, digest, tuple(sorted(chosen))))
        return planned

    # -- copying ----------------------------------------------------------------------
    def run(self, artifacts: list[Artifact]) -> Tally:
        total = len(artifacts)
        self.reporter.progress(0, total, f"{total} artifacts to replicate")
        for done, artifact in enumerate(artifacts, 1):
            self.reporter.check_stop()
            self.one(artifact)
            self.reporter.progress(done, total, artifact.source)
        return self.tally

    def one(self, artifact: Artifact) -> None:
        try:
            local = destination(
                artifact.repository, self.rule.destination_namespace, self.rule.flattening
            )
        except Unflattenable as error:
            record(
                self.runs,
                self.job_id,
                self.tally,
                artifact,
                destination="-",
                status="failed",
                message=str(error),
            )
            return
        try:
            self._check_project(local)
            root = self.client.get_manifest(artifact.repository, artifact.digest)
            if selected(self.rule, root.body) is not None:
                return
            copied = Copied()
            self._tree(artifact.repository, local, root, copied, 0)
            self._tags(artifact, local, root, copied)
        except (RemoteError, RegistryError, PullFailed, OSError) as error:
            message = getattr(error, "message", None) or str(error) or type(error).__name__
            self.reporter.log(f"{artifact.source} -> {local}: failed: {message}", "warning")
            record(
                self.runs,
                self.job_id,
                self.tally,
                artifact,
                destination=local,
                status="failed",
                message=message,
            )
            return
        status: ItemStatus = "copied" if copied.anything else "skipped"
        self.reporter.log(
            f"{artifact.source} -> {local}: {status} ({copied.manifests} manifests, "
            f"{copied.blobs} blobs, {copied.bytes} bytes)"
        )
        record(
            self.runs,
            self.job_id,
            self.tally,
            artifact,
            destination=local,
            status=status,
            copied=copied,
        )

    def _check_project(self, local: str) -> None:
        project = project_of(local)
        with self.services.db.read() as conn:
            found = conn.execute(
                select(s.projects.c.id).where(s.projects.c.name == project)
            ).first()
        if found is None:
            raise PullFailed(
                f"project {project!r} does not exist here; create it or set the rule's "
                "destination namespace"
            )

    def _has_manifest(self, local: str, digest: str) -> bool:
        try:
            self.services.manifests.lookup(local, digest)
        except (ManifestUnknown, RegistryError):
            return False
        return True

    def _tree(
        self, remote: str, local: str, manifest: Manifest, copied: Copied, depth: int
    ) -> None:
        """Copy a manifest with its children and blobs (children first), then its
        referrers."""
        if not self._has_manifest(local, manifest.digest):
            document = manifest.json()
            for child in document.get("manifests") or []:
                digest = child.get("digest") if isinstance(child, dict) else None
                if isinstance(digest, str) and not self._has_manifest(local, digest):
                    self.reporter.check_stop()
                    self._tree(
                        remote, local, self.client.get_manifest(remote, digest), copied, depth
                    )
            blobs = [document.get("config")] if document.get("config") else []
            blobs += document.get("layers") or []
            for blob in blobs:
                if isinstance(blob, dict) and not blob.get("urls"):
                    self._blob(remote, local, str(blob.get("digest")), copied)
            self.services.manifests.put(
                local, manifest.digest, manifest.body, manifest.media_type, self.actor
            )
            copied.manifests += 1
        if depth < MAX_REFERRER_DEPTH:
            for referrer in self.client.referrers(remote, manifest.digest):
                digest = referrer["digest"]
                self.reporter.check_stop()
                found = self.client.get_manifest(remote, digest)
                self._tree(remote, local, found, copied, depth + 1)

    def _blob(self, remote: str, local: str, digest: str, copied: Copied) -> None:
        parsed = Digest.parse(digest)
        try:
            self.services.blobs.stat(local, parsed)
            return
        except BlobUnknown:
            pass
        with self.client.open_blob(remote, digest) as stream:
            chunks: Iterator[bytes] = limited(stream.chunks(), self.rate)
            size = self.services.uploads.store(local, parsed, chunks, self.actor)
        copied.blobs += 1
        copied.bytes += size

    def _tags(self, artifact: Artifact, local: str, root: Manifest, copied: Copied) -> None:
        for tag in artifact.tags:
            try:
                current = self.services.manifests.lookup(local, tag).digest
            except (ManifestUnknown, RegistryError):
                current = None
            if current == artifact.digest:
                continue
            if current is not None and not self.rule.override:
                copied.notes.append(f"tag {tag} kept: it points to {current} here")
                continue
            self.services.manifests.put(local, tag, root.body, root.media_type, self.actor)
            copied.tags += 1
