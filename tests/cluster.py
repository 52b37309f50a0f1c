"""A cluster of N test "hosts" on this one machine, for multi-host tests and benchmarks.

Each host is a network namespace (its own address on a bridge of the root namespace) plus private
mount and UTS namespaces, running its own ``sshd`` and its own ``dockerd`` at the default socket, with
its own ``/var/run``, ``/var/lib/docker`` and ``/etc/docker``. From outside it behaves like a separate
machine: ``ssh root@ADDR docker info`` reaches that host's engine, and hosts reach each other and this
machine (the manager, at the bridge's address) directly, so Swarm overlay networks (VXLAN) and gossip
work between them.

    with test_cluster(3) as cluster:
        h1 = cluster.hosts[0]
        h1.docker("info")                       # that host's engine
        cluster.ssh_argv(h1, "docker", "info")  # the same over SSH, with the cluster's key

By hand: ``python tests/cluster.py up 3`` (leaves the hosts running, prints addresses and the key) and
``python tests/cluster.py down``.

Gotchas:
- enter hosts with ``nsenter``, never ``ip netns exec``: it remounts /sys and dockerd then fails with
  "Devices cgroup isn't mounted";
- the engine's own flags (``--bip``, ``--insecure-registry``, ...) may not also appear in the host's
  ``/etc/docker/daemon.json``: dockerd refuses to start when a directive is given both ways. Code that
  writes ``insecure-registries`` there should get a cluster made with ``insecure_registries=()``;
- processes of containers live in their own network namespaces: a host's processes are found by its
  network namespace, its engine's cgroup parent, and descent from those.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import functools
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

NETNS_DIR = Path("/var/run/netns")
CGROUP_ROOT = Path("/sys/fs/cgroup")
SSHD = "/usr/sbin/sshd"
PREFIX_RE = re.compile(r"^[a-z][a-z0-9]{0,7}$")
SUBNET_RE = re.compile(r"^(\d{1,3})\.(\d{1,3})\.(\d{1,3})$")
BOOT_TIMEOUT_S = 20.0
ENGINE_TIMEOUT_S = 60.0


class ClusterError(RuntimeError):
    """The kit could not build, drive or tear down a test host."""


def state_root(prefix: str) -> Path:
    """Where the hosts of ``prefix`` keep their state (fixed, so a later run can clean it up)."""
    return Path(tempfile.gettempdir()) / f"{prefix}-cluster"


def _clean_env() -> dict[str, str]:
    env = dict(os.environ)
    for var in ("DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH"):
        env.pop(var, None)
    return env


def _run(argv: Sequence[str], *, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, check=False)
    if check and r.returncode != 0:
        raise ClusterError(f"{shlex.join(argv)} failed ({r.returncode}): {(r.stderr or r.stdout).strip()}")
    return r


# -- one host ---------------------------------------------------------------------------------------


@dataclass
class TestHost:
    """One machine of the cluster: ``run`` and ``docker`` act inside it, as a shell on it would."""

    __test__ = False  # not a pytest test class

    name: str
    address: str
    netns: str
    root: Path
    index: int = 1
    gateway: str = ""
    insecure_registries: Sequence[str] = ()
    dockerd_args: Sequence[str] = ()
    _keeper: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _engine: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    # -- addresses and paths ---------------------------------------------------------------------

    def ssh_url(self) -> str:
        return f"ssh://root@{self.address}"

    @property
    def docker_socket(self) -> Path:
        """The host's engine socket, seen from the root namespace (``unix://`` + this for an SDK)."""
        return self.root / "var/run/docker.sock"

    @property
    def bip(self) -> str:
        return f"172.30.{self.index}.1/24"

    @property
    def veth(self) -> str:
        """The root-namespace end of the host's link (on the bridge)."""
        return f"{self.netns}-r"

    @property
    def pid(self) -> int:
        """The pid of the host's keeper process, whose namespaces are the host's."""
        if self._keeper is not None and self._keeper.poll() is None:
            return self._keeper.pid
        with contextlib.suppress(OSError, ValueError):  # a cluster started by another process
            pid = int((self.root / "keeper.pid").read_text())
            if _alive(pid) and _netns_inode_of_pid(pid) == self.netns_inode():
                return pid
        raise ClusterError(f"{self.name} is not running")

    def _running(self) -> bool:
        try:
            self.pid  # noqa: B018
        except ClusterError:
            return False
        return True

    # -- commands inside the host ----------------------------------------------------------------

    def enter_argv(self, *argv: str) -> list[str]:
        """``argv`` wrapped to run inside the host's network, mount and UTS namespaces."""
        return ["nsenter", "-t", str(self.pid), "-n", "-m", "-u", "--", *argv]

    def run(self, *argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` inside the host; the result is returned whatever its exit code."""
        return subprocess.run(
            self.enter_argv(*argv),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env=_clean_env(),
            stdin=subprocess.DEVNULL,
        )

    def docker(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """``docker ARGS`` inside the host: its own engine."""
        return self.run("docker", *args, timeout=timeout)

    def load_image_file(self, tar: Path, *, timeout: float = 120) -> None:
        """``docker load`` a ``docker save`` archive into the host's engine."""
        with tar.open("rb") as f:
            r = subprocess.run(
                self.enter_argv("docker", "load"),
                stdin=f,
                capture_output=True,
                timeout=timeout,
                check=False,
                env=_clean_env(),
            )
        if r.returncode != 0:
            raise ClusterError(f"docker load on {self.name}: {r.stderr.decode(errors='replace').strip()}")

    def load_image(self, *refs: str, timeout: float = 120) -> None:
        """Copy images from the root engine into this host (``docker save | docker load``)."""
        with tempfile.NamedTemporaryFile(dir=self.root, suffix=".tar") as tmp:
            _run(["docker", "save", "-o", tmp.name, *refs], timeout=timeout)
            self.load_image_file(Path(tmp.name), timeout=timeout)

    # -- life cycle ------------------------------------------------------------------------------

    def boot(self) -> None:
        """Start the host's namespaces and its sshd (not its engine). After ``kill_host`` this is a
        reboot: /var/run starts empty, /var/lib/docker and /etc/docker are kept like a disk."""
        if self._running():
            raise ClusterError(f"{self.name} is already running")
        var_run = self.root / "var/run"
        shutil.rmtree(var_run, ignore_errors=True)
        var_run.mkdir(parents=True)
        booted = self.root / "booted"
        booted.unlink(missing_ok=True)
        script = self.root / "boot.sh"
        script.write_text(self._boot_script())
        with (self.root / "boot.log").open("ab") as log:
            self._keeper = subprocess.Popen(
                [
                    "nsenter",
                    f"--net={NETNS_DIR / self.netns}",
                    "unshare",
                    "--mount",
                    "--uts",
                    "--propagation",
                    "private",
                    "sh",
                    str(script),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd="/",
                env=_clean_env(),
            )
        deadline = time.monotonic() + BOOT_TIMEOUT_S
        while not booted.exists():
            if self._keeper.poll() is not None or time.monotonic() > deadline:
                raise ClusterError(f"{self.name} did not boot: {self._tail('boot.log')}")
            time.sleep(0.02)
        (self.root / "keeper.pid").write_text(f"{self._keeper.pid}\n")

    def _boot_script(self) -> str:
        r = shlex.quote(str(self.root))
        return "\n".join(
            [
                "set -eu",
                "mkdir -p /etc/docker /var/lib/docker",
                # /var/run is a symlink to /run: this mounts over /run, as a fresh tmpfs would be
                f"mount --bind {r}/var/run /var/run",
                f"mount --bind {r}/var/lib/docker /var/lib/docker",
                f"mount --bind {r}/etc/docker /etc/docker",
                # the host's ssh sessions run none of this machine's root start-up files: a ~/.bashrc that
                # calls `pyenv init` in the /root all hosts share, killed with its host mid-rehash, leaves
                # pyenv's lock behind, and every later session (any host's, this machine's) hangs on it
                f"if [ -e /root/.bashrc ]; then mount --bind {r}/bashrc /root/.bashrc; fi",
                f"hostname {shlex.quote(self.name)}",
                "mkdir -p /var/run/sshd",
                f"{SSHD} -f {r}/ssh/sshd_config -E {r}/sshd.log",
                f"touch {r}/booted",
                "exec sleep infinity",
                "",
            ]
        )

    def engine_running(self) -> bool:
        """Whether the host's engine answers ``/_ping`` on its socket."""
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(2)
                s.connect(str(self.docker_socket))
                s.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
                data = b""
                while chunk := s.recv(4096):
                    data += chunk
            status = data.split(b"\r\n", 1)[0].split()
            return len(status) >= 2 and status[1] == b"200"
        except OSError:
            return False

    def dockerd_argv(self) -> list[str]:
        argv = [
            "dockerd",
            f"--bip={self.bip}",
            f"--cgroup-parent=/docker-{self.name}",
            "--pidfile=/var/run/docker.pid",
        ]
        argv += [f"--insecure-registry={reg}" for reg in self.insecure_registries]
        return argv + list(self.dockerd_args)

    def start_engine(self, *, timeout: float = ENGINE_TIMEOUT_S) -> None:
        """Start dockerd inside the host (if it is not running) and wait until it answers."""
        if self.engine_running():
            return
        if self._engine is not None and self._engine.poll() is None:
            self._stop_engine_process()
        (self.root / "var/run/docker.pid").unlink(missing_ok=True)
        # dockerd reuses the containerd of its pid file when kill(pid, 0) succeeds, which it does for
        # a zombie too: the containerd of a killed engine (gone with it) can linger as a zombie of
        # pid 1 here, and dockerd would then wait for its socket forever.
        containerd_pid = self.root / "var/run/docker/containerd/containerd.pid"
        with contextlib.suppress(OSError, ValueError):
            pid = int(containerd_pid.read_text().strip())
            if not _alive(pid) or _netns_inode_of_pid(pid) != self.netns_inode():
                containerd_pid.unlink()
        with (self.root / "dockerd.log").open("ab") as log:
            self._engine = subprocess.Popen(
                self.enter_argv(*self.dockerd_argv()),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd="/",
                env=_clean_env(),
            )
        deadline = time.monotonic() + timeout
        while not self.engine_running():
            if self._engine.poll() is not None or time.monotonic() > deadline:
                raise ClusterError(f"the engine of {self.name} did not start: {self._tail('dockerd.log')}")
            time.sleep(0.05)

    def engine_pid(self) -> int | None:
        if self._engine is not None and self._engine.poll() is None:
            return self._engine.pid
        with contextlib.suppress(OSError, ValueError):
            pid = int((self.root / "var/run/docker.pid").read_text().strip())
            if _netns_inode_of_pid(pid) == self.netns_inode():
                return pid
        return None

    def kill_engine(self) -> None:
        """``kill -9`` the host's dockerd only (its containers and their shims stay)."""
        pid = self.engine_pid()
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        self._stop_engine_process()
        _wait_gone([pid], 10)

    def _stop_engine_process(self) -> None:
        if self._engine is not None:
            with contextlib.suppress(ProcessLookupError):
                self._engine.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._engine.wait(10)
            self._engine = None

    def kill_host(self) -> None:
        """``kill -9`` every process of the host (sshd, dockerd, containerd, shims, containers): a
        machine that died. Its address stays on the bridge (the kernel still answers; ports refuse)."""
        _kill_host_processes(self.name, self.netns_inode())
        for proc in (self._engine, self._keeper):
            if proc is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(10)
        self._engine = self._keeper = None

    def disconnect(self) -> None:
        """Cut the host off the network (its link on the bridge goes down): a partition."""
        _run(["ip", "link", "set", self.veth, "down"])

    def reconnect(self) -> None:
        _run(["ip", "link", "set", self.veth, "up"])

    def netns_inode(self) -> int | None:
        try:
            return (NETNS_DIR / self.netns).stat().st_ino
        except OSError:
            return None

    def processes(self) -> list[int]:
        """The pids of every process of the host."""
        return sorted(_host_processes(self.name, self.netns_inode()))

    def _tail(self, log: str, lines: int = 15) -> str:
        try:
            return "\n".join((self.root / log).read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


# -- the cluster ------------------------------------------------------------------------------------


@dataclass
class TestCluster:
    """The hosts, this machine's address on their bridge, and the SSH key every host trusts."""

    __test__ = False

    hosts: list[TestHost]
    gateway: str
    key_file: Path
    known_hosts: Path
    prefix: str = "mp"
    bridge: str = ""
    root: Path = field(default_factory=Path)

    def host(self, name_or_address: str) -> TestHost:
        for h in self.hosts:
            if name_or_address in (h.name, h.address, h.netns):
                return h
        raise KeyError(name_or_address)

    def ssh_argv(self, host: TestHost, *argv: str) -> list[str]:
        """``ssh`` with the cluster's key to ``root@host``, running ``argv`` there (quoted for the
        remote shell, so each item arrives as one argument)."""
        return [
            "ssh",
            "-i",
            str(self.key_file),
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "LogLevel=ERROR",
            "-o",
            "ConnectTimeout=5",
            f"root@{host.address}",
            "--",
            # ssh hands the remote shell one command line: quote, so that argv arrives as it is
            shlex.join(argv),
        ]

    def ssh(self, host: TestHost, *argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.ssh_argv(host, *argv),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
        )

    def load_image(self, *refs: str, timeout: float = 300) -> None:
        """Copy images from the root engine into every running host, in parallel."""
        with tempfile.NamedTemporaryFile(dir=self.root, suffix=".tar") as tmp:
            _run(["docker", "save", "-o", tmp.name, *refs], timeout=timeout)
            tar = Path(tmp.name)
            _parallel([functools.partial(h.load_image_file, tar, timeout=timeout) for h in self.hosts])


def _parallel(jobs: Sequence[Callable[[], object]]) -> None:
    """Run callables in threads; raise the first error after all have finished."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, len(jobs))) as pool:
        futures = [pool.submit(job) for job in jobs]
        errors = [f.exception() for f in futures]
    for err in errors:
        if err is not None:
            raise err


def _check_args(n: int, prefix: str, subnet: str) -> None:
    if not PREFIX_RE.match(prefix):
        raise ValueError(f"prefix {prefix!r}: 1-8 lowercase letters/digits, starting with a letter")
    m = SUBNET_RE.match(subnet)
    if not m or any(int(part) > 255 for part in m.groups()):
        raise ValueError(f"subnet {subnet!r}: the first three octets of a /24, e.g. 10.200.0")
    if not 1 <= n <= 200:
        raise ValueError("n must be between 1 and 200")
    if os.geteuid() != 0:
        raise ClusterError("the cluster kit needs root (namespaces, bridge, iptables)")
    for tool in ("ip", "iptables", "nsenter", "unshare", "ssh-keygen", "dockerd", "docker"):
        if shutil.which(tool) is None:
            raise ClusterError(f"{tool} is not installed (scripts/install.sh --test)")
    if not Path(SSHD).exists():
        raise ClusterError(f"{SSHD} is not installed (apt-get install openssh-server)")


def start_cluster(
    n: int = 3,
    *,
    prefix: str = "mp",
    subnet: str = "10.200.0",
    insecure_registries: Sequence[str] = (),
    dockerd_args: Sequence[str] = (),
) -> TestCluster:
    """Build the cluster and leave it running (``stop_cluster`` or ``cleanup_stale`` end it). Leftovers
    of an earlier run with the same prefix are removed first; on failure, everything is torn down."""
    _check_args(n, prefix, subnet)
    cleanup_stale(prefix)
    gateway = f"{subnet}.1"
    used = _run(["ip", "-o", "-4", "addr", "show"]).stdout
    if re.search(rf"\sinet {re.escape(gateway)}/", used):
        raise ClusterError(f"{gateway} is already in use on this machine: pick another subnet")
    root = state_root(prefix)
    root.mkdir(mode=0o700, parents=True)
    cluster = _describe(prefix, n, subnet, insecure_registries, dockerd_args)
    try:
        _keygen(cluster.key_file, f"{prefix}-cluster")
        _make_bridge(cluster.bridge, gateway, subnet, prefix)
        (root / "cluster.json").write_text(
            json.dumps(
                {
                    "n": n,
                    "subnet": subnet,
                    "insecure_registries": list(insecure_registries),
                    "dockerd_args": list(dockerd_args),
                }
            )
        )
        _parallel([functools.partial(_start_host, cluster, h) for h in cluster.hosts])
    except BaseException:
        stop_cluster(cluster)
        raise
    return cluster


def _describe(
    prefix: str, n: int, subnet: str, insecure_registries: Sequence[str], dockerd_args: Sequence[str]
) -> TestCluster:
    root = state_root(prefix)
    gateway = f"{subnet}.1"
    hosts = [
        TestHost(
            name=f"{prefix}-h{i}",
            address=f"{subnet}.{10 + i}",
            netns=f"{prefix}-h{i}",
            root=root / f"{prefix}-h{i}",
            index=i,
            gateway=gateway,
            insecure_registries=tuple(insecure_registries),
            dockerd_args=tuple(dockerd_args),
        )
        for i in range(1, n + 1)
    ]
    return TestCluster(
        hosts=hosts,
        gateway=gateway,
        key_file=root / "id_ed25519",
        known_hosts=root / "known_hosts",
        prefix=prefix,
        bridge=f"{prefix}br0",
        root=root,
    )


def attach_cluster(prefix: str = "mp") -> TestCluster:
    """The cluster another process started (``python tests/cluster.py up``), to drive it from here."""
    try:
        spec = json.loads((state_root(prefix) / "cluster.json").read_text())
    except OSError as e:
        raise ClusterError(f"no {prefix} cluster is running: {e}") from e
    return _describe(prefix, spec["n"], spec["subnet"], spec["insecure_registries"], spec["dockerd_args"])


def _keygen(path: Path, comment: str) -> None:
    _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)])


def _make_bridge(bridge: str, gateway: str, subnet: str, prefix: str) -> None:
    _run(["ip", "link", "add", bridge, "type", "bridge"])
    _run(["ip", "addr", "add", f"{gateway}/24", "dev", bridge])
    _run(["ip", "link", "set", bridge, "up"])
    Path("/proc/sys/net/ipv4/ip_forward").write_text("1\n")
    # dockerd on the root namespace sets FORWARD's policy to DROP, and with br_netfilter loaded the
    # traffic bridged between hosts goes through FORWARD too: let all of the bridge's traffic pass.
    comment = ["-m", "comment", "--comment", _comment(prefix)]
    _run(["iptables", "-w", "-I", "FORWARD", "-i", bridge, *comment, "-j", "ACCEPT"])
    _run(["iptables", "-w", "-I", "FORWARD", "-o", bridge, *comment, "-j", "ACCEPT"])
    # hosts reach the outside world through this machine, as machines behind a router would
    masquerade = ["-s", f"{subnet}.0/24", "!", "-o", bridge, *comment, "-j", "MASQUERADE"]
    _run(["iptables", "-w", "-t", "nat", "-A", "POSTROUTING", *masquerade])


def _start_host(cluster: TestCluster, host: TestHost) -> None:
    prepare_host_files(host, cluster.key_file.with_suffix(".pub").read_text())
    ns = host.netns
    inner = f"{ns}-n"
    _run(["ip", "netns", "add", ns])
    _run(["ip", "link", "add", host.veth, "type", "veth", "peer", "name", inner, "netns", ns])
    _run(["ip", "link", "set", host.veth, "master", cluster.bridge, "up"])
    _run(["ip", "-n", ns, "link", "set", inner, "name", "eth0"])
    _run(["ip", "-n", ns, "addr", "add", f"{host.address}/24", "dev", "eth0"])
    _run(["ip", "-n", ns, "link", "set", "eth0", "up"])
    _run(["ip", "-n", ns, "link", "set", "lo", "up"])
    _run(["ip", "-n", ns, "route", "add", "default", "via", cluster.gateway])
    host.boot()
    host.start_engine()


def prepare_host_files(host: TestHost, authorized_keys: str) -> None:
    """The host's folders, its host key and its sshd_config (listening at its address, letting in
    ``authorized_keys``): what ``boot`` needs, whatever network namespace the host lives in."""
    for sub in ("var/run", "var/lib/docker", "etc/docker", "ssh"):
        (host.root / sub).mkdir(parents=True, exist_ok=True)
    (host.root / "etc/docker/daemon.json").write_text("{}\n")
    (host.root / "bashrc").write_text("# the test host's own: see _boot_script\n")
    ssh = host.root / "ssh"
    _keygen(ssh / "ssh_host_ed25519_key", host.name)
    (ssh / "authorized_keys").write_text(authorized_keys)
    (ssh / "sshd_config").write_text(
        "\n".join(
            [
                f"ListenAddress {host.address}",
                "Port 22",
                f"HostKey {ssh / 'ssh_host_ed25519_key'}",
                "PidFile /var/run/sshd.pid",
                f"AuthorizedKeysFile {ssh / 'authorized_keys'}",
                "PermitRootLogin prohibit-password",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "UsePAM no",
                "StrictModes no",  # the host folders sit under the world-writable temp folder
                "PrintMotd no",
                "UseDNS no",
                "AcceptEnv LANG LC_*",
                "Subsystem sftp /usr/lib/openssh/sftp-server",
                "",
            ]
        )
    )


def stop_cluster(cluster: TestCluster) -> None:
    """Tear down everything of the cluster (also a half-built one)."""
    for host in cluster.hosts:
        with contextlib.suppress(Exception):
            host.kill_host()
    cleanup_stale(cluster.prefix)


@contextlib.contextmanager
def test_cluster(
    n: int = 3,
    *,
    prefix: str = "mp",
    subnet: str = "10.200.0",
    insecure_registries: Sequence[str] = (),
    dockerd_args: Sequence[str] = (),
) -> Iterator[TestCluster]:
    """A running cluster of ``n`` hosts ``{prefix}-h1..n`` at ``{subnet}.11..``; torn down on exit."""
    cluster = start_cluster(
        n, prefix=prefix, subnet=subnet, insecure_registries=insecure_registries, dockerd_args=dockerd_args
    )
    try:
        yield cluster
    finally:
        stop_cluster(cluster)


test_cluster.__test__ = False  # type: ignore[attr-defined]


# -- finding and removing what a cluster left ------------------------------------------------------


def _comment(prefix: str) -> str:
    return f"mypaas-cluster:{prefix}"


def _netns_inode_of_pid(pid: int) -> int | None:
    try:
        return os.stat(f"/proc/{pid}/ns/net").st_ino
    except OSError:
        return None


def _cgroup_names(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cgroup").read_text()
    except OSError:
        return ""


def _host_processes(name: str, netns_inode: int | None) -> set[int]:
    """Processes in the host's network namespace or its engine's cgroup parent, and their descendants."""
    me = os.getpid()
    cg = f"/docker-{name}"
    parents: dict[int, int] = {}
    found: set[int] = set()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] == "Z":
            continue
        parents[pid] = int(fields[1])
        if pid == me:
            continue
        in_netns = netns_inode is not None and _netns_inode_of_pid(pid) == netns_inode
        if in_netns or any(p.endswith(cg) or f"{cg}/" in p for p in _cgroup_names(pid).splitlines()):
            found.add(pid)
    grown = True
    while grown:
        more = {pid for pid, ppid in parents.items() if ppid in found and pid not in found and pid != me}
        found |= more
        grown = bool(more)
    return found


def _kill_host_processes(name: str, netns_inode: int | None, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while pids := _host_processes(name, netns_inode):
        if time.monotonic() > deadline:
            raise ClusterError(f"processes of {name} survive kill -9: {sorted(pids)}")
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        _wait_gone(pids, 2)


def _wait_gone(pids: Sequence[int] | set[int], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    alive = set(pids)
    while alive and time.monotonic() < deadline:
        alive = {p for p in alive if _alive(p)}
        if alive:
            time.sleep(0.02)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _mounts_under(path: Path) -> list[str]:
    base = str(path)
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if point == base or point.startswith(base + "/"):
            found.append(point)
    return sorted(found, key=len, reverse=True)


def _remove_iptables_rules(prefix: str) -> None:
    tag = _comment(prefix)
    for table, chain in (("filter", "FORWARD"), ("nat", "POSTROUTING")):
        listed = _run(["iptables", "-w", "-t", table, "-S", chain], check=False).stdout
        for line in listed.splitlines():
            words = shlex.split(line)
            if tag in words and words[:1] == ["-A"]:
                _run(["iptables", "-w", "-t", table, "-D", *words[1:]], check=False)


def _remove_cgroups(name_glob: str) -> None:
    for parent in CGROUP_ROOT.glob(f"*/{name_glob}"):
        for dirpath, _dirs, _files in sorted(os.walk(parent), key=lambda w: -len(w[0])):
            with contextlib.suppress(OSError):
                os.rmdir(dirpath)


def cleanup_stale(prefix: str) -> None:
    """Remove whatever a cluster with this prefix left (processes, mounts, netns, bridge, iptables
    rules, cgroups, state folder), e.g. after a crashed run or ``up`` by hand."""
    if not PREFIX_RE.match(prefix):
        raise ValueError(f"bad prefix {prefix!r}")
    host_re = re.compile(rf"^{re.escape(prefix)}-h\d+$")
    names = sorted(p.name for p in NETNS_DIR.glob(f"{prefix}-h*") if host_re.match(p.name))
    names += sorted(
        {p.name.removeprefix("docker-") for p in CGROUP_ROOT.glob(f"*/docker-{prefix}-h*")} - set(names)
    )
    for name in names:
        inode = None
        with contextlib.suppress(OSError):
            inode = (NETNS_DIR / name).stat().st_ino
        _kill_host_processes(name, inode)
    root = state_root(prefix)
    for point in _mounts_under(root):
        _run(["umount", "-l", point], check=False)
    for name in names:
        if (NETNS_DIR / name).exists():
            _run(["ip", "netns", "del", name], check=False)
        if Path(f"/sys/class/net/{name}-r").exists():
            _run(["ip", "link", "del", f"{name}-r"], check=False)
    if Path(f"/sys/class/net/{prefix}br0").exists():
        _run(["ip", "link", "del", f"{prefix}br0"], check=False)
    _remove_iptables_rules(prefix)
    _remove_cgroups(f"docker-{prefix}-h*")
    if root.exists():
        try:
            shutil.rmtree(root)
        except OSError:
            for point in _mounts_under(root):
                _run(["umount", "-l", point], check=False)
            shutil.rmtree(root)


# -- by hand ----------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Test hosts (netns + sshd + dockerd) on this machine.")
    sub = parser.add_subparsers(dest="cmd", required=True)
    up = sub.add_parser("up", help="start N hosts and leave them running")
    up.add_argument("n", type=int, nargs="?", default=3)
    up.add_argument("--prefix", default="mp")
    up.add_argument("--subnet", default="10.200.0")
    up.add_argument("--insecure-registry", action="append", default=[])
    down = sub.add_parser("down", help="remove the hosts of a prefix")
    down.add_argument("--prefix", default="mp")
    args = parser.parse_args(argv)
    if args.cmd == "down":
        cleanup_stale(args.prefix)
        print(f"removed the {args.prefix} cluster")
        return 0
    started = time.monotonic()
    cluster = start_cluster(
        args.n, prefix=args.prefix, subnet=args.subnet, insecure_registries=args.insecure_registry
    )
    print(f"{len(cluster.hosts)} hosts up in {time.monotonic() - started:.1f}s; manager at {cluster.gateway}")
    for h in cluster.hosts:
        print(f"  {h.name}  {h.address}  pid {h.pid}  state {h.root}")
    print(f"key: {cluster.key_file}")
    print(
        f"  ssh -i {cluster.key_file} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null root@ADDR"
    )
    print("  nsenter -t PID -n -m -u docker ...")
    print(f"down: python {sys.argv[0]} down --prefix {args.prefix}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
