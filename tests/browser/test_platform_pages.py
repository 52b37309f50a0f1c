"""The dashboard's platform pages in real Chromium against a real platform: as the admin, hosts (this
machine, and the add form's two requests: the host key's fingerprint shown, then sent back as host_key),
the registry (a deployed app's repository, GC), images (a rootfs import with its progress bar reaching
done), alerts (a rule added, listed without its webhook's secret, removed) and health (every component
healthy, the version); a viewer opening the hosts page sees the admins-only line.

Adding a real SSH host needs a second machine (the Swarm cluster tests do it through the CLI): here the
add form's requests are checked with the API's two answers played by the test (``page.route``)."""

from __future__ import annotations

import io
import json
import os
import tarfile
from typing import Any

from playwright.sync_api import Page, Route, expect

from tests import kit
from tests.browser.conftest import ADMIN_PASSWORD, VIEWER, VIEWER_PASSWORD, signed_in

APP = "platweb"
SECRET = "s3cr3t-hook-token"
FINGERPRINT = "SHA256:bm90LWEtcmVhbC1ob3N0LWtleS1qdXN0LWEtdGVzdA"
KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nnot-a-key\n-----END OPENSSH PRIVATE KEY-----\n"


def rootfs_tar() -> bytes:
    """A tiny root filesystem (a folder, a file of 2 MiB of noise so the upload takes a few steps)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in (
            ("./etc/os-release", b"NAME=browser-test\n"),
            ("./data/noise", os.urandom(2 << 20)),
        ):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_platform_pages_as_admin(page: Page, platform: kit.Platform, images: dict[str, str]) -> None:
    platform.wait_op(platform.api("POST", f"/api/v1/apps/{APP}/deploys", json={"image": images["v1"]}))
    # the release's image reaches the registry after the rollout
    repos = kit.wait_until(lambda: platform.api("GET", "/api/v1/images"), timeout=30)
    signed_in(page, "admin", ADMIN_PASSWORD)

    health(page, platform)
    hosts(page)
    registry(page, repos[0]["repository"])
    imported = import_image(page)
    try:
        alerts(page)
    finally:
        platform.api("POST", "/api/v1/images/remove", json={"refs": [imported]})


def health(page: Page, platform: kit.Platform) -> None:
    page.goto("/#/health")
    expect(page.get_by_text("Every component is healthy.")).to_be_visible()
    for name in ("manager", "engine", "router", "reconcile", "registry"):
        card = page.locator(f'[data-component="{name}"]')
        expect(card.locator(".badge")).to_have_text("healthy")
    expect(page.locator(".version")).to_have_text(platform.api("GET", "/api/v1/status")["version"])


def hosts(page: Page) -> None:
    page.goto("/#/hosts")
    expect(page.get_by_role("heading", name="This machine")).to_be_visible()
    expect(page.get_by_text("No hosts beyond this machine")).to_be_visible()
    sent: list[dict[str, Any]] = []

    def answer(route: Route) -> None:  # the API's two answers to `host add`, played by the test
        body = json.loads(route.request.post_data or "{}")
        sent.append(body)
        if "host_key" not in body:
            error = {
                "error": f"unknown host key: {FINGERPRINT}",
                "field": "host_key",
                "fingerprint": FINGERPRINT,
            }
            route.fulfill(status=409, content_type="application/json", body=json.dumps(error))
        else:
            error = {"error": "the test stops here", "field": "url"}
            route.fulfill(status=400, content_type="application/json", body=json.dumps(error))

    page.route(
        "**/api/v1/hosts", lambda route: answer(route) if route.request.method == "POST" else route.fallback()
    )
    page.get_by_role("button", name="Add a host").click()
    page.get_by_label("SSH address").fill("10.200.9.9")
    page.get_by_label("Port").fill("2222")
    page.get_by_label("Private key").fill(KEY.strip())
    page.get_by_label("Labels").fill("zone=b, disk=ssd")
    page.get_by_role("button", name="Connect").click()
    expect(page.locator("code.fingerprint")).to_have_text(FINGERPRINT)
    page.get_by_role("button", name="Trust this key and add the host").click()
    expect(page.get_by_text("the test stops here")).to_be_visible()
    page.unroute("**/api/v1/hosts")
    # what `mypaas host add` sends, then the same with --host-key
    first = {"url": "ssh://root@10.200.9.9:2222", "key": KEY, "labels": {"zone": "b", "disk": "ssd"}}
    assert sent == [first, {**first, "host_key": FINGERPRINT}]


def registry(page: Page, repository: str) -> None:
    page.goto("/#/registry")
    repo = page.locator(f'[data-repository="{repository}"]')
    expect(repo).to_be_visible()
    expect(repo.get_by_role("row")).not_to_have_count(0)
    expect(page.locator(".mirror .badge")).to_have_text("off")
    page.get_by_role("button", name="Run garbage collection").click()
    expect(page.locator(".gc-result")).to_contain_text("Freed")


def import_image(page: Page) -> str:
    ref = "browsertest/rootfs:1"
    page.goto("/#/images")
    form = page.get_by_role("form", name="Import a root filesystem")
    form.get_by_label("Archive").set_input_files(
        {"name": "rootfs.tar", "mimeType": "application/x-tar", "buffer": rootfs_tar()}
    )
    form.get_by_label("Image (NAME:TAG)").fill(ref)
    form.get_by_label("Changes").fill(f'LABEL {kit.TEST_LABEL}="1"')
    form.get_by_role("button", name="Import").click()
    expect(form.locator(".import-done")).to_contain_text(f"Imported {ref}")
    expect(form.locator("progress")).to_have_attribute("value", "100")
    expect(form.get_by_text("Done", exact=True)).to_be_visible()
    expect(page.get_by_role("table", name="Images")).to_contain_text("browsertest/rootfs")
    return ref


def alerts(page: Page) -> None:
    page.goto("/#/alerts")
    expect(page.get_by_text("No alert rules")).to_be_visible()
    form = page.get_by_role("form", name="Add an alert rule")
    form.get_by_label("Name").fill("platweb-down")
    form.get_by_label("App", exact=True).select_option(APP)
    form.get_by_label("Webhook URL").fill(f"https://hooks.example.com/services/{SECRET}")
    form.get_by_role("button", name="Add rule").click()
    row = page.get_by_role("row").filter(has_text="platweb-down")
    expect(row).to_contain_text("app_down")
    expect(row).to_contain_text("https://hooks.example.com/…")
    assert SECRET not in page.content()
    row.get_by_role("button", name="Remove").click()
    expect(page.get_by_text("No alert rules")).to_be_visible()


def test_a_viewer_sees_the_admins_only_line(page: Page, platform: kit.Platform) -> None:
    signed_in(page, VIEWER, VIEWER_PASSWORD)
    expect(page.get_by_role("link", name="Hosts")).to_have_count(0)  # not offered
    page.goto("/#/hosts")
    expect(page.get_by_text("Hosts are for platform admins only")).to_be_visible()
    page.goto("/#/registry")
    expect(page.get_by_text("for platform admins only")).to_be_visible()
    page.goto("/#/health")
    expect(page.get_by_text("Every component is healthy.")).to_be_visible()
