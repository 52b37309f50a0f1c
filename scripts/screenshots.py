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
import re
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
    """One screenshot: ``route`` (the part after #) opened, then ``ready`` (a text, or a CSS selector
    when it starts with "css=") waited for before the picture is taken; "{app}" in either is the app
    shown."""

    name: str
    route: str
    ready: str
    viewport: tuple[int, int] = (1280, 800)
    signed_in: bool = True


# The dashboard's main pages, in the README's order; a page that does not exist yet stays out.
PAGES: tuple[Shot, ...] = (
    Shot("signin", "/", "css=form input[type=password]", signed_in=False),
    Shot("apps", "/apps", "css=main table >> text={app}"),
    Shot("apps-phone", "/apps", "css=main table >> text={app}", viewport=(390, 844)),
)


def demo_apps(p: kit.Platform) -> None:
    """Two small apps: a web server from an image, and a compose app with two services."""
    kit.web_image("mypaas-test/web:v1", "version one")
    kit.web_image("mypaas-test/web:v2", "version two")
    p.api("POST", f"/api/v1/apps/{DEMO_APP}/deploys", json={"image": "mypaas-test/web:v1", "port": 80})
    compose = (
        "services:\n"
        "  web:\n    image: mypaas-test/web:v2\n    ports: ['80']\n    deploy: {replicas: 2}\n"
        "  worker:\n    image: mypaas-test/web:v1\n"
    )
    p.api("POST", "/api/v1/apps/blog/deploys", json={"compose": compose})
    p.wait_ready(DEMO_APP, 1, timeout=60)
    p.wait_ready("blog", 3, timeout=60)
    p.api(
        "PATCH",
        f"/api/v1/apps/{DEMO_APP}/config",
        json={"set": {"GREETING": "hello", "LOG_LEVEL": "info"}, "unset": []},
    )
    for _ in range(30):  # some requests, so the apps list and the charts have numbers
        p.get(DEMO_APP)


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


def shoot(browser: Browser, target: Target, shot: Shot, out: Path, state: Any) -> Path:
    width, height = shot.viewport
    context = browser.new_context(
        base_url=target.base,
        viewport={"width": width, "height": height},
        storage_state=state if shot.signed_in else None,
    )
    try:
        page: Page = context.new_page()
        page.goto(f"/#{shot.route.format(app=target.app)}")
        ready = shot.ready.format(app=target.app)
        if ready.startswith("css="):
            page.locator(ready.removeprefix("css=")).first.wait_for(timeout=20_000)
        else:
            page.get_by_text(re.compile(re.escape(ready))).first.wait_for(timeout=20_000)
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
                print(shoot(browser, target, shot, out, state), flush=True)
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
