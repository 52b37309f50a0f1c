"""What `mypaas apply` would change: the platform file against the platform as exported now, as a list of
changes (``+`` made, ``~`` changed, ``-`` removed) in a fixed order. Pure: no I/O. Removals are planned
only with ``prune``; without it they are listed as ``kept``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mypaas.domain import AppSpec
from mypaas.manager.changes import spec_changes
from mypaas.manager.declare.document import AlertDoc, AppDoc, Autoscale, HostDoc, PlatformDoc

CREATE, CHANGE, REMOVE = "+", "~", "-"


@dataclass(frozen=True)
class Change:
    """One step: ``op`` (+ ~ -), ``kind`` (app, spec, scale, config, secret, domain, autoscale, alert,
    label), the file's path of the thing (``apps.shop.scale.web``), what to show, and the value to set."""

    op: str
    kind: str
    path: str
    detail: str = ""
    app: str | None = None
    value: Any = None

    def as_dict(self) -> dict[str, Any]:
        return {"op": self.op, "kind": self.kind, "path": self.path, "detail": self.detail, "app": self.app}


@dataclass
class Plan:
    changes: list[Change] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # what --prune would remove

    @property
    def empty(self) -> bool:
        return not self.changes

    def apps(self) -> list[str]:
        """The apps the plan changes, in order."""
        return list(dict.fromkeys(c.app for c in self.changes if c.app is not None and c.kind != "alert"))

    def as_dict(self) -> dict[str, Any]:
        return {"changes": [c.as_dict() for c in self.changes], "kept": self.kept, "empty": self.empty}


def comparable(spec: AppSpec) -> AppSpec:
    """``spec`` as the file holds it: no pinned image ids (pinned again at apply), no replica counts
    (the app's ``scale``), no secret digests or inline values (values never leave the platform)."""
    services = {
        name: svc.model_copy(update={"image_id": None, "replicas": None})
        for name, svc in sorted(spec.services.items())
    }
    blank = {"digest": "", "content": None}
    secrets = {k: v.model_copy(update=blank) for k, v in sorted(spec.secrets.items())}
    configs = {k: v.model_copy(update=blank) for k, v in sorted(spec.configs.items())}
    return spec.model_copy(update={"services": services, "secrets": secrets, "configs": configs})


def plan(want: PlatformDoc, have: PlatformDoc, *, prune: bool) -> Plan:
    out = Plan()
    for name in sorted(set(want.apps) | set(have.apps)):
        _app(out, name, want.apps.get(name), have.apps.get(name), prune)
    if want.alerts is not None:
        _alerts(out, want.alerts, have.alerts or {}, prune)
    if want.hosts is not None:
        _hosts(out, want.hosts, have.hosts or {}, prune)
    return out


def _removal(out: Plan, prune: bool, change: Change) -> None:
    if prune:
        out.changes.append(change)
    else:
        out.kept.append(change.path)


def _app(out: Plan, name: str, want: AppDoc | None, have: AppDoc | None, prune: bool) -> None:
    where = f"apps.{name}"
    if want is None:
        _removal(out, prune, Change(REMOVE, "app", where, "app removed (volumes kept)", name))
        return
    spec = comparable(want.spec)
    if have is None:
        services = ", ".join(spec.services)
        out.changes.append(Change(CREATE, "app", where, f"new app: {services}", name, spec))
    elif spec != comparable(have.spec):
        diff = spec_changes(comparable(have.spec), spec, None)
        out.changes.append(Change(CHANGE, "spec", f"{where}.spec", _spec_detail(diff.as_dict()), name, spec))
    before = have or AppDoc(spec=AppSpec(services={}))
    _scale(out, name, want, before)
    _mapping(out, name, "config", want.config, before.config, prune)
    _secrets(out, name, want, before, prune)
    _domains(out, name, want.domains, before.domains, prune)
    _autoscale(out, name, want.autoscale, before.autoscale, prune)


