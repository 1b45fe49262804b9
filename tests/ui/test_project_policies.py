"""A project's policies page: the retention policy (read by members, edited by project
admins through a form of rule rows), its dry run showing what would go, running it,
its schedule and runs; immutability rules; refusals and hostile patterns."""

from __future__ import annotations

import html
import re
from typing import Any

from markupsafe import escape

from tests.auth.conftest import Registry
from tests.mgmt.conftest import client_for
from tests.ui.conftest import Browser, browser_for
from tests.ui.test_project import HOSTILE, assert_escaped, flash, push

POLICIES = "/projects/acme/policies"
RETENTION = f"{POLICIES}/retention"


def rule_form(*rules: dict[str, str], action: str = "save", **extra: str) -> dict[str, Any]:
    """The retention form with these rows (field names without the `rule-N-` prefix) and
    one empty row after them, as the page sends it."""
    form: dict[str, Any] = {"rows": str(len(rules) + 1), "action": action, **extra}
    for number, rule in enumerate(rules):
        form.update({f"rule-{number}-{k}": v for k, v in rule.items()})
    form[f"rule-{len(rules)}-kind"] = ""
    return form


def stored_policy(registry: Registry) -> dict[str, Any]:
    response = client_for(registry, "admin").get("/api/v1/projects/acme/retention")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def error_box(page: str) -> str:
    found = re.search(r'<div class="flash error" role="alert">(.*?)</div>', page, re.S)
    assert found, "no error on the page"
    return html.unescape(found.group(1))


def admin_on_policies(registry: Registry) -> Browser:
    browser = browser_for(registry, "projectadmin")
    browser.get(POLICIES)
    return browser


# -- reading ----------------------------------------------------------------------------


def test_members_read_the_policies(registry: Registry) -> None:
    for user in ("developer", "guest", "limitedguest"):
        page = browser_for(registry, user).get(POLICIES)
        assert page.status_code == 200, user
        assert "No retention policy: nothing is deleted automatically." in page.text
        assert "No immutable tags" in page.text
        assert 'name="rows"' not in page.text
        assert "Run now" not in page.text
        assert "Add a rule" not in page.text

    admin = admin_on_policies(registry)
    admin.post(RETENTION, rule_form({"kind": "latest_pushed", "value": "3", "tag_pattern": "v*"}))
    shown = browser_for(registry, "guest").get(POLICIES).text
    assert "keep the 3 most recently pushed" in shown
    assert "<code>v*</code>" in shown
    assert "Untagged artifacts are kept." in shown


def test_policies_are_missing_for_outsiders(registry: Registry) -> None:
    assert browser_for(registry, "outsider").get(POLICIES).status_code == 404


# -- editing the retention policy -------------------------------------------------------


def test_a_project_admin_saves_and_removes_rules(registry: Registry) -> None:
    browser = admin_on_policies(registry)
    page = browser.get(POLICIES).text
    assert 'name="rows" value="1"' in page  # no rules yet: one empty row
    form = rule_form(
        {"kind": "latest_pushed", "value": "3", "tag_pattern": "v*"},
        {"kind": "always", "repository_pattern": "base/**", "repository_excluding": "on"},
        remove_untagged="on",
    )
    page = browser.post(RETENTION, form).text
    assert flash(page) == "Retention policy saved."
    stored = stored_policy(registry)
    assert stored["remove_untagged"] is True
    assert [(r["kind"], r["value"], r["tag_pattern"]) for r in stored["rules"]] == [
        ("latest_pushed", 3, "v*"),
        ("always", None, "**"),
    ]
    assert stored["rules"][1]["repository_excluding"] is True
    assert stored["rules"][1]["repository_pattern"] == "base/**"
    # The form shows the rules and one more empty row.
    assert 'name="rows" value="3"' in page
    assert '<option value="latest_pushed" selected>' in page
    assert 'name="rule-0-value" type="number" min="1" inputmode="numeric" value="3"' in page
    assert 'name="rule-1-repository_excluding" checked' in page
    assert 'name="remove_untagged" checked' in page

    page = browser.post(RETENTION, rule_form({"kind": "always"})).text
    assert [r["kind"] for r in stored_policy(registry)["rules"]] == ["always"]
    browser.post(RETENTION, rule_form())
    assert stored_policy(registry)["rules"] == []


