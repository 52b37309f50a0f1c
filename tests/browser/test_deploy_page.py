"""Deploying from the dashboard on a real platform (real manager, real engine, headless Chromium): an
image checked, deployed, followed to its URL; a redeploy whose health check never passes, abandoned with
its reason while v1 keeps serving; a pasted compose file with two services, its dry run's warning and
changes shown before the deploy, then running; and a viewer who is told they cannot deploy."""

from __future__ import annotations

import re
import secrets

from playwright.sync_api import Page, expect

from tests import kit
from tests.browser.conftest import ADMIN_PASSWORD, VIEWER, VIEWER_PASSWORD, signed_in

ROLLOUT_MS = 90_000  # a rollout, or its 12 s deadline, on a loaded machine


def check_and_deploy(page: Page, app: str) -> None:
    """Check (the dry run), then Deploy, once the check's answer is shown."""
    page.get_by_role("button", name="Check").click()
    expect(page.get_by_role("region", name=re.compile(r"^Check: "))).to_be_visible()
    page.get_by_role("button", name=f"Deploy {app}").click()


def test_an_image_deploy_opens_at_its_url_and_a_failing_redeploy_says_why(
    page: Page, platform: kit.Platform, images: dict[str, str]
) -> None:
    app = f"img-{secrets.token_hex(3)}"
    signed_in(page, "admin", ADMIN_PASSWORD)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Deploy").click()

    page.get_by_label("Name").fill(app)
    page.get_by_label("Image", exact=True).fill(images["v1"])
    page.get_by_label("HTTP port").fill("80")
    page.get_by_role("button", name="Check").click()
    plan = page.get_by_role("region", name=re.compile(r"^Check: "))
    expect(plan).to_contain_text(f"a first release of {app}")
    expect(plan.get_by_role("list", name="Changes")).to_contain_text("web added")
    expect(plan.get_by_role("table")).to_contain_text(images["v1"])
    page.get_by_role("button", name=f"Deploy {app}").click()

    # followed live to its end: the steps done, the URL and the app's page
    done = page.get_by_role("status").filter(has_text=f"{app} v1 is running")
    expect(done).to_be_visible(timeout=ROLLOUT_MS)
    expect(page.locator(".steps li.failed")).to_have_count(0)
    expect(done.get_by_role("link", name="Open the app page")).to_have_attribute("href", f"#/apps/{app}")
    url = f"http://{app}.localhost:{platform.router_port}"
    with page.context.expect_page() as opened:
        done.get_by_role("link", name=url).click()
    expect(opened.value.locator("body")).to_contain_text("version one")  # *.localhost: Chromium's loopback
    opened.value.close()

    # a redeploy (prefilled from what runs) on a port nothing listens on: abandoned, with the reason
    page.goto(f"/#/deploy?app={app}")
    expect(page.get_by_label("Image", exact=True)).to_have_value(images["v1"])
    expect(page.get_by_text(f"Redeploys {app}")).to_be_visible()
    page.get_by_label("HTTP port").fill("8080")
    check_and_deploy(page, app)
    failure = page.get_by_role("alert").filter(has_text="did not become healthy in time")
    expect(failure).to_contain_text("v2 did not become healthy in time; v1 keeps serving", timeout=ROLLOUT_MS)
    expect(failure).to_contain_text("web: GET / -> connection refused")  # the health check's output
    expect(page.locator(".steps li.failed").first).to_be_visible()
    assert platform.get(app)[1].strip() == "version one"  # v1 still answers


def test_a_pasted_compose_file_is_checked_deployed_and_runs_and_a_viewer_cannot_deploy(
    page: Page, platform: kit.Platform, images: dict[str, str]
) -> None:
    app = f"duo-{secrets.token_hex(3)}"
    compose = (
        f"services:\n  web:\n    image: {images['v2']}\n    expose: [80]\n"
        f"  worker:\n    image: {images['v1']}\n    restart: on-failure:3\n"
    )
    signed_in(page, "admin", ADMIN_PASSWORD)
    page.goto("/#/deploy")
    page.get_by_label("Name").fill(app)
    page.get_by_label("A compose file").check()
    page.get_by_label(re.compile(r"or paste it")).fill(compose)
    page.get_by_role("button", name="Check").click()
    plan = page.get_by_role("region", name=re.compile(r"^Check: "))
    expect(plan.get_by_role("list", name="Warnings")).to_contain_text("services.worker.restart: on-failure:3")
    changes = plan.get_by_role("list", name="Changes")
    expect(changes).to_contain_text("web added")
    expect(changes).to_contain_text("worker added")
    assert app not in [a["name"] for a in platform.api("GET", "/api/v1/apps")]  # the check made nothing
    page.get_by_role("button", name=f"Deploy {app}").click()
    expect(page.get_by_role("status").filter(has_text=f"{app} v1 is running")).to_be_visible(
        timeout=ROLLOUT_MS
    )
    assert platform.get(app)[1].strip() == "version two"

    # both services run: the apps list says so
    page.goto("/#/apps")
    row = page.get_by_role("row").filter(has_text=app)
    expect(row).to_contain_text("running")
    services = {i["service"] for i in platform.api("GET", f"/api/v1/apps/{app}/instances")}
    assert services == {"web", "worker"}

    # a viewer is offered no deploy, and told so on the page
    page.get_by_role("button", name="Sign out").click()
    signed_in(page, VIEWER, VIEWER_PASSWORD)
    expect(page.get_by_role("navigation", name="Main").get_by_role("link", name="Deploy")).to_have_count(0)
    page.goto("/#/deploy")
    expect(page.get_by_text("You cannot deploy")).to_be_visible()
    expect(page.get_by_role("button", name="Check")).to_have_count(0)
