"""The smallest end-to-end flow through the ASGI app: push a blob and a manifest, pull."""

from __future__ import annotations

import hashlib
import json

from starlette.testclient import TestClient


def test_push_and_pull_roundtrip(client: TestClient) -> None:
    layer = b"layer bytes" * 1000
    layer_digest = "sha256:" + hashlib.sha256(layer).hexdigest()
    config = b"{}"
    config_digest = "sha256:" + hashlib.sha256(config).hexdigest()
    for blob, digest in ((layer, layer_digest), (config, config_digest)):
        response = client.post(f"/v2/acme/app/blobs/uploads/?digest={digest}", content=blob)
        assert response.status_code == 201, response.text
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config_digest,
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": layer_digest,
                    "size": len(layer),
                }
            ],
        }
    ).encode()
    response = client.put(
        "/v2/acme/app/manifests/v1",
        content=manifest,
        headers={"content-type": "application/vnd.oci.image.manifest.v1+json"},
    )
    assert response.status_code == 201, response.text
    manifest_digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
    assert response.headers["docker-content-digest"] == manifest_digest
    pulled = client.get("/v2/acme/app/manifests/v1")
    assert pulled.content == manifest
    assert pulled.headers["content-type"] == "application/vnd.oci.image.manifest.v1+json"
    pulled_blob = client.get(f"/v2/acme/app/blobs/{layer_digest}")
    assert pulled_blob.content == layer
    assert client.get("/v2/acme/app/tags/list").json() == {"name": "acme/app", "tags": ["v1"]}
