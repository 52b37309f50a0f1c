"""`mypaas export` and `mypaas apply`: the platform's desired state written as one file, and a file
applied back through the same services the CLI calls (deploys, config, scale, domains, autoscaling,
alert rules, host labels). Apply checks everything it can before it changes anything (the file, the
secrets it names, what only the compose front door may grant); then it runs the plan in order and,
when a step fails, stops and says which app failed and what was already applied."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import aliased

from mypaas.domain import AppSpec, ServiceSpec
from mypaas.errors import Conflict, InvalidSpec, MyPaasError, NotFound, restated
from mypaas.manager.app_secrets import AppSecrets
from mypaas.manager.apps import Apps
from mypaas.manager.declare.checks import check_changes, policy_of
from mypaas.manager.declare.document import (
    AlertDoc,
    AppDoc,
    Autoscale,
    HostDoc,
    PlatformDoc,
    SecretRef,
)
from mypaas.manager.declare.kubernetes import KubeApp, dump_all, manifests
from mypaas.manager.declare.plan import Change, Plan, comparable, plan
from mypaas.manager.hosts.service import Hosts
from mypaas.manager.operations import op_dict
from mypaas.manager.records import AppContext, find_app, find_release
from mypaas.manager.releases import DeployRequest, Releases
from mypaas.manager.state.models import AppRow, PreviewRow, ReleaseRow, TeamRow
from mypaas.manager.vault import Vault
from mypaas.monitor.alerts import Rule
from mypaas.monitor.automation import Automation
from mypaas.settings import Settings
from mypaas.spec.admission import admit
from mypaas.spec.hardening import Hardening, harden
from mypaas.spec.services import Policy
from mypaas.states import AppState

# what only the compose front door grants (it checks the admin's settings): apply carries these only
# as the app's release already has them
GATED = (
    "privileged",
    "network_mode",
    "pid",
    "ipc",
    "cap_add",
    "security_opt",
    "sysctls",
    "oom_kill_disable",
    "oom_score_adj",
    "build",
    "project_files",
)


@dataclass(frozen=True)
class Scope:
    """What the caller's file may see and change: ``apps`` (None: every app), the alert rules about
    every app and the hosts (``platform``: the platform admin)."""

    apps: set[str] | None = None
    platform: bool = True

    def sees(self, app: str | None) -> bool:
        if app is None:
            return self.platform
        return self.apps is None or app in self.apps


@dataclass
class Applied:
    """What an apply did: the steps done, the operations to follow (a rollout per app)."""

    plan: Plan
    done: list[str] = field(default_factory=list)
    operations: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {**self.plan.as_dict(), "applied": self.done, "operations": self.operations}


class Declarations:
    def __init__(
        self,
        ctx: AppContext,
        *,
        apps: Apps,
        releases: Releases,
        secrets: AppSecrets,
        automation: Automation,
        hosts: Hosts,
        settings: Settings,
        vault: Vault,
    ) -> None:
        self._ctx = ctx
        self._apps = apps
        self._releases = releases
        self._secrets = secrets
        self._automation = automation
        self._hosts = hosts
        self._hardening = Hardening.of(settings)
        self._policy = Policy.of(settings)  # what the admin allows a compose file: apply gets no more
        self._vault = vault

    # -- export ---------------------------------------------------------------------------------

    def export(self, names: Iterable[str] = (), scope: Scope | None = None) -> PlatformDoc:
        """The platform as a file: ``names`` only (every app the scope sees when empty); the alert
        rules and hosts with every app, for the platform admin."""
        scope = scope or Scope()
        wanted = list(names)
        for name in wanted:
            self._apps.get(name)  # an unknown app: "no app named 'x'; did you mean 'y'?"
        apps = {n: d for n, d in self._app_docs(wanted or None).items() if scope.sees(n)}
        if wanted:
            return PlatformDoc(apps=apps)
        rules = {r["name"]: r for r in self._automation.rules() if scope.sees(_subject(r))}
        alerts = {name: _alert_doc(r) for name, r in sorted(rules.items())}
        hosts = self._host_docs() if scope.platform else None
        return PlatformDoc(apps=apps, alerts=alerts, hosts=hosts)

    def _app_docs(self, names: list[str] | None) -> dict[str, AppDoc]:
        with self._ctx.sessions() as s:
            query = (
                select(AppRow, ReleaseRow, TeamRow.name)
                .join(
                    ReleaseRow,
                    (ReleaseRow.app_id == AppRow.id) & (ReleaseRow.version == AppRow.target_version),
                )
                .outerjoin(TeamRow, AppRow.team_id == TeamRow.id)
                .where(AppRow.state != AppState.DELETING)
                .where(AppRow.id.not_in(select(PreviewRow.app_id)))  # a branch's, made and removed by git
                .order_by(AppRow.name)
            )
            if names is not None:
                query = query.where(AppRow.name.in_(names))
            rows = [
                (
                    app.name,
                    team,
                    AppSpec.model_validate(rel.spec),
                    dict(rel.config),
                    {f.service: f.replicas for f in app.formation},
                    sorted(d.domain for d in app.domains),
                )
                for app, rel, team in s.execute(query).all()
            ]
        out = {}
        for name, team, spec, config, scale, domains in rows:
            out[name] = AppDoc(
                team=team,
                spec=_exported(spec),
                scale=dict(sorted(scale.items())),
                config=dict(sorted(config.items())),
                secrets=[SecretRef(secret=n) for n in sorted(self._named_secrets(name))],
                domains=domains,
                autoscale={p["service"]: _autoscale_doc(p) for p in self._automation.policies(name)},
            )
        return out

    def _named_secrets(self, app: str) -> set[str]:
        """The secrets set with `mypaas secrets set` for ``app`` (none for an app not made yet)."""
        try:
            listing = self._secrets.listing(app)
        except NotFound:
            return set()
        named = set()
        for entry in listing:
            source = str(entry["source"])
            if source == "set":
                named.add(str(entry["name"]))
            elif source.startswith("set as "):
                named.add(source.removeprefix("set as "))
        return named

    def _host_docs(self) -> dict[str, HostDoc]:
        return {h["name"]: HostDoc(labels=dict(sorted(h["labels"].items()))) for h in self._hosts.list()}

    def kubernetes(self, name: str, *, include_secrets: bool = False) -> str:
        """App ``name``'s target release as Kubernetes manifests (see kubernetes.py); secret values
        only with ``include_secrets``, else placeholders."""
        with self._ctx.sessions() as s:
            app = find_app(s, name)
            if app.target_version is None:
                raise Conflict(f"app {name} has no release yet: deploy it first", field="app")
            rel = find_release(s, app, app.target_version)
            spec, config, images = AppSpec.model_validate(rel.spec), dict(rel.config), dict(rel.images)
            scale = {f.service: f.replicas for f in app.formation}
            domains = tuple(sorted(d.domain for d in app.domains))
        values: dict[str, bytes] = {}
        for svc in spec.services.values():
            for item in self._vault.files(name, spec, svc):
                if item.kind == "config" or include_secrets:
                    values[f"{item.kind}s.{item.name}"] = item.data
        kube = KubeApp(name, spec, scale, config, domains, images, values)
        return dump_all(manifests(kube))

    # -- apply ----------------------------------------------------------------------------------

    def plan(
        self,
        doc: PlatformDoc,
        *,
        prune: bool,
        scope: Scope | None = None,
        allow: Callable[[Change], None] | None = None,
    ) -> Plan:
        """What applying ``doc`` would change; raises (making nothing) what would fail for sure, or a
        change the caller may not make (``allow`` raises for it, asked of every change first)."""
        result = self._plan(doc, prune=prune, scope=scope or Scope())
        for change in result.changes:
            if allow is not None:
                allow(change)
        check_changes(result, doc, self._automation)
        return result

    def _plan(self, doc: PlatformDoc, *, prune: bool, scope: Scope) -> Plan:
        want = doc.model_copy(update={"apps": {n: self._hardened(n, a) for n, a in doc.apps.items()}})
        have = self.export(scope=scope)
        result = plan(want, have, prune=prune)
        deployed = {c.app for c in result.changes if c.kind in ("app", "spec") and c.op != "-"}
        previews = self._preview_apps(list(want.apps))
        for name, app in want.apps.items():
            if name in previews:
                raise InvalidSpec(
                    f"apps.{name}: {name} is a preview app of {previews[name]} (git makes and removes "
                    "it); a platform file does not declare previews",
                    field=f"apps.{name}",
                )
            before = have.apps.get(name)
            if before is not None and app.team is not None and app.team != before.team:
                raise InvalidSpec(
                    f"apps.{name}.team: app {name} belongs to team {before.team!r}; apply does not move "
                    "an app to another team",
                    field=f"apps.{name}.team",
                )
            self._check_secrets(name, app, name in deployed)
            self._check_gated(name, app, have.apps.get(name))
            if name in deployed:  # a new release: the checks `mypaas deploy -f` runs on a compose file
                admit(app.spec, self._policy, f"apps.{name}.spec.")
        for host in want.hosts or {}:
            if host not in (have.hosts or {}):
                raise NotFound(f"hosts.{host}: the platform has no host {host!r}", field=f"hosts.{host}")
        return result

    def _preview_apps(self, names: list[str]) -> dict[str, str]:
        """Which of ``names`` are preview apps, and the app each previews."""
        if not names:
            return {}
        parent = aliased(AppRow)
        with self._ctx.sessions() as s:
            rows = s.execute(
                select(AppRow.name, parent.name)
                .join(PreviewRow, PreviewRow.app_id == AppRow.id)
                .join(parent, parent.id == PreviewRow.parent_id)
                .where(AppRow.name.in_(names))
            ).all()
        return {name: of for name, of in rows}

    def _hardened(self, name: str, app: AppDoc) -> AppDoc:
        renamed = {n: svc.model_copy(update={"name": n}) for n, svc in app.spec.services.items()}
        spec = app.spec.model_copy(update={"services": renamed})
        try:
            spec.start_order()
            return app.model_copy(update={"spec": harden(spec, self._hardening)})
        except InvalidSpec as exc:
            raise InvalidSpec(f"apps.{name}.spec: {exc.message}", field=f"apps.{name}.spec") from exc

    def _check_secrets(self, name: str, app: AppDoc, deployed: bool) -> None:
        """Every secret ``app`` names is set on the platform; a new release (``deployed``) takes its
        secrets and configs from there, as values that came with a compose file stay with its deploy."""
        if deployed:
            for field_name in ("secrets", "configs"):
                for key, source in getattr(app.spec, field_name).items():
                    if source.kind != "external":
                        where = f"apps.{name}.spec.{field_name}.{key}"
                        raise InvalidSpec(
                            f"{where}: its value came with the compose file ({source.kind}); set it with "
                            f"`mypaas secrets set {name} {key}` and make it external, or deploy the app "
                            "with its compose file (nothing was applied)",
                            field=where,
                        )
        named = self._named_secrets(name)
        needed = [ref.secret for ref in app.secrets]
        for source in [*app.spec.secrets.values(), *app.spec.configs.values()]:
            if source.kind == "external":
                needed.append(source.name)
        for secret in needed:
            if secret not in named:
                raise InvalidSpec(
                    f"apps.{name}: secret {secret!r} is not set on the platform: set it first with "
                    f"`mypaas secrets set {name} {secret}` (nothing was applied)",
                    field=f"apps.{name}.secrets",
                )

    def _check_gated(self, name: str, app: AppDoc, have: AppDoc | None) -> None:
        live = have.spec.services if have is not None else {}
        for svc_name, svc in app.spec.services.items():
            before = live.get(svc_name) or ServiceSpec(name=svc_name)
            for key in [*GATED, "volumes"]:
                now, then = _gated_value(svc, key), _gated_value(before, key)
                if now != then:
                    where = f"apps.{name}.spec.services.{svc_name}.{key}"
                    raise InvalidSpec(
                        f"{where}: apply does not change this (the compose file's checks decide it): "
                        f"deploy the app with `mypaas deploy {name} -f compose.yml`",
                        field=where,
                    )

    def apply(
        self,
        doc: PlatformDoc,
        *,
        prune: bool,
        user: str,
        scope: Scope | None = None,
        team: str | None = None,
        allow: Callable[[Change], None] | None = None,
    ) -> Applied:
        """Check, then run the plan of ``doc``; ``allow`` raises for a change the caller may not make
        (asked of every change before any is made)."""
        result = Applied(self.plan(doc, prune=prune, scope=scope, allow=allow))
        for change in result.plan.changes:
            try:
                result.operations += self._run(change, doc, user, team)
            except MyPaasError as exc:
                what = f"app {change.app}" if change.app else change.path
                done = ", ".join(result.done) or "nothing"
                raise restated(exc, _stopped(f"{what} ({change.path})", done)) from exc
            result.done.append(f"{change.op} {change.path}")
        return result

    def _run(self, change: Change, doc: PlatformDoc, user: str, team: str | None) -> list[dict[str, Any]]:
        app = change.app or ""
        kind, value = change.kind, change.value
        if kind in ("app", "spec") and change.op != "-":
            owner = doc.apps[app].team or team
            req = DeployRequest(spec=value, contexts={}, user=user, description="apply", team=owner)
            return [{**op_dict(self._releases.deploy(app, req)), "app": app}]
        if kind == "app":
            return [{**op_dict(self._apps.delete(app, user)), "app": app}]
        if kind == "scale":
            return [{**op_dict(self._apps.scale(app, {value[0]: value[1]}, user)), "app": app}]
        if kind == "config":
            changes, unset = ({}, [value]) if change.op == "-" else ({value[0]: value[1]}, [])
            return [{**op_dict(self._releases.set_config(app, changes, unset, user)), "app": app}]
        self._run_other(change, user)
        return []

    def _run_other(self, change: Change, user: str) -> None:
        app, value = change.app or "", change.value
        if change.kind == "secret":
            self._secrets.remove(app, value, user)
        elif change.kind == "domain":
            (self._apps.remove_domain if change.op == "-" else self._apps.add_domain)(app, value)
        elif change.kind == "autoscale" and change.op == "-":
            self._automation.remove_policy(app, value)
        elif change.kind == "autoscale":
            self._automation.set_policy(policy_of(app, value[0], value[1]))
        elif change.kind == "alert":
            self._alert(change)
        elif change.kind == "label":
            host, key = value[0], value[1]
            if change.op == "-":
                self._hosts.label(host, {}, [key])
            else:
                self._hosts.label(host, {key: value[2]}, [])

    def _alert(self, change: Change) -> None:
        if change.op == "-":
            self._automation.remove_rule(change.value)
            return
        name, body = change.value
        rule = Rule(name=name, **body.model_dump())
        if change.op == "~":  # in place: the rule keeps its state (a firing alert is not sent again)
            self._automation.update_rule(rule)
        else:
            self._automation.add_rule(rule)


def _stopped(where: str, done: str) -> Callable[[str], str]:
    """The message of a step that failed: where apply stopped, why, and what it had applied."""
    return lambda text: f"apply stopped at {where}: {text}; already applied: {done}"


def _exported(spec: AppSpec) -> AppSpec:
    """The release's spec as the file holds it: built images by the tag MyPaas gave them."""
    spec = comparable(spec)
    services = {
        n: svc.model_copy(update={"build": None}) if svc.build else svc for n, svc in spec.services.items()
    }
    return spec.model_copy(update={"services": services})


def _gated_value(svc: ServiceSpec, key: str) -> Any:
    if key == "volumes":
        return [v.model_dump() for v in svc.volumes if v.bind]
    value = getattr(svc, key)
    if key == "security_opt":
        return sorted(v for v in value if not v.startswith("no-new-privileges"))
    return value.model_dump() if hasattr(value, "model_dump") else value


def _subject(rule: dict[str, Any]) -> str | None:
    from mypaas.monitor.alerts import PLATFORM_KINDS

    return None if rule["kind"] in PLATFORM_KINDS else rule.get("app")


def _alert_doc(rule: dict[str, Any]) -> AlertDoc:
    keys = ("kind", "webhook", "app", "threshold", "for_s", "allow_private")
    return AlertDoc(**{k: rule[k] for k in keys})


def _autoscale_doc(policy: dict[str, Any]) -> Autoscale:
    return Autoscale(
        min=policy["min_replicas"],
        max=policy["max_replicas"],
        target_cpu_pct=policy["target_cpu_pct"],
        target_rps_per_replica=policy["target_rps_per_replica"],
        cooldown_up_s=policy["cooldown_up_s"],
        cooldown_down_s=policy["cooldown_down_s"],
    )
