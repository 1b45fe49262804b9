"""The replication administration pages: add a rule from the form (refusals in words),
run it against a real Distribution, see the run with its per-artifact results, change
and delete the rule; hostile values escaped; non-admins refused."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from portside.jobs.runner import Worker
from tests.api.helpers import push_image
from tests.auth.conftest import Registry, populated
from tests.remote.peers import distribution
from tests.ui.conftest import admin_client, browser_for


@pytest.fixture
def lenient(tmp_path: Path, database_url: str) -> Iterator[Registry]:
    with populated(tmp_path, database_url, endpoints={"allow_private_targets": True}) as built:
        yield built


def _flash(page: str) -> str:
    found = re.search(r'<div class="flash [a-z]+" role="[a-z]+">(.*?)</div>', page, re.S)
    assert found, "no message on the page"
    return found.group(1)


def rule_form(endpoint: str, **extra: str) -> dict[str, str]:
    return {
        "name": "to-dist",
        "direction": "push",
        "endpoint": endpoint,
        "repositories": "acme/**",
        "tags": "**",
        "resources": "all",
        "flattening": "1",
        "trigger": "manual",
        "override": "on",
        "enabled": "on",
        **extra,
    }


def test_add_run_and_read_a_rule(lenient: Registry, tmp_path: Path) -> None:
    push_image(admin_client(lenient), "acme/app", "v1", seed="ui")
    browser = browser_for(lenient, "admin")
    with distribution(tmp_path / "d") as peer:
        browser.get("/admin/endpoints")
        browser.post("/admin/endpoints", {"name": "dist", "type": "distribution", "url": peer.url})
        page = browser.get("/admin/replication").text
        assert "New rule" in page
        refused = browser.post("/admin/replication/rules", rule_form("dist", trigger="scheduled"))
        assert "Could not add the rule:" in _flash(refused.text)
        assert "cron" in _flash(refused.text)
        added = browser.post("/admin/replication/rules", rule_form("dist"))
        assert _flash(added.text) == "Rule to-dist added."
        queued = browser.post("/admin/replication/rules/to-dist/run")
        assert re.match(r"Run \d+ of to-dist queued\.", _flash(queued.text))
        worker = Worker(lenient.app.ctx, name="test-worker")
        for _ in range(5):
            worker.tick()
        run_page = browser.get(str(queued.url).replace("http://registry.test", "")).text
        assert "acme/app:v1" in run_page
        assert "copied" in run_page
        changed = browser.post(
            "/admin/replication/rules/to-dist", rule_form("dist", tags="v*", description="<b>x</b>")
        )
        assert _flash(changed.text) == "Rule to-dist saved."
        assert "<b>x</b>" not in changed.text
        assert "&lt;b&gt;x&lt;/b&gt;" in changed.text
        assert "/admin/replication/runs/" in browser.get("/admin/replication").text
        browser.get("/admin/replication/rules/to-dist")
        deleted = browser.post("/admin/replication/rules/to-dist/delete")
        assert _flash(deleted.text) == "Rule to-dist deleted."


def test_non_admins_are_refused(lenient: Registry) -> None:
    browser = browser_for(lenient, "projectadmin")
    assert browser.get("/admin/replication").status_code == 403
    assert browser.get("/admin/replication/runs/1").status_code == 403
