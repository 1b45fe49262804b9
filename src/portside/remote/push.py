"""Pushing to a peer registry: blobs (skipped when present, mounted from another
repository when the peer allows, uploaded in one PUT when small, else in PATCH chunks
resumed from the peer's reported offset after a failure) and manifests (with the
referrers tag scheme kept up to date on a peer without the referrers API).

A blob's bytes come from a `BlobSource`: a function that opens them from an offset, so
a resumed upload reads only what the peer lacks. Memory use is bounded by the client's
`chunk_size` whatever the blob's size.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import httpx

from portside.oci import mediatypes as mt
from portside.remote.auth import repository_scope as scope_of
from portside.remote.client import (
    RegistryClient,
    expect_status,
    referrers_tag,
)
from portside.remote.errors import DigestMismatch, NotFound, RemoteError, Unreachable
from portside.remote.retry import RETRIED_STATUSES

BlobSource = Callable[[int], Iterator[bytes]]
"""Opens a blob's bytes from an offset (generators are closed when no longer read)."""


@dataclass(frozen=True, slots=True)
class PushedBlob:
    how: Literal["present", "mounted", "uploaded"]
    sent: int  # bytes sent (0 unless uploaded; more than the size if resumes resent some)
    resumes: int = 0


@dataclass(frozen=True, slots=True)
class PushedManifest:
    digest: str
    referrers_tag_updated: bool = False  # the peer lacks the referrers API


def push_blob(
    client: RegistryClient,
    repository: str,
    digest: str,
    size: int,
    source: BlobSource,
    *,
    mount_from: Sequence[str] = (),
) -> PushedBlob:
    """Make `repository` on the peer have the blob, by the cheapest way that works."""
    scopes = [scope_of(repository, "pull", "push")]
    if client.head_blob(repository, digest) is not None:
        return PushedBlob("present", 0)
    location: str | None = None
    for origin in list(mount_from)[:3]:
        if origin == repository:
            continue
        response = client.request(
            "POST",
            f"/v2/{repository}/blobs/uploads/",
            scopes=[*scopes, scope_of(origin, "pull")],
            params={"mount": digest, "from": origin},
        )
        if response.status_code == 201:
            return PushedBlob("mounted", 0)
        expect_status(response, 202, f"mounting {digest} into {repository}")
        location = _location(client, response)  # the peer started an upload instead
        break
    return _upload(
        client, repository=repository, digest=digest, size=size, source=source, location=location
    )


def _start(client: RegistryClient, repository: str) -> str:
    response = client.request(
        "POST", f"/v2/{repository}/blobs/uploads/", scopes=[scope_of(repository, "pull", "push")]
    )
    expect_status(response, 202, f"starting an upload to {repository}")
    return _location(client, response)


