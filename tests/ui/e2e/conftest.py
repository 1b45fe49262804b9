"""End-to-end tests of the web UI in real headless Chromium (Debian's `chromium`, driven
by Playwright for Python through `executable_path`; never a browser Playwright downloads).

One `portside serve` runs for all the browser tests, with authentication on from the start
(`PORTSIDE_AUTH__INITIAL_ADMIN_PASSWORD` creates the admin), on a free loopback port and a
fresh database. Each test gets a new browser context (no cookies, no storage) and so
works on its own; tests that need data make it with unique names (`unique()`), through the
UI or, for what a test is not about, through the management API as the admin.

Every page a test visits is watched: a Content-Security-Policy violation, an uncaught
script error, or an internal error in the server's log fails the test at teardown.
Screenshots of the main pages go to $PORTSIDE_TEST_ARTIFACTS/screenshots (default: a
`screenshots` directory in pytest's temporary directory; the summary line says where),
with one of the open pages of any test that failed; `PORTSIDE_UPDATE_SCREENSHOTS=1` also
writes the README's pictures (1280x800 views) into docs/screenshots/.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Dialog,
    Page,
    Playwright,
    ViewportSize,
    WebError,
    expect,
    sync_playwright,
)

from tests.clients.conftest import containers_config
from tests.clients.images import Image, ImageIndex, build_image, dumps, sha256, write_layout
from tests.clients.tooling import Skopeo
from tests.conftest import fresh_database
from tests.durability.server import ServerProcess
from tests.missing import missing_tool

CHROMIUM = os.environ.get("PORTSIDE_TEST_CHROMIUM", "/usr/bin/chromium")
# Headless as root, and quiet: without the background-networking flags Chromium tries to
# reach Google's services (there is no network here) and logs every failure.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
ADMIN = "admin"
ADMIN_PASSWORD = "e2e-Admin-Secret-1"
DESKTOP: ViewportSize = {"width": 1280, "height": 800}
PHONE: ViewportSize = {"width": 390, "height": 844}
TIMEOUT_MS = 15_000
expect.set_options(timeout=10_000)
REPO_ROOT = Path(__file__).resolve().parents[3]
DOCS_SCREENSHOTS = REPO_ROOT / "docs" / "screenshots"

_SHOTS = pytest.StashKey["Screenshots"]()
_WATCH = pytest.StashKey["PageWatch"]()
_FAILED = pytest.StashKey[bool]()


def require_tool(path_or_name: str, package: str) -> str:
    """The tool's path. Missing: skipped, or under CI failed (tests.missing.missing_tool),
    like the real client tests (tests/clients/tooling.py `require_binary`)."""
    if "/" in path_or_name:
        found = path_or_name if os.access(path_or_name, os.X_OK) else None
    else:
        found = shutil.which(path_or_name)
    if found is None:
        missing_tool(
            f"{path_or_name} is not installed: the browser tests need the Debian package "
            f"{package!r} (scripts/test-deps installs it)"
        )
    return found


def unique(prefix: str) -> str:
    """A name no other test (or run) uses: lower-case, valid for projects and repos."""
    return f"{prefix}-{secrets.token_hex(3)}"


# ---------------------------------------------------------------------------------------
# The server
# ---------------------------------------------------------------------------------------


class UiServer(ServerProcess):
    """`portside serve` with helpers for the UI tests."""

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def api(self, user: str = ADMIN, password: str = ADMIN_PASSWORD) -> httpx.Client:
        """The management API (/api/v1) with Basic credentials."""
        return httpx.Client(base_url=f"{self.url}/api/v1", auth=(user, password), timeout=30)


@pytest.fixture(scope="package")
def portside(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UiServer]:
    root = tmp_path_factory.mktemp("ui-e2e")
    with fresh_database(root) as database_url:
        for part in ("data", "logs"):
            (root / part).mkdir()
        server = UiServer(
            data_dir=root / "data",
            database_url=database_url,
            log_dir=root / "logs",
            env={
                "PORTSIDE_AUTH__INITIAL_ADMIN_PASSWORD": ADMIN_PASSWORD,
                # The webhook test's receiver listens on loopback.
                "PORTSIDE_WEBHOOKS__ALLOW_PRIVATE_TARGETS": "true",
            },
        )
        server.start()
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture(scope="package")
def admin_api(portside: UiServer) -> Iterator[httpx.Client]:
    """The management API as the admin: for making what a test is not about."""
    with portside.api() as client:
        yield client


@pytest.fixture(autouse=True)
def _no_internal_errors(request: pytest.FixtureRequest) -> Iterator[None]:
    """No unhandled exception in the server's log while the test ran."""
    if "portside" not in request.fixturenames:
        yield
        return
    server: UiServer = request.getfixturevalue("portside")
    before = len(server.internal_errors())
    yield
    new = server.internal_errors()[before:]
    assert not new, "internal errors in the server log:\n" + "\n".join(new[:20])


