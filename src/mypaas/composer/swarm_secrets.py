"""The swarm backend's secrets and configs: Swarm's own secrets and configs (Swarm keeps them encrypted
in its store and hands each task's host only those its tasks mount).

Each value is one engine object named by app, name and digest, so a changed value makes a new object
(and a new service spec) while a rollback finds the old one, if it is still there, or makes it again
from the manager's store. An object that no service of its app references any more is removed when a
service of the app goes.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Mapping
from typing import Any

import docker
import docker.errors

from mypaas.composer.base import LABEL_APP, LABEL_PLATFORM, SecretFile
from mypaas.composer.errors import engine_errors, is_status

LABEL_SECRET = "mypaas.secret"  # noqa: S105 -- a label key: the app's secret or config name
LABEL_DIGEST = "mypaas.digest"
MAX_NAME = 64  # Swarm's limit for the name of a secret or config


def object_name(app: str, file: SecretFile) -> str:
    """The engine's name of one value: ``APP_NAME_DIGEST12``; one too long for Swarm is shortened,
    with a hash of the app and name that keeps it unique."""
    name = f"{app}_{file.name}_{file.digest[:12]}"
    if len(name) <= MAX_NAME:
        return name
    both = hashlib.sha256(f"{app}/{file.name}".encode()).hexdigest()[:8]
    return f"{app[:24]}_{file.name[:14]}_{both}_{file.digest[:12]}"


def references(
    app: str, files: tuple[SecretFile, ...], ids: Mapping[str, str] | None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The container spec's ``Secrets`` and ``Configs`` for ``files``, in the engine's JSON (``ids``:
    engine name -> id; none: the same references without ids, for the service's key)."""
    secrets: list[dict[str, Any]] = []
    configs: list[dict[str, Any]] = []
    for file in files:
        name = object_name(app, file)
        owner = {"Name": file.target, "UID": str(file.uid), "GID": str(file.gid), "Mode": file.mode}
        engine_id = (ids or {}).get(name, "")
        if file.kind == "secret":
            secrets.append({"SecretID": engine_id, "SecretName": name, "File": owner})
        else:
            configs.append({"ConfigID": engine_id, "ConfigName": name, "File": owner})
    return secrets, configs


class SwarmFiles:
    """Makes and removes the Swarm objects of an app's secrets and configs (through the manager)."""

    def __init__(self, api: docker.APIClient) -> None:
        self._api = api

    def ensure(self, platform: str, app: str, files: tuple[SecretFile, ...]) -> dict[str, str]:
        """Make the objects ``files`` need (idempotent); answers engine name -> id."""
        ids: dict[str, str] = {}
        for file in files:
            name = object_name(app, file)
            if name not in ids:
                ids[name] = self._ensure_one(platform, app, file, name)
        return ids

    def _ensure_one(self, platform: str, app: str, file: SecretFile, name: str) -> str:
        labels = {
            LABEL_PLATFORM: platform,
            LABEL_APP: app,
            LABEL_SECRET: file.name,
            LABEL_DIGEST: file.digest,
        }
        with engine_errors(f"making the {file.kind} {file.name} of {app}"):
            found = self._find(file.kind, name)
            if found:
                return found
            try:
                if file.kind == "secret":
                    made = self._api.create_secret(name, file.data, labels=labels)
                else:
                    made = self._api.create_config(name, file.data, labels=labels)
            except docker.errors.APIError as exc:
                if not is_status(exc, 409):  # made meanwhile
                    raise
                return self._find(file.kind, name)
        return str(made["ID"])

    def _find(self, kind: str, name: str) -> str:
        listed = (self._api.secrets if kind == "secret" else self._api.configs)(filters={"name": name})
        return next((str(o["ID"]) for o in listed if o["Spec"]["Name"] == name), "")

    def prune(self, platform: str, app: str) -> None:
        """Remove the app's objects that no service references (in its spec or its previous one)."""
        labels = {"label": [f"{LABEL_PLATFORM}={platform}", f"{LABEL_APP}={app}"]}
        with engine_errors(f"removing the unused secrets and configs of {app}"):
            objects = [("secret", o["ID"]) for o in self._api.secrets(filters=labels)]
            objects += [("config", o["ID"]) for o in self._api.configs(filters=labels)]
            if not objects:
                return
            used = _referenced(self._api.services(filters={"label": f"{LABEL_PLATFORM}={platform}"}))
            for kind, object_id in objects:
                if object_id not in used:
                    self._remove(kind, object_id)

    def remove_app(self, platform: str, app: str) -> None:
        labels = {"label": [f"{LABEL_PLATFORM}={platform}", f"{LABEL_APP}={app}"]}
        with engine_errors(f"removing the secrets and configs of {app}"):
            for o in self._api.secrets(filters=labels):
                self._remove("secret", o["ID"])
            for o in self._api.configs(filters=labels):
                self._remove("config", o["ID"])

    def _remove(self, kind: str, object_id: str) -> None:
        remove = self._api.remove_secret if kind == "secret" else self._api.remove_config
        with contextlib.suppress(docker.errors.NotFound):
            try:
                remove(object_id)
            except docker.errors.APIError as exc:
                if not is_status(exc, 400):  # still in use by a service: it goes with the next prune
                    raise


def _referenced(services: list[dict[str, Any]]) -> set[str]:
    used: set[str] = set()
    for service in services:
        for spec in (service.get("Spec") or {}, service.get("PreviousSpec") or {}):
            container = (spec.get("TaskTemplate") or {}).get("ContainerSpec") or {}
            for ref in [*(container.get("Secrets") or []), *(container.get("Configs") or [])]:
                used.add(str(ref.get("SecretID") or ref.get("ConfigID") or ""))
    return used
