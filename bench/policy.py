"""Seeding the "manifest GET with a pull policy" figures. `seed_signed`: the small image
pushed into a project that requires signatures, signed with a cosign key the project trusts (a
`sha256-<hex>.sig` signature image, built with `cryptography` as cosign builds it).

Portside's project, key and policy are set through its services on the server's own
database (the default SQLite file in its data directory, or PORTSIDE_DATABASE__URL);
the seeding then checks the policy is on: the signed tag is served, an unsigned one is
refused. `seed_scanned`: the small image in a project that prevents vulnerable images,
with a finished scan that found nothing (recorded through the scan store, as a scanner
would: no scanner runs in the bench); an unscanned tag is refused. Distribution has no
policies: it gets the same images (and signature), plainly.
"""

from __future__ import annotations

import base64
import json
import os
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from bench import client
from bench.client import MANIFEST_ACCEPT, OCI_MANIFEST
from bench.payload import small_blob
from bench.servers import Server


def _database_url(server: Server) -> str | None:
    """Portside's database, or None for a server that is not Portside."""
    if os.environ.get("PORTSIDE_DATABASE__URL"):
        return os.environ["PORTSIDE_DATABASE__URL"]
    path = server.data_dir / "portside.db"
    return f"sqlite:///{path.absolute()}" if path.exists() else None


def _configure(database_url: str, project: str, public_pem: str) -> None:
    from portside.auth.projects import Projects
    from portside.metadata.db import Database
    from portside.metadata.engine import make_engine
    from portside.signatures.keys import PolicySettings, TrustedKeys

    db = Database(make_engine(database_url))
    try:
        Projects(db).create(project, public=True, creator="bench")
        TrustedKeys(db).add(project, "bench", public_pem)
        PolicySettings(db).update(project, require_signed=True)
    finally:
        db.engine.dispose()


def _configure_scanned(database_url: str, repo: str, digest: str) -> None:
    from portside.content.vulnerability import ScanSettings
    from portside.events.outbox import Actor
    from portside.metadata.db import Database
    from portside.metadata.engine import make_engine
    from portside.scanning.model import Severity
    from portside.scans.scanner import ScannerInfo, ScanReport
    from portside.scans.settings import ScanSettingsStore
    from portside.scans.store import ScanStore

    db = Database(make_engine(database_url))
    try:
        settings = ScanSettings(prevent_vulnerable=True, severity=Severity.CRITICAL)
        ScanSettingsStore(db).save(repo.split("/", 1)[0], settings, Actor("bench"))
        store = ScanStore(db)
        with db.write() as conn:
            scan_id = store.request_in(
                conn, repo, digest, "builtin", requested_by="bench", sbom=False
            )
        report = ScanReport((), ScannerInfo("bench", "portside", "0"), db_generation="bench")
        store.finish(store.start(scan_id), [(digest, None, report)])
    finally:
        db.engine.dispose()


def seed_scanned(server: Server, repo: str, tag: str, image: Any) -> None:
    ep = server.endpoint
    database_url = _database_url(server)
    if database_url is not None:
        from portside.auth.projects import Projects
        from portside.metadata.db import Database
        from portside.metadata.engine import make_engine

        db = Database(make_engine(database_url))
        try:
            Projects(db).create(repo.split("/", 1)[0], public=True, creator="bench")
        finally:
            db.engine.dispose()
    client.push_small(ep, repo, image.config, image.config_digest)
    client.push_small(ep, repo, image.layer, image.layer_digest)
    client.put_manifest(ep, repo, tag, image.manifest)
    client.put_manifest(ep, repo, "unscanned", {**image.manifest, "annotations": {"x": "1"}})
    _, manifest_digest = small_blob(json.dumps(image.manifest).encode())
    if database_url is not None:
        _configure_scanned(database_url, repo, manifest_digest)
    scanned = client.get_ok(ep, f"/v2/{repo}/manifests/{tag}", MANIFEST_ACCEPT)
    unscanned = client.get_ok(ep, f"/v2/{repo}/manifests/unscanned", MANIFEST_ACCEPT)
    expected = (200, 403) if database_url is not None else (200, 200)
    if (scanned, unscanned) != expected:
        raise client.RegistryError(
            f"{server.name}: scanned/unscanned manifest GET gave {scanned}/{unscanned}, "
            f"expected {expected[0]}/{expected[1]}"
        )


def _signature_image(key: ec.EllipticCurvePrivateKey, digest: str) -> tuple[list[bytes], bytes]:
    payload = json.dumps(
        {
            "critical": {
                "identity": {"docker-reference": "bench"},
                "image": {"docker-manifest-digest": digest},
                "type": "cosign container image signature",
            },
            "optional": None,
        },
        separators=(",", ":"),
    ).encode()
    signature = base64.b64encode(key.sign(payload, ec.ECDSA(hashes.SHA256()))).decode()
    config, config_digest = small_blob(b'{"architecture":"","os":"","config":{}}')
    _, payload_digest = small_blob(payload)
    manifest: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": len(config),
        },
        "layers": [
            {
                "mediaType": "application/vnd.dev.cosign.simplesigning.v1+json",
                "digest": payload_digest,
                "size": len(payload),
                "annotations": {"dev.cosignproject.cosign/signature": signature},
            }
        ],
    }
    return [config, payload], json.dumps(manifest).encode()


def seed_signed(server: Server, repo: str, tag: str, image: Any) -> None:
    ep = server.endpoint
    key = ec.generate_private_key(ec.SECP256R1())
    database_url = _database_url(server)
    if database_url is not None:
        public_pem = (
            key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )
        _configure(database_url, repo.split("/", 1)[0], public_pem)
    client.push_small(ep, repo, image.config, image.config_digest)
    client.push_small(ep, repo, image.layer, image.layer_digest)
    client.put_manifest(ep, repo, tag, image.manifest)
    client.put_manifest(ep, repo, "unsigned", {**image.manifest, "annotations": {"x": "1"}})
    _, manifest_digest = small_blob(json.dumps(image.manifest).encode())
    blobs, signature_manifest = _signature_image(key, manifest_digest)
    for blob in blobs:
        _, digest = small_blob(blob)
        client.push_small(ep, repo, blob, digest)
    client.put_manifest(
        ep, repo, manifest_digest.replace(":", "-") + ".sig", json.loads(signature_manifest)
    )
    signed = client.get_ok(ep, f"/v2/{repo}/manifests/{tag}", MANIFEST_ACCEPT)
    unsigned = client.get_ok(ep, f"/v2/{repo}/manifests/unsigned", MANIFEST_ACCEPT)
    expected = (200, 403) if database_url is not None else (200, 200)
    if (signed, unsigned) != expected:
        raise client.RegistryError(
            f"{server.name}: signed/unsigned manifest GET gave {signed}/{unsigned}, "
            f"expected {expected[0]}/{expected[1]}"
        )
