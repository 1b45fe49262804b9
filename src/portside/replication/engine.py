"""What a replication run shares, whichever way it copies: the services it uses, how it
reports, the filters on an artifact, and the tally that becomes the job's summary.

A run plans by digest (the artifacts the rule selects, each with its tags), then copies
them one at a time; each artifact's outcome (`copied`, `skipped` when the destination had
everything, `failed` with the reason) is recorded in `replication_items`, and a failed
artifact does not stop the others. Nothing is copied twice: the destination is asked
(HEAD) before each manifest and blob, so a rerun after a failure copies only what is
still missing.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from portside.content.blobs import BlobService
from portside.content.manifests import ManifestService
from portside.content.uploads import UploadService
from portside.events.outbox import Actor
from portside.metadata.db import Database
from portside.oci import mediatypes as mt
from portside.replication.rules import Rule
from portside.replication.runs import ItemStatus, Runs
from portside.storage.base import StorageDriver

IMAGE_CONFIGS = frozenset(
    {"application/vnd.oci.image.config.v1+json", "application/vnd.docker.container.image.v1+json"}
)
MAX_REFERRER_DEPTH = 4  # a signature of an SBOM of an image is depth 2


class Reporter(Protocol):
    """Where a run reports (a job's context fits)."""

    def log(self, message: str, level: str = "info") -> None: ...

    def progress(self, done: int, total: int | None = None, message: str | None = None) -> None: ...

    def check_stop(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Services:
    db: Database
    storage: StorageDriver
    blobs: BlobService
    uploads: UploadService
    manifests: ManifestService


@dataclass(frozen=True, slots=True)
class Artifact:
    """One artifact to copy: a repository, a digest, and the tags the rule selected."""

    repository: str
    digest: str
    tags: tuple[str, ...] = ()
    deleted: bool = False  # an event-triggered deletion to copy

    @property
    def source(self) -> str:
        return (
            f"{self.repository}:{','.join(self.tags)}"
            if self.tags
            else (f"{self.repository}@{self.digest}")
        )


@dataclass
class Copied:
    """What copying one artifact moved."""

    manifests: int = 0
    blobs: int = 0
    mounted: int = 0
    bytes: int = 0
    tags: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def anything(self) -> bool:
        return bool(self.manifests or self.blobs or self.mounted or self.tags)


@dataclass
class Tally:
    rule: Rule
    started: float = field(default_factory=time.monotonic)
    artifacts: int = 0
    copied: int = 0
    skipped: int = 0
    deleted: int = 0
    failed: int = 0
    blobs: int = 0
    bytes: int = 0

    def summary(self) -> dict[str, Any]:
        seconds = time.monotonic() - self.started
        return {
            "rule": self.rule.name,
            "direction": self.rule.direction,
            "endpoint": self.rule.endpoint,
            "artifacts": self.artifacts,
            "copied": self.copied,
            "skipped": self.skipped,
            "deleted": self.deleted,
            "failed": self.failed,
            "blobs": self.blobs,
            "bytes": self.bytes,
            "seconds": round(seconds, 3),
        }


def actor_of(rule: Rule) -> Actor:
    """Who the content a run writes here is recorded as."""
    return Actor(f"replication:{rule.name}")


def kind_of(document: dict[str, Any]) -> str:
    """`images` or `artifacts`: an artifact declares an artifactType, or (an image
    manifest) carries a config that is not an image config."""
    if document.get("artifactType"):
        return "artifacts"
    if document.get("mediaType") in mt.INDEXES or "manifests" in document:
        return "images"
    config = document.get("config") or {}
    return "images" if config.get("mediaType") in IMAGE_CONFIGS else "artifacts"


def selected(rule: Rule, body: bytes) -> str | None:
    """None if the rule's resource and label filters take this manifest, else why not."""
    try:
        document = json.loads(body)
    except ValueError:
        return "not JSON"
    if not isinstance(document, dict):
        return "not a JSON object"
    kind = kind_of(document)
    if rule.resources not in ("all", kind):
        return f"an {kind[:-1]}, the rule copies {rule.resources}"
    annotations = document.get("annotations") or {}
    for label in rule.labels:
        key, _, value = label.partition("=")
        if annotations.get(key) != value:
            return f"no label {label}"
    return None


def record(
    runs: Runs,
    job_id: int,
    tally: Tally,
    artifact: Artifact,
    *,
    destination: str,
    status: ItemStatus,
    copied: Copied | None = None,
    message: str | None = None,
) -> None:
    copied = copied or Copied()
    tally.artifacts += 1
    tally.blobs += copied.blobs
    tally.bytes += copied.bytes
    if status == "copied":
        tally.copied += 1
    elif status == "skipped":
        tally.skipped += 1
    elif status == "deleted":
        tally.deleted += 1
    else:
        tally.failed += 1
    notes = "; ".join(copied.notes)
    runs.record(
        job_id,
        source=artifact.source,
        destination=destination,
        digest=artifact.digest or None,
        status=status,
        blobs=copied.blobs,
        size=copied.bytes,
        message=message or notes or None,
    )
