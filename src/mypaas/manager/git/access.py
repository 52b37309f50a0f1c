"""Who may push to an app: the signed-in user (found by their SSH key) needs what a deploy of that app
needs (policy.RULES["deploy"]: deployer on the app's team; a new app, in the team it would go to). A push
allowed gets a short-lived deployer token of that user for that app only, revoked when the push ends."""

from __future__ import annotations

from dataclasses import dataclass

from mypaas.manager.identity.policy import decide, rule_for
from mypaas.manager.identity.service import Identity

PUSH_TOKEN_TTL_S = 3600.0


@dataclass(frozen=True)
class Grant:
    """A push allowed: the app's team (the team a new app goes to), the token and its id."""

    team: str
    token: str
    token_id: int


def check_push(identity: Identity, user: str, app: str) -> str:
    """The team ``app`` is (or would be) in when ``user`` may deploy it; Forbidden/InvalidSpec/NotFound
    (their message is the pusher's one line) when not."""
    who = identity.principal_of_user(user)
    team = identity.team_of_app(app)
    if team is None:
        team = identity.team_for_new_app(who, None)
    decide(rule_for("deploy"), who, operation="push", team=team, app=app)
    return team


def grant_push(identity: Identity, user: str, app: str) -> Grant:
    """Check the push, then mint its token."""
    team = check_push(identity, user, app)
    new = identity.push_token(user, team, app, PUSH_TOKEN_TTL_S)
    return Grant(team, new.secret, int(new.info["id"]))
