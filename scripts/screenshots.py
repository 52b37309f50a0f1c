#!/usr/bin/env python3
"""Screenshots of the dashboard's main pages, for the README (`make screenshots` → docs/screenshots/).

Without --url it starts a platform of its own (tests/kit.py: a real manager and Caddy on free ports, in a
temp folder, removed at the end), gives the admin a password and deploys two small demo apps from
busybox images made locally (no Docker Hub needed). With --url/--user/--password it signs in to a
running platform instead and shoots what that one has (--app names the app whose pages are shown).

Each page in PAGES is opened in headless Chromium (/usr/bin/chromium) at 1280x800 and saved as
docs/screenshots/<name>.png; the apps page also at a phone's 390x844. Add a page to PAGES when it exists.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from playwright.sync_api import Browser, Page, sync_playwright  # noqa: E402
from tests import kit  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
OUT = ROOT / "docs" / "screenshots"
PASSWORD = "screenshots-Pw-2026"  # noqa: S105 - the admin's of a throwaway platform
DEMO_APP = "shop"  # the app whose pages are shown ({app} in PAGES)


@dataclass(frozen=True)
class Shot:
    """One screenshot: ``route`` (the part after #; "{app}" is the app shown) opened, and the picture
    taken once the page has its heading and no "Loading…" left, and ``ready`` (a CSS selector, if
    any) shows."""

    name: str
    route: str
    ready: str = ""
    viewport: tuple[int, int] = (1280, 800)
    signed_in: bool = True


PHONE = (390, 844)
# The dashboard's main pages, in the README's order. A page this version of the dashboard does not
# have is skipped with a line saying so (its name stays here).
PAGES: tuple[Shot, ...] = (
    Shot("signin", "/", "form input[type=password]", signed_in=False),
    Shot("apps", "/apps", "main table tbody tr"),
    Shot("apps-phone", "/apps", "main table tbody tr", viewport=PHONE),
    Shot("app", "/apps/{app}"),
    Shot("app-releases", "/apps/{app}/releases"),
    Shot("app-config", "/apps/{app}/config"),
    Shot("app-domains", "/apps/{app}/domains"),
    Shot("app-scale", "/apps/{app}/scale"),
    Shot("app-logs", "/apps/{app}/logs", ".log-line"),
    Shot("app-events", "/apps/{app}/events"),
    Shot("app-metrics", "/apps/{app}/metrics"),
    Shot("app-phone", "/apps/{app}", viewport=PHONE),
    Shot("deploy", "/deploy"),
    Shot("hosts", "/hosts"),
    Shot("registry", "/registry"),
    Shot("images", "/images"),
    Shot("alerts", "/alerts"),
    Shot("health", "/health"),
)

# In the page: "absent" when this dashboard has no such page (no route, no module for it), "ready" once
# the main heading is there and nothing is still loading; "" meanwhile.
SETTLED = """() => {
  const main = document.querySelector("main");
  if (!main) return "";
  if (/not available in this version|dynamically imported module|^Not found$/m.test(main.innerText)) {
    return "absent";
  }
  return main.querySelector("h1") && !main.querySelector(".spinner, [aria-busy=true]") ? "ready" : "";
}"""


def demo_apps(p: kit.Platform) -> None:
    """Two small apps (a web server from an image that logs its requests; a compose app with two
    services), a config change (a second release), some traffic, and an alert rule."""
    kit.busybox_image(
        "mypaas-demo/shop:1",
        files={"www/index.html": "the shop\n"},
        cmd=("/bin/sh", "-c", "echo 'shop: serving on :80'; exec httpd -f -vv -p 80 -h /www"),
    )
    kit.web_image("mypaas-test/web:v1", "version one")
    kit.web_image("mypaas-test/web:v2", "version two")
    p.api("POST", f"/api/v1/apps/{DEMO_APP}/deploys", json={"image": "mypaas-demo/shop:1", "port": 80})
    compose = (
        "services:\n"
        "  web:\n    image: mypaas-test/web:v2\n    ports: ['80']\n    deploy: {replicas: 2}\n"
        "  worker:\n    image: mypaas-test/web:v1\n"
    )
    p.api("POST", "/api/v1/apps/blog/deploys", json={"compose": compose})
    p.wait_ready(DEMO_APP, 1, timeout=60)
    p.wait_ready("blog", 3, timeout=60)
    config = {"set": {"GREETING": "hello", "LOG_LEVEL": "info"}, "unset": []}
    p.wait_op(p.api("PATCH", f"/api/v1/apps/{DEMO_APP}/config", json=config))
    p.wait_ready(DEMO_APP, 1, timeout=60)
    for _ in range(30):  # some requests, so the apps list, the logs and the charts have something
        p.get(DEMO_APP)
    rule = {"name": "shop-down", "kind": "app_down", "app": DEMO_APP, "for_s": 60}
    answer = p.raw("POST", "/api/v1/alerts", json={**rule, "webhook": "https://hooks.example.com/mypaas"})
    if answer.status_code != 201:
        print(f"warning: no alert rule for the alerts page: {answer.text}", file=sys.stderr)


@contextlib.contextmanager
def own_platform() -> Iterator[Target]:
    with kit.running_platform() as p:
        p.api("PUT", "/api/v1/users/admin/password", json={"password": PASSWORD})
        demo_apps(p)
        yield Target(f"http://127.0.0.1:{p.api_port}", "admin", PASSWORD)


def signed_in_state(browser: Browser, target: Target) -> Any:
    """The cookies of one sign-in through the API (POST /api/v1/session), for every signed-in shot."""
    context = browser.new_context(base_url=target.base)
    try:
        r = context.request.post("/api/v1/session", data={"user": target.user, "password": target.password})
        if r.status != 200:
            raise SystemExit(f"error: signing in as {target.user} failed: HTTP {r.status} {r.text()[:200]}")
        return context.storage_state()
    finally:
        context.close()


@dataclass(frozen=True)
class Target:
    """Where the pictures come from: a platform's URL, who signs in, the app shown."""

    base: str
    user: str
    password: str
    app: str = DEMO_APP


def shoot(browser: Browser, target: Target, shot: Shot, out: Path, state: Any) -> Path | None:
    """The screenshot's path, or None when this dashboard has no such page."""
    width, height = shot.viewport
    context = browser.new_context(
        base_url=target.base,
        viewport={"width": width, "height": height},
        storage_state=state if shot.signed_in else None,
    )
    try:
        page: Page = context.new_page()
        page.goto(f"/#{shot.route.format(app=target.app)}")
        if page.wait_for_function(SETTLED, timeout=20_000).json_value() == "absent":
            return None
        if shot.ready:
            page.locator(shot.ready).first.wait_for(timeout=20_000)
        for alert in page.locator("main [role=alert]").all_inner_texts():
            print(f"warning: {shot.name} shows an error: {alert}", file=sys.stderr)
        path = out / f"{shot.name}.png"
        page.screenshot(path=str(path))
        return path
    finally:
        context.close()


def run(target: Target, out: Path, only: list[str]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            state = signed_in_state(browser, target)
            for shot in PAGES:
                if only and shot.name not in only:
                    continue
                made = shoot(browser, target, shot, out, state)
                print(made or f"skipped {shot.name}: this dashboard has no page #{shot.route}", flush=True)
        finally:
            browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="a running platform's URL (default: start one)")
    parser.add_argument("--user", default="admin")
    parser.add_argument("--password", help="the user's password (with --url)")
    parser.add_argument("--app", default=DEMO_APP, help="the app whose pages are shown (with --url)")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("only", nargs="*", help="only these pages, by name")
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        sys.exit(f"error: {CHROMIUM} is missing (make install-test installs Debian's chromium)")
    if args.url:
        if not args.password:
            sys.exit("error: --url needs --password")
        run(Target(args.url.rstrip("/"), args.user, args.password, args.app), args.out, args.only)
        return
    with own_platform() as target:
        run(target, args.out, args.only)


if __name__ == "__main__":
    main()