def create_user(api: httpx.Client, username: str, password: str) -> None:
    response = api.post("/users", json={"username": username, "password": password})
    assert response.status_code == 201, response.text


def create_project(api: httpx.Client, name: str, *, public: bool = False) -> None:
    response = api.post("/projects", json={"name": name, "public": public})
    assert response.status_code == 201, response.text


def registry_tags(server: UiServer, repository: str) -> list[str]:
    """GET /v2/<name>/tags/list as the admin."""
    response = httpx.get(
        f"{server.url}/v2/{repository}/tags/list", auth=(ADMIN, ADMIN_PASSWORD), timeout=30
    )
    if response.status_code == 404:
        return []
    assert response.status_code == 200, response.text
    tags: list[str] | None = response.json().get("tags")
    return sorted(tags or [])


# ---------------------------------------------------------------------------------------
# Images and skopeo
# ---------------------------------------------------------------------------------------


def custom_image(
    seed: str,
    *,
    architecture: str = "amd64",
    env: list[str] | None = None,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    history: list[str] | None = None,
    big_layer_kib: int = 1536,
) -> Image:
    """tests/clients/images.py's three-layer image, with this config Env, extra config
    labels, these history commands (one per layer) and extra manifest annotations."""
    base = build_image(seed, architecture, big_layer_kib=big_layer_kib)
    config = json.loads(base.config)
    if env is not None:
        config["config"]["Env"] = env
    config["config"]["Labels"].update(labels or {})
    for step, command in zip(config["history"], history or [], strict=False):
        step["created_by"] = command
    config_bytes = dumps(config)
    manifest = json.loads(base.manifest)
    manifest["config"] = {**manifest["config"], "digest": sha256(config_bytes)}
    manifest["config"]["size"] = len(config_bytes)
    manifest["annotations"].update(annotations or {})
    return replace(base, config=config_bytes, manifest=dumps(manifest))


@dataclass(frozen=True)
class Pusher:
    """skopeo with a private configuration (this server is plain HTTP) and scratch
    space for OCI layouts."""

    skopeo: Skopeo
    server: UiServer
    tmp: Path

    def push(
        self,
        item: Image | ImageIndex,
        repository: str,
        tag: str,
        *,
        user: str = ADMIN,
        password: str = ADMIN_PASSWORD,
    ) -> None:
        layout = write_layout(self.tmp / f"layout-{secrets.token_hex(4)}", {tag: item})
        dest = f"{self.server.host}/{repository}:{tag}"
        every = ["--all"] if isinstance(item, ImageIndex) else []  # not just this machine's
        self.skopeo.push_layout(layout, tag, dest, f"--dest-creds={user}:{password}", *every)

    def pull(self, repository: str, tag: str, *, user: str, password: str) -> Path:
        layout = self.tmp / f"pulled-{secrets.token_hex(4)}"
        source = f"{self.server.host}/{repository}:{tag}"
        return self.skopeo.pull_layout(source, layout, tag, f"--src-creds={user}:{password}")


@pytest.fixture(scope="package")
def pusher(portside: UiServer, tmp_path_factory: pytest.TempPathFactory) -> Pusher:
    binary = require_tool("skopeo", "skopeo")
    conf = tmp_path_factory.mktemp("containers-conf-ui")
    env = containers_config(conf, insecure=portside.host)
    return Pusher(Skopeo(binary, env), portside, tmp_path_factory.mktemp("layouts"))