def _spec_detail(diff: Mapping[str, Any]) -> str:
    parts = [f"+{s}" for s in diff["added"]] + [f"-{s}" for s in diff["removed"]]
    parts += [f"{s} ({', '.join(fields)})" for s, fields in diff["changed"].items()]
    parts += [f"top-level {key}" for key in diff["top"]]
    return "new release: " + ("; ".join(parts) or "secrets or configs")


def _scale(out: Plan, name: str, want: AppDoc, have: AppDoc) -> None:
    for svc, count in sorted(want.scale.items()):
        before = have.scale.get(svc)
        if before == count:
            continue
        if before is None and have.spec.services.get(svc) is None and count == 1:
            continue  # a new service starts with one replica
        shown = "new" if before is None else str(before)
        path = f"apps.{name}.scale.{svc}"
        out.changes.append(Change(CHANGE, "scale", path, f"{shown} → {count} replicas", name, (svc, count)))


def _mapping(
    out: Plan,
    name: str,
    kind: str,
    want: Mapping[str, str],
    have: Mapping[str, str],
    prune: bool,
) -> None:
    for key in sorted(set(want) | set(have)):
        path = f"apps.{name}.{kind}.{key}"
        if key not in want:
            _removal(out, prune, Change(REMOVE, kind, path, "unset", name, key))
        elif key not in have:
            out.changes.append(Change(CREATE, kind, path, "set", name, (key, want[key])))
        elif want[key] != have[key]:
            out.changes.append(Change(CHANGE, kind, path, "new value", name, (key, want[key])))


def _secrets(out: Plan, name: str, want: AppDoc, have: AppDoc, prune: bool) -> None:
    """Secrets are named, never valued: apply checks those named exist; it removes one only with prune."""
    wanted = {ref.secret for ref in want.secrets}
    for secret in sorted({ref.secret for ref in have.secrets} - wanted):
        path = f"apps.{name}.secrets.{secret}"
        _removal(out, prune, Change(REMOVE, "secret", path, "secret removed", name, secret))


def _domains(out: Plan, name: str, want: list[str], have: list[str], prune: bool) -> None:
    for domain in sorted(set(want) - set(have)):
        out.changes.append(Change(CREATE, "domain", f"apps.{name}.domains.{domain}", "", name, domain))
    for domain in sorted(set(have) - set(want)):
        _removal(out, prune, Change(REMOVE, "domain", f"apps.{name}.domains.{domain}", "", name, domain))


def _autoscale(
    out: Plan, name: str, want: Mapping[str, Autoscale], have: Mapping[str, Autoscale], prune: bool
) -> None:
    for svc in sorted(set(want) | set(have)):
        path = f"apps.{name}.autoscale.{svc}"
        if svc not in want:
            _removal(out, prune, Change(REMOVE, "autoscale", path, "autoscaling off", name, svc))
        elif want[svc] != have.get(svc):
            op = CREATE if svc not in have else CHANGE
            policy = want[svc]
            detail = f"{policy.min}..{policy.max} replicas"
            out.changes.append(Change(op, "autoscale", path, detail, name, (svc, policy)))


def _alerts(out: Plan, want: Mapping[str, AlertDoc], have: Mapping[str, AlertDoc], prune: bool) -> None:
    for rule in sorted(set(want) | set(have)):
        path = f"alerts.{rule}"
        if rule not in want:
            _removal(out, prune, Change(REMOVE, "alert", path, have[rule].kind, have[rule].app, rule))
        elif want[rule] != have.get(rule):
            op = CREATE if rule not in have else CHANGE
            body = want[rule]
            out.changes.append(Change(op, "alert", path, body.kind, body.app, (rule, body)))


def _hosts(out: Plan, want: Mapping[str, HostDoc], have: Mapping[str, HostDoc], prune: bool) -> None:
    for host in sorted(want):
        before = have[host].labels if host in have else {}
        after = want[host].labels
        for key in sorted(set(after) | set(before)):
            path = f"hosts.{host}.labels.{key}"
            if key not in after:
                _removal(out, prune, Change(REMOVE, "label", path, "", None, (host, key)))
            elif after[key] != before.get(key):
                op = CREATE if key not in before else CHANGE
                out.changes.append(Change(op, "label", path, after[key], None, (host, key, after[key])))
