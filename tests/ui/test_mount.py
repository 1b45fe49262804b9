"""Where the UI answers: everything outside the registry, token, management, health and
metrics paths — unless `ui.enabled` is off."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace

from portside.ui.app import STATIC
from tests.auth.conftest import Registry, populated


def test_ui_paths_and_registry_paths_do_not_mix(registry: Registry) -> None:
    client = registry.as_caller({})
    assert client.get("/projects").headers["content-type"].startswith("text/html")
    for path in ("/v2/", "/api/v1/systeminfo", "/healthz"):
        response = client.get(path)
        assert "text/html" not in response.headers.get("content-type", ""), path
        assert "content-security-policy" not in response.headers, path
    missing = client.get("/api/v2/projects")
    assert missing.status_code == 404
    assert missing.json()["errors"]


def test_static_files_are_served(registry: Registry) -> None:
    client = registry.as_caller({})
    for name, kind in (("portside.css", "text/css"), ("portside.js", "javascript")):
        response = client.get(f"/static/{name}")
        assert response.status_code == 200
        assert kind in response.headers["content-type"]
    assert client.get("/static/../app.py").status_code == 404


def test_ui_can_be_turned_off(tmp_path: Path, database_url: str) -> None:
    with populated(tmp_path, database_url, ui={"enabled": False}) as registry:
        client = registry.as_caller({})
        for path in ("/", "/projects", "/login", "/static/portside.css"):
            response = client.get(path, follow_redirects=False)
            assert response.status_code == 404, path
            assert response.json()["errors"]
        assert client.get("/api/v1/systeminfo").status_code == 200


def test_static_files_through_the_rsgi_bridge(registry: Registry) -> None:
    """`portside serve` runs the UI through the RSGI-to-ASGI bridge: a streamed file
    response must arrive whole (the bridge once reported a disconnect that cut it off)."""
    sent: list[tuple[int, bytes]] = []

    class Protocol:
        def __aiter__(self) -> Protocol:
            return self

        async def __anext__(self) -> bytes:
            raise StopAsyncIteration

        def response_bytes(self, status: int, headers: object, body: bytes) -> None:
            sent.append((status, body))

    scope = SimpleNamespace(
        proto="http",
        client="127.0.0.1:40000",
        server="127.0.0.1:5000",
        http_version="1.1",
        method="GET",
        scheme="http",
        path="/static/portside.css",
        query_string="",
        headers={
            "host": "127.0.0.1:5000",
            "accept-encoding": "gzip",
            "referer": "http://127.0.0.1:5000/projects",
        },
    )
    asyncio.run(registry.app.__rsgi__(scope, Protocol()))
    expected = (STATIC / "portside.css").read_bytes()
    assert sent == [(200, expected)]
