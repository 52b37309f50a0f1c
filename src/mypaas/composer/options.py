"""A service's container options (domain.ServiceSpec's "container options" block) as the engine takes
them: the docker backend's container and host configuration, and the Swarm service's container spec,
task and rollout policies. Each function adds only what a service sets, so a service that sets none
gives the engine exactly the request it had before these options existed (running platforms roll
nothing out on upgrade). What Swarm cannot do is refused before, with the reason
(container_options.check_swarm)."""

from __future__ import annotations

from typing import Any

import docker.types

from mypaas.domain import HealthCheck, ServiceSpec

_NS = 1_000_000_000
SHM = "/dev/shm"  # noqa: S108 -- the container's shared memory, not a temporary file of ours
DEFAULT_LOG = {"max-size": "10m", "max-file": "3"}  # instance logs are kept, but not without bound
# Docker's architecture names -> the node's (uname -m), as Swarm's node.platform.arch reports them
_UNAME = {"amd64": "x86_64", "arm64": "aarch64", "386": "i386", "arm": "armv7l"}


# --- both backends -----------------------------------------------------------------------------------------
def aliases(svc: ServiceSpec, network: str) -> list[str]:
    """The names the service is reached by on one of its networks (a compose name; "": the default)."""
    options = svc.network_options.get(network)
    extra = [*svc.aliases, *(options.aliases if options else [])]
    return list(dict.fromkeys([svc.name, *extra]))


def capabilities(names: list[str]) -> list[str] | None:
    return [name if name == "ALL" else f"CAP_{name}" for name in names] or None


def log_options(svc: ServiceSpec) -> tuple[str, dict[str, str]]:
    """(driver, options): MyPaas's bounds unless the service sets its own."""
    if svc.logging is None:
        return "json-file", dict(DEFAULT_LOG)
    return svc.logging.driver, {**DEFAULT_LOG, **svc.logging.options}


def healthcheck(hc: HealthCheck) -> dict[str, Any]:
    if hc.disabled:
        return {"test": ["NONE"]}
    return {
        "test": hc.test,
        "interval": int(hc.interval_s * _NS),
        "timeout": int(hc.timeout_s * _NS),
        "retries": hc.retries,
        "start_period": int(hc.start_period_s * _NS),
    }


# --- the docker backend -------------------------------------------------------------------------------------
def container_options(svc: ServiceSpec) -> dict[str, Any]:
    """``create_container`` arguments beyond MyPaas's own."""
    options: dict[str, Any] = {
        "hostname": svc.hostname,
        "user": svc.user,
        "working_dir": svc.working_dir,
        "stop_signal": svc.stop_signal,
        "stop_timeout": None if svc.stop_grace_s is None else max(0, round(svc.stop_grace_s)),
    }
    if svc.stdin_open:
        options["stdin_open"] = True
    if svc.tty:
        options["tty"] = True
    if svc.domainname is not None:
        options["domainname"] = svc.domainname
    return {key: value for key, value in options.items() if value is not None}


def host_options(svc: ServiceSpec) -> dict[str, Any]:
    """``create_host_config`` arguments beyond MyPaas's own."""
    options: dict[str, Any] = {
        "cap_add": capabilities(svc.cap_add),
        "cap_drop": capabilities(svc.cap_drop),
        "sysctls": svc.sysctls or None,
        "extra_hosts": svc.extra_hosts or None,
        "shm_size": svc.shm_size,
        "ulimits": [docker.types.Ulimit(name=u.name, soft=u.soft, hard=u.hard) for u in svc.ulimits] or None,
        "network_mode": svc.network_mode,
        "pid_mode": svc.pid,
        "ipc_mode": svc.ipc,
        "security_opt": svc.security_opt or None,  # Swarm's container spec has none (API 1.41)
        **process_options(svc),
    }
    return {key: value for key, value in options.items() if value is not None}


def process_options(svc: ServiceSpec) -> dict[str, Any]:
    """``create_host_config`` arguments of compose read_only, dns, group_add, pids_limit, cpu_shares...
    (None: not set)."""
    return {
        "read_only": svc.read_only or None,
        "dns": svc.dns or None,
        "dns_search": svc.dns_search or None,
        "dns_opt": svc.dns_opt or None,
        "group_add": svc.group_add or None,
        "pids_limit": svc.pids_limit,
        "cpu_shares": svc.cpu_shares,
        "cpuset_cpus": svc.cpuset,
        "oom_score_adj": svc.oom_score_adj,
        "mem_swappiness": svc.mem_swappiness,
        "oom_kill_disable": svc.oom_kill_disable or None,
    }


def restart_policy(svc: ServiceSpec) -> dict[str, Any] | None:
    if svc.restart == "no":
        return None
    policy: dict[str, Any] = {"Name": svc.restart}
    attempts = svc.restart_policy.max_attempts if svc.restart_policy else None
    if svc.restart == "on-failure" and attempts:
        policy["MaximumRetryCount"] = attempts
    return policy


def log_config(svc: ServiceSpec) -> docker.types.LogConfig:
    driver, options = log_options(svc)
    return docker.types.LogConfig(type=driver, config=options)


def exposed_ports(svc: ServiceSpec) -> list[Any] | None:
    """``create_container``'s ``ports``: the published container ports. The SDK reads a string as a TCP
    port ("80/tcp" becomes "80/tcp/tcp", which the engine reads as 80/tcp: kept, so TCP requests stay
    what they were); any other protocol goes as a (port, protocol) pair, or the engine would not map it."""
    ports = [
        f"{p.container}/tcp" if p.protocol == "tcp" else (p.container, p.protocol)
        for p in svc.ports
        if p.host is not None
    ]
    return ports or None


