"""The one bootstrap every driver's machines go through: read facts, check the OS, install and start
the Docker engine, set its registries, join or leave a Swarm. Everything runs over a Machine.

Shell scripts here are constants; values reach them as positional arguments ("$1"), never formatted in.
"""

from __future__ import annotations

import ipaddress
import json
import re
import shlex
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from mypaas.errors import BackendError, Conflict, InvalidSpec, NotSupported
from mypaas.iaas.base import CommandFailed, HostFacts, Machine, command_failed, last_lines, run_checked

SUPPORTED_OS = ("debian", "ubuntu")
DAEMON_JSON = Path("/etc/docker/daemon.json")
DOCKER_PID = Path("/var/run/docker.pid")
DOCKERD_LOG = "/var/log/dockerd.log"
POLL_INTERVAL = 1.0  # seconds between two looks at a starting or reloading engine
START_TIMEOUT = 60.0
INSTALL_TIMEOUT = 1200.0

FACTS_SCRIPT = r"""
echo "hostname=$(uname -n)"
echo "arch=$(uname -m)"
echo "cpus=$(nproc 2>/dev/null || getconf _NPROCESSORS_ONLN)"
echo "mem_kb=$(sed -n 's/^MemTotal:[[:space:]]*\([0-9]*\).*/\1/p' /proc/meminfo)"
if command -v dockerd >/dev/null 2>&1 || command -v docker >/dev/null 2>&1; then
  v=$(timeout 20 docker version --format '{{.Server.Version}}' 2>/dev/null) || v=""
  if [ -z "$v" ] && command -v dockerd >/dev/null 2>&1; then v=$(dockerd --version 2>/dev/null); fi
  if [ -n "$v" ]; then echo "docker=$v"; fi
fi
for f in /etc/os-release /usr/lib/os-release; do
  if [ -r "$f" ]; then sed 's/^/os./' "$f"; break; fi
done
"""
HAS_DOCKER_SCRIPT = "command -v docker && command -v dockerd"
START_DOCKERD_SCRIPT = f"nohup setsid dockerd >>{DOCKERD_LOG} 2>&1 </dev/null &"
READ_FILE_SCRIPT = 'if [ -e "$1" ]; then cat -- "$1"; fi'
WRITE_FILE_SCRIPT = (
    'set -e; mkdir -p -- "$(dirname -- "$1")"; cat >"$1.mypaas-tmp"; chmod 0644 "$1.mypaas-tmp";'
    ' mv -f -- "$1.mypaas-tmp" "$1"'
)
CERTS_D = Path("/etc/docker/certs.d")  # the engine's per-registry CA and client certificates
CERT_FILES = ("ca.crt", "client.cert", "client.key")  # the names the engine reads there
WRITE_PRIVATE_SCRIPT = (
    'set -e; umask 077; mkdir -p -- "$(dirname -- "$1")"; chmod 0755 "$(dirname -- "$1")";'
    ' cat >"$1.mypaas-tmp"; chmod "$2" "$1.mypaas-tmp"; mv -f -- "$1.mypaas-tmp" "$1"'
)
APT = ("env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "-q", "-y", "-o", "DPkg::Lock::Timeout=300")
_REGISTRY = re.compile(r"(https?://)?[A-Za-z0-9._\-\[\]:]+/?")  # HOST[:PORT], IPv6 in brackets
SWARM_STATE = ("docker", "info", "--format", "{{json .Swarm}}")


def facts(m: Machine) -> HostFacts:
    """What the host is (one command round-trip); works on any POSIX host, supported or not."""
    out = run_checked(m, ["sh", "-c", FACTS_SCRIPT], what="reading the host's facts", timeout=60).stdout
    values: dict[str, str] = {}
    for line in out.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values.setdefault(key.strip(), value.strip())
    try:
        cpus = int(values["cpus"])
        memory = int(values["mem_kb"]) * 1024
    except (KeyError, ValueError) as exc:
        raise BackendError(f"cannot read the CPUs and memory of {m.address} (is /proc mounted?)") from exc
    docker = values.get("docker")
    if docker is not None:
        found = re.search(r"version ([^,\s]+)", docker)
        docker = found.group(1) if found else docker
    return HostFacts(
        hostname=values.get("hostname", ""),
        os_id=_os_value(values.get("os.ID", "")).lower() or "unknown",
        os_version=_os_value(values.get("os.VERSION_ID", "")),
        arch=values.get("arch", ""),
        cpus=cpus,
        memory_bytes=memory,
        docker_version=docker,
    )


def _os_value(raw: str) -> str:
    """A value of os-release, which is shell-quoted."""
    try:
        return " ".join(shlex.split(raw))
    except ValueError:
        return raw.strip("\"'")


def check_os(f: HostFacts) -> None:
    if f.os_id not in SUPPORTED_OS:
        name = f"{f.os_id} {f.os_version}".strip()
        raise NotSupported(
            f"host {f.hostname} runs {name}; MyPaas supports {' and '.join(SUPPORTED_OS)} hosts"
        )


def ensure_docker(m: Machine, emit: Callable[[str], None]) -> str:
    """Install (apt-get docker.io) and start the Docker engine if needed; return its version."""
    if m.run(["sh", "-c", HAS_DOCKER_SCRIPT]).code != 0:
        emit(f"installing docker.io on {m.address} with apt-get")
        run_checked(m, [*APT, "update"], what="apt-get update", timeout=INSTALL_TIMEOUT)
        run_checked(m, [*APT, "install", "docker.io"], what="installing docker.io", timeout=INSTALL_TIMEOUT)
    version = _engine_version(m)
    if version is None:
        if _systemd(m):
            emit(f"starting the Docker engine on {m.address} (systemd)")
            run_checked(m, ["systemctl", "enable", "--now", "docker"], what="starting docker")
        else:
            emit(f"starting the Docker engine on {m.address} (no systemd; log in {DOCKERD_LOG})")
            run_checked(m, ["sh", "-c", START_DOCKERD_SCRIPT], what="starting dockerd")
        version = _wait_for_engine(m)
    emit(f"Docker Engine {version} runs on {m.address}")
    return version


def _engine_version(m: Machine) -> str | None:
    result = m.run(["docker", "info", "--format", "{{.ServerVersion}}"], timeout=30)
    version = result.stdout.strip()
    return version if result.code == 0 and version else None


def _wait_for_engine(m: Machine) -> str:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        version = _engine_version(m)
        if version is not None:
            return version
        if time.monotonic() > deadline:
            why = last_lines(m.run(["docker", "info"], timeout=30).stderr, 3)
            raise CommandFailed(
                f"the Docker engine on {m.address} did not start within {START_TIMEOUT:g}s"
                f" (see {DOCKERD_LOG} or journalctl -u docker): {why.splitlines()[-1] if why else ''}",
                command="docker info",
                stderr=why,
            )
        time.sleep(POLL_INTERVAL)


def _systemd(m: Machine) -> bool:
    """Is systemd the init system (as sd_booted() checks)?"""
    return m.run(["test", "-d", "/run/systemd/system"]).code == 0


def configure_engine(
    m: Machine,
    *,
    insecure_registries: Sequence[str] = (),
    mirrors: Sequence[str] | None = None,
    daemon_json: Path = DAEMON_JSON,
    pid_path: Path = DOCKER_PID,
    systemd_unit: str | None = "docker",
    reload: bool = True,
    wait_timeout: float = 30.0,
) -> bool:
    """Add ``insecure_registries`` to daemon.json (keeping every other key and entry), set
    ``registry-mirrors`` when ``mirrors`` is given, write it atomically and reload the engine
    (``systemctl reload <systemd_unit>`` when systemd runs it, else SIGHUP to the pid in
    ``pid_path``); then wait up to ``wait_timeout`` s (0: no wait) until ``docker info`` shows the
    registries. Return whether daemon.json changed."""
    raw = run_checked(
        m, ["sh", "-c", READ_FILE_SCRIPT, "sh", str(daemon_json)], what=f"reading {daemon_json}"
    )
    try:
        current = json.loads(raw.stdout or "{}")
    except json.JSONDecodeError as exc:
        raise BackendError(
            f"{daemon_json} on {m.address} is not valid JSON ({exc.msg}); fix it by hand first"
        ) from exc
    if not isinstance(current, dict):
        raise BackendError(f"{daemon_json} on {m.address} must hold a JSON object")
    wanted = merge_daemon_config(current, insecure_registries, mirrors)
    if wanted is None:
        return False
    body = (json.dumps(wanted, indent=2) + "\n").encode()
    run_checked(
        m, ["sh", "-c", WRITE_FILE_SCRIPT, "sh", str(daemon_json)], input=body, what=f"writing {daemon_json}"
    )
    if reload:
        reload_engine(m, pid_path=pid_path, systemd_unit=systemd_unit)
        if wait_timeout > 0:
            _wait_for_registries(m, insecure_registries, mirrors, wait_timeout)
    return True


def install_certs(m: Machine, certs: Mapping[str, Mapping[str, bytes]], *, certs_d: Path = CERTS_D) -> bool:
    """Write each registry's CA (and client certificate) where the engine looks for them
    (``certs_d/HOST:PORT/ca.crt``: the registry is then verified over TLS, not trusted blindly); keys
    0600. Return whether a file changed."""
    changed = False
    for addr, files in certs.items():
        if not _REGISTRY.fullmatch(addr) or "/" in addr or addr.startswith("."):
            raise InvalidSpec(f"registry address {addr!r} is not HOST[:PORT]", field="certs")
        for name, data in files.items():
            if name not in CERT_FILES:
                raise InvalidSpec(f"{name!r} is not one of {', '.join(CERT_FILES)}", field="certs")
            where = str(certs_d / addr / name)
            if m.run(["sh", "-c", READ_FILE_SCRIPT, "sh", where]).stdout == data.decode():
                continue
            mode = "0600" if name.endswith(".key") else "0644"
            run_checked(
                m, ["sh", "-c", WRITE_PRIVATE_SCRIPT, "sh", where, mode], input=data, what=f"writing {where}"
            )
            changed = True
    return changed


def merge_daemon_config(
    current: dict[str, Any], insecure_registries: Sequence[str], mirrors: Sequence[str] | None
) -> dict[str, Any] | None:
    """daemon.json with the registries added (None when nothing changes); other keys stay as they are."""
    for value in insecure_registries:
        if not (_REGISTRY.fullmatch(value) or _is_cidr(value)):
            raise InvalidSpec(
                f"insecure registry {value!r} is not HOST[:PORT] or a CIDR", field="insecure_registries"
            )
    for value in mirrors or ():
        if not value.startswith(("http://", "https://")) or any(c.isspace() for c in value):
            raise InvalidSpec(f"registry mirror {value!r} is not an http(s):// URL", field="mirrors")
    data = dict(current)
    existing = data.get("insecure-registries", [])
    if not isinstance(existing, list):
        raise BackendError("insecure-registries in daemon.json is not a list; fix it by hand first")
    added = [r for r in dict.fromkeys(insecure_registries) if r not in existing]
    if added:
        data["insecure-registries"] = [*existing, *added]
    if mirrors is not None and (
        data.get("registry-mirrors") != list(mirrors) or "registry-mirrors" not in data
    ):
        data["registry-mirrors"] = list(mirrors)
    return data if data != current else None


def _is_cidr(value: str) -> bool:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return False
    return "/" in value


def reload_engine(m: Machine, *, pid_path: Path = DOCKER_PID, systemd_unit: str | None = "docker") -> None:
    """Make dockerd re-read daemon.json: through systemd when it runs the engine, else SIGHUP."""
    if systemd_unit and _systemd(m) and m.run(["systemctl", "is-active", "--quiet", systemd_unit]).code == 0:
        run_checked(m, ["systemctl", "reload", systemd_unit], what="reloading the Docker engine")
        return
    pid = m.run(["cat", "--", str(pid_path)])
    text = pid.stdout.strip()
    if pid.code != 0 or not text.isdigit():
        raise BackendError(
            f"cannot reload the Docker engine on {m.address}: no pid in {pid_path} (is dockerd running?)"
        )
    run_checked(m, ["kill", "-HUP", text], what="reloading the Docker engine")


def _wait_for_registries(
    m: Machine, insecure_registries: Sequence[str], mirrors: Sequence[str] | None, timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        result = m.run(["docker", "info", "--format", "{{json .RegistryConfig}}"], timeout=30)
        if result.code == 0:
            missing = _missing_registries(result.stdout, insecure_registries, mirrors)
        else:
            missing = [f"(docker info failed: {last_lines(result.stderr, 1) or result.code})"]
        if not missing:
            return
        if time.monotonic() > deadline:
            raise BackendError(
                f"the Docker engine on {m.address} did not apply daemon.json within {timeout:g}s"
                f" (not yet in docker info: {', '.join(missing)}); see its log"
            )
        time.sleep(POLL_INTERVAL)


def _missing_registries(
    info: str, insecure_registries: Sequence[str], mirrors: Sequence[str] | None
) -> list[str]:
    """What of the wanted settings ``docker info``'s RegistryConfig does not show yet."""
    try:
        config = json.loads(info)
    except json.JSONDecodeError:
        return ["(unreadable docker info)"]
    if not isinstance(config, dict):
        return ["(unreadable docker info)"]
    indexes = {str(k).lower(): v for k, v in (config.get("IndexConfigs") or {}).items()}
    cidrs = {str(c) for c in config.get("InsecureRegistryCIDRs") or []}
    missing = []
    for registry in insecure_registries:
        name = registry.split("://", 1)[-1].rstrip("/").lower()
        if _is_cidr(registry):
            if str(ipaddress.ip_network(registry, strict=False)) not in cidrs:
                missing.append(registry)
        elif (indexes.get(name) or {}).get("Secure", True):
            missing.append(registry)
    if mirrors is not None:
        shown = [str(x).rstrip("/") for x in config.get("Mirrors") or []]
        if shown != [x.rstrip("/") for x in mirrors]:
            missing.append("registry-mirrors")
    return missing


def swarm_node_id(m: Machine) -> str | None:
    """This engine's Swarm node id, None when it is not in a swarm."""
    node = str(_swarm_state(m).get("NodeID") or "")
    return node or None


def swarm_join(
    m: Machine, *, token: str, manager: str, advertise_addr: str | None = None, listen_port: int = 2377
) -> str:
    """Join the swarm managed at ``manager`` (port ``listen_port``) and return the node id. Already a
    member of that swarm: its id; a member of another swarm: Conflict."""
    remote = _swarm_address(manager, listen_port)
    node = _member_of(m, remote)
    if node is not None:
        return node
    argv = ["docker", "swarm", "join", "--token", token]
    if advertise_addr:
        argv += ["--advertise-addr", advertise_addr]
    argv.append(remote)
    shown = shlex.join([*argv[:4], "<token>", *argv[5:]])  # the token is a secret: never in an error
    try:
        result = m.run(argv, timeout=180)
    except CommandFailed as exc:
        raise CommandFailed(exc.message, command=shown, code=exc.code, stderr=exc.stderr) from None
    if result.code != 0:
        node = _member_of(m, remote) if "already part of a swarm" in result.stderr else None
        if node is not None:
            return node
        raise command_failed(f"joining the swarm at {remote} from {m.address}", result, shown)
    joined = swarm_node_id(m)
    if joined is None:
        raise BackendError(f"{m.address} joined the swarm at {remote} but reports no node id")
    return joined


def _member_of(m: Machine, remote: str) -> str | None:
    """The node id if ``m`` is in the swarm managed at ``remote``; None if in none; else Conflict."""
    state = _swarm_state(m)
    local = state.get("LocalNodeState", "inactive")
    if local in ("inactive", ""):
        return None
    managers = sorted(
        str(r.get("Addr", "")) for r in state.get("RemoteManagers") or [] if isinstance(r, dict)
    )
    if local == "active" and remote in managers:
        return str(state.get("NodeID") or "") or None
    if local == "error":
        why = state.get("Error", "")
        raise BackendError(
            f"the swarm state of {m.address} is 'error' ({why}); run docker swarm leave --force there"
        )
    raise Conflict(
        f"{m.address} is already in another swarm ({local}, managers: {', '.join(managers) or 'unknown'});"
        " leave it first (docker swarm leave)"
    )


def swarm_leave(m: Machine, force: bool = False) -> None:
    """Leave the swarm; a machine in no swarm is fine."""
    if _swarm_state(m).get("LocalNodeState", "inactive") in ("inactive", ""):
        return
    argv = ["docker", "swarm", "leave", *(["--force"] if force else [])]
    result = m.run(argv, timeout=120)
    if result.code != 0 and "not part of a swarm" not in result.stderr:
        raise command_failed(f"leaving the swarm on {m.address}", result, shlex.join(argv))


def _swarm_state(m: Machine) -> dict[str, Any]:
    out = run_checked(m, list(SWARM_STATE), what="reading the swarm state", timeout=30).stdout
    try:
        state = json.loads(out)
    except json.JSONDecodeError as exc:
        raise BackendError(f"cannot read the swarm state of {m.address}: {out.strip()[:200]!r}") from exc
    return state if isinstance(state, dict) else {}


def _swarm_address(manager: str, port: int) -> str:
    """``manager:port``; IPv6 in brackets; a manager that already names a port is kept as it is."""
    try:
        ip = ipaddress.ip_address(manager)
    except ValueError:
        if manager.startswith("[") or (":" in manager and manager.rsplit(":", 1)[1].isdigit()):
            return manager
        return f"{manager}:{port}"
    return f"[{ip}]:{port}" if ip.version == 6 else f"{ip}:{port}"
