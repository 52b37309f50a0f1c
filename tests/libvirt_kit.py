"""Test kit for the libvirt driver: libvirtd (and virtlogd) started when not running, an isolated
libvirt network (no forwarding: 10.200.150.0/24, a range no other test uses) and a dir pool in a temp
folder holding the cached base disk (tests/…/libvirt_image.cached_base_disk). Everything is torn down
afterwards, even when a test fails: the lab's machines, the network, the pool, the daemons it started.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mypaas.iaas.libvirt_image import cached_base_disk, image_files

URI = "qemu:///system"
SUBNETS = tuple(f"10.200.{n}" for n in range(150, 156))  # tests/cluster.py users take other /24s
SUBNET = SUBNETS[0]
DAEMONS = (("virtlogd", "/run/virtlogd.pid"), ("libvirtd", "/run/libvirtd.pid"))


@dataclass(frozen=True)
class Lab:
    """What a libvirt driver account needs: the URI, a started pool and network, a base image."""

    uri: str
    pool: str
    network: str
    image: str
    folder: Path
    subnet: str  # the network's /24, "10.200.150"

    @property
    def gateway(self) -> str:
        return f"{self.subnet}.1"

    def options(self) -> dict[str, str]:
        return {
            "uri": self.uri,
            "pool": self.pool,
            "network": self.network,
            "image": self.image,
            "domain_type": "qemu",  # KVM guests hang on these machines; TCG works
        }


def missing_parts() -> list[str]:
    """What this machine lacks to run the lab (scripts/install.sh --test installs all of it)."""
    import importlib.util

    tools = ("libvirtd", "virtlogd", "virsh", "qemu-system-x86_64", "qemu-img", "genisoimage", "debootstrap")
    missing = [t for t in tools if shutil.which(t) is None]
    if importlib.util.find_spec("libvirt") is None:
        missing.append("libvirt-python")
    return missing


def libvirtd_answers() -> bool:
    done = subprocess.run(["virsh", "-c", URI, "version"], capture_output=True, timeout=30, check=False)
    return done.returncode == 0


@contextlib.contextmanager
def daemons() -> Iterator[None]:
    """libvirtd and virtlogd, started here (no systemd on these machines) unless already running;
    what was started here is stopped at the end."""
    started: list[Path] = []
    if not libvirtd_answers():
        for program, pidfile in DAEMONS:
            if not _alive(Path(pidfile)):
                subprocess.run([program, "-d"], check=True, timeout=60)
                started.append(Path(pidfile))
        deadline = time.monotonic() + 60
        while not libvirtd_answers():
            if time.monotonic() > deadline:
                raise RuntimeError("libvirtd did not answer within 60 s")
            time.sleep(0.5)
    try:
        yield
    finally:
        for pidfile in reversed(started):
            with contextlib.suppress(OSError, ValueError):
                os.kill(int(pidfile.read_text().strip()), signal.SIGTERM)


def _alive(pidfile: Path) -> bool:
    try:
        os.kill(int(pidfile.read_text().strip()), 0)
    except (OSError, ValueError):
        return False
    return True


@contextlib.contextmanager
def lab(prefix: str = "mplv") -> Iterator[Lab]:
    """A network and a pool for one test module, with the base disk in the pool."""
    import libvirt

    base = cached_base_disk(emit=lambda _line: None)
    tag = f"{prefix}{secrets.token_hex(3)}"
    folder = Path(tempfile.mkdtemp(prefix=f"{tag}-"))
    folder.chmod(0o755)  # qemu runs as libvirt-qemu: it must reach the disks
    with daemons():
        conn = libvirt.open(URI)
        net = pool = None
        try:
            image = "debian-bookworm"
            files = image_files(folder, image)
            _link_or_copy(base.disk, files.disk)
            _link_or_copy(base.kernel, files.kernel)
            _link_or_copy(base.initrd, files.initrd)
            net, subnet = _free_network(conn, tag)
            pool = conn.storagePoolCreateXML(
                f"<pool type='dir'><name>{tag}</name><target><path>{folder}</path></target></pool>", 0
            )
            yield Lab(URI, tag, tag, image, folder, subnet)
        finally:
            _remove_tagged_domains(conn, folder)
            for thing in (pool, net):
                if thing is not None:
                    with contextlib.suppress(libvirt.libvirtError):
                        thing.destroy()
            conn.close()
            shutil.rmtree(folder, ignore_errors=True)


def _free_network(conn: Any, tag: str) -> tuple[Any, str]:
    """The network on the first /24 of SUBNETS that no other lab (another test run) holds."""
    import libvirt

    for subnet in SUBNETS:
        try:
            return conn.networkCreateXML(_network_xml(tag, subnet)), subnet
        except libvirt.libvirtError:
            continue
    raise RuntimeError(f"no free subnet for a libvirt lab network among {', '.join(SUBNETS)}")


def _network_xml(tag: str, subnet: str) -> str:
    """Isolated: no <forward>, so the machines reach this host and each other, nothing beyond."""
    bridge = f"{tag[:10]}br"
    return (
        f"<network><name>{tag}</name><bridge name='{bridge}' stp='off'/>"
        f"<ip address='{subnet}.1' netmask='255.255.255.0'>"
        f"<dhcp><range start='{subnet}.10' end='{subnet}.99'/></dhcp></ip></network>"
    )


def _remove_tagged_domains(conn: object, folder: Path) -> None:
    """Every domain whose disks live in the lab's folder: a test that failed half-way left it."""
    import libvirt

    assert isinstance(conn, libvirt.virConnect)
    for dom in conn.listAllDomains():
        with contextlib.suppress(libvirt.libvirtError):
            if str(folder) in dom.XMLDesc(0):
                if dom.isActive():
                    dom.destroy()
                dom.undefine()


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)
