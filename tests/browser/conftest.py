"""Browser tests: real headless Chromium (Debian's /usr/bin/chromium, driven by Playwright's sync API)
against a real manager on the real Docker engine. Run them under the engine lock, one file at a time:
``flock /tmp/mypaas-engine.lock pytest -q tests/browser/test_signin.py``.

Fixtures
- ``platform`` (per module): a running platform (tests.kit's ``running_platform``: a real manager process
  and Caddy on free ports, everything labelled and removed even when a test fails) where the platform
  admin ``admin`` has the password ``ADMIN_PASSWORD`` and ``vic`` (``VIEWER_PASSWORD``) is a viewer of
  the ``default`` team.
- ``images`` (session): local busybox web images (no Docker Hub here): ``v1``, ``v2``, ``crash``.
- ``browser`` (session): headless Chromium with --no-sandbox. Skipped, with the reason, only when
  /usr/bin/chromium (or Playwright) is missing and CI is not set; under CI=true that fails instead.
- ``page`` (per test): a fresh browser context and page whose base URL is the manager's, so
  ``page.goto("/")`` opens the dashboard. Every console error, uncaught exception and 5xx answer
  of the page is collected, and the test fails at teardown if there was any: a JS error is a bug.
  A 4xx answer of /api/v1 is not one: the page is expected to show it (a wrong password, a refused
  action). ``page_errors`` is that list, for a test that provokes one on purpose and checks it.
- ``signed_in(page, user, password)``: signs in through the sign-in form and waits for the apps page;
  ``session(page, user, password)`` signs in through the API only (the cookies), for other pages' tests.

Tests wait on the page's state (``expect(...)``, ``wait_for``), never sleep, and assert no timings.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import kit

CHROMIUM = Path("/usr/bin/chromium")
ADMIN_PASSWORD = "correct-horse-battery-26"
VIEWER = "vic"
VIEWER_PASSWORD = "staple-lamp-orbit-26"
TIMEOUT_MS = 20_000  # one wait on the page (a rollout can take seconds on a loaded 2-core machine)

try:
    from playwright.sync_api import Browser, ConsoleMessage, Error, Page, Response, expect, sync_playwright
except ImportError:  # pragma: no cover - told below, per the rules for a missing browser
    sync_playwright = None  # type: ignore[assignment]


def _under_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


# Without Playwright the test modules cannot even be imported: outside CI they are left out, and the
# summary says why; under CI they are collected, and fail.
collect_ignore_glob = ["test_*.py"] if sync_playwright is None and not _under_ci() else []


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if collect_ignore_glob:
        terminalreporter.write_line(f"tests/browser not run: {_missing()}", yellow=True)


def _missing() -> str | None:
    if sync_playwright is None:
        return "Playwright is not installed (pip install -e '.[test]', or make test)"
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing (apt-get install chromium, or make test)"
    return None


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    """Chromium, for this package's tests only: Playwright's sync API runs an event loop in the main
    thread while it lives, and the tests after these (asyncio.run, anyio) cannot start their own then."""
    why = _missing()
    if why:
        if _under_ci():
            pytest.fail(f"browser tests cannot run: {why}")
        pytest.skip(f"browser tests skipped: {why}")
    expect.set_options(timeout=TIMEOUT_MS)
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="session")
def images() -> dict[str, str]:
    """Test images made locally (no registry pulls): two versions of a web server and a crasher."""
    kit.docker_client().ping()
    kit.web_image("mypaas-test/web:v1", "version one")
    kit.web_image("mypaas-test/web:v2", "version two")
    kit.busybox_image("mypaas-test/crash:1", cmd=("/bin/sh", "-c", "echo boom: cannot start; exit 3"))
    return {"v1": "mypaas-test/web:v1", "v2": "mypaas-test/web:v2", "crash": "mypaas-test/crash:1"}


@pytest.fixture(scope="module")
def platform(browser: Browser) -> Iterator[kit.Platform]:
    """A real platform with a password for ``admin`` and a viewer ``vic`` in the default team (the browser
    is asked for first: without one, no platform is started only to be skipped)."""
    with kit.running_platform() as p:
        add_users(p)
        yield p


def add_users(p: kit.Platform) -> None:
    p.api("PUT", "/api/v1/users/admin/password", json={"password": ADMIN_PASSWORD})
    p.api("POST", "/api/v1/users", json={"name": VIEWER, "password": VIEWER_PASSWORD})
    p.api("PUT", f"/api/v1/teams/default/members/{VIEWER}", json={"role": "viewer"})


def base_url(p: kit.Platform) -> str:
    return f"http://127.0.0.1:{p.api_port}"


@pytest.fixture
def page_errors() -> list[str]:
    return []


@pytest.fixture
def page(browser: Browser, platform: kit.Platform, page_errors: list[str]) -> Iterator[Page]:
    context = browser.new_context(base_url=base_url(platform), viewport={"width": 1280, "height": 800})
    context.set_default_timeout(TIMEOUT_MS)
    tab = context.new_page()
    watch(tab, page_errors)
    try:
        yield tab
    finally:
        context.close()
    assert not page_errors, "the page reported errors:\n" + "\n".join(page_errors)


def watch(tab: Page, errors: list[str]) -> None:
    """Collect into ``errors`` what is a bug on a page: console errors (except the browser's note about
    a 4xx answer of the API, which the page shows), uncaught exceptions and 5xx answers."""

    def on_console(msg: ConsoleMessage) -> None:
        if msg.type == "error" and not _api_refusal(msg):
            errors.append(f"console: {msg.text} ({msg.location.get('url', '')})")

    def on_response(resp: Response) -> None:
        if resp.status >= 500:
            errors.append(f"HTTP {resp.status} from {resp.request.method} {resp.url}")

    tab.on("console", on_console)
    tab.on("pageerror", lambda exc: errors.append(f"uncaught: {exc}"))
    tab.on("response", on_response)


_REFUSED = re.compile(r"^Failed to load resource: the server responded with a status of 4\d\d")


def _api_refusal(msg: ConsoleMessage) -> bool:
    """The browser's note about a 4xx answer of the API (the page shows the error) or about the icon it
    asks for on its own."""
    url = str(msg.location.get("url", ""))
    return bool(_REFUSED.match(msg.text)) and ("/api/v1/" in url or url.endswith("/favicon.ico"))


def signed_in(page: Page, user: str, password: str) -> Page:
    """Sign in through the form on the sign-in page, and wait until the apps page shows."""
    page.goto("/")
    page.get_by_label("User", exact=True).fill(user)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("heading", name="Apps", exact=True)).to_be_visible()
    return page


def session(page: Page, user: str, password: str) -> None:
    """Sign the page's browser context in through the API (POST /api/v1/session sets the cookies),
    without the form: for a test about another page."""
    answer = page.request.post("/api/v1/session", data={"user": user, "password": password})
    assert answer.status == 200, f"POST /api/v1/session: {answer.status} {answer.text()}"


@pytest.fixture
def sign_in(page: Page) -> Callable[[str, str], Page]:
    """``sign_in(user, password)``: :func:`signed_in` on this test's page."""
    return lambda user, password: signed_in(page, user, password)


def cookies(page: Page) -> dict[str, Any]:
    """The page's cookies by name (with their flags: httpOnly, sameSite…)."""
    return {c["name"]: c for c in page.context.cookies()}


__all__ = [
    "ADMIN_PASSWORD",
    "VIEWER",
    "VIEWER_PASSWORD",
    "Error",
    "cookies",
    "expect",
    "session",
    "signed_in",
]
