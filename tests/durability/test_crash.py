"""kill -9 at random moments while clients push: nothing acknowledged is lost, nothing
half-done corrupts the store, and interrupted uploads are resumable or cleanly unknown."""

from __future__ import annotations

import functools
import json
import os
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
import pytest

from tests.durability.conftest import Store
from tests.durability.server import (
    ServerProcess,
    error_codes,
    finish_upload,
    image_manifest,
    manifest_blob_digests,
    patch_chunk,
    push_monolithic,
    put_manifest,
    run_fsck,
    sha256,
    upload_range_end,
)

ROUNDS = 4
PUSHERS = 2
MAX_PUSHES_PER_ROUND = 60


class ServerGone(Exception):
    """The server went away (we killed it) in the middle of a request."""


@dataclass
class InFlightUpload:
    repo: str
    location: str
    data: bytes


@dataclass
class PushLog:
    """What one pusher was told, across all rounds. Only this pusher writes its repo."""

    repo: str
    acked: dict[str, bytes] = field(default_factory=dict)  # unique tag -> manifest
    maybe: dict[str, bytes] = field(default_factory=dict)  # unique tag -> unacked manifest
    latest_acked: bytes | None = None
    latest_candidates: list[bytes] = field(default_factory=list)  # unacked since the last ack
    blobs: dict[str, bytes] = field(default_factory=dict)  # digest -> bytes (acked blobs)
    in_flight: list[InFlightUpload] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


class Pusher(threading.Thread):
    def __init__(self, url: str, log: PushLog, round_no: int, rng: random.Random) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.log = log
        self.round_no = round_no
        self.rng = rng
        self.pushes = 0

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as client:
            try:
                for number in range(MAX_PUSHES_PER_ROUND):
                    self.push_image(client, f"r{self.round_no}-{number}")
                    self.pushes += 1
            except ServerGone:
                return
            except Exception as error:  # pragma: no cover - reported by the test
                self.log.problems.append(f"pusher crashed: {error!r}")

    def request(self, what: str, send: Callable[[], httpx.Response]) -> httpx.Response:
        try:
            response = send()
        except httpx.TransportError as error:
            raise ServerGone from error
        if response.status_code >= 500:
            self.log.problems.append(f"{what}: {response.status_code} {response.text[:300]}")
        return response

    def push_blob(self, client: httpx.Client, data: bytes) -> None:
        repo, digest = self.log.repo, sha256(data)
        if self.rng.random() < 0.4:
            response = self.request(
                f"monolithic POST {digest}", lambda: push_monolithic(client, repo, data)
            )
            if response.status_code != 201:
                self.log.problems.append(f"monolithic POST: {response.status_code}")
                raise ServerGone
            self.log.blobs[digest] = data
            return
        response = self.request("POST upload", lambda: client.post(f"/v2/{repo}/blobs/uploads/"))
        if response.status_code != 202:
            self.log.problems.append(f"POST upload: {response.status_code}")
            raise ServerGone
        upload = InFlightUpload(repo, response.headers["location"], data)
        self.log.in_flight.append(upload)
        cuts = sorted(self.rng.sample(range(1, len(data)), k=min(3, len(data) - 1)))
        pieces = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
        last = pieces.pop() if self.rng.random() < 0.5 else b""
        offset = 0
        for piece in pieces:
            response = self.request(
                "PATCH", functools.partial(patch_chunk, client, upload.location, piece, offset)
            )
            if response.status_code != 202:
                self.log.problems.append(f"PATCH: {response.status_code} {response.text[:200]}")
                raise ServerGone
            offset += len(piece)
            upload.location = response.headers["location"]
        location = upload.location
        response = self.request(
            "PUT upload", lambda: finish_upload(client, location, sha256(data), last)
        )
        if response.status_code != 201:
            self.log.problems.append(f"PUT upload: {response.status_code} {response.text[:200]}")
            raise ServerGone
        self.log.in_flight.remove(upload)
        self.log.blobs[digest] = data

    def push_image(self, client: httpx.Client, tag: str) -> None:
        rng = self.rng
        config = json.dumps({"tag": tag, "nonce": rng.random()}).encode()
        layers = [rng.randbytes(rng.randint(1, 150_000)) for _ in range(rng.randint(1, 2))]
        if self.log.blobs and rng.random() < 0.3:  # re-push an existing blob (dedup path)
            layers.append(rng.choice(sorted(self.log.blobs.items()))[1])
        for blob in [config, *layers]:
            self.push_blob(client, blob)
        manifest = image_manifest(config, layers, annotation=tag)
        also_latest = rng.random() < 0.5
        self.log.maybe[tag] = manifest
        response = self.request(
            f"PUT manifest {tag}", lambda: put_manifest(client, self.log.repo, tag, manifest)
        )
        if response.status_code != 201:
            self.log.problems.append(f"PUT manifest {tag}: {response.status_code}")
            raise ServerGone
        del self.log.maybe[tag]
        self.log.acked[tag] = manifest
        if also_latest:
            self.log.latest_candidates.append(manifest)
            response = self.request(
                "PUT manifest latest",
                lambda: put_manifest(client, self.log.repo, "latest", manifest),
            )
            if response.status_code != 201:
                self.log.problems.append(f"PUT manifest latest: {response.status_code}")
                raise ServerGone
            self.log.latest_acked = manifest
            self.log.latest_candidates.clear()