def _upload(
    client: RegistryClient,
    *,
    repository: str,
    digest: str,
    size: int,
    source: BlobSource,
    location: str | None,
) -> PushedBlob:
    scopes = [scope_of(repository, "pull", "push")]
    location = location or _start(client, repository)
    if size <= client.chunk_size:
        body = _read(source(0), size)
        response = client.request(
            "PUT",
            location,
            scopes=scopes,
            params=_with_digest(location, digest),
            content=body,
            headers={"Content-Type": "application/octet-stream"},
        )
        _finish(client, response, repository, digest)
        return PushedBlob("uploaded", size)
    offset, sent, resumes = 0, 0, 0
    chunks = _chunked(source(0), client.chunk_size)
    while offset < size:
        try:
            chunk = next(chunks)
        except StopIteration:
            raise RemoteError(
                f"blob {digest}: the source ended at {offset} of {size} bytes"
            ) from None
        failure: str | None = None
        sent += len(chunk)  # counted as sent even if the answer is lost
        try:
            response = client.request(
                "PATCH",
                location,
                scopes=scopes,
                content=chunk,
                retry=False,  # a chunk is resumed from the peer's offset, not resent blindly
                headers={
                    "Content-Type": "application/octet-stream",
                    "Content-Range": f"{offset}-{offset + len(chunk) - 1}",
                },
            )
        except Unreachable as error:
            if error.refused:
                raise
            failure = str(error)
        else:
            if response.status_code == 202:
                location = _location(client, response)
                offset += len(chunk)
                continue
            if response.status_code not in RETRIED_STATUSES and response.status_code != 416:
                expect_status(response, 202, f"uploading {digest} to {repository}")
            failure = f"PATCH answered {response.status_code}"
        # Resume: ask the peer how much it has, and go on from there.
        resumes += 1
        if resumes >= client.retry.attempts:
            raise Unreachable(f"blob {digest}: upload to {repository} failed: {failure}")
        client.sleep(client.retry.wait(resumes))
        _close(chunks)
        location, offset = _resume_point(client, repository, location)
        chunks = _chunked(source(offset), client.chunk_size)
    _close(chunks)
    response = client.request(
        "PUT",
        location,
        scopes=scopes,
        params=_with_digest(location, digest),
        headers={"Content-Length": "0"},
    )
    _finish(client, response, repository, digest)
    return PushedBlob("uploaded", sent, resumes)


def _resume_point(client: RegistryClient, repository: str, location: str) -> tuple[str, int]:
    """Where the upload stands on the peer (`Range: 0-<last byte>`), or a new upload
    from byte 0 if the peer forgot this one. Distribution keeps the upload's expected
    offset in the Location's `_state`, which is stale after a chunk whose answer was
    lost; asked without it, it reports what it really has."""
    scopes = [scope_of(repository, "pull", "push")]
    candidates = [location]
    bare = str(httpx.URL(location).copy_with(query=None))
    if bare != location:
        candidates.append(bare)
    for candidate in candidates:
        response = client.request("GET", candidate, scopes=scopes)
        if response.status_code == 204:
            received = response.headers.get("range", "")
            _, _, last = received.partition("-")
            offset = int(last) + 1 if last.strip().isdigit() else 0
            return _location(client, response, default=location), offset
        if response.status_code not in (400, 404, 416):
            expect_status(response, 204, f"upload status in {repository}")
    return _start(client, repository), 0


def _finish(client: RegistryClient, response: httpx.Response, repository: str, digest: str) -> None:
    if response.status_code == 201:
        stored = response.headers.get("docker-content-digest")
        if stored and stored != digest:
            raise DigestMismatch(f"blob {digest}: {repository} stored it as {stored}")
        return
    if response.status_code == 400:
        raise DigestMismatch(f"blob {digest}: {repository} refused it ({response.text[:300]})")
    if response.status_code == 404 and client.head_blob(repository, digest) is not None:
        return  # an earlier attempt completed; its answer was lost
    expect_status(response, 201, f"completing the upload of {digest} to {repository}")


def push_manifest(
    client: RegistryClient,
    repository: str,
    reference: str,
    body: bytes,
    media_type: str,
) -> PushedManifest:
    """PUT a manifest (by tag or digest). If it has a subject and the peer did not
    confirm it (`OCI-Subject`), add it to the subject's `sha256-<hex>` tag index, as the
    referrers tag scheme asks of clients."""
    response = client.request(
        "PUT",
        f"/v2/{repository}/manifests/{reference}",
        scopes=[scope_of(repository, "pull", "push")],
        content=body,
        headers={"Content-Type": media_type},
    )
    expect_status(response, 201, f"manifest {repository}:{reference}")
    digest = response.headers.get("docker-content-digest") or reference
    document = json.loads(body)
    subject = document.get("subject") if isinstance(document, dict) else None
    if not isinstance(subject, dict) or "OCI-Subject" in response.headers:
        return PushedManifest(digest)
    subject_digest = subject.get("digest")
    if not isinstance(subject_digest, str):
        return PushedManifest(digest)
    descriptor: dict[str, Any] = {"mediaType": media_type, "digest": digest, "size": len(body)}
    artifact_type = document.get("artifactType") or (document.get("config") or {}).get("mediaType")
    if artifact_type:
        descriptor["artifactType"] = artifact_type
    if document.get("annotations"):
        descriptor["annotations"] = document["annotations"]
    add_referrer_to_tag(client, repository, subject_digest, descriptor)
    return PushedManifest(digest, referrers_tag_updated=True)


