"""A project's webhooks page: project admins create, test, disable and delete webhooks
and redeliver dead deliveries; maintainers see them and their deliveries; everyone else
sees nothing (a private project looks missing to outsiders). The secret is never shown
back; a refused target shows the API's words in the form; the test event's answer is
the one-time message (against a real receiver on loopback); hostile values escaped."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.auth.conftest import Registry, populated
from tests.mgmt.conftest import client_for
from tests.ui.conftest import Browser, browser_for
from tests.ui.test_project import HOSTILE, assert_escaped, flash, tabs
from tests.webhooks.receiver import Receiver, receiving

WEBHOOKS = "/projects/acme/webhooks"
API_HOOKS = "/api/v1/projects/acme/webhooks"
SECRET = "a-long-random-secret-for-tests"


@pytest.fixture
def lenient(tmp_path: Path, database_url: str) -> Iterator[Registry]:
    """A registry whose webhooks may target loopback (the test receiver)."""
    with populated(tmp_path, database_url, webhooks={"allow_private_targets": True}) as built:
        yield built


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving() as found:
        yield found


def create(browser: Browser, target: str, name: str = "ci", **fields: Any) -> Any:
    browser.get(WEBHOOKS)
    form = {
        "webhook_name": name,
        "target_url": target,
        "event_type": ["artifact.pushed", "tag.deleted"],
        "payload_format": "cloudevents",
        "secret": SECRET,
        "enabled": "on",
        **fields,
    }
    return browser.post(WEBHOOKS, form)


def stored(registry: Registry) -> list[dict[str, Any]]:
    response = client_for(registry, "admin").get(API_HOOKS)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()
    return found


def row_of(page: str, name: str) -> str:
    return page.split(f'<th scope="row">{name}', 1)[1].split("</tr>", 1)[0]


def error_box(page: str) -> str:
    found = re.search(r'<div class="flash error" role="alert">(.*?)</div>', page, re.S)
    assert found, "no error on the page"
    return html.unescape(found.group(1))


def deliveries_url(hook: int | str) -> str:
    return f"{WEBHOOKS}/{hook}/deliveries"


# -- managing ---------------------------------------------------------------------------


def test_a_project_admin_creates_tests_disables_and_deletes(
    lenient: Registry, receiver: Receiver
) -> None:
    admin = browser_for(lenient, "projectadmin")
    page = admin.get(WEBHOOKS)
    assert page.status_code == 200
    assert "No webhooks yet." in page.text
    for event in ("artifact.pushed", "artifact.deleted", "tag.moved", "quota.exceeded"):
        assert f'name="event_type" value="{event}"' in page.text
    assert 'type="password"' in page.text

    response = create(admin, receiver.url)
    assert response.status_code == 200, response.text
    assert flash(response.text) == "Webhook ci created."
    assert SECRET not in response.text
    [hook] = stored(lenient)
    assert hook["has_secret"] is True
    assert hook["event_types"] == ["artifact.pushed", "tag.deleted"]
    assert (hook["payload_format"], hook["enabled"]) == ("cloudevents", True)
    row = row_of(response.text, "ci")
    assert f"<code>{receiver.url}</code>" in row
    assert "artifact.pushed, tag.deleted" in row
    assert "CloudEvents 1.0" in row
    assert '<span class="badge succeeded">enabled</span>' in row
    assert "none yet" in row
    assert 'data-confirm="Delete webhook ci and its delivery history?"' in row

    page = admin.post(f"{WEBHOOKS}/test", {"webhook": str(hook["id"]), "webhook_name": "ci"})
    message = flash(page.text)
    assert re.fullmatch(r"Test event delivered to ci: HTTP 200 in \d+ ms\.", message), message
    assert 'class="flash ok"' in page.text
    [request] = receiver.wait_for(1)
    assert request.headers["x-portside-event"] == "webhook.test"
    assert request.signed_by(SECRET)
    assert '<span class="badge succeeded">succeeded</span>' in row_of(page.text, "ci")
    assert SECRET not in page.text

    page = admin.post(
        f"{WEBHOOKS}/state", {"webhook": str(hook["id"]), "webhook_name": "ci", "enabled": "false"}
    )
    assert flash(page.text) == "Webhook ci disabled."
    assert '<span class="badge danger">disabled</span>' in row_of(page.text, "ci")
    assert stored(lenient)[0]["enabled"] is False
    page = admin.post(
        f"{WEBHOOKS}/state", {"webhook": str(hook["id"]), "webhook_name": "ci", "enabled": "true"}
    )
    assert flash(page.text) == "Webhook ci enabled."

    page = admin.post(f"{WEBHOOKS}/delete", {"webhook": str(hook["id"]), "webhook_name": "ci"})
    assert flash(page.text) == "Webhook ci deleted."
    assert "No webhooks yet." in page.text
    assert stored(lenient) == []


def test_a_failed_test_event_shows_why_and_can_be_redelivered(
    lenient: Registry, receiver: Receiver
) -> None:
    receiver.fail_first = 1
    admin = browser_for(lenient, "admin")
    create(admin, receiver.url, secret="")
    [hook] = stored(lenient)
    assert hook["has_secret"] is False
    page = admin.post(f"{WEBHOOKS}/test", {"webhook": str(hook["id"]), "webhook_name": "ci"})
    assert 'class="flash error"' in page.text
    message = flash(page.text)
    assert message.startswith("Test event to ci failed: "), message
    assert "500" in message
    assert '<span class="badge dead">dead</span>' in row_of(page.text, "ci")

    history = admin.get(deliveries_url(hook["id"]))
    assert history.status_code == 200
    assert "Deliveries of ci" in history.text
    assert "<code>webhook.test</code>" in history.text
    assert '<span class="badge dead">dead</span>' in history.text
    assert ">Redeliver<" in history.text
    assert (
        "No succeeded deliveries."
        in admin.get(deliveries_url(hook["id"]), params={"status": "succeeded"}).text
    )
    dead = admin.get(deliveries_url(hook["id"]), params={"status": "dead"}).text
    assert '<option value="dead" selected>' in dead
    delivery = re.search(r'name="delivery" value="(\d+)"', dead)
    assert delivery

    page = admin.post(f"{deliveries_url(hook['id'])}/redeliver", {"delivery": delivery.group(1)})
    assert flash(page.text) == f"Delivery {delivery.group(1)} queued again; it is sent shortly."
    assert '<span class="badge queued">queued</span>' in page.text
    assert ">Redeliver<" not in page.text
    page = admin.post(f"{deliveries_url(hook['id'])}/redeliver", {"delivery": delivery.group(1)})
    assert flash(page.text).startswith(f"Could not redeliver delivery {delivery.group(1)}: ")


# -- who sees what ----------------------------------------------------------------------


def test_maintainers_read_webhooks_and_deliveries_without_managing(
    lenient: Registry, receiver: Receiver
) -> None:
    create(browser_for(lenient, "projectadmin"), receiver.url, description="deploys")
    [hook] = stored(lenient)
    client_for(lenient, "admin").post(f"{API_HOOKS}/{hook['id']}/test")
    maintainer = browser_for(lenient, "maintainer")
    page = maintainer.get(WEBHOOKS)
    assert page.status_code == 200
    assert "Webhooks" in tabs(page.text)
    row = row_of(page.text, "ci")
    assert f"<code>{receiver.url}</code>" in row
    assert "deploys" in row
    assert '<span class="badge succeeded">succeeded</span>' in row
    for control in ("New webhook", "Send test event", ">Delete<", ">Disable<"):
        assert control not in page.text, control
    assert "Only project administrators can create, change, test and delete webhooks." in page.text
    history = maintainer.get(deliveries_url(hook["id"]))
    assert history.status_code == 200
    assert "<code>webhook.test</code>" in history.text

    # The API refuses what the page does not offer, in its own words.
    page = maintainer.post(
        WEBHOOKS,
        {"webhook_name": "mine", "target_url": receiver.url, "event_type": "artifact.pushed"},
    )
    assert page.status_code == 403
    assert "may not do this in project 'acme' (webhooks)" in error_box(page.text)
    page = maintainer.post(f"{WEBHOOKS}/test", {"webhook": str(hook["id"]), "webhook_name": "ci"})
    assert "Could not send a test event to ci: " in flash(page.text)
    page = maintainer.post(f"{WEBHOOKS}/delete", {"webhook": str(hook["id"]), "webhook_name": "ci"})
    assert "Could not delete ci: " in flash(page.text)
    assert len(stored(lenient)) == 1


def test_developers_guests_outsiders_and_anonymous_see_no_webhooks(
    lenient: Registry, receiver: Receiver
) -> None:
    create(browser_for(lenient, "admin"), receiver.url)
    [hook] = stored(lenient)
    for user in ("developer", "guest", "limitedguest"):
        browser = browser_for(lenient, user)
        assert "Webhooks" not in tabs(browser.get("/projects/acme").text), user
        for url in (WEBHOOKS, deliveries_url(hook["id"])):
            page = browser.get(url)
            assert page.status_code == 403, (user, url)
            assert receiver.url not in page.text
    outsider = browser_for(lenient, "outsider")
    for url in (WEBHOOKS, deliveries_url(hook["id"])):
        hidden = outsider.get(url)
        missing = outsider.get(url.replace("acme", "nosuch"))
        assert hidden.status_code == missing.status_code == 404
        assert hidden.text.replace("acme", "X") == missing.text.replace("nosuch", "X")
    anonymous = lenient.as_caller({})
    response = anonymous.get(WEBHOOKS, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Fprojects%2Facme%2Fwebhooks"
    # A public project's webhooks are not public.
    assert anonymous.get("/projects/pub/webhooks", follow_redirects=False).status_code == 303
    assert "Webhooks" not in tabs(anonymous.get("/projects/pub").text)


def test_an_unknown_webhook_is_not_found(lenient: Registry) -> None:
    admin = browser_for(lenient, "admin")
    for tail in ("12345", "0", "x", "9" * 40):
        page = admin.get(deliveries_url(tail))
        assert page.status_code == 404, tail
        assert "Something went wrong" not in page.text


# -- refusals and hostile values --------------------------------------------------------


def test_forms_without_the_session_token_are_refused(lenient: Registry, receiver: Receiver) -> None:
    admin = browser_for(lenient, "projectadmin")
    create(admin, receiver.url)
    [hook] = stored(lenient)
    attempts = [
        (
            WEBHOOKS,
            {"webhook_name": "evil", "target_url": receiver.url, "event_type": "artifact.pushed"},
        ),
        (f"{WEBHOOKS}/test", {"webhook": str(hook["id"])}),
        (f"{WEBHOOKS}/state", {"webhook": str(hook["id"]), "enabled": "false"}),
        (f"{WEBHOOKS}/delete", {"webhook": str(hook["id"])}),
        (f"{deliveries_url(hook['id'])}/redeliver", {"delivery": "1"}),
    ]
    for url, form in attempts:
        for token in ({}, {"csrf": "forged"}):
            response = admin.client.post(url, data={**form, **token})
            assert response.status_code == 403, url
            assert "Form expired" in response.text
    assert [(h["name"], h["enabled"]) for h in stored(lenient)] == [("ci", True)]
    assert receiver.received == []


def test_a_refused_target_is_shown_in_the_form(registry: Registry) -> None:
    """Without webhooks.allow_private_targets, loopback is refused: the API's reason is
    shown above the form, which keeps what was typed except the secret."""
    admin = browser_for(registry, "projectadmin")
    page = create(admin, "http://127.0.0.1:8080/hook", name="local", description="mine")
    assert page.status_code == 400
    message = error_box(page.text)
    assert message.startswith("Could not create the webhook: target 'http://127.0.0.1:8080/hook'")
    assert "refused" in message, message
    assert "loopback" in message, message
    form = page.text.split('id="new-webhook"', 1)[1]
    assert 'value="local"' in form
    assert 'value="http://127.0.0.1:8080/hook"' in form
    assert 'value="mine"' in form
    assert 'value="cloudevents" selected' in form
    assert 'value="tag.deleted" checked' in form
    assert SECRET not in page.text
    assert stored(registry) == []


def test_form_mistakes_are_explained(registry: Registry) -> None:
    admin = browser_for(registry, "projectadmin")
    page = create(admin, "https://ci.example.com/hook", event_type=[])
    assert page.status_code == 400
    assert error_box(page.text) == "Choose at least one event to send."
    page = create(admin, "https://ci.example.com/hook", name="Not valid!")
    assert "Could not create the webhook: a webhook name is" in error_box(page.text)
    page = create(admin, "")
    assert error_box(page.text) == "Enter the URL to send events to."


def test_hostile_values_are_escaped(lenient: Registry, receiver: Receiver) -> None:
    admin = browser_for(lenient, "projectadmin")
    target = f"{receiver.url}?q={HOSTILE}"
    response = create(admin, target, description=HOSTILE)
    assert flash(response.text) == "Webhook ci created."
    assert_escaped(response.text)
    [hook] = stored(lenient)
    assert hook["target_url"] == target
    assert_escaped(admin.get(deliveries_url(hook["id"])).text)
    assert_escaped(browser_for(lenient, "maintainer").get(WEBHOOKS).text)
    # A hostile name sent by hand is refused by the API, and the message is escaped too.
    page = create(admin, target, name=HOSTILE)
    assert_escaped(page.text)
    page = admin.post(f"{WEBHOOKS}/delete", {"webhook": "777", "webhook_name": HOSTILE})
    assert_escaped(page.text)


def test_a_hostile_target_in_a_refusal_is_escaped(registry: Registry) -> None:
    page = create(browser_for(registry, "projectadmin"), f"http://127.0.0.1/{HOSTILE}")
    assert page.status_code == 400
    assert_escaped(page.text)
