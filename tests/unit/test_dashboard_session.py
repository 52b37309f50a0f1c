"""The dashboard's sign-in (session cookie + CSRF header) and how its files are served, through the real
API app over the fake backend."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from mypaas.api.app import create_app
from mypaas.api.cookies import COOKIE, CSRF_COOKIE, csrf_of
from mypaas.manager.identity.policy import Role
from mypaas.manager.platform import Platform
from mypaas.web.dashboard import VENDOR_FILES, Assets

PASSWORD = "correct-horse-42"


@pytest.fixture
def browser(platform: Platform) -> TestClient:
    """A client with no Authorization header: what a browser is. ann is a viewer, bob a deployer."""
    platform.identity.add_user("ann", PASSWORD)
    platform.identity.add_member("default", "ann", Role.VIEWER)
    platform.identity.add_user("bob", PASSWORD)
    platform.identity.add_member("default", "bob", Role.DEPLOYER)
    return TestClient(create_app(platform))


def sign_in(client: TestClient, user: str = "bob") -> dict[str, object]:
    r = client.post("/api/v1/session", json={"user": user, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_a_password_sign_in_sets_an_httponly_strict_cookie_and_a_csrf_cookie(browser: TestClient) -> None:
    r = browser.post("/api/v1/session", json={"user": "bob", "password": PASSWORD})
    assert r.status_code == 200
    cookies = r.headers.get_list("set-cookie")
    session = next(c for c in cookies if c.startswith(f"{COOKIE}="))
    csrf = next(c for c in cookies if c.startswith(f"{CSRF_COOKIE}="))
    assert "HttpOnly" in session and "SameSite=strict" in session and "Max-Age=43200" in session
    assert "HttpOnly" not in csrf and "SameSite=strict" in csrf
    body = r.json()
    assert body["user"] == "bob" and body["teams"] == {"default": "deployer"} and body["admin"] is False
    assert body["csrf"] == csrf_of(browser.cookies[COOKIE])
    assert browser.get("/api/v1/session").json()["user"] == "bob"
    assert browser.get("/api/v1/apps").status_code == 200  # the cookie is a caller


def test_a_change_without_the_csrf_header_is_refused_and_with_it_allowed(browser: TestClient) -> None:
    me = sign_in(browser)
    body = {"image": "web:1", "port": 80}
    refused = browser.post("/api/v1/apps/shop/deploys", json=body)
    assert refused.status_code == 403
    assert refused.json()["field"] == "x-csrf-token"
    wrong = browser.post("/api/v1/apps/shop/deploys", json=body, headers={"X-CSRF-Token": "0" * 40})
    assert wrong.status_code == 403
    big = browser.post("/api/v1/apps/shop/config", content=b"x" * 5_000_000)  # refused before reading
    assert big.status_code == 403 and big.json()["field"] == "x-csrf-token"
    ok = browser.put(
        "/api/v1/apps/shop/scale", json={"replicas": {"web": 1}}, headers={"X-CSRF-Token": me["csrf"]}
    )
    assert ok.status_code != 403  # past the CSRF check (the app does not exist yet: 404)
    assert browser.get("/api/v1/apps").status_code == 200  # reads need no header


def test_a_viewer_session_is_still_a_viewer(browser: TestClient) -> None:
    me = sign_in(browser, "ann")
    r = browser.post(
        "/api/v1/apps/shop/deploys", json={"image": "web:1", "port": 80}, headers={"X-CSRF-Token": me["csrf"]}
    )
    assert r.status_code == 403 and r.json()["field"] != "x-csrf-token"


def test_wrong_password_is_401_and_sets_no_cookie(browser: TestClient) -> None:
    r = browser.post("/api/v1/session", json={"user": "bob", "password": "not-his-password"})
    assert r.status_code == 401 and r.json()["field"] == "password"
    assert COOKIE not in browser.cookies
    assert browser.get("/api/v1/session").json() == {"signed_in": False}
    assert browser.post("/api/v1/session", json={"user": "bob"}).status_code == 400


def test_a_token_sign_in_uses_the_token_and_the_pull_token_cannot(
    browser: TestClient, platform: Platform
) -> None:
    r = browser.post("/api/v1/session", json={"token": platform.admin_token})
    assert r.status_code == 200 and r.json()["admin"] is True
    assert "Max-Age" not in next(c for c in r.headers.get_list("set-cookie") if c.startswith(COOKIE))
    pull = platform.identity.ensure_pull_token(platform.settings.home / "pull-token")
    r = TestClient(browser.app).post("/api/v1/session", json={"token": pull})
    assert r.status_code == 403 and r.json()["field"] == "token"
    assert TestClient(browser.app).post("/api/v1/session", json={"token": "nope"}).status_code == 401


def test_sign_out_revokes_the_sessions_token_and_clears_the_cookies(browser: TestClient) -> None:
    me = sign_in(browser)
    token = browser.cookies[COOKIE]
    assert browser.delete("/api/v1/session").status_code == 403  # CSRF-checked while valid
    r = browser.delete("/api/v1/session", headers={"X-CSRF-Token": me["csrf"]})
    assert r.status_code == 200
    assert COOKIE not in browser.cookies
    stolen = TestClient(browser.app, headers={"Authorization": f"Bearer {token}"})
    assert stolen.get("/api/v1/apps").status_code == 401  # revoked, not only forgotten
    again = TestClient(browser.app, cookies={COOKIE: token})
    assert again.get("/api/v1/session").json()["signed_in"] is False


def test_two_browsers_of_one_user_on_one_address_both_sign_in(browser: TestClient) -> None:
    first = sign_in(browser)
    other = TestClient(browser.app)
    second = sign_in(other)  # a second browser, or this one after losing its cookie
    assert first["csrf"] != second["csrf"]
    assert browser.get("/api/v1/session").json()["user"] == "bob"
    assert other.get("/api/v1/session").json()["user"] == "bob"


def test_a_token_sign_out_keeps_the_token(browser: TestClient, platform: Platform) -> None:
    me = browser.post("/api/v1/session", json={"token": platform.admin_token}).json()
    assert browser.delete("/api/v1/session", headers={"X-CSRF-Token": str(me["csrf"])}).status_code == 200
    admin = TestClient(browser.app, headers={"Authorization": f"Bearer {platform.admin_token}"})
    assert admin.get("/api/v1/apps").status_code == 200


def test_the_page_has_a_strict_csp_and_versioned_cached_assets(browser: TestClient) -> None:
    page = browser.get("/")
    assert page.status_code == 200 and page.headers["cache-control"] == "no-cache"
    csp = page.headers["content-security-policy"]
    assert "script-src 'self' 'sha256-" in csp and "frame-ancestors 'none'" in csp
    assert "{{base}}" not in page.text
    base = page.text.split('href="', 2)[1].split("/icon.svg")[0]  # /ui/<version>
    asset = browser.get(f"{base}/app.js", headers={"Accept-Encoding": "gzip"})
    assert asset.status_code == 200 and asset.headers["content-type"].startswith("text/javascript")
    assert "immutable" in asset.headers["cache-control"]
    stale = browser.get("/ui/oldversion/app.js")
    assert stale.status_code == 200 and stale.headers["cache-control"] == "no-cache"
    for bad in ("../app.py", "..%2Fdashboard.py", "index.html", "nope.js", ".hidden/x"):
        assert browser.get(f"{base}/{bad}").status_code == 404, bad
    assert browser.get("/status").status_code == 200


def test_assets_are_gzipped_once_and_missing_vendor_files_are_named(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text('<script type="importmap">{}</script><p>{{base}}</p>')
    (tmp_path / "app.js").write_text("export const x = 1;\n" * 100)
    assets = Assets(root=tmp_path)
    html, csp = assets.page()
    assert "make up" in html and "vendor/preact/preact.module.js" in html
    packed = assets.file("app.js", gzip_ok=True)
    assert packed is not None and packed[2] is True
    assert gzip.decompress(packed[0]) == (tmp_path / "app.js").read_bytes()
    for name in VENDOR_FILES:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("//")
    html, csp = Assets(root=tmp_path).page()
    assert html.startswith("<script") and "/ui/" in html and "'sha256-" in csp


def test_a_failed_sign_in_is_audited_as_a_failed_login(browser: TestClient, platform: Platform) -> None:
    browser.post("/api/v1/session", json={"user": "bob", "password": "not-his-password"})
    sign_in(browser)
    platform.audit.flush()
    admin = TestClient(browser.app, headers={"Authorization": f"Bearer {platform.admin_token}"})
    entries = admin.get("/api/v1/audit", params={"user": "bob"}).json()
    assert {(e["action"], e["result"]) for e in entries} >= {("sign_in", "failed"), ("sign_in", "ok")}
