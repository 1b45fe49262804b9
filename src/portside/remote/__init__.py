"""Talking to other registries over the Distribution API (replication, proxy cache).

    client   RegistryClient: requests with token/Basic auth and retries through the
             egress guard; ping, manifests, blobs (streamed), tags, catalog, referrers
    push     push_blob (present/mount/monolithic/chunked+resumed), push_manifest
             (with the referrers tag scheme), delete_manifest
    auth     challenges, Credentials, the token cache
    retry    RetryPolicy, Retry-After
    kinds    endpoint kinds and their defaults (Docker Hub's library/ prefix)
    errors   RemoteError and its kinds

Pure: no database, no storage; callers hand it what to send and where.
"""

from portside.remote.auth import Credentials
from portside.remote.client import BlobStream, Manifest, ManifestRef, Ping, RegistryClient
from portside.remote.errors import AuthFailed, DigestMismatch, NotFound, RemoteError, Unreachable
from portside.remote.kinds import KINDS, EndpointKind, remote_repository
from portside.remote.push import (
    BlobSource,
    PushedBlob,
    PushedManifest,
    delete_manifest,
    delete_tag,
    push_blob,
    push_manifest,
)
from portside.remote.retry import RetryPolicy

__all__ = [
    "KINDS",
    "AuthFailed",
    "BlobSource",
    "BlobStream",
    "Credentials",
    "DigestMismatch",
    "EndpointKind",
    "Manifest",
    "ManifestRef",
    "NotFound",
    "Ping",
    "PushedBlob",
    "PushedManifest",
    "RegistryClient",
    "RemoteError",
    "RetryPolicy",
    "Unreachable",
    "delete_manifest",
    "delete_tag",
    "push_blob",
    "push_manifest",
    "remote_repository",
]