# ---------------------------------------------------------------------------------------
# The browser
# ---------------------------------------------------------------------------------------


# Package scope, not session: while Playwright's sync API is started, its event loop counts
# as running, so asyncio.run() in any later test of the session would fail.
@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    require_tool(CHROMIUM, "chromium")
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="package")
def browser(playwright: Playwright) -> Iterator[Browser]:
    # Playwright gives the browser a fresh temporary profile (user-data dir) and removes it.
    launched = playwright.chromium.launch(
        executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
    )
    yield launched
    launched.close()


@dataclass
class PageWatch:
    """What the pages of one test said: console messages, uncaught errors, dialogs.
    Dialogs are answered with `answer` (False: dismissed, as by default)."""

    console: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    answer: bool = False

    def on_console(self, message: ConsoleMessage) -> None:
        self.console.append(f"{message.type}: {message.text} ({message.location.get('url')})")

    def on_error(self, error: WebError) -> None:
        self.errors.append(str(error.error))

    def on_dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        if self.answer:
            dialog.accept()
        else:
            dialog.dismiss()

    def csp_violations(self) -> list[str]:
        return [
            line
            for line in self.console
            if "Refused to" in line or "Content Security Policy" in line or "CSP:" in line
        ]

    def describe(self) -> str:
        lines = [*self.console, *(f"pageerror: {e}" for e in self.errors)]
        lines += [f"dialog {d}" for d in self.dialogs]
        return "\n".join(lines) or "(nothing)"


# Reports CSP violations to the console in words, besides Chromium's own "Refused to …".
_CSP_LISTENER = """
document.addEventListener("securitypolicyviolation", (event) => {
  console.error("CSP: " + event.violatedDirective + " blocked " + event.blockedURI);
});
"""


def new_context(
    browser: Browser, server: UiServer, watch: PageWatch, **options: Any
) -> BrowserContext:
    """A fresh browser context on the server, watched."""
    settings: dict[str, Any] = {"viewport": DESKTOP, **options}
    context = browser.new_context(base_url=server.url, **settings)
    context.set_default_timeout(TIMEOUT_MS)
    context.add_init_script(_CSP_LISTENER)
    context.on("console", watch.on_console)
    context.on("weberror", watch.on_error)
    context.on("dialog", watch.on_dialog)
    return context


@pytest.fixture
def watch(request: pytest.FixtureRequest) -> Iterator[PageWatch]:
    watched = PageWatch()
    request.node.stash[_WATCH] = watched
    yield watched
    if request.node.stash.get(_FAILED, False):
        return  # the failure says more than this would
    assert not watched.csp_violations(), "CSP violations:\n" + "\n".join(watched.csp_violations())
    assert not watched.errors, "uncaught script errors:\n" + "\n".join(watched.errors)


@pytest.fixture
def context_options() -> dict[str, Any]:
    """Extra `browser.new_context` options; a test module may override this fixture."""
    return {}


@pytest.fixture
def context(
    *,
    browser: Browser,
    portside: UiServer,
    watch: PageWatch,
    context_options: dict[str, Any],
    request: pytest.FixtureRequest,
    shots: Screenshots,
) -> Iterator[BrowserContext]:
    made = new_context(browser, portside, watch, **context_options)
    yield made
    if request.node.stash.get(_FAILED, False):
        for number, open_page in enumerate(made.pages):
            shots.failure(open_page, f"{request.node.name}-{number}")
    made.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


def sign_in(page: Page, username: str = ADMIN, password: str = ADMIN_PASSWORD) -> None:
    """Through the sign-in form, as a person would; ends on the projects list."""
    page.goto("/login?next=" + quote("/projects", safe=""))
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/projects$"))
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


@pytest.fixture
def admin_page(page: Page) -> Page:
    """A page signed in as the admin."""
    sign_in(page)
    return page


