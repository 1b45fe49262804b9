"""Where the UI answers: everything outside the registry, token, management, health and
metrics paths — unless `ui.enabled` is off."""

from __future__ import annotations

from pathlib import Path

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