def port_bindings(svc: ServiceSpec) -> dict[str, Any]:
    """Container port -> the host port (or ``(address, port)``, or a list of them) it is published on."""
    bindings: dict[str, list[Any]] = {}
    for p in svc.ports:
        if p.host is not None:
            bindings.setdefault(f"{p.container}/{p.protocol}", []).append(
                p.host if p.host_ip is None else (p.host_ip, p.host)
            )
    return {port: hosts[0] if len(hosts) == 1 else hosts for port, hosts in bindings.items()}


def endpoint(svc: ServiceSpec, network: str) -> dict[str, Any]:
    """How a container joins one of its networks: by its aliases."""
    return {"aliases": aliases(svc, network)}


def own_network(svc: ServiceSpec) -> bool:
    """Is the container on the app's networks (not on the host's network, nor on none)?"""
    return svc.network_mode is None


# --- Swarm ------------------------------------------------------------------------------------------------
def swarm_container(svc: ServiceSpec, container: dict[str, Any]) -> dict[str, Any]:
    """The task's container spec (the SDK's ContainerSpec) with the service's options."""
    extra: dict[str, Any] = {
        "Hostname": svc.hostname,
        "User": svc.user,
        "Dir": svc.working_dir,
        "StopSignal": svc.stop_signal,
        "TTY": svc.tty or None,
        "OpenStdin": svc.stdin_open or None,
        "CapabilityAdd": capabilities(svc.cap_add),
        "CapabilityDrop": capabilities(svc.cap_drop),
        "Sysctls": svc.sysctls or None,
        "Hosts": [_task_host(entry) for entry in svc.extra_hosts if not entry.endswith(":host-gateway")]
        or None,
        "Ulimits": [{"Name": u.name, "Soft": u.soft, "Hard": u.hard} for u in svc.ulimits] or None,
        "ReadOnly": svc.read_only or None,
        "Groups": svc.group_add or None,
        "DNSConfig": _dns_config(svc),
    }
    if svc.init is not None:
        extra["Init"] = svc.init
    if svc.stop_grace_s is not None:
        extra["StopGracePeriod"] = int(svc.stop_grace_s * _NS)
    if svc.shm_size is not None:  # Swarm has no shm size: a tmpfs of that size on /dev/shm instead
        shm = docker.types.Mount(target=SHM, source="", type="tmpfs", tmpfs_size=svc.shm_size)
        extra["Mounts"] = [*(container.get("Mounts") or []), shm]
    container.update({key: value for key, value in extra.items() if value is not None})
    return container


def _dns_config(svc: ServiceSpec) -> dict[str, list[str]] | None:
    given = {"Nameservers": svc.dns, "Search": svc.dns_search, "Options": svc.dns_opt}
    config = {key: value for key, value in given.items() if value}
    return config or None


def swarm_task(svc: ServiceSpec, template: docker.types.TaskTemplate) -> docker.types.TaskTemplate:
    """The task template with the service's ``pids_limit`` (the engine's Resources.Limits.Pids, which the
    SDK's Resources cannot say)."""
    if svc.pids_limit is not None and svc.pids_limit > 0:
        template.setdefault("Resources", {}).setdefault("Limits", {})["Pids"] = svc.pids_limit
    return template


def _task_host(entry: str) -> str:
    name, _, address = entry.partition(":")
    return f"{address} {name}"


def swarm_restart(svc: ServiceSpec, default_delay_s: float) -> docker.types.RestartPolicy:
    condition = {"no": "none", "on-failure": "on-failure"}.get(svc.restart, "any")
    policy = svc.restart_policy
    delay = default_delay_s if policy is None or policy.delay_s is None else policy.delay_s
    extra: dict[str, Any] = {}
    if policy is not None and policy.window_s is not None:
        extra["window"] = int(policy.window_s * _NS)
    attempts = policy.max_attempts if policy is not None and policy.max_attempts else 0
    return docker.types.RestartPolicy(
        condition=condition, delay=int(delay * _NS), max_attempts=attempts, **extra
    )


def swarm_update(svc: ServiceSpec, delay_s: float, monitor_s: float) -> dict[str, Any]:
    """UpdateConfig arguments: the service's deploy.update_config over MyPaas's defaults."""
    policy = svc.update
    config: dict[str, Any] = {
        "parallelism": 1,
        "delay": int(delay_s * _NS),
        "failure_action": "rollback",
        "monitor": int(monitor_s * _NS),
        "max_failure_ratio": 0,
        # fixed host ports cannot hold an old and a new task on one host at once: stop-first for them
        "order": "stop-first" if svc.stop_first else "start-first",
    }
    if policy is None:
        return config
    given = {
        "parallelism": policy.parallelism,
        "delay": None if policy.delay_s is None else int(policy.delay_s * _NS),
        "failure_action": policy.failure_action,
        "monitor": None if policy.monitor_s is None else int(policy.monitor_s * _NS),
        "max_failure_ratio": policy.max_failure_ratio,
    }
    config.update({key: value for key, value in given.items() if value is not None})
    return config


def swarm_mode(svc: ServiceSpec, replicas: int) -> docker.types.ServiceMode:
    if svc.mode == "global":
        return docker.types.ServiceMode("global")
    return docker.types.ServiceMode("replicated", replicas=replicas)


def platform_constraints(svc: ServiceSpec) -> list[str]:
    """The nodes a service's ``platform`` allows, in Swarm's constraint syntax."""
    if svc.platform is None:
        return []
    os_name, arch, *_ = svc.platform.split("/")
    return [f"node.platform.os=={os_name}", f"node.platform.arch=={_UNAME.get(arch, arch)}"]
