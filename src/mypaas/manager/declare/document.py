"""The platform file of `mypaas export` / `mypaas apply` (``apiVersion: mypaas/v1``, ``kind: Platform``):
its typed shape, read strictly (an unknown key is one error naming its dotted path), and written in one
deterministic order so that two exports diff line by line.

A section left out of a file (``alerts``, ``hosts``) is not managed by it: apply leaves it alone, even
with ``--prune``. An app's ``spec`` is its release's spec as the platform normalised it from the compose
file (images by reference, pinned again at apply), without replica counts (``scale`` holds them) and
without secret values (``secrets`` names the ones it needs: values never leave the platform).
"""

from __future__ import annotations

from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mypaas.domain import AppSpec, check_domain, check_env_key, check_name, check_secret_name
from mypaas.errors import InvalidSpec
from mypaas.spec.yamlload import load_yaml

API_VERSION = "mypaas/v1"
KIND = "Platform"
MAX_DOCUMENT = 4 * 1024 * 1024  # bytes of a platform file


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SecretRef(_Strict):
    """A secret the app needs, by name only: set with `mypaas secrets set`, never written in the file."""

    secret: str


class Autoscale(_Strict):
    min: int = 1
    max: int = 1
    target_cpu_pct: float | None = None
    target_rps_per_replica: float | None = None
    cooldown_up_s: float = 30.0
    cooldown_down_s: float = 120.0


class AppDoc(_Strict):
    team: str | None = None  # None: the caller's team (a new app), or kept (an app that exists)
    spec: AppSpec
    scale: dict[str, int] = Field(default_factory=dict)
    config: dict[str, str] = Field(default_factory=dict)
    secrets: list[SecretRef] = Field(default_factory=list)
    domains: list[str] = Field(default_factory=list)
    autoscale: dict[str, Autoscale] = Field(default_factory=dict)


class AlertDoc(_Strict):
    kind: str
    webhook: str
    app: str | None = None
    threshold: float = 0.0
    for_s: float = 0.0
    allow_private: bool = False


class HostDoc(_Strict):
    labels: dict[str, str] = Field(default_factory=dict)


class PlatformDoc(_Strict):
    apiVersion: str = API_VERSION  # the file's own key, as Kubernetes spells it
    kind: str = KIND
    apps: dict[str, AppDoc] = Field(default_factory=dict)
    alerts: dict[str, AlertDoc] | None = None  # None: not managed by this file
    hosts: dict[str, HostDoc] | None = None  # None: not managed by this file


def parse(text: str, name: str = "platform.yml") -> PlatformDoc:
    """The platform file ``text``, checked; an InvalidSpec names the first key or value at fault."""
    if len(text.encode()) > MAX_DOCUMENT:
        raise InvalidSpec(f"{name} is larger than {MAX_DOCUMENT // 1024 // 1024} MiB", field="document")
    tree = load_yaml(text, name)
    if not isinstance(tree, dict):
        raise InvalidSpec(f"{name}: expected a mapping with apiVersion: {API_VERSION}", field="document")
    if tree.get("apiVersion") != API_VERSION or tree.get("kind") != KIND:
        raise InvalidSpec(f"{name}: expected apiVersion: {API_VERSION} and kind: {KIND}", field="apiVersion")
    _name_services(tree)
    try:
        doc = PlatformDoc.model_validate(tree)
    except ValidationError as exc:
        raise _one_line(exc, name) from exc
    _check_names(doc)
    return doc


def _name_services(tree: dict[str, Any]) -> None:
    """A service's name is its key in the file (the spec's own ``name`` field, filled in)."""
    apps = tree.get("apps")
    for app in apps.values() if isinstance(apps, dict) else ():
        spec = app.get("spec") if isinstance(app, dict) else None
        services = spec.get("services") if isinstance(spec, dict) else None
        for name, svc in services.items() if isinstance(services, dict) else ():
            if isinstance(svc, dict) and "name" not in svc:
                svc["name"] = name


def _one_line(exc: ValidationError, name: str) -> InvalidSpec:
    first = exc.errors()[0]
    path = ".".join(str(part) for part in first.get("loc", ()))
    if first.get("type") == "extra_forbidden":
        key = path.rpartition(".")[2]
        return InvalidSpec(f"{name}: unknown key {key!r} at {path}", field=path)
    return InvalidSpec(f"{name}: {path}: {first.get('msg')}", field=path)


def _check_names(doc: PlatformDoc) -> None:
    for app, body in doc.apps.items():
        check_name(app, f"apps.{app}")
        for svc in body.scale:
            if svc not in body.spec.services:
                raise InvalidSpec(f"apps.{app}.scale.{svc}: the spec has no service {svc!r}", field=svc)
        for key in body.config:
            check_env_key(key, f"apps.{app}.config.{key}")
        for ref in body.secrets:
            check_secret_name(ref.secret, f"apps.{app}.secrets")
        for domain in body.domains:
            check_domain(domain)
        for svc in body.autoscale:
            if svc not in body.spec.services:
                raise InvalidSpec(
                    f"apps.{app}.autoscale.{svc}: the spec has no service {svc!r}", field=f"apps.{app}"
                )
    for rule in doc.alerts or {}:
        check_name(rule, f"alerts.{rule}")


def dump(doc: PlatformDoc) -> str:
    """The file as YAML: keys sorted, lists in their own order (already sorted where order is free)."""
    data = doc.model_dump(mode="json", exclude_none=True)
    data["apps"] = {name: _app_data(doc.apps[name]) for name in sorted(doc.apps)}
    head = {"apiVersion": data.pop("apiVersion"), "kind": data.pop("kind")}
    text = yaml.safe_dump(head, sort_keys=False)
    return text + yaml.safe_dump(data, sort_keys=True, default_flow_style=False, allow_unicode=True)


def _app_data(app: AppDoc) -> dict[str, Any]:
    data = app.model_dump(mode="json", exclude_none=True, exclude={"spec"})
    data["spec"] = app.spec.model_dump(mode="json", exclude_defaults=True)
    for svc in data["spec"]["services"].values():
        svc.pop("name", None)  # its key
    return {key: value for key, value in data.items() if value not in ({}, [])}
