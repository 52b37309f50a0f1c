"""The apps' named volumes: what `mypaas volumes ls|rm` sees and removes. A volume outlives its app
unless the app was removed with ``--volumes``; a later deploy of the same app name mounts it again.
A volume that a container mounts, or that an app still declares, is not removed."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import and_, select

from mypaas.composer.base import VolumeInfo
from mypaas.domain import AppSpec
from mypaas.errors import Conflict, InvalidSpec
from mypaas.manager.records import AppContext, no_app
from mypaas.manager.state.models import AppRow, ReleaseRow
from mypaas.states import AppState

VOLUME_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,254}")  # the engine's volume names


class Volumes:
    def __init__(self, ctx: AppContext) -> None:
        self._ctx = ctx

    def _apps(self) -> dict[str, tuple[AppState, set[str]]]:
        """Each app's state and the named volumes its target release declares."""
        with self._ctx.sessions() as s:  # one query, not one per app
            rows = s.execute(
                select(AppRow.name, AppRow.state, ReleaseRow.spec).outerjoin(
                    ReleaseRow,
                    and_(ReleaseRow.app_id == AppRow.id, ReleaseRow.version == AppRow.target_version),
                )
            ).all()
        return {
            name: (state, set(AppSpec.model_validate(spec).volumes) if spec is not None else set())
            for name, state, spec in rows
        }

    def list(self, app: str | None = None) -> list[dict[str, Any]]:
        """The platform's app volumes (of ``app`` only, when given), those of removed apps included."""
        apps = self._apps()
        found = [
            _volume_dict(v, apps.get(v.app))
            for v in self._ctx.backend.list_volumes(self._ctx.platform_id)
            if app is None or v.app == app
        ]
        if app is not None and not found and app not in apps:  # nothing, and no such app: a typo?
            with self._ctx.sessions() as s:
                raise no_app(s, app)
        return found

    def remove(self, name: str, user: str) -> dict[str, Any]:
        """Remove one volume: refused (409) while a container mounts it or its app still uses it."""
        if not name:
            raise InvalidSpec("a volume name is needed", field="name")
        if not VOLUME_NAME.fullmatch(name):  # the name goes into the engine's URL: only a volume's
            raise InvalidSpec(f"invalid volume name {name[:80]!r}: letters, digits and _ . -", field="name")
        volumes = self._ctx.backend.list_volumes(self._ctx.platform_id)
        found = next((v for v in volumes if v.name == name), None)
        if found is not None:
            self._check_unused(found)
        self._ctx.backend.remove_volume(self._ctx.platform_id, name)  # NotFound when it has none such
        app = found.app if found is not None else ""
        self._ctx.events.record(app, "volume_removed", f"volume {name} removed by {user}", {"user": user})
        return {"name": name, "app": app, "removed": True}

    def _check_unused(self, v: VolumeInfo) -> None:
        if v.used_by:
            raise Conflict(
                f"volume {v.name} is in use by app {v.app} (container {', '.join(v.used_by)})", field="name"
            )
        owner = self._apps().get(v.app)
        if owner is not None and owner[0] != AppState.DELETING and v.volume in owner[1]:
            raise Conflict(
                f"volume {v.name} belongs to app {v.app}, which still uses it "
                f"(mypaas rm {v.app} --volumes removes the app with its volumes)",
                field="name",
            )


def _volume_dict(v: VolumeInfo, app: tuple[AppState, set[str]] | None) -> dict[str, Any]:
    """A volume as the API shows it; ``app_state`` is ``removed`` once its app is gone."""
    return {
        "name": v.name,
        "app": v.app,
        "volume": v.volume,
        "app_state": app[0].value if app is not None else "removed",
        "used_by": list(v.used_by),
        "created": v.created,
    }
