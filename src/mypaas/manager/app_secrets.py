"""Secrets set outside the compose file (`mypaas secrets ls|set|rm APP`): what a compose file's
``external`` secrets refer to. Setting one makes a new release of the app (as a config var change
does); no answer ever holds a value."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from mypaas.domain import AppSpec, check_name, check_secret_name
from mypaas.errors import Conflict
from mypaas.manager.operations import op_dict
from mypaas.manager.records import AppContext, find_app, find_release, new_app, target_spec
from mypaas.manager.releases import Releases
from mypaas.manager.state.models import AppRow
from mypaas.manager.vault import Vault
from mypaas.states import AppState


class AppSecrets:
    def __init__(self, ctx: AppContext, *, vault: Vault, releases: Releases) -> None:
        self._ctx = ctx
        self._sessions = ctx.sessions
        self._vault = vault
        self._releases = releases

    def listing(self, name: str) -> list[dict[str, Any]]:
        """The app's secrets and configs, values masked."""
        with self._sessions() as s:
            app = find_app(s, name)
            return self._vault.listing(s, app, target_spec(s, app))

    def set(self, name: str, secret: str, value: bytes, user: str, team: str | None = None) -> dict[str, Any]:
        """Set secret ``secret`` of app ``name`` (made, without a release, if it does not exist yet, so
        that its first deploy finds it); a changed value makes a new release of a deployed app."""
        check_name(name)
        check_secret_name(secret)
        with self._ctx.deploy_lock, self._sessions.begin() as s:
            app = s.scalar(select(AppRow).where(AppRow.name == name))
            if app is not None and app.state == AppState.DELETING:
                raise Conflict(f"app {name} is being removed; try again in a moment", field="app")
            if app is None:
                app = new_app(s, name, team)
            digest, changed = self._vault.put(s, app, secret, value)
            op = None
            if changed and app.target_version is not None:
                rel = find_release(s, app, app.target_version)
                spec = self._vault.rebind(AppSpec.model_validate(rel.spec), secret, digest)
                what = f"set secret {secret}"
                op = self._releases.record_change(s, app, spec, dict(rel.config), "secret", user, what)
        if op is not None:
            self._ctx.change(name, "secret_set", f"secret {secret} set by {user}", user, op, secret=secret)
            self._ctx.wake()
        return {
            "secret": secret,
            "digest": digest[:12],
            "changed": changed,
            "operation": op_dict(op) if op is not None else None,
        }

    def remove(self, name: str, secret: str, user: str) -> None:
        """Forget a secret set with `mypaas secrets set` (refused while the app's release mounts it)."""
        with self._ctx.deploy_lock, self._sessions.begin() as s:
            app = find_app(s, name)
            self._vault.remove(s, app, secret, target_spec(s, app))
        self._ctx.events.record(name, "secret_removed", f"secret {secret} removed by {user}", {"user": user})