def test_a_rule_without_its_number_is_explained(registry: Registry) -> None:
    browser = admin_on_policies(registry)
    response = browser.post(
        RETENTION,
        rule_form({"kind": "always"}, {"kind": "pushed_within_days", "tag_pattern": "rc-*"}),
    )
    assert response.status_code == 400
    assert error_box(response.text) == "Rule 2: enter the number of days for pushed_within_days."
    assert 'name="rule-1-tag_pattern" value="rc-*"' in response.text  # the form as sent
    assert stored_policy(registry)["rules"] == []


def test_the_apis_refusal_names_the_row(registry: Registry) -> None:
    browser = admin_on_policies(registry)
    response = browser.post(
        RETENTION,
        rule_form({"kind": "always"}, {"kind": "always", "tag_pattern": "(", "syntax": "regex"}),
    )
    assert response.status_code == 400
    message = error_box(response.text)
    assert message.startswith("Could not save the policy: rule 2.tag_pattern:"), message
    assert '<option value="regex" selected>' in response.text


def test_developers_cannot_change_the_policy(registry: Registry) -> None:
    browser = browser_for(registry, "developer")
    browser.get(POLICIES)
    response = browser.post(RETENTION, rule_form({"kind": "always"}))
    assert response.status_code == 403
    assert "may not do this in project 'acme' (settings)" in error_box(response.text)
    response = browser.post(RETENTION, rule_form({"kind": "always"}, action="preview"))
    assert response.status_code == 403
    assert "Could not run the dry run" in error_box(response.text)
    assert stored_policy(registry)["rules"] == []


# -- dry run ----------------------------------------------------------------------------


def test_the_dry_run_shows_what_would_be_deleted(registry: Registry) -> None:
    old = push(registry, "acme/app", "old", days_ago=3)
    push(registry, "acme/app", "new", days_ago=1)
    browser = admin_on_policies(registry)
    response = browser.post(
        RETENTION, rule_form({"kind": "latest_pushed", "value": "1"}, action="preview")
    )
    assert response.status_code == 200
    page = response.text
    plan = page.split('id="dry-run"', 1)[1].split("</section>", 1)[0]
    assert "Nothing was saved or deleted." in plan
    assert "<dd>1 would be deleted</dd>" in plan
    assert "<dd>1 would go with them</dd>" in plan
    assert f'href="/repositories/acme/app/-/artifacts/{old.digest.replace(":", "%3A")}"' in plan
    deleted = plan.split("Would be deleted", 1)[1].split("</table>", 1)[0]
    assert '<span class="badge tag">old</span>' in deleted
    assert '<span class="badge tag">new</span>' not in deleted
    assert "Kept: 1 artifacts" in plan
    assert re.search(r"Space freed</dt><dd>\d", plan)
    # The draft stays in the form, unsaved.
    assert '<option value="latest_pushed" selected>' in page
    assert stored_policy(registry)["rules"] == []
    assert (
        client_for(registry, "admin").get(f"/v2/acme/app/manifests/{old.digest}").status_code == 200
    )


def test_a_dry_run_of_nothing(registry: Registry) -> None:
    push(registry, "acme/app", "v1")
    browser = admin_on_policies(registry)
    page = browser.post(RETENTION, rule_form(action="preview")).text
    assert "<strong>Nothing would be deleted.</strong>" in page


# -- running, schedule ------------------------------------------------------------------


def test_run_now_queues_a_job_shown_under_recent_runs(registry: Registry) -> None:
    browser = admin_on_policies(registry)
    page = browser.get(POLICIES).text
    assert "Retention has not run yet." in page
    page = browser.post(f"{POLICIES}/run").text
    message = flash(page)
    found = re.fullmatch(
        r"Retention job (\d+) started; see its status under Recent runs\.", message
    )
    assert found, message
    job = found.group(1)
    runs = page.split('id="runs"', 1)[1]
    assert f"#{job}" in runs
    assert '<span class="badge queued">queued</span>' in runs
    assert f'href="/admin/jobs/{job}"' not in runs  # the job pages are for system admins
    again = browser.post(f"{POLICIES}/run").text
    assert f"retention job {job} is already queued or running" in flash(again)
    admin = browser_for(registry, "admin").get(POLICIES).text
    assert f'href="/admin/jobs/{job}"' in admin


