"""The administration pages: users, jobs and GC, storage, system; the job page at
/jobs/{id}. Only system administrators see them (the API's refusal for everybody else);
every form works and its refusals are shown in words; hostile values are escaped."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import update

from portside.jobs.runner import Worker
from portside.jobs.store import Jobs
from portside.metadata import schema as s
from portside.metadata.db import utcnow
from tests.api.helpers import push_blob, push_image
from tests.auth.conftest import PASSWORD, Registry, basic
from tests.ui.conftest import Browser, browser_for

ADMIN_PAGES = [
    "/admin/users",
    "/admin/users/outsider",
    "/admin/jobs",
    "/admin/storage",
    "/admin/system",
]


def _flash(page: str) -> str:
    found = re.search(r'<div class="flash [a-z]+" role="[a-z]+">(.*?)</div>', page, re.S)
    assert found, "no message on the page"
    return found.group(1)


def _job_id(browser: Browser) -> int:
    found = re.search(r"<h1>Job (\d+):", browser.page)
    assert found, browser.page
    return int(found.group(1))


# -- who sees what -----------------------------------------------------------------------


def test_admin_sees_every_page(registry: Registry) -> None:
    browser = browser_for(registry, "admin")
    overview = browser.client.get("/admin", follow_redirects=False)
    assert overview.status_code == 303
    assert overview.headers["location"] == "/admin/users"
    for path in ADMIN_PAGES:
        response = browser.get(path)
        assert response.status_code == 200, (path, response.text)
        assert "<h1>Administration</h1>" in response.text
        assert 'aria-current="page">Administration</a>' in response.text
    tab = re.search(r'<a href="/admin/(\w+)" aria-current="page">', browser.get("/admin/jobs").text)
    assert tab
    assert tab.group(1) == "jobs"


@pytest.mark.parametrize("user", ["outsider", "projectadmin"])
def test_others_are_refused_in_words(registry: Registry, user: str) -> None:
    browser = browser_for(registry, user)
    assert "Administration" not in browser.get("/projects").text
    for path in ["/admin", *ADMIN_PAGES]:
        response = browser.get(path)
        assert response.status_code == 403, (path, response.status_code)
        assert "only system administrators" in response.text
        assert "outsider@" not in response.text


def test_anonymous_visitors_are_sent_to_sign_in(registry: Registry) -> None:
    client = registry.as_caller({})
    for path in [*ADMIN_PAGES, "/jobs/1", "/profile"]:
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/login?next=%2F"), path


def test_anonymous_form_posts_change_nothing(registry: Registry) -> None:
    client = registry.as_caller({})
    response = client.post(
        "/admin/users", data={"username": "sneaky", "password": "x" * 20, "repeat": "x" * 20}
    )
    assert response.status_code == 403
    assert "sneaky" not in browser_for(registry, "admin").get("/admin/users").text


# -- users -------------------------------------------------------------------------------


def test_user_list_search_and_paging(registry: Registry) -> None:
    browser = browser_for(registry, "admin")
    page = browser.get("/admin/users").text
    for name in ("admin", "outsider", "projectadmin", "limitedguest"):
        assert f'href="/admin/users/{name}">{name}</a>' in page
    assert "(you)" in page
    page = browser.get("/admin/users?q=guest").text
    assert "limitedguest" in page
    assert "outsider" not in page
    assert "No user name contains" in browser.get("/admin/users?q=nobody").text
    for n in range(50):
        registry.auth.accounts.create_user(f"bulk{n:02d}", PASSWORD)
    page = browser.get("/admin/users").text
    assert 'rel="next"' in page
    second = browser.get("/admin/users?page=2").text
    assert "bulk49" in second or "outsider" in second
    assert "bulk00" not in second


def test_create_user_then_they_sign_in(registry: Registry) -> None:
    browser = browser_for(registry, "admin")
    browser.get("/admin/users")
    form = {
        "username": "carol",
        "email": "carol@example.test",
        "password": "a-long-enough-password",
        "repeat": "a-long-enough-password",
        "admin": "on",
    }
    response = browser.post("/admin/users", form)
    assert response.status_code == 200
    assert str(response.url).endswith("/admin/users/carol")
    assert _flash(response.text) == "User carol created."
    assert "carol@example.test" in response.text
    assert "system administrator" in response.text
    carol = browser_for(registry, "carol", "a-long-enough-password")
    assert carol.get("/admin/users").status_code == 200


def test_create_user_refusals_in_words(registry: Registry) -> None:
    browser = browser_for(registry, "admin")
    browser.get("/admin/users")
    form = {"username": "dave", "password": "a-long-enough-password", "repeat": "different"}
    response = browser.post("/admin/users", form)
    assert _flash(response.text) == "The two passwords are not the same."
    form = {"username": "outsider", "password": "a-long-enough-password"}
    response = browser.post("/admin/users", {**form, "repeat": form["password"]})
    assert "Could not create the user: user &#39;outsider&#39; already exists" in response.text
    form = {"username": "-bad name", "password": "a-long-enough-password"}
    response = browser.post("/admin/users", {**form, "repeat": form["password"]})
    assert "Could not create the user: invalid username" in response.text
    form = {"username": "erin", "password": "short"}
    response = browser.post("/admin/users", {**form, "repeat": "short"})
    assert "Could not create the user:" in _flash(response.text)
    assert 'href="/admin/users/erin"' not in browser.get("/admin/users").text


def test_disable_signs_out_and_enable_lets_back_in(registry: Registry) -> None:
    victim = browser_for(registry, "outsider")
    browser = browser_for(registry, "admin")
    browser.get("/admin/users/outsider")
    response = browser.post("/admin/users/outsider/disabled", {"disabled": "true"})
    assert _flash(response.text) == "outsider is disabled and signed out everywhere."
    assert "disabled</span> cannot sign in" in response.text
    assert "Enable user" in response.text
    assert victim.get("/profile", follow_redirects=False).status_code == 303
    refused = Browser(registry.as_caller({}))
    refused.get("/login")
    form = {"username": "outsider", "password": PASSWORD, "next": "/"}
    assert refused.post("/login", form).status_code == 401

    response = browser.post("/admin/users/outsider/disabled", {"disabled": "false"})
    assert _flash(response.text) == "outsider is enabled again."
    assert browser_for(registry, "outsider").get("/profile").status_code == 200


def test_make_and_revoke_admin(registry: Registry) -> None:
    browser = browser_for(registry, "admin")
    browser.get("/admin/users/outsider")
    response = browser.post("/admin/users/outsider/admin", {"admin": "true"})
    assert _flash(response.text) == "outsider is now a system administrator."
    assert "Revoke administrator" in response.text
    assert browser_for(registry, "outsider").get("/admin/users").status_code == 200
    response = browser.post("/admin/users/outsider/admin", {"admin": "false"})
    assert _flash(response.text) == "outsider is no longer a system administrator."
    assert browser_for(registry, "outsider").get("/admin/users").status_code == 403


def test_the_last_admin_cannot_remove_themselves(registry: Registry) -> None:
    browser = browser_for(registry, "admin")
    page = browser.get("/admin/users/admin").text
    assert "Delete your own account?" in page
    for action, data in (("admin", {"admin": "false"}), ("disabled", {"disabled": "true"})):
        response = browser.post(f"/admin/users/admin/{action}", data)
        assert "last enabled administrator" in _flash(response.text)
    response = browser.post("/admin/users/admin/delete")
    assert _flash(response.text).startswith("Could not delete admin:")
    assert "last enabled administrator" in response.text
    assert browser.get("/admin/users").status_code == 200


def test_an_admin_giving_up_their_rights_lands_on_their_profile(registry: Registry) -> None:
    registry.auth.accounts.create_user("second", PASSWORD, admin=True)
    browser = browser_for(registry, "second")
    browser.get("/admin/users/second")
    response = browser.post("/admin/users/second/admin", {"admin": "false"})
    assert str(response.url).endswith("/profile")
    assert _flash(response.text) == "second is no longer a system administrator."


def test_an_admin_may_delete_themselves_when_another_admin_remains(registry: Registry) -> None:
    registry.auth.accounts.create_user("second", PASSWORD, admin=True)
    browser = browser_for(registry, "second")
    page = browser.get("/admin/users/second").text
    assert 'data-confirm="Delete your own account? You will be signed out at once."' in page
    response = browser.post("/admin/users/second/delete")
    assert str(response.url).endswith("/projects")
    assert _flash(response.text) == "Your account was deleted."
    assert "Sign in" in response.text
    assert "second" not in browser_for(registry, "admin").get("/admin/users").text


def test_reset_password(registry: Registry) -> None:
    victim = browser_for(registry, "outsider")
    browser = browser_for(registry, "admin")
    browser.get("/admin/users/outsider")
    response = browser.post(
        "/admin/users/outsider/password", {"password": "brand-new-secret-1", "repeat": "nope"}
    )
    assert _flash(response.text) == "The two passwords are not the same."
    new = "brand-new-secret-1"
    response = browser.post("/admin/users/outsider/password", {"password": new, "repeat": new})
    assert _flash(response.text) == "Password of outsider reset; their sessions were signed out."
    assert victim.get("/profile", follow_redirects=False).status_code == 303
    assert browser_for(registry, "outsider", new).get("/profile").status_code == 200


def test_ldap_users_passwords_are_the_directorys(registry: Registry) -> None:
    with registry.app.ctx.db.write() as conn:
        conn.execute(update(s.users).where(s.users.c.username == "outsider").values(source="ldap"))
    browser = browser_for(registry, "admin")
    page = browser.get("/admin/users/outsider").text
    assert "change it in the directory" in page
    assert 'action="/admin/users/outsider/password"' not in page
    assert '<span class="badge">LDAP</span>' in browser.get("/admin/users").text
    # The API refuses it anyway, in words.
    new = "brand-new-secret-1"
    response = browser.post("/admin/users/outsider/password", {"password": new, "repeat": new})
    assert "is an LDAP user: change the password in LDAP" in _flash(response.text)


def test_change_email(registry: Registry) -> None:
    browser = browser_for(registry, "admin")
    browser.get("/admin/users/outsider")
    response = browser.post("/admin/users/outsider/email", {"email": "o@example.test"})
    assert _flash(response.text) == "E-mail of outsider saved."
    assert "<dd>o@example.test</dd>" in response.text


def test_delete_user(registry: Registry) -> None:
    browser = browser_for(registry, "admin")
    page = browser.get("/admin/users/outsider").text
    assert 'data-confirm="Delete user outsider? This cannot be undone."' in page
    response = browser.post("/admin/users/outsider/delete")
    assert str(response.url).endswith("/admin/users")
    assert _flash(response.text) == "User outsider deleted."
    assert 'href="/admin/users/outsider"' not in response.text
    missing = browser.get("/admin/users/outsider")
    assert missing.status_code == 404
    assert "no user" in missing.text
    response = browser.post("/admin/users/outsider/delete")
    assert "Could not delete outsider: no user" in _flash(response.text)


def test_forms_need_the_sessions_token(registry: Registry) -> None:
    browser = browser_for(registry, "admin")
    response = browser.client.post(
        "/admin/users/outsider/delete", data={"csrf": "forged"}, follow_redirects=False
    )
    assert response.status_code == 403
    assert "Form expired" in response.text
    assert browser.get("/admin/users/outsider").status_code == 200


def test_non_admin_posts_are_refused_in_words(registry: Registry) -> None:
    browser = browser_for(registry, "projectadmin")
    browser.get("/profile")
    response = browser.post("/admin/users/outsider/delete", follow=False)
    assert response.status_code == 303
    response = browser.get(response.headers["location"])
    assert response.status_code == 403
    assert "Could not delete outsider: only system administrators may do this" in response.text
    response = browser.post("/admin/jobs/gc", {}, follow=False)
    assert "Could not start garbage collection" in browser.get("/profile").text
    assert Jobs(registry.app.ctx.db).find(kind="gc")[1] == 0


def test_hostile_values_are_escaped(registry: Registry) -> None:
    hostile = '<script>alert(1)</script>"onmouseover="x'
    registry.auth.accounts.update_user("outsider", email=hostile)
    browser = browser_for(registry, "admin")
    browser.get("/admin/users")
    response = browser.post(
        "/admin/users", {"username": hostile, "password": "p" * 20, "repeat": "p" * 20}
    )
    assert "<script>alert" not in response.text
    assert "invalid username &#39;&lt;script&gt;alert(1)&lt;/script&gt;" in _flash(response.text)
    for path in ("/admin/users", "/admin/users/outsider"):
        page = browser.get(path).text
        assert "<script>alert" not in page
        assert "&lt;script&gt;alert(1)&lt;/script&gt;&#34;onmouseover=&#34;x" in page


# -- jobs and GC -------------------------------------------------------------------------


def test_start_gc_queues_a_job_and_runs_it(registry: Registry) -> None:
    pusher = registry.as_caller(basic("admin"))
    push_image(pusher, "pub/app", "v1")
    orphan = b"a blob no manifest lists" * 10
    digest = push_blob(pusher, "pub/app", orphan)

    browser = browser_for(registry, "admin")
    page = browser.get("/admin/jobs").text
    assert "No jobs yet" in page
    response = browser.post("/admin/jobs/gc", {"grace_hours": "0"})
    job_id = _job_id(browser)
    assert str(response.url).endswith(f"/jobs/{job_id}")
    assert _flash(response.text) == f"Garbage collection is queued as job {job_id}."
    assert '<meta http-equiv="refresh" content="3">' in response.text
    assert "Stop job" in response.text
    assert "the job has not started" in response.text
    assert "<code>0.0</code>" in response.text  # grace_period_seconds

    history = browser.get("/admin/jobs").text
    assert f'<a href="/jobs/{job_id}">#{job_id}</a>' in history
    assert '<span class="badge queued">queued</span>' in history
    assert browser.get("/admin/jobs?status=succeeded").text.count("#" + str(job_id)) == 0

    assert Worker(registry.app.ctx, name="ui-test").tick()
    page = browser.get(f"/jobs/{job_id}").text
    assert '<span class="badge succeeded">succeeded</span>' in page
    assert "http-equiv" not in page
    assert "Stop job" not in page
    assert '<pre class="log">' in page
    assert f"delete blob {digest} ({len(orphan)} bytes): no repository links it" in page
    assert "freed" in page  # the summary
    history = browser.get("/admin/jobs?status=succeeded&kind=gc").text
    assert f"#{job_id}</a>" in history
    assert "deleted 0 manifests, 1 links and 1 blobs" in history

    response = browser.get(f"/admin/jobs/{job_id}", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == f"/jobs/{job_id}"


def test_gc_dry_run_and_untagged_options_reach_the_job(registry: Registry) -> None:
    browser = browser_for(registry, "admin")
    browser.get("/admin/jobs")
    response = browser.post(
        "/admin/jobs/gc", {"dry_run": "on", "delete_untagged": "on", "grace_hours": "1.5"}
    )
    assert "A garbage collection dry run is queued" in _flash(response.text)
    record = Jobs(registry.app.ctx.db).get(_job_id(browser))
    assert record is not None
    assert record.params == {
        "dry_run": True,
        "delete_untagged": True,
        "grace_period_seconds": 5400.0,
    }
    assert Worker(registry.app.ctx, name="ui-test").tick()
    page = browser.get("/admin/jobs").text
    assert "dry run: would delete 0 manifests, 0 links and 0 blobs" in page
    assert '<span class="badge">dry run</span>' in page


def test_a_second_gc_while_one_is_queued_is_refused_in_words(registry: Registry) -> None:
    browser = browser_for(registry, "admin")
    browser.get("/admin/jobs")
    browser.post("/admin/jobs/gc", {})
    first = _job_id(browser)
    response = browser.post("/admin/jobs/gc", {})
    assert str(response.url).endswith("/admin/jobs#gc") or "/admin/jobs" in str(response.url)
    assert _flash(response.text) == (
        f"Could not start garbage collection: job {first} (gc) is already queued or running"
    )
    response = browser.post("/admin/jobs/gc", {"grace_hours": "soon"})
    assert _flash(response.text) == "The grace period must be a number of hours."


def test_stop_a_queued_job(registry: Registry) -> None:
    browser = browser_for(registry, "admin")
    browser.get("/admin/jobs")
    browser.post("/admin/jobs/gc", {})
    job_id = _job_id(browser)
    response = browser.post(f"/jobs/{job_id}/stop")
    assert _flash(response.text) == f"Job {job_id} is stopped."
    assert '<span class="badge stopped">stopped</span>' in response.text
    assert "http-equiv" not in response.text
    response = browser.post(f"/jobs/{job_id}/stop")  # no form now: the token still holds
    assert _flash(response.text) == f"Job {job_id} had already finished (stopped)."


def test_stop_a_running_job_asks_it_to_stop(registry: Registry) -> None:
    jobs = Jobs(registry.app.ctx.db)
    job_id = jobs.enqueue("probe", {"seconds": 60}, created_by="admin")
    assert jobs.claim(job_id, "elsewhere")
    browser = browser_for(registry, "admin")
    page = browser.get(f"/jobs/{job_id}").text
    assert '<span class="badge running">running</span>' in page
    assert '<meta http-equiv="refresh" content="3">' in page
    response = browser.post(f"/jobs/{job_id}/stop")
    assert _flash(response.text) == (
        f"Job {job_id} was asked to stop; it stops at its next check point."
    )
    assert "asked to stop at its next check point" in response.text


def test_gc_schedule_set_and_delete(registry: Registry) -> None:
    browser = browser_for(registry, "admin")
    page = browser.get("/admin/jobs").text
    assert "No schedule: garbage collection runs only when started" in page
    response = browser.post(
        "/admin/jobs/schedule", {"cron": "0 3 * * *", "enabled": "on", "delete_untagged": "on"}
    )
    assert _flash(response.text) == "Garbage collection schedule saved."
    assert "<code>0 3 * * *</code> (UTC)" in response.text
    assert "Delete schedule" in response.text
    system = browser.get("/admin/system").text
    assert "garbage collection</a>" in system
    assert "<code>0 3 * * *</code>" in system

    response = browser.post("/admin/jobs/schedule", {"cron": "every day", "enabled": "on"})
    assert _flash(response.text).startswith("Could not save the schedule:")
    response = browser.post("/admin/jobs/schedule", {"cron": "0 4 * * 0"})
    assert "paused" in response.text

    response = browser.post("/admin/jobs/schedule/delete")
    assert _flash(response.text).startswith("Garbage collection schedule deleted")
    assert "No schedule" in response.text
    response = browser.post("/admin/jobs/schedule/delete")
    assert "Could not delete the schedule: no schedule" in _flash(response.text)


def test_project_jobs_show_to_who_may_manage_the_project(registry: Registry) -> None:
    job_id = Jobs(registry.app.ctx.db).enqueue(
        "retention", {"dry_run": True}, project="acme", created_by="projectadmin"
    )
    page = browser_for(registry, "projectadmin").get(f"/jobs/{job_id}")
    assert page.status_code == 200
    assert "retention of acme" in page.text
    assert 'href="/projects/acme">acme</a> /' in page.text  # back to the project
    assert "Stop job" in page.text
    for user in ("outsider", "developer"):
        response = browser_for(registry, user).get(f"/jobs/{job_id}")
        assert response.status_code == 404, user
        assert "retention" not in response.text
    gc_id = Jobs(registry.app.ctx.db).enqueue("gc", {}, created_by="admin")
    assert browser_for(registry, "projectadmin").get(f"/jobs/{gc_id}").status_code == 404
    browser = browser_for(registry, "admin")
    assert browser.get("/admin/jobs?project=acme").text.count(f"#{job_id}</a>") == 1
    assert "no project" in browser.get("/admin/jobs?project=nosuch").text
    assert browser.get("/jobs/99999").status_code == 404
    assert browser.get(f"/jobs/{2**40}").status_code == 404


def test_job_log_and_error_are_escaped_and_paged(registry: Registry) -> None:
    jobs = Jobs(registry.app.ctx.db)
    job_id = jobs.enqueue("probe", {}, created_by="admin")
    with registry.app.ctx.db.write() as conn:
        Jobs._append(conn, job_id, [(utcnow(), "info", "<script>alert(1)</script>")])
        Jobs._append(conn, job_id, [(utcnow(), "info", f"line {n}") for n in range(2100)])
        conn.execute(
            update(s.jobs)
            .where(s.jobs.c.id == job_id)
            .values(status="failed", error="<img src=x onerror=alert(2)>", finished_at=utcnow())
        )
    browser = browser_for(registry, "admin")
    page = browser.get(f"/jobs/{job_id}").text
    assert "<script>alert(1)" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<img src=x" not in page
    assert "&lt;img src=x onerror=alert(2)&gt;" in page
    assert "line 1998" in page
    assert "line 1999" not in page
    later = re.search(r'href="(/jobs/\d+\?after=\d+)">Later lines', page)
    assert later
    page = browser.get(later.group(1)).text
    assert "line 1999" in page
    assert "line 2099" in page
    assert "From the first line" in page
    history = browser.get("/admin/jobs").text
    assert "&lt;img src=x onerror=alert(2)&gt;" in history
    assert "<img src=x" not in history


# -- storage and system ------------------------------------------------------------------


def test_storage_page_lists_projects_by_use(registry: Registry) -> None:
    pusher = registry.as_caller(basic("admin"))
    push_image(pusher, "pub/app", "v1")
    registry.auth.projects.update("acme", quota_bytes=10 * 1024**3)
    page = browser_for(registry, "admin").get("/admin/storage").text
    assert page.index('href="/projects/pub"') < page.index('href="/projects/acme"')
    assert "of 10.0 GiB" in page
    assert "<meter" in page
    assert "Unreferenced" in page


def test_system_page(registry: Registry) -> None:
    page = browser_for(registry, "admin").get("/admin/system").text
    assert "Portside " in page
    assert "http://registry.test" in page or "<code>http" in page
    assert "<dt>Authentication</dt><dd>on</dd>" in page
    assert "off: local accounts only" in page
    assert "system administrators only" in page
    assert "Configuration" in page
    assert "PORTSIDE_*" in page
