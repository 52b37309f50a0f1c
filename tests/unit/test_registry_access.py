"""The registry follows the roles: the token service's ``access`` claim for each kind of caller (decoded
from the JWT Distribution is given), and image imports allowed only into repositories the caller may push
to. The real REST API over the fake backend and a fake registry API."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient

from mypaas.cli import client as client_module
from mypaas.composer.fake import FakeBackend
from mypaas.manager.identity.policy import Role
from mypaas.manager.platform import Components, Platform, build_platform
from mypaas.registry.fake import FakeRegistry
from mypaas.router.fake import FakeRouter
from mypaas.settings import Settings
from tests.unit.cli.support import cli, isolate, one_error_line, serve
from tests.unit.cli.test_images import archive

ADDR = "127.0.0.1:5999"
SERVICE = "mypaas-registry"


class PushingBackend(FakeBackend):
    """The fake engine whose pushes land in the fake registry."""

    def __init__(self, registry: FakeRegistry) -> None:
        super().__init__()
        self.registry = registry

    def push_image(self, image: str, *, repository: str, tag: str, username: str, password: str) -> str:
        self.pushed_with = password
        return self.registry.push(repository.removeprefix(f"{ADDR}/"), tag, self.image(image).id)


@pytest.fixture
def registry() -> FakeRegistry:
    return FakeRegistry()


@pytest.fixture
def backend(registry: FakeRegistry) -> PushingBackend:
    fake = PushingBackend(registry)
    fake.add_image("web:1", exposed=(80,))
    return fake


@pytest.fixture
def platform(tmp_path: Path, backend: FakeBackend, registry: FakeRegistry) -> Platform:
    settings = Settings(home=tmp_path, registry_enabled=True, registry_addr=ADDR)
    parts = Components(backend=backend, router=FakeRouter(), probe=lambda _: True, registry=registry)
    return build_platform(settings, parts)


@pytest.fixture
def tokens(platform: Platform, api: TestClient) -> dict[str, str]:
    """Teams a (apps shop, blog) and b (app farm); their members' scoped tokens, an app token, the
    admin's own scoped token, a user in no team, and the hosts' pull token."""
    ident = platform.identity
    admin = ident.principal_of(platform.admin_token)
    for team in ("a", "b"):
        ident.add_team(team)
    for user, team, role in (
        ("alice", "a", Role.DEPLOYER),
        ("vera", "a", Role.VIEWER),
        ("bob", "b", Role.DEPLOYER),
    ):
        ident.add_user(user, None)
        ident.add_member(team, user, role)
    ident.add_user("nobody", None)
    for app, team in (("shop", "a"), ("blog", "a"), ("farm", "b")):
        r = api.post(f"/api/v1/apps/{app}/deploys", params={"team": team}, json={"image": "web:1"})
        assert r.status_code == 202, r.text

    def token(user: str, team: str, role: Role, app: str | None = None) -> str:
        return ident.create_token(admin, f"t-{user}-{app}", user=user, team=team, role=role, app=app).secret

    return {
        "admin": platform.admin_token,
        "admin-scoped": token("admin", "default", Role.DEPLOYER),
        "alice": token("alice", "a", Role.DEPLOYER),
        "alice-shop": token("alice", "a", Role.DEPLOYER, app="shop"),
        "vera": token("vera", "a", Role.VIEWER),
        "bob": token("bob", "b", Role.DEPLOYER),
        "nobody": token("nobody", "a", Role.VIEWER),  # not a member (any more): a token of no role
        "pull": ident.ensure_pull_token(platform.settings.home / "registry-pull-token"),
    }


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def granted(api: TestClient, token: str, *scopes: str) -> list[dict[str, Any]]:
    """The ``access`` claim of the registry token ``token`` gets for ``scopes``."""
    api.headers.pop("Authorization", None)
    r = api.get(
        "/api/v1/registry/token",
        params={"service": SERVICE, "scope": list(scopes)},
        headers=basic("x", token),
    )
    assert r.status_code == 200, r.text
    claims = jwt.decode(r.json()["token"], options={"verify_signature": False})
    assert claims["aud"] == SERVICE
    return list(claims["access"])


def actions(api: TestClient, token: str, scope: str) -> list[str]:
    (one,) = granted(api, token, scope)
    return list(one["actions"])


ALL = "pull,push,delete"
CASES = [
    # (who, scope, the actions granted)
    ("admin", f"repository:shop/web:{ALL}", ["pull", "push", "delete"]),
    ("admin", f"repository:mypaas/debian:{ALL}", ["pull", "push", "delete"]),
    ("admin", "registry:catalog:*", ["*"]),
    ("alice", f"repository:shop/web:{ALL}", ["pull", "push"]),
    ("alice", f"repository:blog/web:{ALL}", ["pull", "push"]),
    ("alice", "repository:shop:pull,push", ["pull", "push"]),
    ("alice", f"repository:farm/web:{ALL}", []),
    ("alice", f"repository:mypaas/debian:{ALL}", ["pull"]),
    ("alice", f"repository:mypaas/builder-python:{ALL}", ["pull"]),
    ("alice", f"repository:someone/shared:{ALL}", ["pull"]),
    ("alice", "repository:shop/web:*", []),
    ("alice", "registry:catalog:*", []),
    ("alice-shop", f"repository:shop/web:{ALL}", ["pull", "push"]),
    ("alice-shop", f"repository:blog/web:{ALL}", []),
    ("alice-shop", "repository:mypaas/debian:pull", ["pull"]),
    ("vera", f"repository:shop/web:{ALL}", ["pull"]),
    ("vera", f"repository:farm/web:{ALL}", []),
    ("vera", f"repository:mypaas/debian:{ALL}", ["pull"]),
    ("bob", f"repository:farm/web:{ALL}", ["pull", "push"]),
    ("bob", f"repository:shop/web:{ALL}", []),
    ("admin-scoped", f"repository:mypaas/debian:{ALL}", ["pull"]),
    ("admin-scoped", f"repository:shop/web:{ALL}", []),
    ("admin-scoped", "registry:catalog:*", []),
    ("nobody", f"repository:shop/web:{ALL}", []),
    ("nobody", f"repository:mypaas/debian:{ALL}", []),
    ("pull", f"repository:shop/web:{ALL}", ["pull"]),
    ("pull", f"repository:mypaas/debian:{ALL}", []),  # the hosts pull only what apps run
    ("pull", f"repository:someone/shared:{ALL}", []),
    ("pull", "registry:catalog:*", []),
]


def test_the_access_claim_follows_the_roles(api: TestClient, tokens: dict[str, str]) -> None:
    got = {(who, scope): actions(api, tokens[who], scope) for who, scope, _ in CASES}
    assert got == {(who, scope): expected for who, scope, expected in CASES}


def test_several_scopes_at_once_each_get_their_own_actions(api: TestClient, tokens: dict[str, str]) -> None:
    assert granted(api, tokens["alice"], "repository:shop/web:pull,push", "repository:farm/web:pull") == [
        {"type": "repository", "name": "shop/web", "actions": ["pull", "push"]},
        {"type": "repository", "name": "farm/web", "actions": []},
    ]


def test_docker_login_with_a_scoped_token(
    api: TestClient, tokens: dict[str, str], platform: Platform
) -> None:
    """``docker login`` asks for no scope (only ``account``): any valid token logs in with nothing granted;
    a wrong, revoked or expired one is 401 with the Basic challenge and one line."""
    api.headers.pop("Authorization", None)
    login = api.get(
        "/api/v1/registry/token",
        params={"service": SERVICE, "account": "alice"},
        headers=basic("alice", tokens["alice"]),
    )
    assert login.status_code == 200, login.text
    assert jwt.decode(login.json()["token"], options={"verify_signature": False})["access"] == []
    admin = platform.identity.principal_of(platform.admin_token)
    (mine,) = [t for t in platform.identity.tokens(admin, user="alice") if t["name"] == "t-alice-None"]
    platform.identity.revoke_token(admin, str(mine["id"]))
    for password, error in (
        ("mp_wrong", "invalid token"),
        (tokens["alice"], "token 't-alice-None' was revoked"),
    ):
        r = api.get("/api/v1/registry/token", params={"service": SERVICE}, headers=basic("alice", password))
        assert r.status_code == 401 and r.json()["error"] == error, r.text
        assert r.headers["www-authenticate"] == 'Basic realm="mypaas registry"'


def test_the_manager_pushes_with_the_admin_token(
    api: TestClient, tokens: dict[str, str], platform: Platform, backend: PushingBackend, tmp_path: Path
) -> None:
    """What the manager publishes (releases, imports) it pushes with the admin token, which may push
    anywhere; the hosts pull with the pull token, which may pull any app's repository."""
    data = archive(tmp_path).read_bytes()
    r = api.post(
        "/api/v1/images/import", params={"ref": "mypaas/debian:test", "change": "CMD /bin/sh"}, content=data
    )
    assert r.status_code == 200, r.text
    assert r.json()["registry"]["repository"] == "mypaas/debian"
    assert backend.pushed_with == platform.admin_token
    assert actions(api, backend.pushed_with, "repository:mypaas/debian:pull,push") == ["pull", "push"]
    assert actions(api, tokens["pull"], "repository:farm/web:pull") == ["pull"]