# Elements that stick out past the right edge of the window, outside any element that
# scrolls sideways itself (such as a .table-wrap): what makes a page scroll sideways.
_STICKING_OUT = """
() => {
  const width = window.innerWidth;
  const scrolls = (e) => {
    for (let p = e.parentElement; p; p = p.parentElement) {
      const x = getComputedStyle(p).overflowX;
      if (x === "auto" || x === "scroll" || x === "hidden") return true;
    }
    return false;
  };
  const found = [];
  for (const e of document.body.querySelectorAll("*")) {
    const box = e.getBoundingClientRect();
    if (box.right > width + 0.5 && !scrolls(e)) {
      const classes = e.className ? "." + String(e.className).split(" ").join(".") : "";
      const text = (e.textContent || "").trim().slice(0, 60);
      const tag = e.tagName.toLowerCase();
      found.push(`${tag}${classes} (right ${Math.round(box.right)}px): ${text}`);
    }
  }
  return found.slice(0, 10);
}
"""


def assert_fits(page: Page) -> None:
    """The page does not scroll sideways (document.scrollingElement.scrollWidth is at
    most the window's width); wide tables scroll inside their wrapper instead."""
    width = page.evaluate("document.scrollingElement.scrollWidth")
    inner = page.evaluate("window.innerWidth")
    if width > inner:
        culprits = "\n".join(page.evaluate(_STICKING_OUT))
        raise AssertionError(
            f"{page.url}: the page is {width}px wide in a {inner}px window; sticking out:\n"
            f"{culprits}"
        )
    for wrap in page.locator(".table-wrap").all():
        assert wrap.evaluate("e => getComputedStyle(e).overflowX") in ("auto", "scroll")


# ---------------------------------------------------------------------------------------
# Screenshots and failure reports
# ---------------------------------------------------------------------------------------


@dataclass
class Screenshots:
    directory: Path
    update_docs: bool
    taken: list[Path] = field(default_factory=list)

    def take(self, page: Page, name: str, *, docs: str | None = None) -> Path:
        """A full-page PNG into the artifacts directory; with `docs` and
        PORTSIDE_UPDATE_SCREENSHOTS=1, also the visible 1280x800 (or phone) view as
        docs/screenshots/<docs>.png for the README."""
        path = self.directory / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        self.taken.append(path)
        if docs is not None and self.update_docs:
            DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(DOCS_SCREENSHOTS / f"{docs}.png"), full_page=False)
        return path

    def failure(self, page: Page, name: str) -> None:
        try:
            path = self.directory / f"FAILED-{name}.png"
            page.screenshot(path=str(path), full_page=True, timeout=5000)
            self.taken.append(path)
        except Exception as error:  # a crashed or closed page: the report has the rest
            self.taken.append(Path(f"(no screenshot of {name}: {error})"))


@pytest.fixture(scope="package")
def shots(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Screenshots:
    configured = os.environ.get("PORTSIDE_TEST_ARTIFACTS")
    directory = (
        Path(configured) / "screenshots"
        if configured
        else tmp_path_factory.mktemp("screenshots", numbered=False)
    )
    directory.mkdir(parents=True, exist_ok=True)
    for old in directory.glob("*.png"):  # a previous run's (a kept artifacts directory)
        old.unlink()
    made = Screenshots(directory, os.environ.get("PORTSIDE_UPDATE_SCREENSHOTS") == "1")
    request.config.stash[_SHOTS] = made
    return made


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.when == "call" and report.failed:
        item.stash[_FAILED] = True
    if report.failed:
        watched = item.stash.get(_WATCH, None)
        if watched is not None:
            report.sections.append(("browser console", watched.describe()))
        server = getattr(item, "funcargs", {}).get("portside")
        if isinstance(server, UiServer):
            report.sections.append(("portside log (tail)", server.log_tail(40)))
    return report


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    made = config.stash.get(_SHOTS, None)
    if made is not None and made.taken:
        terminalreporter.write_line(f"browser screenshots ({len(made.taken)}): {made.directory}")


__all__ = [
    "ADMIN",
    "ADMIN_PASSWORD",
    "PHONE",
    "PageWatch",
    "Pusher",
    "Screenshots",
    "UiServer",
    "assert_fits",
    "create_project",
    "create_user",
    "custom_image",
    "new_context",
    "registry_tags",
    "sign_in",
    "unique",
]
