"""Preview apps: an app of its own per git branch of an app (``mypaas deploy APP DIR --preview BRANCH``),
named by ``preview_app_name``, made in the app's team with the app's config vars (refreshed on each
preview deploy) and its secrets only when the app's owner allowed it, at its own URL, one replica per
service. ``previews on|off`` keeps whether an app has them and how many may exist at once; removing the
app removes its previews (apps.py); ``previews rm`` removes one completely, volumes included."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mypaas.domain import AppSpec, check_branch, preview_app_name
from mypaas.errors import Conflict, InvalidSpec
from mypaas.manager.apps import Apps
from mypaas.manager.records import AppContext, find_app, find_release
from mypaas.manager.state.db import reading
from mypaas.manager.state.models import (
    AppRow,
    OperationRow,
    PreviewRow,
    PreviewSettingsRow,
    SecretRow,
    TeamRow,
)
from mypaas.manager.vault import Vault
from mypaas.states import AppState

DEFAULT_LIMIT = 3
MAX_LIMIT = 100


@dataclass(frozen=True)
class PreviewPlan:
    """A deploy of ``parent``'s preview app ``name`` for ``branch``, checked before its upload is read
    into a release (the deploy's own transaction checks it again: ``PreviewDeploy``)."""

    parent: str
    branch: str
    name: str
    team: str | None
    left_out: tuple[str, ...]  # the parent's secrets the preview does not get

    @property
    def warnings(self) -> tuple[str, ...]:
        if not self.left_out:
            return ()
        names = ", ".join(self.left_out)
        return (
            f"preview {self.name}: secrets of {self.parent} left out ({names}): "
            f"`mypaas previews on {self.parent} --with-secrets` copies them",
        )

    def shape(self, spec: AppSpec) -> AppSpec:
        """The preview's spec: one replica per service (a global service stays one per host)."""
        services = {
            n: svc if svc.mode == "global" else svc.model_copy(update={"replicas": 1})
            for n, svc in spec.services.items()
        }
        return spec.model_copy(update={"services": services})


class Previews:
    def __init__(self, ctx: AppContext, *, vault: Vault, apps: Apps) -> None:
        self._ctx = ctx
        self._sessions = ctx.sessions
        self._vault = vault
        self._apps = apps

    # -- settings -------------------------------------------------------------------------------

    def configure(
        self, name: str, *, enabled: bool, limit: int | None, with_secrets: bool | None
    ) -> dict[str, Any]:
        """Turn previews on (``limit`` and ``with_secrets`` as given, else as they were) or off (what runs
        stays); answers the settings and the previews that exist."""
        if limit is not None and not 1 <= limit <= MAX_LIMIT:
            raise InvalidSpec(f"limit must be between 1 and {MAX_LIMIT}", field="limit")
        with self._sessions.begin() as s:
            app = find_app(s, name)
            if _preview_of(s, app.id) is not None:
                raise Conflict(f"app {name} is a preview app: it has no previews of its own", field="app")
            row = s.get(PreviewSettingsRow, app.id)
            if row is None:
                row = PreviewSettingsRow(app_id=app.id, max_previews=DEFAULT_LIMIT, with_secrets=False)
                s.add(row)
            row.enabled = enabled
            if limit is not None:
                row.max_previews = limit
            if with_secrets is not None:
                row.with_secrets = with_secrets
        self._ctx.events.record(name, "previews", f"previews {'on' if enabled else 'off'}", {})
        return {**self.settings(name), "previews": [p["name"] for p in self.listing(name)]}

    def settings(self, name: str) -> dict[str, Any]:
        with self._sessions() as s:
            app = find_app(s, name, deleting=True)
            return _settings_dict(s.get(PreviewSettingsRow, app.id))

    def about(self, name: str) -> dict[str, Any]:
        """What `GET /apps/NAME` adds: the app's preview settings, or the app it previews."""
        with self._sessions() as s:
            app = find_app(s, name, deleting=True)
            link = _preview_of(s, app.id)
            parent = s.get(AppRow, link.parent_id) if link is not None else None
            return {
                "previews": _settings_dict(s.get(PreviewSettingsRow, app.id)),
                "preview_of": parent.name if parent is not None else None,
                "preview_branch": link.branch if link is not None else None,
            }

    def links(self) -> dict[str, tuple[str, str]]:
        """Every preview app: its name -> (the app it previews, its branch)."""
        with reading(self._sessions) as s:  # a listing's: waits for no write in progress
            rows = s.execute(select(PreviewRow.app_id, PreviewRow.parent_id, PreviewRow.branch)).all()
            if not rows:  # the common case: no app reads of every app's name (a listing of 10,000 apps)
                return {}
            names = dict(s.execute(select(AppRow.id, AppRow.name)).all())
        return {names[a]: (names[p], b) for a, p, b in rows if a in names and p in names}

    def parent_of(self, name: str) -> str | None:
        """The app that ``name`` is a preview of (None: not a preview app)."""
        return self.links().get(name, (None, ""))[0]

    # -- listing --------------------------------------------------------------------------------

    def listing(self, name: str) -> list[dict[str, Any]]:
        """The app's previews: name, branch, state, release and when each was made."""
        with self._sessions() as s:
            app = find_app(s, name, deleting=True)
            rows = s.execute(
                select(PreviewRow, AppRow)
                .join(AppRow, AppRow.id == PreviewRow.app_id)
                .where(PreviewRow.parent_id == app.id)
                .order_by(PreviewRow.created_at)
            ).all()
            return [
                {
                    "name": preview.name,
                    "branch": link.branch,
                    "status": _status(preview),
                    "release": preview.current_version,
                    "created_at": link.created_at,
                }
                for link, preview in rows
            ]

    # -- deploying ------------------------------------------------------------------------------

    def plan(self, parent: str, branch: str) -> PreviewPlan:
        """A preview deploy, refused in one line when it cannot be (previews off, no such app, the
        limit reached, not a branch name, its name taken by another app)."""
        check_branch(branch)
        with self._sessions() as s:
            app = find_app(s, parent)
            name = self._check(s, app, branch)
            team = s.scalar(select(TeamRow.name).where(TeamRow.id == app.team_id))
            settings = s.get(PreviewSettingsRow, app.id)
            left_out: tuple[str, ...] = ()
            if settings is None or not settings.with_secrets:
                left_out = tuple(_named_secrets(s, app.id))
        return PreviewPlan(parent=parent, branch=branch, name=name, team=team, left_out=left_out)

    def _check(self, s: Session, app: AppRow, branch: str, fresh: int | None = None) -> str:
        """The preview's name, once the app may have one more (in the caller's session); ``fresh``: the
        row the deploy just made for it."""
        settings = s.get(PreviewSettingsRow, app.id)
        if settings is None or not settings.enabled:
            raise Conflict(
                f"previews are off for app {app.name}: `mypaas previews on {app.name}` turns them on",
                field="preview",
            )
        name = preview_app_name(app.name, branch)
        taken = s.scalar(select(AppRow).where(AppRow.name == name, AppRow.id != fresh))
        link = _preview_of(s, taken.id) if taken is not None else None
        if taken is not None and (link is None or link.parent_id != app.id or link.branch != branch):
            raise Conflict(
                f"app {name} exists and is not the preview of {app.name} {branch}", field="preview"
            )
        if link is None:
            others = [
                n
                for n, state in s.execute(
                    select(AppRow.name, AppRow.state)
                    .join(PreviewRow, PreviewRow.app_id == AppRow.id)
                    .where(PreviewRow.parent_id == app.id)
                ).all()
                if state != AppState.DELETING
            ]
            if len(others) >= settings.max_previews:
                raise Conflict(
                    f"app {app.name} has {len(others)} previews, its limit ({', '.join(sorted(others))}): "
                    f"`mypaas previews rm {app.name} BRANCH` removes one, `mypaas previews on {app.name} "
                    "--limit N` raises it",
                    field="preview",
                )
        return name

    def hook(self, plan: PreviewPlan) -> PreviewDeploy:
        return PreviewDeploy(self, plan)

    def adopt(self, s: Session, app: AppRow, plan: PreviewPlan) -> None:
        """In the deploy's transaction: check again, link a new preview to its app, copy the secrets."""
        parent = find_app(s, plan.parent)
        if _preview_of(s, app.id) is None:
            if app.target_version is not None or app.releases:
                raise Conflict(f"app {app.name} exists and is not a preview", field="preview")
            self._check(s, parent, plan.branch, fresh=app.id)
            app.team_id = parent.team_id
            s.add(PreviewRow(app_id=app.id, parent_id=parent.id, branch=plan.branch))
            s.flush()
        else:
            self._check(s, parent, plan.branch)
        settings = s.get(PreviewSettingsRow, parent.id)
        if settings is not None and settings.with_secrets:
            self._vault.copy_named(s, parent, app)

    def config(self, s: Session, app: AppRow, plan: PreviewPlan) -> dict[str, str]:
        """The preview's config vars: its app's, over those set on the preview itself."""
        parent = find_app(s, plan.parent)
        own = dict(find_release(s, app, app.target_version).config) if app.target_version else {}
        return own | (
            dict(find_release(s, parent, parent.target_version).config) if parent.target_version else {}
        )

    # -- removing -------------------------------------------------------------------------------

    def remove(self, parent: str, branch: str, user: str) -> tuple[str, OperationRow | None]:
        """Remove the preview of ``parent`` for ``branch`` with its volumes: (its name, the removal's
        operation, or None when there is none — removed already: nothing to do)."""
        with self._sessions() as s:
            app = find_app(s, parent, deleting=True)
            link = s.scalar(
                select(PreviewRow).where(PreviewRow.parent_id == app.id, PreviewRow.branch == branch)
            )
            preview = s.get(AppRow, link.app_id) if link is not None else None
            if preview is None:
                return preview_app_name(parent, branch), None
            name, op_id, deleting = preview.name, preview.operation_id, preview.state == AppState.DELETING
        if deleting:  # removed already, or being removed: that removal is the answer
            return name, self._ctx.operations.get(op_id) if op_id else None
        return name, self._apps.delete(name, user, volumes=True)


class PreviewDeploy:
    """What ``Releases.deploy`` calls for a preview (its ``DeployHook``)."""

    def __init__(self, previews: Previews, plan: PreviewPlan) -> None:
        self._previews, self._plan = previews, plan

    def adopt(self, s: Session, app: AppRow) -> None:
        self._previews.adopt(s, app, self._plan)

    def config(self, s: Session, app: AppRow) -> dict[str, str]:
        return self._previews.config(s, app, self._plan)


def _preview_of(s: Session, app_id: int) -> PreviewRow | None:
    return s.get(PreviewRow, app_id)


def _named_secrets(s: Session, app_id: int) -> list[str]:
    """The app's secrets set with `mypaas secrets set` (a deploy's own values are the deploy's)."""
    return sorted(
        s.scalars(
            select(SecretRow.name).where(SecretRow.app_id == app_id, SecretRow.current, SecretRow.name != "")
        )
    )


def _settings_dict(row: PreviewSettingsRow | None) -> dict[str, Any]:
    if row is None:
        return {"enabled": False, "limit": DEFAULT_LIMIT, "with_secrets": False}
    return {"enabled": row.enabled, "limit": row.max_previews, "with_secrets": row.with_secrets}


def _status(app: AppRow) -> str:
    """One word for a preview's state: deleting, stopped, deploying (a rollout or build in flight),
    running, or failed (no release ever rolled out)."""
    if app.state != AppState.RUNNING:
        return app.state.value
    if app.operation_id or app.target_version != app.current_version:
        return "deploying"
    return "running" if app.current_version is not None else "failed"
