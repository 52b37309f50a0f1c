"""A cast of callers for the access tests, made through the platform's own identity service: team "a"
(owner ann, deployer dan, viewer vic) owning app "shop", team "b" (deployer bob) owning app "blog", an
app token of dan's for "shop", an expired and a revoked token, the hosts' pull token; and the platform
admin (the admin-token file's token)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from fastapi.testclient import TestClient
from sqlalchemy import update

from mypaas.manager.identity.policy import Role
from mypaas.manager.platform import Platform
from mypaas.manager.state.models import TokenRow

# principal -> (user, team, role, app) of its token; None: a special one made below
MEMBERS = {
    "owner": ("ann", "a", Role.OWNER, None),
    "deployer": ("dan", "a", Role.DEPLOYER, None),
    "viewer": ("vic", "a", Role.VIEWER, None),
    "other_deployer": ("bob", "b", Role.DEPLOYER, None),
    "app_token": ("dan", "a", Role.DEPLOYER, "shop"),
}
PRINCIPALS = ("admin", *MEMBERS, "expired", "revoked", "pull", "anonymous")


@dataclass
class Cast:
    platform: Platform
    tokens: dict[str, str | None] = field(default_factory=dict)

    def headers(self, who: str) -> dict[str, str]:
        token = self.tokens[who]
        return {"Authorization": f"Bearer {token}"} if token else {}

    def client(self, api: TestClient, who: str) -> TestClient:
        """A client of the same app acting as ``who`` (the fixture's client stays the admin's)."""
        other = TestClient(api.app)
        other.headers.update(self.headers(who))
        return other


def make_teams(platform: Platform) -> None:
    identity = platform.identity
    for user in ("ann", "dan", "vic", "bob"):
        identity.add_user(user, None)
    identity.add_team("a", owner="ann")
    identity.add_team("b", owner="bob")
    identity.add_member("a", "dan", Role.DEPLOYER)
    identity.add_member("a", "vic", Role.VIEWER)


def deploy_apps(api: TestClient, apps: dict[str, str]) -> None:
    """Deploy each app (name -> team) as the admin, from image web:1."""
    for app, team in apps.items():
        r = api.post(f"/api/v1/apps/{app}/deploys", params={"team": team}, json={"image": "web:1"})
        assert r.status_code == 202, r.text


def make_cast(platform: Platform) -> Cast:
    """The tokens of every principal (the teams and apps must be there: ``make_teams``, ``deploy_apps``)."""
    identity = platform.identity
    admin = identity.principal_of(platform.admin_token)
    cast = Cast(platform, {"admin": platform.admin_token, "anonymous": None})
    for who, (user, team, role, app) in MEMBERS.items():
        cast.tokens[who] = identity.create_token(admin, who, user=user, team=team, role=role, app=app).secret
    old = identity.create_token(admin, "old", user="dan", team="a", role=Role.DEPLOYER)
    cast.tokens["expired"] = old.secret
    revoked = identity.create_token(admin, "gone", user="dan", team="a", role=Role.DEPLOYER)
    identity.revoke_token(admin, str(revoked.info["id"]))
    cast.tokens["revoked"] = revoked.secret
    with platform.sessions.begin() as s:
        s.execute(update(TokenRow).where(TokenRow.name == "old").values(expires_at=time.time() - 1))
    cast.tokens["pull"] = identity.ensure_pull_token(platform.settings.home / "pull-token")
    return cast
