"""What the proxy cache needs from an upstream registry, as a Protocol: the outgoing
Distribution-API client (portside.remote) is adapted to it in proxy.endpoints, and tests
may stand in a real registry or a recording one.

Every method blocks (HTTP): callers run them on the proxy's own threads, never on the
event loop nor the shared blocking-work pool, so a slow upstream cannot starve requests
for local content.

Failures are two kinds, because the cache answers them differently:
    UpstreamMissing      the upstream says the manifest/blob is not there (404): the pull
                         fails with the same answer.
    UpstreamUnavailable  anything else (unreachable, refused by the egress policy, bad
                         credentials, 5xx after retries, a digest that does not verify):
                         the cached copy is served, marked stale, when there is one.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

# What a proxy asks an upstream for, in preference order: every manifest kind a client
# may pull (the client's own Accept is applied to the stored copy afterwards).
MANIFEST_ACCEPT = ", ".join(
    (
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    )
)


class UpstreamError(Exception):
    """An upstream request failed; the message is for the log and the client."""


class UpstreamMissing(UpstreamError):
    pass


class UpstreamUnavailable(UpstreamError):
    pass


@dataclass(frozen=True, slots=True)
class ManifestAnswer:
    body: bytes
    media_type: str
    digest: str | None  # the upstream's Docker-Content-Digest, if it sent one


class BlobStream(Protocol):
    """An open blob download: its size if the upstream said (Content-Length), its bytes
    in chunks, and close() (also after a partial read)."""

    @property
    def size(self) -> int | None: ...

    def chunks(self) -> Iterator[bytes]: ...

    def close(self) -> None: ...


class Upstream(Protocol):
    @property
    def label(self) -> str:
        """The endpoint's name, for logs and headers."""

    def repository(self, name: str) -> str:
        """How repository `name` (the path after the proxy project) is spelled upstream
        (Docker Hub: `nginx` is `library/nginx`)."""

    def manifest_digest(self, repository: str, reference: str) -> str | None:
        """HEAD: the manifest's digest upstream (None if the upstream sent none)."""

    def manifest(self, repository: str, reference: str) -> ManifestAnswer: ...

    def blob(self, repository: str, digest: str) -> BlobStream: ...
