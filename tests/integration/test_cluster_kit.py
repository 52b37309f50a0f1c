"""The multi-host kit (tests/cluster.py) for real: each host answers SSH with the cluster's key and runs
its own engine; containers run on a host and answer other hosts over the bridge; engines and whole
hosts can die and come back; nothing is left once the cluster is gone."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests import kit
from tests.cluster import NETNS_DIR, TestCluster, TestHost, state_root, test_cluster

pytestmark = pytest.mark.integration

PREFIX = "mpkit"  # unique to this module: other tests' clusters cannot collide with it
SUBNET = "10.200.77"
IMAGE = "mypaas-test/cluster-web:1"


def leftovers(prefix: str) -> list[str]:
    """Whatever a cluster of ``prefix`` could have left on this machine."""
    found = [f"netns {p.name}" for p in NETNS_DIR.glob(f"{prefix}-h*")]
    links = [Path("/sys/class/net", f"{prefix}br0"), *Path("/sys/class/net").glob(f"{prefix}-h*")]
    found += [f"link {p.name}" for p in links if p.exists()]
    for table in ("filter", "nat"):
        rules = subprocess.run(
            ["iptables", "-t", table, "-S"], capture_output=True, text=True, check=False
        ).stdout
        found += [f"iptables {r}" for r in rules.splitlines() if f"mypaas-cluster:{prefix}" in r]
    found += [f"cgroup {p}" for p in Path("/sys/fs/cgroup").glob(f"*/docker-{prefix}-h*")]
    root = state_root(prefix)
    if root.exists():
        found.append(f"folder {root}")
    mounts = Path("/proc/self/mountinfo").read_text()
    found += [f"mount {line}" for line in mounts.splitlines() if str(root) in line]
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                args = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if str(root) in args or f"docker-{prefix}-h" in args:
                found.append(f"process {proc.name}: {args}")
    return found


@pytest.fixture(scope="module")
def cluster() -> Iterator[TestCluster]:
    started = time.monotonic()
    with test_cluster(3, prefix=PREFIX, subnet=SUBNET) as c:
        print(f"3 hosts up in {time.monotonic() - started:.1f}s")
        assert time.monotonic() - started < 15
        yield c
    assert leftovers(PREFIX) == []


@pytest.fixture(scope="module")
def image() -> str:
    kit.busybox_image(IMAGE, files={"www/index.html": "from the cluster\n"})
    return IMAGE


def wait_ok(check: Callable[[], bool], timeout: float = 15) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return False


def test_each_host_answers_ssh_with_its_own_engine(cluster: TestCluster) -> None:
    assert [h.address for h in cluster.hosts] == [f"{SUBNET}.11", f"{SUBNET}.12", f"{SUBNET}.13"]
    assert cluster.gateway == f"{SUBNET}.1"
    assert cluster.hosts[0].ssh_url() == f"ssh://root@{SUBNET}.11"
    root_id = subprocess.run(
        ["docker", "info", "--format", "{{.ID}}"], capture_output=True, text=True, check=True
    ).stdout.strip()
    seen = {}
    for h in cluster.hosts:
        # the plain ssh command line a product would use
        r = subprocess.run(
            [
                "ssh",
                "-i",
                str(cluster.key_file),
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
                "-o",
                "BatchMode=yes",
                f"root@{h.address}",
                "docker info --format '{{.ID}} {{.Name}}'",
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert r.returncode == 0, r.stderr
        engine_id, name = r.stdout.split()
        assert name == h.name
        seen[engine_id] = h.name
        inside = h.docker("info", "--format", "{{.ID}}")
        assert inside.returncode == 0 and inside.stdout.strip() == engine_id
        assert cluster.ssh(h, "hostname").stdout.strip() == h.name
        assert cluster.ssh(h, "ip", "-4", "-o", "addr", "show", "eth0").stdout.count(h.address) == 1
    assert len(seen) == 3 and root_id not in seen


def test_etc_docker_is_private_to_each_host(cluster: TestCluster) -> None:
    real = Path("/etc/docker/daemon.json")
    before = real.read_bytes() if real.exists() else None
    h = cluster.hosts[0]
    assert json.loads(cluster.ssh(h, "cat", "/etc/docker/daemon.json").stdout) == {}
    written = cluster.ssh(h, "sh", "-c", 'echo \'{"labels": ["k=v"]}\' > /etc/docker/daemon.json')
    assert written.returncode == 0, written.stderr
    assert (h.root / "etc/docker/daemon.json").read_text().strip() == '{"labels": ["k=v"]}'
    assert (real.read_bytes() if real.exists() else None) == before
    assert json.loads(cluster.ssh(cluster.hosts[1], "cat", "/etc/docker/daemon.json").stdout) == {}
    (h.root / "etc/docker/daemon.json").write_text("{}\n")


def test_container_on_one_host_answers_the_others(cluster: TestCluster, image: str) -> None:
    a, b = cluster.hosts[0], cluster.hosts[1]
    # docker save on this machine | docker load on host b, over SSH
    save = subprocess.Popen(["docker", "save", image], stdout=subprocess.PIPE)
    load = subprocess.run(
        cluster.ssh_argv(b, "docker", "load"), stdin=save.stdout, capture_output=True, check=False
    )
    assert save.stdout is not None
    save.stdout.close()
    assert save.wait() == 0 and load.returncode == 0, load.stderr
    assert a.docker("image", "inspect", image).returncode != 0  # host a has its own image store
    run = b.docker("run", "-d", "--name", "web", "-p", "8080:80", image)
    assert run.returncode == 0, run.stderr

    def from_a() -> bool:
        r = a.run("curl", "-fsS", "-m", "2", f"http://{b.address}:8080/")
        return r.stdout == "from the cluster\n"

    assert wait_ok(from_a)
    with urllib.request.urlopen(f"http://{b.address}:8080/", timeout=5) as resp:  # from the manager
        assert resp.read() == b"from the cluster\n"
    assert b.docker("rm", "-f", "web").returncode == 0


def test_udp_between_hosts(cluster: TestCluster) -> None:
    """VXLAN (UDP 4789) must pass between hosts for Swarm overlay networks."""
    a, b = cluster.hosts[0], cluster.hosts[2]
    server = (
        "import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
        f"s.bind(('{b.address}', 4789)); s.settimeout(10); d, peer = s.recvfrom(100); "
        "print(d.decode(), peer[0])"
    )
    listener = subprocess.Popen(b.enter_argv(sys.executable, "-c", server), stdout=subprocess.PIPE, text=True)
    try:
        client = (
            "import socket, time; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
            "for _ in range(20):\n"
            f"    s.sendto(b'vxlan', ('{b.address}', 4789)); time.sleep(0.05)"
        )
        a.run(sys.executable, "-c", client, timeout=30)
        out, _ = listener.communicate(timeout=15)
    finally:
        listener.kill()
    assert out.split() == ["vxlan", a.address]


def test_engine_and_host_die_and_come_back(cluster: TestCluster, image: str) -> None:
    h = cluster.hosts[2]
    engine_id = h.docker("info", "--format", "{{.ID}}").stdout.strip()
    h.load_image(image)
    # without live-restore a restarted engine stops what ran (SIGTERM, then SIGKILL after the stop
    # timeout: httpd as pid 1 ignores SIGTERM) and starts it again
    keep = ("run", "-d", "--name", "keep", "--restart", "always", "--stop-timeout", "1", image)
    assert h.docker(*keep).returncode == 0
    shims = [p for p in h.processes() if b"containerd-shim" in Path(f"/proc/{p}/cmdline").read_bytes()]
    assert shims

    h.kill_engine()
    assert not h.engine_running()
    assert cluster.ssh(h, "true").returncode == 0  # the machine is up, only its engine died
    h.start_engine()
    assert h.docker("info", "--format", "{{.ID}}").stdout.strip() == engine_id

    h.kill_host()
    assert h.processes() == []
    assert not h.engine_running()
    assert cluster.ssh(h, "true", timeout=20).returncode != 0
    h.boot()  # a reboot: same disk, fresh /var/run
    h.start_engine()
    assert h.docker("info", "--format", "{{.ID}}").stdout.strip() == engine_id
    assert cluster.ssh(h, "docker", "image", "inspect", image).returncode == 0

    def restarted() -> bool:
        r = h.docker("inspect", "--format", "{{.State.Running}}", "keep")
        return r.stdout.strip() == "true"

    assert wait_ok(restarted)


def test_partition(cluster: TestCluster) -> None:
    a, b = cluster.hosts[0], cluster.hosts[1]
    b.disconnect()
    try:
        assert a.run("curl", "-sS", "-m", "1", f"http://{b.address}:22/").returncode == 28  # timeout
    finally:
        b.reconnect()
    assert wait_ok(lambda: cluster.ssh(b, "true", timeout=10).returncode == 0)


def test_half_built_cluster_is_removed(monkeypatch: pytest.MonkeyPatch) -> None:
    """A failure while hosts start tears down what was already made."""
    prefix = "mpkitb"

    def broken(self: TestHost, *, timeout: float = 0) -> None:
        if self.index == 2:
            raise RuntimeError("engine refused to start")
        original(self)

    original = TestHost.start_engine
    monkeypatch.setattr(TestHost, "start_engine", broken)
    with (
        pytest.raises(RuntimeError, match="engine refused"),
        test_cluster(2, prefix=prefix, subnet="10.200.78"),
    ):
        pass
    assert leftovers(prefix) == []
