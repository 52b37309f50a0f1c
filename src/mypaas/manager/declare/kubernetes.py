"""`mypaas export APP --format kubernetes`: an app's release as Kubernetes manifests — a Deployment per
service (a StatefulSet for one that mounts named volumes), a Service per service with ports, an Ingress
per routed domain, a ConfigMap of the config vars and one of the compose configs, a Secret of the compose
secrets (values only when asked, else placeholders named so), a PersistentVolumeClaim per named volume,
probes from the health checks, images by registry digest, resource limits from the spec. Pure: the
caller gives the values. Checked against the official JSON schemas in the tests, never applied to a live
cluster here."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from mypaas.domain import AppSpec, HealthCheck, ProbeSpec, ServiceSpec

PLACEHOLDER = "REPLACE-ME"  # a secret's value left out: `--include-secrets` writes it
VOLUME_SIZE = "1Gi"  # what a claim asks for: the platform's volumes have no size of their own


@dataclass(frozen=True)
class KubeApp:
    """What the manifests are made of: the app's release and what the platform holds beside it."""

    name: str
    spec: AppSpec
    scale: Mapping[str, int] = field(default_factory=dict)
    config: Mapping[str, str] = field(default_factory=dict)
    domains: tuple[str, ...] = ()
    images: Mapping[str, str] = field(default_factory=dict)  # service -> registry/repo@sha256:...
    values: Mapping[str, bytes] = field(default_factory=dict)  # "secrets.NAME"/"configs.NAME" -> value


def manifests(app: KubeApp) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if app.config:
        out.append(_config_map(f"{app.name}-config", app, dict(sorted(app.config.items()))))
    if app.spec.configs:
        data = {k: _text(app.values.get(f"configs.{k}")) for k in sorted(app.spec.configs)}
        out.append(_config_map(f"{app.name}-configs", app, data))
    if app.spec.secrets:
        out.append(_secret(app))
    for volume in sorted(app.spec.volumes):
        out.append(_claim(app, volume))
    for name in sorted(app.spec.services):
        svc = app.spec.services[name]
        out.append(_workload(app, svc))
        ports = _ports(svc)
        if ports:
            out.append(_service(app, svc, ports))
    web = app.spec.web
    if web is not None:
        port = app.spec.services[web].http_port
        out += [_ingress(app, web, port or 80, domain) for domain in app.domains]
    return out


def dump_all(docs: list[dict[str, Any]]) -> str:
    return yaml.safe_dump_all(docs, sort_keys=True, default_flow_style=False)


def _meta(app: KubeApp, name: str, component: str | None = None) -> dict[str, Any]:
    labels = {"app.kubernetes.io/name": app.name, "app.kubernetes.io/managed-by": "mypaas"}
    if component:
        labels["app.kubernetes.io/component"] = component
    return {"name": name, "labels": labels}


def _selector(app: KubeApp, svc: ServiceSpec) -> dict[str, str]:
    return {"app.kubernetes.io/name": app.name, "app.kubernetes.io/component": svc.name}


def _text(value: bytes | None) -> str:
    return value.decode("utf-8", "replace") if value is not None else PLACEHOLDER


def _config_map(name: str, app: KubeApp, data: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta(app, name), "data": data}


def _secret(app: KubeApp) -> dict[str, Any]:
    data, missing = {}, []
    for key in sorted(app.spec.secrets):
        value = app.values.get(f"secrets.{key}")
        if value is None:
            missing.append(key)
        data[key] = base64.b64encode(value if value is not None else PLACEHOLDER.encode()).decode()
    meta = _meta(app, f"{app.name}-secrets")
    if missing:
        meta["annotations"] = {"mypaas.io/placeholders": ",".join(missing)}
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque", "metadata": meta, "data": data}


def _claim(app: KubeApp, volume: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": _meta(app, _volume_name(app, volume)),
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": VOLUME_SIZE}}},
    }


def _volume_name(app: KubeApp, volume: str) -> str:
    return f"{app.name}-{volume}".replace("_", "-").replace(".", "-")


def _workload(app: KubeApp, svc: ServiceSpec) -> dict[str, Any]:
    named = any(v.source in app.spec.volumes for v in svc.volumes if not v.bind)
    volumes, mounts = _volumes(app, svc)
    container: dict[str, Any] = {"name": svc.name, "image": app.images.get(svc.name) or svc.image or ""}
    container |= _process(svc, bool(app.config), app.name)
    if mounts:
        container["volumeMounts"] = mounts
    ports = _ports(svc)
    if ports:
        container["ports"] = [{"containerPort": p, "name": f"p{p}"} for p in ports]
    container |= _probes(svc)
    resources = _resources(svc)
    if resources:
        container["resources"] = resources
    pod: dict[str, Any] = {"containers": [container]}
    if volumes:
        pod["volumes"] = volumes
    spec: dict[str, Any] = {
        "replicas": app.scale.get(svc.name, svc.replicas if svc.replicas is not None else 1),
        "selector": {"matchLabels": _selector(app, svc)},
        "template": {"metadata": {"labels": _selector(app, svc)}, "spec": pod},
    }
    if named:
        spec["serviceName"] = f"{app.name}-{svc.name}"
    kind = "StatefulSet" if named else "Deployment"
    meta = _meta(app, f"{app.name}-{svc.name}", svc.name)
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": meta, "spec": spec}


