"""The dashboard's observing side in a real browser against a real platform: an app's live logs (a line
per request, searched, per instance, follow off), its events, its charts once the monitor has sampled
it, and the apps list's live requests/s."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import Page, expect

from tests import kit
from tests.browser.conftest import ADMIN_PASSWORD, signed_in

APP = "watch"
IMAGE = "mypaas-test/observe:2"
MARKER = "url:/hello.html"  # busybox httpd -vv writes "ADDRESS: url:/PATH" for each request


def _image() -> str:
    return kit.busybox_image(
        IMAGE,
        files={"www/index.html": "observed\n", "www/hello.html": "hello\n"},
        cmd=("/bin/httpd", "-f", "-vv", "-p", "80", "-h", "/www"),
    )


def _sampled(platform: kit.Platform) -> bool:
    """Has the monitor stored a sample of the app and counted its requests?"""
    series: dict[str, Any] = platform.api("GET", f"/api/v1/apps/{APP}/metrics", params={"since": "1h"})
    return bool(series["total"]) and any(p["requests"] for p in series["requests"])


def test_logs_events_charts_and_live_figures(page: Page, platform: kit.Platform) -> None:
    _image()
    op = platform.api("POST", f"/api/v1/apps/{APP}/deploys", json={"image": IMAGE})
    assert platform.wait_op(op)["status"] == "succeeded"
    (instance,) = platform.wait_ready(APP, 1)
    for _ in range(5):
        assert platform.get(APP, "/hello.html") == (200, "hello\n")
    kit.wait_until(lambda: _sampled(platform), timeout=40)

    signed_in(page, "admin", ADMIN_PASSWORD)
    row = page.get_by_role("row").filter(has=page.get_by_role("link", name=APP, exact=True))
    expect(row.locator('td[data-title="Req/s"]')).to_have_text(re.compile(r"^\d+(\.\d+)?$"))  # live
    expect(row.locator('td[data-title="Ready"]')).to_have_text("1/1")
    expect(row.get_by_role("link", name=re.compile(rf"^{APP}\.localhost"))).to_be_visible()

    # logs: the request lines, followed; a search keeps only the matching ones, highlighted
    page.goto(f"/#/apps/{APP}/logs")
    page.get_by_label("Last").select_option("500")
    log = page.get_by_role("log", name="Log lines")
    expect(log.locator(".log-line", has_text=MARKER).first).to_be_visible()
    expect(page.get_by_text("· following")).to_be_visible()
    page.get_by_label("Search").fill("hello.html")
    expect(log.locator(".log-line", has_not_text="hello.html")).to_have_count(0)
    expect(log.locator("mark").first).to_have_text("hello.html")
    page.get_by_label("Instance").select_option(instance["name"])
    expect(log.locator(".log-line", has_text=MARKER).first).to_be_visible()
    page.get_by_label("Follow").uncheck()
    expect(page.get_by_text("· end of log")).to_be_visible()
    expect(log.locator(".log-line", has_text=MARKER)).to_have_count(5)

    # events: the deploy's, newest first
    page.get_by_role("link", name="Events", exact=True).click()
    events = page.get_by_role("table", name="Events")
    expect(events.get_by_text("release activated")).to_be_visible()
    expect(events.get_by_text("deploy accepted")).to_be_visible()
    kinds = events.locator("tbody tr td:nth-child(2)").all_inner_texts()
    assert kinds.index("release activated") < kinds.index("deploy accepted"), kinds

    # metrics: charts drawn from the monitor's series, with figures
    page.get_by_role("link", name="Metrics", exact=True).click()
    requests = page.locator("figure.chart", has_text="Requests")
    expect(requests.locator("canvas").first).to_be_visible()
    expect(requests).to_have_attribute("aria-label", re.compile(r"requests/s \d"))
    expect(page.locator("figure.chart", has_text="CPU").locator("canvas").first).to_be_visible()
    page.get_by_role("button", name="24 hours").click()
    expect(page.get_by_role("button", name="24 hours")).to_have_attribute("aria-pressed", "true")
    expect(page.get_by_text("one point per 5 min")).to_be_visible()  # the 24 h series came
