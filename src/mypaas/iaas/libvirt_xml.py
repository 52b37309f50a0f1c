"""What the libvirt driver hands libvirt and the guest: domain and volume XML, the NoCloud seed
(``meta-data`` and ``user-data`` with root's key and the machine's SSH host key), the host key itself.
Pure functions, no I/O but the seed ISO (genisoimage)."""

from __future__ import annotations

import base64
import hashlib
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree as ET

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from mypaas.errors import BackendError
from mypaas.iaas.base import MachineSize

NS = "https://mypaas.dev/xmlns/libvirt-machine/1"  # the domain metadata that tags our machines
NS_KEY = "mypaas"


@dataclass(frozen=True)
class HostKey:
    """An SSH host key made for one machine: the guest installs it, the manager pins its fingerprint."""

    private_openssh: str
    public_openssh: str
    fingerprint: str  # "SHA256:..." as ssh-keygen -lf prints it


@dataclass(frozen=True)
class Tag:
    """What the metadata element of a domain says: who made it and how to trust it."""

    account: str
    name: str
    host_key: str | None = None
    labels: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class DomainSpec:
    name: str
    domain_type: str  # "qemu" (software emulation, TCG) or "kvm"
    size: MachineSize
    root_disk: str  # path of the machine's qcow2 overlay
    seed_disk: str  # path of its NoCloud seed ISO
    network: str
    kernel: str | None  # direct kernel boot when the image has a kernel and an initrd
    initrd: str | None
    cmdline: str
    tag: Tag


def make_host_key() -> HostKey:
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    ).decode()
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    blob = base64.b64decode(public.split()[1])
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    return HostKey(private, public.decode(), f"SHA256:{digest}")


def meta_data(name: str) -> str:
    return f"instance-id: {name}\nlocal-hostname: {name}\n"


def user_data(authorized_key: str, host_key: HostKey) -> str:
    """A #cloud-config that cloud-init reads as well as the base disk's own seed unit does."""
    private = "".join(f"    {line}\n" for line in host_key.private_openssh.strip().splitlines())
    return (
        "#cloud-config\n"
        "disable_root: false\n"
        "ssh_authorized_keys:\n"
        f"  - {authorized_key.strip()}\n"
        "ssh_deletekeys: true\n"
        "ssh_keys:\n"
        "  ed25519_private: |\n"
        f"{private}"
        f"  ed25519_public: {host_key.public_openssh}\n"
    )


def seed_iso(name: str, authorized_key: str, host_key: HostKey) -> bytes:
    """The NoCloud seed as an ISO 9660 image labelled ``cidata``."""
    tool = shutil.which("genisoimage")
    if tool is None:
        raise BackendError("genisoimage is not installed on the manager's host (scripts/install.sh)")
    with tempfile.TemporaryDirectory(prefix="mypaas-seed-") as tmp:
        folder = Path(tmp) / "cidata"
        folder.mkdir()
        (folder / "meta-data").write_text(meta_data(name))
        (folder / "user-data").write_text(user_data(authorized_key, host_key))
        out = Path(tmp) / "seed.iso"
        argv = [tool, "-quiet", "-output", str(out), "-volid", "cidata", "-joliet", "-rock", str(folder)]
        done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60)
        if done.returncode != 0:
            raise BackendError(f"genisoimage failed: {done.stderr.strip()[-300:]}")
        return out.read_bytes()


def overlay_volume_xml(name: str, capacity: int, backing: str) -> str:
    """A qcow2 volume backed (copy-on-write) by the base disk at ``backing``."""
    return (
        f"<volume><name>{_esc(name)}</name><capacity unit='bytes'>{capacity}</capacity>"
        "<target><format type='qcow2'/></target>"
        f"<backingStore><path>{_esc(backing)}</path><format type='qcow2'/></backingStore></volume>"
    )


def raw_volume_xml(name: str, capacity: int) -> str:
    return (
        f"<volume><name>{_esc(name)}</name><capacity unit='bytes'>{capacity}</capacity>"
        "<target><format type='raw'/></target></volume>"
    )


def tag_xml(tag: Tag) -> ET.Element:
    attrs = {"account": tag.account, "name": tag.name}
    if tag.host_key:
        attrs["host-key"] = tag.host_key
    element = ET.Element(f"{NS_KEY}:machine", {f"xmlns:{NS_KEY}": NS, **attrs})
    for key, value in tag.labels:
        ET.SubElement(element, f"{NS_KEY}:label", {"key": key, "value": value})
    return element


def parse_tag(domain_xml: str) -> Tag | None:
    """The tag in a domain's XML description; None when MyPaas did not make it."""
    root = ET.fromstring(domain_xml)  # noqa: S314 - libvirtd's own description of a domain
    element = root.find(f"metadata/{{{NS}}}machine")
    if element is None:
        return None
    labels = tuple((e.get("key", ""), e.get("value", "")) for e in element.findall(f"{{{NS}}}label"))
    return Tag(element.get("account", ""), element.get("name", ""), element.get("host-key"), labels)


def domain_xml(spec: DomainSpec) -> str:
    domain = ET.Element("domain", {"type": spec.domain_type})
    ET.SubElement(domain, "name").text = spec.name
    ET.SubElement(domain, "memory", {"unit": "MiB"}).text = str(spec.size.memory_mb)
    ET.SubElement(domain, "vcpu").text = str(spec.size.cpus)
    ET.SubElement(domain, "metadata").append(tag_xml(spec.tag))
    os_ = ET.SubElement(domain, "os")
    ET.SubElement(os_, "type", {"arch": "x86_64"}).text = "hvm"
    if spec.kernel and spec.initrd:
        ET.SubElement(os_, "kernel").text = spec.kernel
        ET.SubElement(os_, "initrd").text = spec.initrd
        ET.SubElement(os_, "cmdline").text = spec.cmdline
    else:
        ET.SubElement(os_, "boot", {"dev": "hd"})
    features = ET.SubElement(domain, "features")
    ET.SubElement(features, "acpi")
    if spec.domain_type == "kvm":
        ET.SubElement(domain, "cpu", {"mode": "host-passthrough"})
    ET.SubElement(domain, "on_poweroff").text = "destroy"
    ET.SubElement(domain, "on_crash").text = "destroy"
    devices = ET.SubElement(domain, "devices")
    _disk(devices, spec.root_disk, "qcow2", "vda", readonly=False)
    _disk(devices, spec.seed_disk, "raw", "vdb", readonly=True)
    nic = ET.SubElement(devices, "interface", {"type": "network"})
    ET.SubElement(nic, "source", {"network": spec.network})
    ET.SubElement(nic, "model", {"type": "virtio"})
    ET.SubElement(devices, "serial", {"type": "pty"})
    ET.SubElement(devices, "console", {"type": "pty"})
    rng = ET.SubElement(devices, "rng", {"model": "virtio"})  # sshd and dockerd want entropy at boot
    ET.SubElement(rng, "backend", {"model": "random"}).text = "/dev/urandom"
    return ET.tostring(domain, encoding="unicode")


def _disk(devices: ET.Element, path: str, fmt: str, dev: str, *, readonly: bool) -> None:
    disk = ET.SubElement(devices, "disk", {"type": "file", "device": "disk"})
    ET.SubElement(disk, "driver", {"name": "qemu", "type": fmt})
    ET.SubElement(disk, "source", {"file": path})
    ET.SubElement(disk, "target", {"dev": dev, "bus": "virtio"})
    if readonly:
        ET.SubElement(disk, "readonly")


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("'", "&apos;")
