"""Signing in and out of the dashboard in a real browser: the sign-in gate, a wrong password shown by
the form, the apps page with the user's name and teams, the session cookie's flags, a CSRF-less POST
refused, sign-out, and signing in with an API token."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests import kit
from tests.browser.conftest import ADMIN_PASSWORD, VIEWER, cookies, signed_in


def on_sign_in_page(page: Page) -> None:
    expect(page.get_by_role("heading", name="Sign in to MyPaas")).to_be_visible()
    expect(page.get_by_role("heading", name="Apps", exact=True)).to_have_count(0)


def test_sign_in_wrong_password_csrf_sign_out_and_token(
    page: Page, platform: kit.Platform, page_errors: list[str]
) -> None:
    # a visit without a session is sent to sign in, whatever page it asked for
    page.goto("/#/apps")
    on_sign_in_page(page)

    # a wrong password: the API's message next to the form, and no session
    page.get_by_label("User", exact=True).fill("admin")
    page.get_by_label("Password", exact=True).fill("not-the-password-at-all")
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.locator("form").get_by_role("alert")).to_contain_text("wrong user name or password")
    on_sign_in_page(page)
    assert "mypaas_session" not in cookies(page)

    # the right one: the apps page, with the user's name and teams
    signed_in(page, "admin", ADMIN_PASSWORD)
    header = page.get_by_role("banner")
    expect(header).to_contain_text("admin")
    expect(header.get_by_role("button", name="Sign out")).to_be_visible()
    jar = cookies(page)
    assert jar["mypaas_session"]["httpOnly"] and jar["mypaas_session"]["sameSite"] == "Strict"
    assert not jar["mypaas_csrf"]["httpOnly"]

    # the session cookie alone does not make an unsafe request: X-CSRF-Token must repeat mypaas_csrf
    refused = page.request.post("/api/v1/teams", data={"name": "csrf-test"})
    assert refused.status == 403, refused.text()
    assert refused.json()["field"] == "x-csrf-token"
    assert "csrf-test" not in [t["name"] for t in platform.api("GET", "/api/v1/teams")]
    allowed = page.request.post(
        "/api/v1/teams", data={"name": "csrf-test"}, headers={"X-CSRF-Token": jar["mypaas_csrf"]["value"]}
    )
    assert allowed.status == 201, allowed.text()

    # signing out returns to the sign-in page, and the session is gone
    header.get_by_role("button", name="Sign out").click()
    on_sign_in_page(page)
    assert page.request.get("/api/v1/whoami").status == 401
    page.reload()
    on_sign_in_page(page)

    # an API token signs in too (here a viewer's, of the default team): the name and the role shown
    token = platform.api(
        "POST",
        "/api/v1/tokens",
        json={"name": "browser", "user": VIEWER, "team": "default", "role": "viewer"},
    )["token"]
    page.get_by_role("button", name=re.compile("API token")).click()
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("heading", name="Apps", exact=True)).to_be_visible()
    expect(header).to_contain_text(VIEWER)
    expect(header).to_contain_text("default: viewer")
    expect(header.get_by_role("link", name="Deploy")).to_have_count(0)  # a viewer is not offered it
    assert page_errors == []
