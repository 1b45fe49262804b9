"""A project's robots page: who sees and manages robots, creating one (its secret shown
once, with a ready docker login), new secrets, disabling and deleting; refusals and
hostile descriptions."""

from __future__ import annotations

import html
import re

from tests.auth.conftest import Registry
from tests.ui.conftest import Browser, browser_for
from tests.ui.test_project import HOSTILE, assert_escaped, flash, host

ROBOTS = "/projects/acme/robots"


def create(browser: Browser, name: str = "ci", **fields: object) -> str:
    browser.get(ROBOTS)
    form = {"robot": name, "permission": ["pull", "push"], **fields}
    response = browser.post(ROBOTS, form)
    assert response.status_code == 200, response.text
    return response.text


def secret_of(page: str) -> str:
    found = re.search(r'<code class="robot-secret">([^<]+)</code>', page)
    assert found, "no secret on the page"
    return html.unescape(found.group(1))


def status_of(page: str, robot: str) -> str:
    row = page.split(f"<code>{robot}</code>", 1)[1].split("</tr>", 1)[0]
    found = re.search(r'<span class="badge [a-z]+">([a-z]+)</span>', row)
    assert found
    return found.group(1)


def test_robots_are_shown_to_maintainers_without_managing(registry: Registry) -> None:
    create(browser_for(registry, "projectadmin"), "ci", description="builds")
    page = browser_for(registry, "maintainer").get(ROBOTS)
    assert page.status_code == 200
    assert "<code>robot$acme+ci</code>" in page.text
    assert "pull, push" in page.text
    assert "New robot" not in page.text
    assert ">Delete<" not in page.text
    assert "Only project administrators can create, disable and delete robots." in page.text


def test_robots_are_refused_to_developers_and_guests(registry: Registry) -> None:
    for user in ("developer", "guest"):
        page = browser_for(registry, user).get(ROBOTS)
        assert page.status_code == 403, user
        assert "you may not see the robots of project" in html.unescape(page.text)
    assert browser_for(registry, "outsider").get(ROBOTS).status_code == 404


def test_the_secret_is_shown_once_and_works(registry: Registry) -> None:
    browser = browser_for(registry, "projectadmin")
    page = create(browser, "ci", expires_in_days="30", description="the CI")
    secret = secret_of(page)
    box = page.split('<section class="secret"', 1)[1].split("</section>", 1)[0]
    assert "Robot created: robot$acme+ci" in box
    assert "shown only this once" in box
    assert f'data-copy="{secret}"' in box
    assert f"docker login -u &#39;robot$acme+ci&#39; {host(registry)}" in box
    assert (
        f"echo &#34;$ROBOT_SECRET&#34; | docker login -u &#39;robot$acme+ci&#39; "
        f"--password-stdin {host(registry)}" in box
    )
    assert page.count(secret) == 3  # the code, the copy button's value and its label
    reloaded = browser.get(ROBOTS).text
    assert secret not in reloaded
    assert 'class="secret"' not in reloaded
    assert "<code>robot$acme+ci</code>" in reloaded
    # The secret signs the robot in.
    registry.token("repository:acme/app:pull", user="robot$acme+ci", password=secret)


def test_a_new_secret_replaces_the_old_one(registry: Registry) -> None:
    browser = browser_for(registry, "projectadmin")
    old = secret_of(create(browser))
    page = browser.post(f"{ROBOTS}/secret", {"robot": "robot$acme+ci"}).text
    new = secret_of(page)
    assert new != old
    assert "New secret for robot robot$acme+ci" in page
    assert new not in browser.get(ROBOTS).text
    registry.token("repository:acme/app:pull", user="robot$acme+ci", password=new)


def test_disable_enable_and_delete(registry: Registry) -> None:
    browser = browser_for(registry, "projectadmin")
    create(browser)
    page = browser.get(ROBOTS).text
    assert status_of(page, "robot$acme+ci") == "enabled"
    assert 'data-confirm="Delete robot robot$acme+ci?' in page
    page = browser.post(f"{ROBOTS}/state", {"robot": "robot$acme+ci", "disabled": "true"}).text
    assert flash(page) == "Robot robot$acme+ci disabled."
    assert status_of(page, "robot$acme+ci") == "disabled"
    page = browser.post(f"{ROBOTS}/state", {"robot": "robot$acme+ci", "disabled": "false"}).text
    assert status_of(page, "robot$acme+ci") == "enabled"
    page = browser.post(f"{ROBOTS}/delete", {"robot": "robot$acme+ci"}).text
    assert flash(page) == "Robot robot$acme+ci deleted."
    assert "<code>robot$acme+ci</code>" not in page
    assert "No robots yet." in page


def test_robot_forms_refused_in_words(registry: Registry) -> None:
    admin = browser_for(registry, "projectadmin")
    admin.get(ROBOTS)
    page = admin.post(ROBOTS, {"robot": "ci"}).text
    assert flash(page) == "Choose at least one permission (pull, push or delete)."
    page = admin.post(ROBOTS, {"robot": "ci", "permission": "pull", "expires_in_days": "x"}).text
    assert "Expiry must be a whole number of days" in flash(page)
    page = admin.post(ROBOTS, {"robot": "Not Valid", "permission": "pull"}).text
    assert "Could not create the robot: invalid robot name" in flash(page)
    assert 'class="secret"' not in page

    create(admin)
    maintainer = browser_for(registry, "maintainer")
    maintainer.get(ROBOTS)
    page = maintainer.post(ROBOTS, {"robot": "mine", "permission": "pull"}).text
    assert "may not do this in project 'acme' (robots)" in flash(page)
    page = maintainer.post(f"{ROBOTS}/delete", {"robot": "robot$acme+ci"}).text
    assert "you may not manage robot" in flash(page)
    page = maintainer.post(f"{ROBOTS}/secret", {"robot": "robot$acme+ci"}).text
    assert "Could not make a new secret" in flash(page)
    assert 'class="secret"' not in page
    assert "<code>robot$acme+ci</code>" in page


def test_descriptions_are_escaped(registry: Registry) -> None:
    page = create(browser_for(registry, "projectadmin"), "ci", description=HOSTILE)
    assert_escaped(page)
    assert_escaped(browser_for(registry, "maintainer").get(ROBOTS).text)
