"""Benchmark: the dashboard's first page (the apps list) in Chromium with a cold cache.

A real platform with a few running apps; a session made through the API (POST /api/v1/session); then,
five times, a new browser context (so an empty cache) opens the apps page. Each load counts until
both the load event has ended and the apps table shows its rows (Navigation Timing's clock, from the
navigation's start), and the bytes transferred: the navigation plus every resource (scripts, styles,
the API's answers). The median of the five is reported.

Last line: dashboard_load_ms=<x> bytes=<n>
"""

from __future__ import annotations

import os
import sys
from typing import Any

from _common import median
from playwright.sync_api import Browser, sync_playwright
from tests import kit

CHROMIUM = "/usr/bin/chromium"
LOADS = int(os.environ.get("BENCH_LOADS", "5"))
APPS = ("shop", "blog", "api")
PASSWORD = "bench-dashboard-pw-26"
ROWS = "main table tbody tr"  # the apps table's rows: the page is "rendered" once they show

# In the page, once the load event is over: when the rows show (polled on each frame), the load's end,
# and the bytes of the navigation and of every resource fetched since.
MEASURE = """(rows) => new Promise((done) => {
  const nav = performance.getEntriesByType("navigation")[0];
  const finish = () => {
    const res = performance.getEntriesByType("resource");
    done({
      load: nav.loadEventEnd - nav.startTime,
      rendered: performance.now() - nav.startTime,
      bytes: nav.transferSize + res.reduce((sum, e) => sum + e.transferSize, 0),
      resources: res.length,
    });
  };
  const poll = () => (document.querySelectorAll(rows).length >= 1 ? finish() : requestAnimationFrame(poll));
  poll();
})"""


def deploy_apps(p: kit.Platform) -> None:
    kit.web_image("mypaas-test/web:v1", "version one")
    for app in APPS:
        p.api("POST", f"/api/v1/apps/{app}/deploys", json={"image": "mypaas-test/web:v1", "port": 80})
    for app in APPS:
        p.wait_ready(app, 1, timeout=60)
    p.api("PUT", "/api/v1/users/admin/password", json={"password": PASSWORD})


def signed_in_state(browser: Browser, base: str) -> Any:
    """The cookies of one sign-in through the API (POST /api/v1/session): each load starts with them."""
    context = browser.new_context(base_url=base)
    try:
        signed = context.request.post("/api/v1/session", data={"user": "admin", "password": PASSWORD})
        if signed.status != 200:
            raise SystemExit(f"error: POST /api/v1/session answered {signed.status}: {signed.text()}")
        return context.storage_state()
    finally:
        context.close()


def one_load(browser: Browser, base: str, state: Any) -> dict[str, Any]:
    """One load in a new context: its cache is empty, its cookies are the session's."""
    context = browser.new_context(base_url=base, viewport={"width": 1280, "height": 800}, storage_state=state)
    try:
        page = context.new_page()
        page.goto("/#/apps", wait_until="load")
        result: dict[str, Any] = page.evaluate(MEASURE, ROWS)
        return result
    finally:
        context.close()


def main() -> None:
    if not os.path.exists(CHROMIUM):
        sys.exit(f"error: {CHROMIUM} is missing (make install-test installs Debian's chromium)")
    with kit.running_platform() as p, sync_playwright() as pw:
        deploy_apps(p)
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        base = f"http://127.0.0.1:{p.api_port}"
        try:
            state = signed_in_state(browser, base)
            one_load(browser, base, state)  # the manager's first answers (imports, gzip) are not the page's
            loads = [one_load(browser, base, state) for _ in range(LOADS)]
        finally:
            browser.close()
    times = [max(r["load"], r["rendered"]) for r in loads]
    for r, ms in zip(loads, times, strict=True):
        print(
            f"load event {r['load']:.0f} ms, rows shown {r['rendered']:.0f} ms, "
            f"{r['bytes']} bytes in {r['resources'] + 1} requests -> {ms:.0f} ms"
        )
    size = int(median([r["bytes"] for r in loads]))
    print(f"median of {LOADS} cold loads of the apps page listing {len(APPS)} apps:")
    print(f"dashboard_load_ms={median(times):.0f} bytes={size}")


if __name__ == "__main__":
    main()
