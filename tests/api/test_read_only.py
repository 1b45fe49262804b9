"""Read-only mode (`registry.read_only`, portside.readonly): a registry populated while
writable, then served read-only from the same database and storage: every read still
works, every write is refused with 405 UNSUPPORTED and the message naming the setting,
and nothing changes (no row, no pull record)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select
from starlette.testclient import TestClient

from portside import readonly
from portside.cli import main
from portside.config import Settings
from portside.metadata import schema as s
from portside.server import start_job_workers
from tests.api.helpers import (
    OCI_LAYER,
    assert_error,
    error_message,
    sha256,
    with_query,
)
from tests.auth.conftest import PASSWORD, Registry, basic, build_registry, populated
from tests.mgmt.helpers import Content, push_content
from tests.ui.conftest import browser_for

REPO = "acme/team/app"


@pytest.fixture
def frozen(tmp_path: Path, database_url: str) -> Iterator[tuple[Registry, Content, Registry]]:
    """(the writable registry, what was pushed, the same data served read-only)."""
    with populated(tmp_path, database_url) as writable:
        content = push_content(writable.as_caller(basic("admin")), REPO)
        app = build_registry(tmp_path, database_url, registry={"read_only": True})
        try:
            with TestClient(app, base_url="http://registry.test") as client:
                yield writable, content, Registry(app, client)
        finally:
            app.ctx.close()


def _counts(registry: Registry) -> dict[str, int]:
    """Rows of registry content. Sign-ins are still audited (`account.login`): they concern
    the caller, not what the registry holds."""
    tables = (s.manifests, s.tags, s.blobs, s.repository_blobs, s.uploads, s.jobs, s.projects)
    with registry.app.ctx.db.read() as conn:
        counts = {
            t.name: conn.execute(select(func.count()).select_from(t)).scalar_one() for t in tables
        }
        counts["events"] = conn.execute(
            select(func.count()).select_from(s.events).where(s.events.c.type != "account.login")
        ).scalar_one()
        pulled = conn.execute(
            select(func.count())
            .select_from(s.manifests)
            .where(s.manifests.c.last_pulled_at.is_not(None))
        ).scalar_one()
    return {**counts, "pulled": pulled}


def _refused(response: object) -> None:
    assert_error(response, 405, "UNSUPPORTED")  # type: ignore[arg-type]
    assert error_message(response) == readonly.MESSAGE  # type: ignore[arg-type]


def test_pulls_and_reads_work_and_change_nothing(
    frozen: tuple[Registry, Content, Registry],
) -> None:
    _, content, ro = frozen
    before = _counts(ro)
    admin = ro.as_caller(basic("admin"))
    image = content.image
    media_type = image.manifest.media_type
    got = admin.get(f"/v2/{REPO}/manifests/v1", headers={"accept": media_type})
    assert got.status_code == 200, got.text
    assert got.content == image.manifest.body
    assert admin.head(f"/v2/{REPO}/manifests/{image.digest}").status_code == 200
    layer = sha256(image.layers[0])
    blob = admin.get(f"/v2/{REPO}/blobs/{layer}")
    assert blob.status_code == 200
    assert sha256(blob.content) == layer
    assert "v1" in admin.get(f"/v2/{REPO}/tags/list").json()["tags"]
    assert REPO in admin.get("/v2/_catalog").json()["repositories"]
    referrers = admin.get(f"/v2/{REPO}/referrers/{image.digest}")
    assert referrers.status_code == 200
    assert referrers.json()["manifests"]
    # Tokens are still issued (GET and the OAuth2 POST), and they pull.
    token = ro.token(f"repository:{REPO}:pull", user="admin")
    by_token = ro.as_caller({"authorization": f"Bearer {token}"})
    assert by_token.get(f"/v2/{REPO}/manifests/v1").status_code == 200
    posted = ro.client.post(
        "/auth/token",
        data={
            "grant_type": "password",
            "username": "admin",
            "password": PASSWORD,
            "service": "portside",
            "scope": f"repository:{REPO}:pull",
        },
    )
    assert posted.status_code == 200, posted.text
    # The management API reads.
    assert admin.get("/api/v1/projects").status_code == 200
    # Nothing was written: no pull event, no last_pulled_at, no row anywhere.
    ro.app.ctx.events.flush()
    assert _counts(ro) == before


def test_every_registry_write_is_refused(frozen: tuple[Registry, Content, Registry]) -> None:
    writable, content, ro = frozen
    admin = ro.as_caller(basic("admin"))
    before = _counts(ro)
    data = b"new layer while read-only"
    _refused(admin.post(f"/v2/{REPO}/blobs/uploads/"))
    _refused(admin.post(f"/v2/{REPO}/blobs/uploads/?digest={sha256(data)}", content=data))
    other = sha256(content.image.layers[0])
    _refused(admin.post(f"/v2/other/app/blobs/uploads/?mount={other}&from={REPO}"))
    _refused(
        admin.put(
            f"/v2/{REPO}/manifests/v2",
            content=content.image.manifest.body,
            headers={"content-type": content.image.manifest.media_type},
        )
    )
    _refused(admin.delete(f"/v2/{REPO}/manifests/{content.image.digest}"))
    _refused(admin.delete(f"/v2/{REPO}/blobs/{other}"))
    # An upload started before the switch cannot be continued or finished either.
    started = writable.as_caller(basic("admin")).post(f"/v2/{REPO}/blobs/uploads/")
    assert started.status_code == 202
    location = started.headers["location"]
    _refused(admin.patch(location, content=data, headers={"content-type": OCI_LAYER}))
    _refused(admin.put(with_query(location, f"digest={sha256(data)}"), content=data))
    # Anonymous callers learn nothing more than the mode (the answer needs no auth).
    _refused(ro.client.post(f"/v2/{REPO}/blobs/uploads/"))
    after = _counts(ro)
    assert after["uploads"] == before["uploads"] + 1  # only the writable one's upload
    assert {k: v for k, v in after.items() if k != "uploads"} == {
        k: v for k, v in before.items() if k != "uploads"
    }


def test_management_writes_and_job_starts_are_refused(
    frozen: tuple[Registry, Content, Registry],
) -> None:
    _, _, ro = frozen
    admin = ro.as_caller(basic("admin"))
    before = _counts(ro)
    for method, path, body in [
        ("POST", "/api/v1/projects", {"name": "newproject"}),
        ("PATCH", "/api/v1/users/outsider", {"disabled": True}),
        ("DELETE", f"/api/v1/repositories/{REPO}", None),
        ("POST", "/api/v1/jobs", {"kind": "gc", "params": {}}),
        ("POST", "/api/v1/projects/acme/retention/runs", {}),
        ("PUT", "/api/v1/schedules/nightly-gc", {"kind": "gc", "cron": "0 3 * * *"}),
        ("POST", "/api/v1/users/current/tokens", {"name": "ci"}),
    ]:
        response = admin.request(method, path, json=body)
        assert_error(response, 405, "UNSUPPORTED")
        assert response.json()["errors"][0]["message"] == readonly.MESSAGE, (method, path)
    assert _counts(ro) == before
    with ro.app.ctx.db.read() as conn:
        assert (
            conn.execute(
                select(s.users.c.disabled).where(s.users.c.username == "outsider")
            ).scalar_one()
            is False
        )


def test_ui_browses_with_a_banner_and_refuses_posts(
    frozen: tuple[Registry, Content, Registry],
) -> None:
    _, _, ro = frozen
    browser = browser_for(ro, "admin")  # signing in still works
    page = browser.get("/projects/acme")
    assert page.status_code == 200
    assert "data-read-only-banner" in page.text
    assert "<body data-read-only>" in page.text
    assert "registry.read_only" in page.text
    refused = browser.post("/projects", {"name": "fromtheui"})
    assert f"Could not create project: {readonly.MESSAGE}" in refused.text
    with ro.app.ctx.db.read() as conn:
        assert (
            conn.execute(select(s.projects.c.id).where(s.projects.c.name == "fromtheui")).first()
            is None
        )


def test_a_writable_registry_shows_no_banner(tmp_path: Path, database_url: str) -> None:
    with populated(tmp_path, database_url) as registry:
        page = browser_for(registry, "admin").get("/projects")
        assert "<body data-read-only" not in page.text
        assert "data-read-only-banner" not in page.text


def test_the_rule_allows_only_reads_and_sign_in() -> None:
    assert not readonly.refuses("GET", "/v2/a/b/manifests/latest")
    assert not readonly.refuses("HEAD", "/v2/a/b/blobs/sha256:00")
    assert not readonly.refuses("POST", "/auth/token")
    assert not readonly.refuses("POST", "/api/v1/sessions")
    assert not readonly.refuses("DELETE", "/api/v1/sessions/current")
    assert not readonly.refuses("POST", "/api/v1/projects/acme/retention/preview")
    assert readonly.refuses("POST", "/api/v1/projects/acme/retention/runs")
    assert readonly.refuses("POST", "/api/v1/sessions/other")
    assert readonly.refuses("DELETE", "/api/v1/sessions/5")
    assert readonly.refuses("PUT", "/v2/a/manifests/x")
    assert readonly.refuses("PATCH", "/api/v1/projects/acme")


@pytest.mark.parametrize("command", [["gc"], ["worker"], ["retention", "run", "acme"]])
def test_commands_that_write_refuse(command: list[str], settings: Settings) -> None:
    runner = CliRunner()
    env = {"PORTSIDE_DATABASE__URL": settings.database_url}
    made = runner.invoke(
        main, ["project", "create", "acme", "--data-dir", str(settings.data_dir)], env=env
    )
    assert made.exit_code == 0, made.output
    env["PORTSIDE_REGISTRY__READ_ONLY"] = "true"
    result = runner.invoke(main, [*command, "--data-dir", str(settings.data_dir)], env=env)
    assert result.exit_code == 2, result.output
    assert readonly.MESSAGE in result.output


def test_serve_starts_no_job_worker(settings: Settings) -> None:
    frozen_settings = settings.model_copy(
        update={"registry": settings.registry.model_copy(update={"read_only": True})}
    )
    assert start_job_workers(frozen_settings) == []
