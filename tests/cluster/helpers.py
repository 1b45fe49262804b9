"""What the cluster tests do to a cluster: push and pull small images, talk to one
replica directly, push from several threads while a replica is SIGKILLed, and fsck the
shared database and storage afterwards."""

from __future__ import annotations

import base64
import json
import subprocess
import threading
import time
from dataclasses import dataclass

import httpx

from tests.cluster.conftest import ADMIN_PASSWORD, Cluster
from tests.durability.server import (
    OCI_CONFIG,
    OCI_LAYER,
    OCI_MANIFEST,
    PORTSIDE,
    ServerProcess,
    portside_env,
    sha256,
)

PASSWORD = "cluster-user-password"


def auth(user: str, password: str = PASSWORD) -> dict[str, str]:
    raw = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"authorization": f"Basic {raw}"}


ADMIN = auth("admin", ADMIN_PASSWORD)


@dataclass(frozen=True)
class Pushed:
    repo: str
    tag: str
    manifest: bytes
    blobs: dict[str, bytes]

    @property
    def digest(self) -> str:
        return sha256(self.manifest)


def push(client: httpx.Client, repo: str, tag: str, seed: str) -> Pushed:
    config = json.dumps({"architecture": "amd64", "os": "linux", "seed": seed}).encode()
    layer = (seed.encode() * 4096)[: 64 * 1024]
    blobs = {sha256(config): config, sha256(layer): layer}
    for digest, data in blobs.items():
        done = client.post(f"/v2/{repo}/blobs/uploads/?digest={digest}", content=data)
        assert done.status_code == 201, done.text
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": sha256(config), "size": len(config)},
            "layers": [{"mediaType": OCI_LAYER, "digest": sha256(layer), "size": len(layer)}],
        }
    ).encode()
    put = client.put(
        f"/v2/{repo}/manifests/{tag}", content=manifest, headers={"content-type": OCI_MANIFEST}
    )
    assert put.status_code == 201, put.text
    return Pushed(repo, tag, manifest, blobs)


def assert_pullable(client: httpx.Client, pushed: Pushed) -> None:
    got = client.get(f"/v2/{pushed.repo}/manifests/{pushed.tag}", headers={"accept": OCI_MANIFEST})
    assert got.status_code == 200, (client.base_url, got.text)
    assert got.content == pushed.manifest
    for digest, data in pushed.blobs.items():
        blob = client.get(f"/v2/{pushed.repo}/blobs/{digest}", follow_redirects=True)
        assert blob.status_code == 200, (client.base_url, blob.text)
        assert blob.content == data


def direct(replica: ServerProcess, headers: dict[str, str] | None = None) -> httpx.Client:
    return httpx.Client(base_url=replica.url, timeout=60, headers=headers or {})


def push_while_killing(cluster: Cluster, victim: ServerProcess, repo: str) -> list[Pushed]:
    """Six pushers write through every replica (`repo`0..5) while `victim` is SIGKILLed:
    the pushes that were acknowledged (manifest PUT answered 201)."""
    acknowledged: list[Pushed] = []
    lock = threading.Lock()
    stop = threading.Event()

    def pusher(n: int) -> None:
        replica = cluster.replicas[n % len(cluster.replicas)]
        i = 0
        with direct(replica, ADMIN) as client:
            while not stop.is_set():
                i += 1
                try:
                    pushed = push(client, f"{repo}{n}", f"t{i}", f"crash {n} {i} {time.time()}")
                except (httpx.TransportError, AssertionError):
                    continue  # not acknowledged (the replica died mid-push): no promise
                with lock:
                    acknowledged.append(pushed)

    threads = [threading.Thread(target=pusher, args=(n,), daemon=True) for n in range(6)]
    for thread in threads:
        thread.start()
    time.sleep(4)
    victim.kill()
    time.sleep(2)
    stop.set()
    for thread in threads:
        thread.join(60)
    return acknowledged


def assert_fsck_clean(cluster: Cluster) -> None:
    """The metadata and the shared storage agree (`portside fsck` on both)."""
    checked = subprocess.run(
        [PORTSIDE, "fsck", "--no-hash", "--data-dir", str(cluster.root / "fsck")],
        env=portside_env(cluster.database_url, **cluster.storage_env()),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
