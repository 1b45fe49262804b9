"""No page and no form answers a 5xx, whatever a browser (or someone pretending to be
one) sends: every GET page with hostile query parameters, and every form posted with
every field the templates use set to hostile values, signed in as a system
administrator (who reaches the most code). Refusals must be pages in words."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from starlette.routing import Route

from portside.ui.routes import ROUTES
from tests.auth.conftest import Registry
from tests.ui.conftest import browser_for

TEMPLATES = Path(__file__).parents[2] / "src" / "portside" / "ui" / "templates"
HOSTILE = [
    "",
    "²",
    "9" * 5000,
    "-1",
    "1e309",
    "nan",
    "\x00",
    "%",
    "<script>alert(1)</script>",
    "a" * 3000,
    "../../etc/passwd",
    " ",
]
PATH_VALUES = {
    "name": "acme",
    "username": "outsider",
    "digest": "sha256:" + "0" * 64,
    "tag": "latest",
    "job_id": "1",
    "token_id": "1",
    "webhook_id": "1",
    "run_id": "1",
}
QUERY = (
    "q",
    "page",
    "sort",
    "tag",
    "after",
    "visibility",
    "kind",
    "state",
    "project",
    "actor",
    "status",
)


def _field_names() -> set[str]:
    names: set[str] = set()
    for template in TEMPLATES.glob("*.html"):
        for found in re.findall(r'name="([^"]+)"', template.read_text()):
            if "{{" in found:
                # Indexed fields such as the retention rule rows ({{ f }}kind -> rule-0-kind).
                suffix = found.split("}}")[-1]
                names.update(f"{prefix}{suffix}" for prefix in ("rule-0-", "rule-1-"))
            names.add(found.split("}}")[-1])
    names.discard("csrf")
    return names


def _paths(method: str) -> list[str]:
    paths = []
    for route in ROUTES:
        if isinstance(route, Route) and route.methods and method in route.methods:
            path = route.path
            for key, value in PATH_VALUES.items():
                path = re.sub(r"\{" + key + r"(:[a-z]+)?\}", value, path)
            if path.startswith("/repositories/acme"):
                path = path.replace("/repositories/acme", "/repositories/acme/app", 1)
            assert "{" not in path, path
            paths.append(path)
    return paths


def _assert_in_words(status: int, text: str, what: str) -> None:
    assert status < 500, f"{what}: {status}"
    assert "Something went wrong" not in text, what


@pytest.mark.parametrize("value", HOSTILE, ids=range(len(HOSTILE)))
def test_pages_with_hostile_query_parameters(registry: Registry, value: str) -> None:
    browser = browser_for(registry, "admin")
    for path in _paths("GET"):
        response = browser.client.get(path, params=dict.fromkeys(QUERY, value))
        _assert_in_words(response.status_code, response.text, f"GET {path}")


@pytest.mark.parametrize("value", HOSTILE, ids=range(len(HOSTILE)))
def test_forms_with_hostile_fields(registry: Registry, value: str) -> None:
    browser = browser_for(registry, "admin")
    fields = dict.fromkeys(_field_names(), value)
    for path in _paths("POST"):
        if path == "/logout":
            continue
        browser.get("/profile")
        response = browser.post(path, fields)
        _assert_in_words(response.status_code, response.text, f"POST {path}")
