"""The app page in a real browser against a real platform: an app deployed through the API is scaled to 2,
given a config var (a new release), rolled back to v1, given a domain, stopped and started, and removed by
typing its name; a viewer sees the same page without any control."""

from __future__ import annotations

import re

from playwright.sync_api import Browser, Locator, Page, expect

from tests import kit
from tests.browser.conftest import ADMIN_PASSWORD, VIEWER, VIEWER_PASSWORD, base_url, signed_in, watch

APP = "pageapp"


def real_errors(errors: list[str]) -> list[str]:
    """The page's errors but Chromium's note that a request was cut because the machine's network
    changed (the engine adding a container's interface does that; the page asks again)."""
    return [e for e in errors if "net::ERR_NETWORK_CHANGED" not in e]


def deployed(platform: kit.Platform, image: str) -> None:
    op = platform.api("POST", f"/api/v1/apps/{APP}/deploys", json={"image": image}, expect=202)
    assert platform.wait_op(op)["status"] == "succeeded"


def open_tab(page: Page, title: str) -> None:
    page.get_by_role("navigation", name="Sections").get_by_role("link", name=title, exact=True).click()


def finished(page: Page) -> None:
    """The operation the last action started is shown, and it succeeded."""
    expect(page.locator(".op").get_by_text("succeeded", exact=True)).to_be_visible()


def state(page: Page) -> Locator:
    """The app's state badge in the page's header."""
    return page.locator(".app-head h1 .badge")


def viewer_sees_no_controls(browser: Browser, platform: kit.Platform) -> None:
    context = browser.new_context(base_url=base_url(platform), viewport={"width": 1280, "height": 800})
    errors: list[str] = []
    page = context.new_page()
    watch(page, errors)
    try:
        signed_in(page, VIEWER, VIEWER_PASSWORD)
        page.goto(f"/#/apps/{APP}")
        expect(page.get_by_role("table", name="Instances").locator("tbody tr")).to_have_count(2)
        for tab in ("Overview", "Releases", "Config", "Domains", "Scale"):
            open_tab(page, tab)
            expect(page.locator(".tab")).to_be_visible()
            expect(page.locator(".tab .spinner")).to_have_count(0)
            expect(page.locator("main button")).to_have_count(0)  # no action, no form, no confirmation
            expect(page.locator("main input, main textarea")).to_have_count(0)
        expect(page.get_by_role("table", name="Replicas")).to_contain_text("2")
    finally:
        context.close()
    assert not real_errors(errors), errors


def test_app_page_scale_config_rollback_domain_stop_start_remove(
    page: Page, browser: Browser, platform: kit.Platform, images: dict[str, str], page_errors: list[str]
) -> None:
    deployed(platform, images["v1"])
    signed_in(page, "admin", ADMIN_PASSWORD)

    # from the apps list to the app's page: header, one instance
    page.get_by_role("link", name=APP, exact=True).click()
    expect(page.get_by_role("heading", name=APP)).to_be_visible()
    expect(state(page)).to_have_text("running")
    instances = page.get_by_role("table", name="Instances").locator("tbody tr")
    expect(instances).to_have_count(1)

    # scale to 2: the operation is followed, then the overview shows 2 instances
    open_tab(page, "Scale")
    page.get_by_label("replicas of web").fill("2")
    page.get_by_role("button", name="Scale", exact=True).click()
    finished(page)
    open_tab(page, "Overview")
    expect(instances).to_have_count(2)

    # a config var: one new release, shown in the config and the releases
    open_tab(page, "Config")
    page.get_by_role("textbox", name=re.compile("Set config vars")).fill("GREETING=hello")
    page.get_by_role("button", name="Set", exact=True).click()
    finished(page)
    expect(page.get_by_role("table", name="Config vars")).to_contain_text("GREETING")
    open_tab(page, "Releases")
    releases = page.get_by_role("table", name="Releases")
    expect(releases).to_contain_text("v2")
    expect(page.locator(".diff")).to_contain_text("GREETING")  # v1 → v2: the var's name, added

    # roll back to v1 (confirmed): a third release runs v1's config again
    page.get_by_role("button", name="Roll back to v1…").click()
    page.get_by_role("button", name="Roll back", exact=True).click()
    finished(page)
    expect(releases.locator("tbody tr").first).to_contain_text("current")
    expect(releases.locator("tbody tr").first).to_contain_text("v3")
    assert platform.api("GET", f"/api/v1/apps/{APP}/config") == {}
    open_tab(page, "Config")
    expect(page.get_by_text("No config vars")).to_be_visible()

    # a domain: listed with its certificate state; a bad one is refused next to the form
    open_tab(page, "Domains")
    page.get_by_role("textbox", name="Domain").fill("www.pageapp.test")
    page.get_by_role("button", name="Add domain").click()
    expect(page.get_by_role("table", name="Domains")).to_contain_text("www.pageapp.test")
    page.get_by_role("textbox", name="Domain").fill("not a domain")
    page.get_by_role("button", name="Add domain").click()
    expect(page.get_by_role("form", name="Add a domain").get_by_role("alert")).to_contain_text("domain")
    assert platform.api("GET", f"/api/v1/apps/{APP}/domains") == ["www.pageapp.test"]

    # a viewer sees the page and no control
    viewer_sees_no_controls(browser, platform)

    # stop, then start again
    page.get_by_role("button", name="Stop", exact=True).click()
    finished(page)  # the operation shown under the header
    expect(state(page)).to_have_text("stopped")
    page.get_by_role("button", name="Start", exact=True).click()
    finished(page)
    expect(state(page)).to_have_text("running")
    platform.wait_ready(APP, 2)

    # remove: the button asks for the name; the apps page no longer lists the app
    page.get_by_role("button", name="Remove app").click()
    remove = page.get_by_role("button", name="Remove app")
    expect(remove).to_be_disabled()
    page.get_by_label(f"type {APP} to confirm").fill(APP)
    remove.click()
    expect(page.get_by_role("heading", name="Apps")).to_be_visible()
    kit.wait_until(lambda: APP not in [a["name"] for a in platform.api("GET", "/api/v1/apps")], timeout=30)
    page.reload()
    expect(page.get_by_role("heading", name="Apps")).to_be_visible()
    expect(page.get_by_role("link", name=APP, exact=True)).to_have_count(0)
    page_errors[:] = real_errors(page_errors)
