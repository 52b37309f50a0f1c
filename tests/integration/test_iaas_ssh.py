"""The ssh iaas driver against a real sshd on 127.0.0.1 (a throwaway one this module starts as root
and always stops): host-key trust, login, commands, and the bootstrap steps that do not change this
machine (facts, an engine that already runs, daemon.json in a temp folder)."""

from __future__ import annotations

import json
import os
import platform
import shutil
import signal
import socket
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from mypaas.errors import Conflict
from mypaas.iaas import catalog
from mypaas.iaas.base import HostAuthFailed, HostKeyMismatch, HostKeyUnknown, HostUnreachable
from mypaas.iaas.bootstrap import (
    configure_engine,
    ensure_docker,
    facts,
    swarm_join,
    swarm_leave,
    swarm_node_id,
)
from mypaas.iaas.ssh import SSHDriver, SSHMachine
from tests.kit import free_port
from tests.sshd import SSHD, Sshd, fingerprint_of, keygen, running_sshd

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        os.geteuid() != 0 or not SSHD.exists() or shutil.which("ssh-keygen") is None,
        reason="needs root, /usr/sbin/sshd and ssh-keygen (Debian: openssh-server, openssh-client)",
    ),
]


def docker_info(template: str) -> str:
    done = subprocess.run(
        ["docker", "info", "--format", template], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    with running_sshd(tmp_path_factory.mktemp("sshd")) as server:
        yield server


@pytest.fixture
def driver(tmp_path: Path, sshd: Sshd) -> SSHDriver:
    return SSHDriver(
        known_hosts=tmp_path / "state" / "ssh" / "known_hosts", default_key=sshd.client_keys["ed25519"]
    )


@pytest.fixture
def ssh(driver: SSHDriver, sshd: Sshd) -> Iterator[SSHMachine]:
    sshd.ensure("a")
    target = catalog.parse_host_url(sshd.url(), host_key=sshd.fingerprint("a"))
    with driver.connect(target) as m:
        yield m


# -- host keys and login -------------------------------------------------------------------------


def test_unknown_host_key_then_pinned_then_remembered(driver: SSHDriver, sshd: Sshd) -> None:
    sshd.ensure("a")
    target = catalog.parse_host_url(sshd.url())
    with pytest.raises(HostKeyUnknown) as err:
        driver.connect(target)
    assert err.value.fingerprint == sshd.fingerprint("a")
    assert err.value.message == (
        f"unknown host key for [127.0.0.1]:{sshd.port}: {sshd.fingerprint('a')};"
        " confirm it, or pin it with --host-key"
    )
    assert not driver.known_hosts.exists()

    pinned = catalog.parse_host_url(sshd.url(), host_key=err.value.fingerprint)
    with driver.connect(pinned) as m:
        assert m.run(["true"]).code == 0
    assert stat.S_IMODE(driver.known_hosts.stat().st_mode) == 0o600
    line = driver.known_hosts.read_text()
    assert line.startswith(f"[127.0.0.1]:{sshd.port} ssh-ed25519 ")
    assert (
        line
        == f"[127.0.0.1]:{sshd.port} "
        + " ".join(sshd.host_keys["a"].with_suffix(".pub").read_text().split()[:2])
        + "\n"
    )

    with driver.connect(target) as m:  # remembered now: no pin needed
        assert m.run(["echo", "again"]).stdout == "again\n"
    # OpenSSH itself accepts the file we wrote
    ssh = shutil.which("ssh")
    if ssh is not None:
        argv = [ssh, "-p", str(sshd.port), "-i", str(sshd.client_keys["ed25519"]), "-o", "BatchMode=yes"]
        argv += ["-o", f"UserKnownHostsFile={driver.known_hosts}", "-o", "StrictHostKeyChecking=yes"]
        argv += ["-o", "GlobalKnownHostsFile=/dev/null", "root@127.0.0.1", "echo", "openssh-ok"]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
        assert done.stdout == "openssh-ok\n", done.stderr


def test_wrong_pin_is_a_mismatch(driver: SSHDriver, sshd: Sshd) -> None:
    sshd.ensure("a")
    wrong = catalog.parse_host_url(sshd.url(), host_key=sshd.fingerprint("b"))
    with pytest.raises(HostKeyMismatch) as err:
        driver.connect(wrong)
    assert err.value.expected == sshd.fingerprint("b")
    assert sshd.fingerprint("a") in err.value.got
    assert "refusing to connect" in err.value.message
    assert not driver.known_hosts.exists()


def test_changed_host_key_is_refused_until_pinned_again(driver: SSHDriver, sshd: Sshd) -> None:
    sshd.ensure("a")
    with driver.connect(catalog.parse_host_url(sshd.url(), host_key=sshd.fingerprint("a"))):
        pass
    sshd.restart("b")  # the "reinstalled" host: another key (and another key type)
    with pytest.raises(HostKeyMismatch) as err:
        driver.connect(catalog.parse_host_url(sshd.url()))
    assert sshd.fingerprint("a") in err.value.expected
    assert sshd.fingerprint("b") in err.value.got
    assert f"host key of [127.0.0.1]:{sshd.port} changed" in err.value.message
    # the user confirms the new key: it replaces the old one
    with driver.connect(catalog.parse_host_url(sshd.url(), host_key=sshd.fingerprint("b"))) as m:
        assert m.run(["true"]).code == 0
    assert "ecdsa-sha2-nistp256" in driver.known_hosts.read_text()
    assert "ssh-ed25519" not in driver.known_hosts.read_text()
    with driver.connect(catalog.parse_host_url(sshd.url())):
        pass


def test_same_key_type_changed_is_a_mismatch(tmp_path: Path, sshd: Sshd) -> None:
    """A remembered ed25519 key, and the host now shows another ed25519 key (paramiko's own check)."""
    sshd.ensure("a")
    other = keygen(tmp_path / "other_host")
    known = tmp_path / "known_hosts"
    public = other.with_suffix(".pub").read_text().split()
    known.write_text(f"[127.0.0.1]:{sshd.port} {public[0]} {public[1]}\n")
    driver = SSHDriver(known_hosts=known, default_key=sshd.client_keys["ed25519"])
    with pytest.raises(HostKeyMismatch) as err:
        driver.connect(catalog.parse_host_url(sshd.url()))
    assert err.value.expected.startswith(fingerprint_of(other.with_suffix(".pub")))
    assert err.value.got.startswith(sshd.fingerprint("a"))


@pytest.mark.parametrize("key", ["ed25519", "rsa", "ecdsa"])
def test_key_types_log_in(driver: SSHDriver, sshd: Sshd, key: str) -> None:
    sshd.ensure("a")
    target = catalog.parse_host_url(
        sshd.url(), key_path=sshd.client_keys[key], host_key=sshd.fingerprint("a")
    )
    with driver.connect(target) as m:
        assert m.run(["id", "-u"]).stdout == "0\n"


def test_wrong_client_key_fails_auth(driver: SSHDriver, sshd: Sshd) -> None:
    sshd.ensure("a")
    target = catalog.parse_host_url(
        sshd.url(), key_path=sshd.client_keys["stranger"], host_key=sshd.fingerprint("a")
    )
    with pytest.raises(HostAuthFailed) as err:
        driver.connect(target)
    assert err.value.message.startswith(f"root@[127.0.0.1]:{sshd.port} refused the SSH key ")
    assert str(sshd.client_keys["stranger"]) in err.value.message


def test_closed_port_and_a_silent_port_are_unreachable(driver: SSHDriver, tmp_path: Path) -> None:
    port = free_port()
    with pytest.raises(HostUnreachable) as err:
        driver.connect(catalog.parse_host_url(f"ssh://127.0.0.1:{port}"))
    assert err.value.message == f"cannot reach 127.0.0.1:{port}: connection refused or no route to host"
    with socket.socket() as silent:  # accepts connections but never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        quick = SSHDriver(known_hosts=tmp_path / "kh", default_key=driver.default_key, connect_timeout=1.0)
        with pytest.raises(HostUnreachable, match=f"cannot reach 127.0.0.1:{port}: "):
            quick.connect(catalog.parse_host_url(f"ssh://127.0.0.1:{port}"))


def test_unknown_name_is_unreachable(driver: SSHDriver) -> None:
    with pytest.raises(HostUnreachable, match=r"cannot reach no-such-host\.invalid:22: unknown host name"):
        driver.connect(catalog.parse_host_url("ssh://no-such-host.invalid"))


# -- ssh machines (what every Machine does: tests/contract/test_host_driver_contract.py) ---------------


def test_addresses(ssh: SSHMachine) -> None:
    assert ssh.address == "127.0.0.1"
    assert ssh.local_address == "127.0.0.1"


# -- bootstrap over ssh -------------------------------------------------------------------------------


def test_facts_over_ssh_are_this_machines(ssh: SSHMachine) -> None:
    f = facts(ssh)
    release = dict(
        line.split("=", 1) for line in Path("/etc/os-release").read_text().splitlines() if "=" in line
    )
    assert f.hostname == socket.gethostname()
    assert f.os_id == release["ID"].strip('"')
    assert f.os_version == release.get("VERSION_ID", "").strip('"')
    assert f.arch == platform.machine()
    assert f.cpus == len(os.sched_getaffinity(0))
    mem_kb = next(
        int(x.split()[1]) for x in Path("/proc/meminfo").read_text().splitlines() if x.startswith("MemTotal:")
    )
    assert f.memory_bytes == mem_kb * 1024
    local = facts(catalog.driver("local").connect(catalog.parse_host_url("local")))
    assert local == f
    if shutil.which("docker"):
        assert f.docker_version == docker_info("{{.ServerVersion}}")


def test_running_engine_needs_no_install(ssh: SSHMachine) -> None:
    said: list[str] = []
    version = ensure_docker(ssh, said.append)
    assert version == docker_info("{{.ServerVersion}}")
    assert said == [f"Docker Engine {version} runs on 127.0.0.1"]
    assert swarm_node_id(ssh) == (docker_info("{{.Swarm.NodeID}}") or None)


def _hangup_default() -> None:
    signal.signal(signal.SIGHUP, signal.SIG_DFL)


def test_configure_engine_over_ssh_on_a_temp_daemon_json(ssh: SSHMachine, tmp_path: Path) -> None:
    daemon_json = tmp_path / "etc" / "docker" / "daemon.json"
    daemon_json.parent.mkdir(parents=True)
    daemon_json.write_text(
        json.dumps({"log-driver": "json-file", "insecure-registries": ["old.example:5000"]})
    )
    # plays dockerd: SIGHUP ends it (its default action: a runner started under nohup ignores SIGHUP, and
    # a child inherits that)
    stand_in = subprocess.Popen(["sleep", "60"], preexec_fn=_hangup_default)  # noqa: PLW1509 - no threads
    pid_path = tmp_path / "docker.pid"
    pid_path.write_text(f"{stand_in.pid}\n")
    try:
        changed = configure_engine(
            ssh,
            insecure_registries=["10.0.0.5:5000", "old.example:5000"],
            mirrors=["https://mirror.example"],
            daemon_json=daemon_json,
            pid_path=pid_path,
            systemd_unit=None,
            wait_timeout=0,
        )
        assert changed
        assert stand_in.wait(timeout=5) == -signal.SIGHUP
    finally:
        if stand_in.poll() is None:
            stand_in.kill()
            stand_in.wait()
    assert json.loads(daemon_json.read_text()) == {
        "log-driver": "json-file",
        "insecure-registries": ["old.example:5000", "10.0.0.5:5000"],
        "registry-mirrors": ["https://mirror.example"],
    }
    assert stat.S_IMODE(daemon_json.stat().st_mode) == 0o644
    assert not list(daemon_json.parent.glob("*.mypaas-tmp"))
    # nothing to change: no write, no reload (the pid file now names a dead process)
    assert not configure_engine(
        ssh,
        insecure_registries=["10.0.0.5:5000"],
        daemon_json=daemon_json,
        pid_path=pid_path,
        systemd_unit=None,
    )
    # a missing daemon.json counts as {}
    fresh = tmp_path / "fresh" / "daemon.json"
    assert configure_engine(ssh, insecure_registries=["10.0.0.0/8"], daemon_json=fresh, reload=False)
    assert json.loads(fresh.read_text()) == {"insecure-registries": ["10.0.0.0/8"]}


# -- a test cluster host: a real engine behind real SSH -----------------------------------------------


def test_bootstrap_on_cluster_hosts(tmp_path: Path) -> None:
    """Two hosts of tests/cluster.py through the driver: trust on first use, facts, the engine's
    registries set and applied by a real reload, and a Swarm joined and left, each step idempotent."""
    from tests.cluster import test_cluster

    with test_cluster(2, prefix="mpiaas", subnet="10.200.79") as cluster:
        h1, h2 = cluster.hosts
        driver = SSHDriver(known_hosts=tmp_path / "known_hosts", default_key=cluster.key_file)

        def connect(url: str) -> SSHMachine:
            with pytest.raises(HostKeyUnknown) as unknown:
                driver.connect(catalog.parse_host_url(url))
            return driver.connect(catalog.parse_host_url(url, host_key=unknown.value.fingerprint))

        with connect(h1.ssh_url()) as m1, connect(h2.ssh_url()) as m2:
            assert m1.local_address == cluster.gateway  # the manager's address as the host sees it
            f = facts(m1)
            assert f.hostname == h1.name
            assert f.docker_version == h1.docker("info", "--format", "{{.ServerVersion}}").stdout.strip()
            assert ensure_docker(m1, lambda _: None) == f.docker_version

            m1.run(["sh", "-c", "cat >/etc/docker/daemon.json"], input=b'{"max-concurrent-downloads": 2}\n')
            registry = f"{cluster.gateway}:5000"
            assert configure_engine(m1, insecure_registries=[registry], mirrors=["https://mirror.invalid"])
            config = json.loads(h1.docker("info", "--format", "{{json .RegistryConfig}}").stdout)
            assert config["IndexConfigs"][registry]["Secure"] is False
            assert config["Mirrors"] == ["https://mirror.invalid/"]
            assert (
                json.loads((h1.root / "etc/docker/daemon.json").read_text())["max-concurrent-downloads"] == 2
            )
            assert not configure_engine(
                m1, insecure_registries=[registry], mirrors=["https://mirror.invalid"]
            )

            init = m1.run(["docker", "swarm", "init", "--advertise-addr", h1.address])
            assert init.code == 0, init.stderr
            token = m1.run(["docker", "swarm", "join-token", "-q", "worker"]).stdout.strip()
            node = swarm_join(m2, token=token, manager=h1.address, advertise_addr=h2.address)
            assert node == swarm_node_id(m2)
            assert swarm_join(m2, token=token, manager=h1.address) == node  # already in: same id
            nodes = m1.run(["docker", "node", "ls", "--format", "{{.ID}}"]).stdout.split()
            assert node in nodes
            with pytest.raises(Conflict, match="already in another swarm"):
                swarm_join(m2, token=token, manager="10.200.79.99")
            swarm_leave(m2)
            assert swarm_node_id(m2) is None
            swarm_leave(m2)  # idempotent
            swarm_leave(m1, force=True)
            assert swarm_node_id(m1) is None