# -- importing an image: only into a repository the caller may push to ------------------------------

IMPORTS = [
    # (who, ref, allowed, or the error line)
    ("alice", "shop/base:1", None),
    ("alice", "blog:1", None),
    ("alice-shop", "shop/base:2", None),
    ("bob", "farm/base:1", None),
    ("admin", "mypaas/debian:mine", None),
    ("admin", "anything/else:1", None),
    (
        "alice",
        "farm/base:no",
        "writing 'farm/base' needs the deployer role on app 'farm' (you have no role there)",
    ),
    ("vera", "shop/base:no", "import_image needs the deployer role in a team"),  # the rule, first
    ("alice-shop", "blog/base:1", "this token is for app 'shop' only, not for 'blog/base' (app 'blog')"),
    (
        "alice",
        "mypaas/debian:bookworm",
        "only a platform admin writes 'mypaas/debian': mypaas/* are the platform's images",
    ),
    (
        "admin-scoped",
        "mypaas/builder-python:1",
        "only a platform admin writes 'mypaas/builder-python': mypaas/* are the platform's images",
    ),
    (
        "alice",
        "someone/shared:1",
        "'someone/shared' is no app's repository: name the image APP/NAME:TAG after an app of your team"
        " (only a platform admin writes other names)",
    ),
]