def add_referrer_to_tag(
    client: RegistryClient, repository: str, subject: str, descriptor: dict[str, Any]
) -> None:
    """Add `descriptor` to the subject's tag-scheme index (created if missing)."""
    tag = referrers_tag(subject)
    try:
        index = client.get_manifest(repository, tag).json()
    except NotFound:
        index = {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": []}
    manifests = [m for m in index.get("manifests") or [] if isinstance(m, dict)]
    if any(m.get("digest") == descriptor["digest"] for m in manifests):
        return
    index["manifests"] = [*manifests, descriptor]
    client_body = json.dumps(index, separators=(",", ":")).encode()
    response = client.request(
        "PUT",
        f"/v2/{repository}/manifests/{tag}",
        scopes=[scope_of(repository, "pull", "push")],
        content=client_body,
        headers={"Content-Type": mt.OCI_INDEX},
    )
    expect_status(response, 201, f"referrers tag {repository}:{tag}")


def delete_manifest(client: RegistryClient, repository: str, digest: str) -> bool:
    """Delete a manifest by digest; False if the peer did not have it."""
    response = client.request(
        "DELETE",
        f"/v2/{repository}/manifests/{digest}",
        scopes=[scope_of(repository, "pull", "push", "delete")],
    )
    if response.status_code == 404:
        return False
    expect_status(response, 202, f"deleting {repository}@{digest}")
    return True


def delete_tag(client: RegistryClient, repository: str, tag: str) -> bool | None:
    """Delete a tag alone (the OCI spec's optional DELETE by tag): True if deleted, False
    if the peer has no such tag, None if the peer does not delete by tag (Distribution
    answers 400 DIGEST_INVALID; others 405 or UNSUPPORTED), so the caller can decide
    whether deleting the manifest by digest is safe."""
    response = client.request(
        "DELETE",
        f"/v2/{repository}/manifests/{tag}",
        scopes=[scope_of(repository, "pull", "push", "delete")],
    )
    if response.status_code == 404:
        return False
    if response.status_code in (400, 405, 501):
        response.close()
        return None
    expect_status(response, (200, 202), f"deleting tag {repository}:{tag}")
    return True


def _location(client: RegistryClient, response: httpx.Response, default: str = "") -> str:
    location = response.headers.get("location") or default
    if not location:
        raise RemoteError(f"{response.request.url}: the answer has no Location")
    return str(httpx.URL(client.url("/")).join(location))


def _with_digest(location: str, digest: str) -> dict[str, str]:
    """The query of `location` (Distribution keeps upload state there) plus `digest`."""
    params = dict(httpx.URL(location).params)
    params["digest"] = digest
    return params


def _read(chunks: Iterator[bytes], size: int) -> bytes:
    body = bytearray()
    try:
        for chunk in chunks:
            body += chunk
            if len(body) > size:
                break
    finally:
        _close(chunks)
    return bytes(body)


def _chunked(chunks: Iterator[bytes], size: int) -> Iterator[bytes]:
    """Regroup a stream into pieces of `size` bytes (the last may be shorter)."""
    buffer = bytearray()
    try:
        for chunk in chunks:
            buffer += chunk
            while len(buffer) >= size:
                yield bytes(buffer[:size])
                del buffer[:size]
        if buffer:
            yield bytes(buffer)
    finally:
        _close(chunks)


def _close(chunks: Iterator[bytes]) -> None:
    close = getattr(chunks, "close", None)
    if close is not None:
        close()