def _process(svc: ServiceSpec, config: bool, app: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if svc.entrypoint:
        out["command"] = list(svc.entrypoint)
    if svc.command:
        out["args"] = list(svc.command)
    if svc.environment:
        out["env"] = [{"name": k, "value": v} for k, v in sorted(svc.environment.items())]
    if config:
        out["envFrom"] = [{"configMapRef": {"name": f"{app}-config"}}]
    if svc.working_dir:
        out["workingDir"] = svc.working_dir
    if svc.read_only:
        out["securityContext"] = {"readOnlyRootFilesystem": True}
    return out


def _volumes(app: KubeApp, svc: ServiceSpec) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    volumes: list[dict[str, Any]] = []
    mounts: list[dict[str, Any]] = []
    for i, mount in enumerate(svc.volumes):
        name = f"v{i}"
        if mount.bind:
            volumes.append({"name": name, "hostPath": {"path": mount.source}})
        elif mount.source in app.spec.volumes:
            claim = {"claimName": _volume_name(app, mount.source)}
            volumes.append({"name": name, "persistentVolumeClaim": claim})
        else:
            volumes.append({"name": name, "emptyDir": {}})
        mounts.append({"name": name, "mountPath": mount.target, "readOnly": mount.read_only})
    for i, tmp in enumerate(svc.tmpfs):
        empty: dict[str, Any] = {"medium": "Memory"}
        if tmp.size:
            empty["sizeLimit"] = str(tmp.size)
        volumes.append({"name": f"t{i}", "emptyDir": empty})
        mounts.append({"name": f"t{i}", "mountPath": tmp.target})
    for kind, items in (("secrets", svc.secrets), ("configs", svc.configs)):
        if not items:
            continue
        source = f"{app.name}-{kind}"
        if kind == "secrets":
            volumes.append({"name": kind, "secret": {"secretName": source}})
        else:
            volumes.append({"name": kind, "configMap": {"name": source}})
        for item in items:
            mounts.append({"name": kind, "mountPath": item.target, "subPath": item.source, "readOnly": True})
    return volumes, mounts


def _ports(svc: ServiceSpec) -> list[int]:
    return sorted({p.container for p in svc.ports if p.protocol == "tcp"} | set(svc.expose))


def _resources(svc: ServiceSpec) -> dict[str, Any]:
    limits: dict[str, Any] = {}
    requests: dict[str, Any] = {}
    if svc.cpus:
        limits["cpu"] = f"{round(svc.cpus * 1000)}m"
    if svc.memory:
        limits["memory"] = str(svc.memory)
    if svc.reserve_cpus:
        requests["cpu"] = f"{round(svc.reserve_cpus * 1000)}m"
    if svc.reserve_memory:
        requests["memory"] = str(svc.reserve_memory)
    return {k: v for k, v in (("limits", limits), ("requests", requests)) if v}


def _probes(svc: ServiceSpec) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if svc.healthcheck is not None and not svc.healthcheck.disabled:
        check = _from_healthcheck(svc.healthcheck)
        if check:
            out["livenessProbe"] = check
            out["readinessProbe"] = check
    if svc.probe is not None:
        port = svc.probe.port or svc.http_port
        if port:
            out["readinessProbe"] = _from_probe(svc.probe, port)
    return out


def _from_healthcheck(check: HealthCheck) -> dict[str, Any] | None:
    test = list(check.test)
    if test and test[0] == "CMD":
        command = test[1:]
    elif test and test[0] == "CMD-SHELL":
        command = ["/bin/sh", "-c", " ".join(test[1:])]
    else:
        return None
    return {
        "exec": {"command": command},
        "periodSeconds": max(1, round(check.interval_s)),
        "timeoutSeconds": max(1, round(check.timeout_s)),
        "failureThreshold": max(1, check.retries),
        "initialDelaySeconds": round(check.start_period_s),
    }


def _from_probe(probe: ProbeSpec, port: int) -> dict[str, Any]:
    how: dict[str, Any] = (
        {"httpGet": {"path": probe.path, "port": port}}
        if probe.kind == "http"
        else {"tcpSocket": {"port": port}}
    )
    return {
        **how,
        "periodSeconds": max(1, round(probe.interval_s)),
        "timeoutSeconds": max(1, round(probe.timeout_s)),
        "failureThreshold": max(1, probe.retries),
    }


def _service(app: KubeApp, svc: ServiceSpec, ports: list[int]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(app, f"{app.name}-{svc.name}", svc.name),
        "spec": {
            "selector": _selector(app, svc),
            "ports": [{"name": f"p{p}", "port": p, "targetPort": p, "protocol": "TCP"} for p in ports],
        },
    }


def _ingress(app: KubeApp, web: str, port: int, domain: str) -> dict[str, Any]:
    backend = {"service": {"name": f"{app.name}-{web}", "port": {"number": port}}}
    rule = {"host": domain, "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": backend}]}}
    name = f"{app.name}-{domain.replace('.', '-')}"[:253]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": _meta(app, name, web),
        "spec": {"rules": [rule]},
    }