def test_guests_cannot_run_retention(registry: Registry) -> None:
    browser = browser_for(registry, "guest")
    browser.get(POLICIES)
    page = browser.post(f"{POLICIES}/run").text
    assert "Could not start retention" in flash(page)
    assert "(settings)" in flash(page)


def test_the_schedule(registry: Registry) -> None:
    browser = admin_on_policies(registry)
    assert "No schedule: retention runs only when started here." in browser.get(POLICIES).text
    page = browser.post(f"{POLICIES}/schedule", {"cron": "0 3 * * *", "enabled": "on"}).text
    assert flash(page) == "Retention schedule saved (0 3 * * *, UTC)."
    assert 'name="cron" value="0 3 * * *"' in page
    assert "Next run" in page
    page = browser.post(f"{POLICIES}/schedule", {"cron": "0 3 * * *"}).text
    assert "The schedule is paused." in page
    page = browser.post(f"{POLICIES}/schedule", {"cron": "every day"}).text
    assert flash(page).startswith("Could not save the schedule:")
    page = browser.post(f"{POLICIES}/schedule", {"cron": ""}).text
    assert flash(page) == "Retention no longer runs on a schedule."
    assert "No schedule" in page
    page = browser.post(f"{POLICIES}/schedule", {"cron": ""}).text
    assert flash(page) == "Retention no longer runs on a schedule."


def test_developers_cannot_schedule(registry: Registry) -> None:
    browser = browser_for(registry, "developer")
    browser.get(POLICIES)
    page = browser.post(f"{POLICIES}/schedule", {"cron": "0 3 * * *"}).text
    assert "Could not save the schedule" in flash(page)


# -- immutability -----------------------------------------------------------------------


def immutability_rows(page: str) -> list[str]:
    section = page.split('id="immutability"', 1)[1]
    return re.findall(r'<th scope="row"><code>([^<]*)</code></th>', section)


def test_immutability_rules_added_disabled_and_deleted(registry: Registry) -> None:
    browser = admin_on_policies(registry)
    page = browser.post(
        f"{POLICIES}/immutability", {"tag_pattern": "v*", "repository_pattern": "app/*"}
    ).text
    assert flash(page) == "Tags matching v* are now immutable."
    assert immutability_rows(page) == ["v*"]
    assert "<code>app/*</code>" in page
    rule_id = re.search(r'name="rule" value="(\d+)"', page)
    assert rule_id
    guest = browser_for(registry, "guest").get(POLICIES).text
    assert immutability_rows(guest) == ["v*"]
    assert "policies/immutability/change" not in guest

    change = f"{POLICIES}/immutability/change"
    form = {"rule": rule_id.group(1), "action": "toggle", "disabled": "true"}
    page = browser.post(change, form).text
    assert flash(page) == "Immutability rule disabled."
    assert '<span class="badge">disabled</span>' in page.split('id="immutability"', 1)[1]
    page = browser.post(change, {**form, "disabled": "false"}).text
    assert flash(page) == "Immutability rule enabled."
    page = browser.post(change, {"rule": rule_id.group(1), "action": "delete"}).text
    assert flash(page) == "Immutability rule deleted."
    assert immutability_rows(page) == []


def test_immutability_refusals_in_words(registry: Registry) -> None:
    developer = browser_for(registry, "developer")
    developer.get(POLICIES)
    page = developer.post(f"{POLICIES}/immutability", {"tag_pattern": "v*"}).text
    assert "Could not add the rule" in flash(page)
    admin = admin_on_policies(registry)
    page = admin.post(f"{POLICIES}/immutability", {"tag_pattern": ""}).text
    assert "Could not add the rule" in flash(page)
    page = admin.post(f"{POLICIES}/immutability/change", {"rule": "999", "action": "delete"}).text
    assert "Could not change the rule" in flash(page)


def test_hostile_patterns_are_escaped(registry: Registry) -> None:
    browser = admin_on_policies(registry)
    browser.post(f"{POLICIES}/immutability", {"tag_pattern": HOSTILE})
    browser.post(RETENTION, rule_form({"kind": "always", "tag_pattern": HOSTILE}))
    for user in ("projectadmin", "guest"):
        page = browser_for(registry, user).get(POLICIES).text
        assert_escaped(page)
    assert immutability_rows(browser.get(POLICIES).text) == [str(escape(HOSTILE))]