def test_imports_go_only_where_the_caller_may_push(
    api: TestClient, tokens: dict[str, str], backend: FakeBackend, registry: FakeRegistry, tmp_path: Path
) -> None:
    data = archive(tmp_path).read_bytes()
    for who, ref, error in IMPORTS:
        r = api.post(
            "/api/v1/images/import",
            params={"ref": ref, "change": "CMD /bin/sh"},
            content=data,
            headers={"Authorization": f"Bearer {tokens[who]}"},
        )
        if error is None:
            assert r.status_code == 200, (who, ref, r.text)
            assert ref in backend.images
        else:
            assert r.status_code == 403, (who, ref, r.text)
            field = "authorization" if who == "vera" else "ref"
            assert r.json() == {"error": error, "field": field}, r.text
            repo, _, tag = ref.rpartition(":")
            assert ref not in backend.images and tag not in registry.tags(repo)


def test_a_refused_import_is_one_line_in_the_cli(
    api: TestClient,
    platform: Platform,
    tokens: dict[str, str],
    backend: FakeBackend,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    isolate(monkeypatch, tmp_path / "home")
    server = serve(monkeypatch, api, platform)
    monkeypatch.setattr(client_module, "connect", lambda: server.client(tokens["alice"]))
    path = archive(tmp_path)

    line = one_error_line(cli("image", "import", str(path), "mypaas/debian:bookworm", "-c", "CMD /bin/sh"))
    assert line == "error: only a platform admin writes 'mypaas/debian': mypaas/* are the platform's images"
    line = one_error_line(cli("image", "import", str(path), "farm/base:1", "-c", "CMD /bin/sh"))
    assert line == "error: writing 'farm/base' needs the deployer role on app 'farm' (you have no role there)"
    done = cli("image", "import", str(path), "shop/base:1", "-c", "CMD /bin/sh")
    assert done.exit_code == 0, done.output
    assert done.stdout.startswith("imported shop/base:1 — registry digest sha256:")
    assert "mypaas/debian:bookworm" not in backend.images and "farm/base:1" not in backend.images
    client_module.settings.cache_clear()