def _check_image(client: httpx.Client, repo: str, reference: str, manifest: bytes) -> list[str]:
    problems = []
    response = client.get(
        f"/v2/{repo}/manifests/{reference}",
        headers={"accept": "application/vnd.oci.image.manifest.v1+json"},
    )
    if response.status_code != 200:
        return [f"{repo}:{reference}: acknowledged but GET gives {response.status_code}"]
    if response.content != manifest:
        problems.append(f"{repo}:{reference}: manifest bytes differ from the acknowledged push")
    if response.headers.get("docker-content-digest") != sha256(manifest):
        problems.append(f"{repo}:{reference}: wrong Docker-Content-Digest")
    for digest in manifest_blob_digests(manifest):
        blob = client.get(f"/v2/{repo}/blobs/{digest}")
        if blob.status_code != 200:
            problems.append(f"{repo}:{reference}: blob {digest} GET gives {blob.status_code}")
        elif sha256(blob.content) != digest:
            problems.append(f"{repo}:{reference}: blob {digest} content does not hash to it")
    return problems


def _check_in_flight(client: httpx.Client, upload: InFlightUpload) -> list[str]:
    """An interrupted upload is resumable (and then finishes correctly) or cleanly unknown."""
    where = f"in-flight upload {upload.location}"
    status = client.get(upload.location)
    if status.status_code == 404:
        if error_codes(status) != ["BLOB_UPLOAD_UNKNOWN"]:
            return [f"{where}: 404 with {status.text[:200]}"]
        return []
    if status.status_code != 204:
        return [f"{where}: status GET gives {status.status_code} {status.text[:200]}"]
    landed = upload_range_end(status)
    if status.headers["range"] == "0-0":
        landed = 0  # ambiguous: 0 or 1 bytes; a 416 below tells
    location = upload.location
    if landed > len(upload.data):
        return [f"{where}: status says {landed} bytes, only {len(upload.data)} were ever sent"]
    if landed < len(upload.data):
        response = patch_chunk(client, location, upload.data[landed:], landed)
        if response.status_code == 416 and "range" in response.headers:
            landed = upload_range_end(response)
            # A fresh connection: the refused PATCH's body may have been left unread.
            with httpx.Client(base_url=client.base_url, timeout=30) as fresh:
                response = patch_chunk(fresh, location, upload.data[landed:], landed)
        if response.status_code != 202:
            return [
                f"{where}: resuming at {landed} gives {response.status_code} {response.text[:200]}"
            ]
        location = response.headers["location"]
    done = finish_upload(client, location, sha256(upload.data))
    if done.status_code != 201:
        return [
            f"{where}: resumed at {landed} of {len(upload.data)}, finishing gives "
            f"{done.status_code} {done.text[:200]}"
        ]
    return []


def _verify(server: ServerProcess, logs: list[PushLog]) -> list[str]:
    problems: list[str] = []
    with server.client() as client:
        for log in logs:
            for tag, manifest in sorted(log.acked.items()):
                problems += _check_image(client, log.repo, tag, manifest)
            for tag, manifest in sorted(log.maybe.items()):
                # Not acknowledged: may be absent, but if present it must be whole.
                if client.get(f"/v2/{log.repo}/manifests/{tag}").status_code == 200:
                    problems += _check_image(client, log.repo, tag, manifest)
            log.maybe.clear()
            allowed = list(log.latest_candidates)
            if log.latest_acked is not None:
                allowed.append(log.latest_acked)
            if allowed:
                response = client.get(f"/v2/{log.repo}/manifests/latest")
                if response.status_code == 200:
                    if response.content not in allowed:
                        problems.append(f"{log.repo}:latest points to an unexpected manifest")
                    else:
                        log.latest_acked = response.content
                        problems += _check_image(client, log.repo, "latest", response.content)
                elif log.latest_acked is not None:
                    problems.append(f"{log.repo}:latest: acknowledged but {response.status_code}")
            log.latest_candidates.clear()
            for upload in log.in_flight:
                problems += _check_in_flight(client, upload)
            log.in_flight.clear()
    return problems


@pytest.mark.slow
def test_sigkill_during_pushes_loses_nothing_acknowledged(store: Store) -> None:
    seed = int.from_bytes(os.urandom(4), "big")
    rng = random.Random(seed)
    logs = [PushLog(repo=f"crash/pusher{n}") for n in range(PUSHERS)]
    server = store.server(workers=2)
    problems: list[str] = []
    pushed = 0
    for round_no in range(ROUNDS):
        server.start()
        if round_no:
            problems += [f"round {round_no} restart: {p}" for p in _verify(server, logs)]
        pushers = [Pusher(server.url, log, round_no, random.Random(rng.random())) for log in logs]
        for pusher in pushers:
            pusher.start()
        time.sleep(rng.uniform(0.3, 2.5))
        server.kill()
        for pusher in pushers:
            pusher.join(timeout=60)
            assert not pusher.is_alive()
            pushed += pusher.pushes
        fsck = run_fsck(store.data_dir, store.database_url)
        if fsck.returncode != 0:
            problems.append(f"round {round_no}: fsck after SIGKILL exit {fsck.returncode}:")
            problems += [f"    {line}" for line in fsck.stdout.splitlines()]
    server.start()
    problems += [f"final: {p}" for p in _verify(server, logs)]
    server.stop()
    fsck = run_fsck(store.data_dir, store.database_url)
    if fsck.returncode != 0:
        problems.append(f"final fsck exit {fsck.returncode}: {fsck.stdout}")
    for log in logs:
        problems += log.problems
    problems += [f"server log: {line}" for line in server.internal_errors()]
    assert sum(len(log.acked) for log in logs) > 0, "no push was ever acknowledged"
    assert problems == [], f"seed {seed}, {pushed} images pushed:\n" + "\n".join(problems)
