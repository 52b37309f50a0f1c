"""VMware's vSphere simulator (vcsim) for the vsphere driver's tests, and the harness that makes its
simulated VMs real hosts. Test code only: the product never sees any of this.

vcsim backs a VM with a container when the VM's extraConfig holds ``RUN.container`` (a JSON array
appended to ``docker run -d --name vcsim-VM-UUID``), passes ``guestinfo.*`` keys as ``VMX_GUESTINFO_*``
environment variables, and reports the container's address as the VM's guest IP. vcsim runs
``docker`` from its PATH, where ``running_vcsim`` puts a wrapper (this module's ``docker_main``) that

- drops the ``-v …:/sys/class/dmi/id:ro`` pair (these machines have no /sys/class/dmi to mount over);
- labels every container it runs (``mypaas.test.vcsim=<port>``) so the teardown finds them;
- after ``run -d``: makes the container's network namespace a test host (tests/cluster.py's netns
  host: an sshd letting in the SSH keys of the VM's cloud-init user data from guestinfo, the host name
  of its meta data, and a dockerd), before vcsim reports the address;
- before ``stop``/``rm``: kills that host's processes (a powered-off VM answers nothing).

``python -m tests.vcsim.harness up`` starts one by hand (``down`` removes what it left).
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from tests.cluster import TestHost, cleanup_stale, prepare_host_files, state_root

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
PREFIX = "vcs"  # hosts are vcs-h1, vcs-h2, ... (tests/cluster.py's cleanup_stale finds them)
LABEL = "mypaas.test.vcsim"
VM_IMAGE = "mypaas-test/vcsim-vm:1"
TAR_IMAGE = "mypaas-test/vcsim-busybox:1"  # vcsim writes DMI files with `busybox tar`
DMI = ":/sys/class/dmi/id:ro"
REAL_DOCKER = "/usr/bin/docker"
FIRST_INDEX = 100  # the hosts' engines use 172.30.INDEX.1/24: above the test clusters' ones


@dataclass(frozen=True)
class Vcsim:
    """A running simulator: its SDK URL, credentials, and what a driver account needs to use it."""

    url: str
    user: str
    password: str
    root: Path
    port: int
    template: str = "debian-12"

    @property
    def extra_config(self) -> str:
        """The extraConfig that backs each VM with a container (the account's ``extra_config``)."""
        return "RUN.container=" + json.dumps([VM_IMAGE])

    def options(self, **more: str) -> dict[str, str]:
        """A vsphere driver account's options for this simulator."""
        return {
            "url": self.url,
            "user": self.user,
            "password": self.password,
            "template": self.template,
            "extra_config": self.extra_config,
            "address_timeout": "60",
            "ssh_timeout": "60",
            **more,
        }

    def containers(self) -> list[str]:
        """The names of the VM containers running now."""
        out = _docker("ps", "--filter", f"label={LABEL}={self.port}", "--format", "{{.Names}}")
        return sorted(out.split())


def build() -> Path:
    """The vcsim binary (built once, cached by tests/vcsim/build.sh)."""
    done = subprocess.run([str(HERE / "build.sh")], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"building vcsim failed: {done.stderr.strip()}")
    return Path(done.stdout.strip())


@contextlib.contextmanager
def running_vcsim(port: int, *, user: str = "mypaas", password: str = "vcsim-pw") -> Iterator[Vcsim]:
    """vcsim on 127.0.0.1:``port`` with a template ``debian-12``; stopped afterwards, with every VM
    container it ran, their volumes and the test hosts made in them, even when the test failed."""
    from tests.kit import busybox_image

    binary = build()
    cleanup(port)
    root = state_root(PREFIX)
    (root / "bin").mkdir(parents=True, exist_ok=True)
    busybox_image(TAR_IMAGE, cmd=("/bin/sh",), expose=None, applets=("sh", "tar"))
    busybox_image(
        VM_IMAGE,
        cmd=("/bin/sh", "-c", "trap 'exit 0' TERM; while :; do sleep 3600 & wait; done"),
        expose=None,
        applets=("sh", "sleep"),
    )
    wrapper = root / "bin" / "docker"
    wrapper.write_text(
        f"#!{sys.executable}\nimport sys\nsys.path.insert(0, {str(ROOT)!r})\n"
        "from tests.vcsim.harness import docker_main\nsys.exit(docker_main(sys.argv[1:]))\n"
    )
    wrapper.chmod(0o755)
    env = {
        **os.environ,
        "PATH": f"{wrapper.parent}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "VCSIM_BUSYBOX": TAR_IMAGE,
        "MYPAAS_VCSIM_PORT": str(port),
    }
    log = (root / f"vcsim-{port}.log").open("ab")
    proc = subprocess.Popen(
        [str(binary), "-listen", f"127.0.0.1:{port}", "-user", user, "-pass", password],
        stdout=subprocess.PIPE,
        stderr=log,
        env=env,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        ready = proc.stdout.readline().decode()
        if not ready.startswith("ready "):
            raise RuntimeError(f"vcsim did not start (see {log.name})")
        sim = Vcsim(f"http://127.0.0.1:{port}/sdk", user, password, root, port)
        make_template(sim)
        yield sim
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(10)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
        cleanup(port)


def make_template(sim: Vcsim) -> None:
    """A VM template named ``sim.template`` in DC0 (vcsim's model has VMs but no templates)."""
    from pyVim import connect
    from pyVim.task import WaitForTask
    from pyVmomi import vim

    si = connect.SmartConnect(
        protocol="http", host="127.0.0.1", port=sim.port, user=sim.user, pwd=sim.password
    )
    try:
        dc = si.RetrieveContent().rootFolder.childEntity[0]
        pool = next(c for c in dc.hostFolder.childEntity if isinstance(c, vim.ClusterComputeResource))
        files = vim.vm.FileInfo(vmPathName=f"[{dc.datastore[0].name}]")
        config = vim.vm.ConfigSpec(name=sim.template, guestId="debian12_64Guest", files=files)
        WaitForTask(dc.vmFolder.CreateVM_Task(config=config, pool=pool.resourcePool))
        vm = next(v for v in dc.vmFolder.childEntity if v.name == sim.template)
        vm.MarkAsTemplate()
    finally:
        connect.Disconnect(si)


def cleanup(port: int) -> None:
    """Remove the VM containers and volumes of the simulator on ``port`` (0: of any) and every vcsim
    test host."""
    label = f"{LABEL}={port}" if port else LABEL
    for cid in _docker("ps", "-aq", "--filter", f"label={label}").split():
        subprocess.run([REAL_DOCKER, "rm", "-f", "-v", cid], capture_output=True, check=False)
    names = state_root(PREFIX) / "volumes"
    if names.exists():
        for name in set(names.read_text().split()):
            subprocess.run([REAL_DOCKER, "volume", "rm", "-f", name], capture_output=True, check=False)
    cleanup_stale(PREFIX)


# -- the docker wrapper vcsim runs -------------------------------------------------------------------------


def docker_main(args: Sequence[str]) -> int:
    """What vcsim's ``docker`` does: see the module docstring."""
    argv = list(args)
    if argv[:1] == ["run"]:
        return _run(argv)
    if argv[:1] in (["stop"], ["rm"]):
        for cid in (a for a in argv[1:] if not a.startswith("-")):
            host_down(cid)
    os.execv(REAL_DOCKER, [REAL_DOCKER, *argv])
    return 127  # not reached


def _run(argv: list[str]) -> int:
    kept: list[str] = []
    skip = False
    for i, arg in enumerate(argv):
        if skip:
            skip = False
            continue
        if arg == "-v" and i + 1 < len(argv) and argv[i + 1].endswith(DMI):
            skip = True
            continue
        kept.append(arg)
    port = os.environ.get("MYPAAS_VCSIM_PORT", "0")
    kept[1:1] = ["--label", f"{LABEL}={port}"]
    if "--name" in kept:
        with (state_root(PREFIX) / "volumes").open("a") as f:
            f.write(kept[kept.index("--name") + 1] + "\n")  # vcsim's DMI volume has its name
    done = subprocess.run([REAL_DOCKER, *kept], capture_output=True, text=True, check=False)
    sys.stderr.write(done.stderr)
    sys.stdout.write(done.stdout)
    if done.returncode == 0 and "-d" in kept:
        try:
            host_up(done.stdout.strip())
        except Exception as exc:  # the VM stays up without a host in it: its SSH wait will say so
            sys.stderr.write(f"vcsim harness: no host in {done.stdout.strip()[:12]}: {exc}\n")
    return done.returncode


def host_up(container_id: str) -> TestHost:
    """Make the container's network namespace a test host: sshd (the guestinfo keys) and dockerd."""
    info = json.loads(_docker("inspect", container_id))[0]
    env = dict(e.split("=", 1) for e in info["Config"]["Env"] or [])
    keys = authorized_keys(
        env.get("VMX_GUESTINFO_USERDATA", ""), env.get("VMX_GUESTINFO_USERDATA_ENCODING", "")
    )
    network = info["NetworkSettings"]
    root = state_root(PREFIX)
    with _locked(root / "index.lock"):
        counter = root / "index"
        index = int(counter.read_text()) + 1 if counter.exists() else FIRST_INDEX
        counter.write_text(str(index))
    name = f"{PREFIX}-h{index}"
    host = TestHost(
        name=name, address=network["IPAddress"], netns=name, root=root / name, index=index,
        gateway=network["Gateway"],
    )  # fmt: skip
    subprocess.run(
        ["ip", "netns", "attach", name, str(info["State"]["Pid"])], check=True, capture_output=True
    )
    (root / "hosts").mkdir(exist_ok=True)
    (root / "hosts" / container_id).write_text(json.dumps({"name": name, "address": host.address}))
    prepare_host_files(host, keys)
    host.boot()
    hostname = local_hostname(
        env.get("VMX_GUESTINFO_METADATA", ""), env.get("VMX_GUESTINFO_METADATA_ENCODING", "")
    )
    if hostname:  # as cloud-init does at first boot: the engine (a Swarm node) is named after it
        host.run("hostname", hostname)
    host.start_engine()
    return host


def host_down(container_id: str) -> None:
    """Kill the processes of the test host in that container (sshd, dockerd, its containers)."""
    hosts = state_root(PREFIX) / "hosts"
    for record in hosts.glob(f"{container_id}*") if hosts.exists() else []:
        spec = json.loads(record.read_text())
        host = TestHost(name=spec["name"], address=spec["address"], netns=spec["name"], root=Path("/"))
        with contextlib.suppress(Exception):
            host.kill_host()
        subprocess.run(["ip", "netns", "del", spec["name"]], capture_output=True, check=False)
        record.unlink(missing_ok=True)


def authorized_keys(user_data: str, encoding: str) -> str:
    """The SSH keys of cloud-init user data (top level and per user), one per line."""
    data = _guestinfo_yaml(user_data, encoding)
    keys = list(data.get("ssh_authorized_keys") or [])
    for user in data.get("users") or []:
        if isinstance(user, dict):
            keys += user.get("ssh_authorized_keys") or []
    return "".join(f"{k}\n" for k in keys)


def local_hostname(meta_data: str, encoding: str) -> str:
    """The host name cloud-init's meta data gives the machine ("" if none)."""
    return str(_guestinfo_yaml(meta_data, encoding).get("local-hostname") or "")


def _guestinfo_yaml(value: str, encoding: str) -> dict[str, Any]:
    text = base64.b64decode(value).decode() if value and encoding in ("base64", "b64") else value
    data = yaml.safe_load(text) if text else None
    return data if isinstance(data, dict) else {}


def _docker(*args: str) -> str:
    return subprocess.run([REAL_DOCKER, *args], capture_output=True, text=True, check=True).stdout


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def main(argv: Sequence[str]) -> int:
    from tests.kit import free_port

    if argv[:1] == ["down"]:
        cleanup(int(argv[1]) if len(argv) > 1 else 0)
        return 0
    port = free_port()
    with running_vcsim(port) as sim:
        print(f"vcsim at {sim.url} (user {sim.user}, password {sim.password})")
        print(f"extra_config {sim.extra_config}")
        print("Ctrl-C stops it and removes its VMs")
        with contextlib.suppress(KeyboardInterrupt):
            subprocess.run(["sleep", "infinity"], check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
