"""The libvirt machine driver (libvirt-python): machines as libvirt domains on a local or remote host.

A driver account names a libvirt ``uri`` (qemu:///system, qemu+ssh://root@lab/system), a storage
``pool`` (where the base disks and the machines' disks live), a ``network`` (DHCP gives the address)
and the default ``size`` and ``image``. An image is a base disk in the pool, ``NAME.qcow2`` with its
``NAME.vmlinuz`` and ``NAME.initrd`` next to it (``python -m mypaas.iaas.libvirt_image build``).
Each machine gets a copy-on-write qcow2 overlay of the base disk, a NoCloud seed ISO (root's key and an
SSH host key made here, whose fingerprint the manager pins), and a domain tagged with the account in
its metadata, so ``machines()`` finds it.
"""

from __future__ import annotations

import math
import re
import socket
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import PurePosixPath
from typing import Any, ClassVar

from mypaas.errors import Conflict, InvalidSpec, MyPaasError, NotSupported

try:
    import libvirt
except ImportError as exc:  # the catalog shows this line when the driver is asked for
    raise NotSupported(
        "the libvirt driver needs libvirt-python: apt-get install libvirt-dev pkg-config, then"
        " pip install 'mypaas[libvirt]' (scripts/install.sh --libvirt does both)"
    ) from exc

from mypaas.iaas import libvirt_xml as lx
from mypaas.iaas.base import (
    DriverAuthFailed,
    DriverCapabilities,
    DriverUnreachable,
    HostTarget,
    Machine,
    MachineCreateFailed,
    MachineImage,
    MachineRequest,
    MachineSize,
    pick_size,
)
from mypaas.iaas.libvirt_image import KERNEL_ARGS

SIZES = (
    MachineSize("small", cpus=1, memory_mb=1024),
    MachineSize("medium", cpus=2, memory_mb=2048),
    MachineSize("large", cpus=4, memory_mb=4096),
)
DOMAIN_TYPES = ("auto", "qemu", "kvm")
_NAME = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
POLL_S = 1.0

libvirt.registerErrorHandler(lambda _ctx, _err: None, None)  # errors arrive as exceptions, not on stderr


class LibvirtDriver:
    """One driver account on a libvirt host."""

    OPTIONS: ClassVar[Mapping[str, str]] = {
        "uri": "the libvirt connection URI (default qemu:///system; qemu+ssh://root@HOST/system)",
        "pool": "the storage pool holding the base disks and the machines' disks (default: default)",
        "network": "the libvirt network the machines join; its DHCP gives their address (default: default)",
        "image": "the default image: a base disk NAME.qcow2 in the pool (default debian-bookworm)",
        "size": "the default size: small (1 CPU, 1 GB), medium (2, 2 GB), large (4, 4 GB)",
        "domain_type": "kvm, qemu (software emulation) or auto (kvm when the host offers it; default)",
        "boot_timeout": "seconds to wait for a new machine's address and SSH (default 600)",
    }
    SECRET_OPTIONS: ClassVar[tuple[str, ...]] = ()
    name = "libvirt"
    capabilities = DriverCapabilities(create_machines=True, destroy_machines=True)

    def __init__(
        self,
        *,
        account: str = "libvirt",
        uri: str = "qemu:///system",
        pool: str = "default",
        network: str = "default",
        image: str = "debian-bookworm",
        size: str = "small",
        domain_type: str = "auto",
        boot_timeout: float | str = 600,
    ) -> None:
        if domain_type not in DOMAIN_TYPES:
            raise InvalidSpec(
                f"libvirt domain_type {domain_type!r}: one of {', '.join(DOMAIN_TYPES)}", field="domain_type"
            )
        try:
            self.boot_timeout = float(boot_timeout)
        except ValueError:
            self.boot_timeout = 0.0
        if not 0 < self.boot_timeout < math.inf:  # nan and inf are floats too
            raise InvalidSpec(f"libvirt boot_timeout {boot_timeout!r}: seconds, > 0", field="boot_timeout")
        self.account = account
        self.uri = uri
        self.pool = pool
        self.network = network
        self.default_image = image
        self.default_size = size
        self.domain_type = domain_type
        self._fail_after: str | None = None  # tests: fail the next creation after this step

    # -- the MachineDriver protocol ----------------------------------------------------------------

    def check(self) -> None:
        """Open the URI, find the pool and the network."""
        with self._open() as conn:
            self._find_pool(conn)
            self._find_network(conn)

    def sizes(self) -> list[MachineSize]:
        return list(SIZES)

    def images(self) -> list[MachineImage]:
        with self._open() as conn:
            return [MachineImage(n, f"base disk {n}.qcow2 in pool {self.pool}") for n in self._images(conn)]

    def machines(self) -> list[HostTarget]:
        with self._open() as conn:
            targets = []
            for dom in conn.listAllDomains():
                tag = lx.parse_tag(dom.XMLDesc(0))
                if tag is not None and tag.account == self.account:
                    targets.append(self._target(dom, tag, _lease(dom) or ""))
            return targets

    def forget_creation(self, name: str) -> None:
        """The disks of a creation cut short before its domain was defined (the domain carries the tag,
        the disks cannot): deleted when no domain of that name exists."""
        if not _NAME.fullmatch(name):
            return
        with self._open() as conn:
            try:
                conn.lookupByName(name)
                return  # a domain: machines() lists it if it is this account's, and the sweep decides
            except libvirt.libvirtError:
                pass
            _delete_volumes(self._find_pool(conn), name)

    def connect(self, target: HostTarget) -> Machine:
        raise NotSupported("a libvirt machine is reached over SSH: connect with the ssh driver")

    def create_machine(self, request: MachineRequest) -> HostTarget:
        size = self._size(request.size)
        if not _NAME.fullmatch(request.name):
            raise InvalidSpec(
                f"machine name {request.name!r}: lower-case letters, digits and dashes, at most 63",
                field="name",
            )
        if not request.ssh_public_key.strip():
            raise InvalidSpec("a libvirt machine needs an SSH public key for root", field="ssh_public_key")
        with self._open() as conn:
            pool = self._find_pool(conn)
            self._find_network(conn)
            image = self._image(conn, request.image)
            self._refuse_taken(conn, pool, request.name)
            creation = _Creation(self, conn, pool, request)
            return creation.run(size, image)

    def destroy_machine(self, target: HostTarget) -> None:
        """Power off, undefine, delete its overlay and seed; a machine already gone is not an error."""
        name = target.machine_id or ""
        if not _NAME.fullmatch(name):
            return  # no such machine could have been made by this driver
        with self._open() as conn:
            try:
                dom = conn.lookupByName(name)
            except libvirt.libvirtError:
                dom = None
            if dom is not None:
                tag = lx.parse_tag(dom.XMLDesc(0))
                if tag is None or tag.account != self.account:
                    raise Conflict(
                        f"libvirt domain {name} was not made by driver account {self.account}",
                        field="machine",
                    )
                _remove_domain(dom)
            _delete_volumes(self._find_pool(conn), name)

    # -- tests ---------------------------------------------------------------------------------------

    def fail_next_creation_after(self, step: str) -> None:
        """Make the next creation fail once ``step`` is done (the contract suite's half-way test)."""
        self._fail_after = step

    # -- helpers -------------------------------------------------------------------------------------

    @contextmanager
    def _open(self) -> Iterator[libvirt.virConnect]:
        try:
            conn = libvirt.open(self.uri)
        except libvirt.libvirtError as exc:
            reason = _reason(exc)
            if exc.get_error_code() == libvirt.VIR_ERR_AUTH_FAILED:
                raise DriverAuthFailed(
                    f"libvirt endpoint {self.uri} refused us: {reason}", field="uri"
                ) from exc
            raise DriverUnreachable(f"libvirt endpoint {self.uri} unreachable: {reason}") from exc
        try:
            yield conn
        except libvirt.libvirtError as exc:
            raise DriverUnreachable(f"libvirt endpoint {self.uri} failed: {_reason(exc)}") from exc
        finally:
            conn.close()

    def _find_pool(self, conn: libvirt.virConnect) -> libvirt.virStoragePool:
        try:
            pool = conn.storagePoolLookupByName(self.pool)
        except libvirt.libvirtError as exc:
            raise InvalidSpec(f"libvirt pool {self.pool!r} not found at {self.uri}", field="pool") from exc
        if not pool.isActive():
            raise InvalidSpec(f"libvirt pool {self.pool!r} at {self.uri} is not started", field="pool")
        pool.refresh(0)
        return pool

    def _find_network(self, conn: libvirt.virConnect) -> libvirt.virNetwork:
        try:
            net = conn.networkLookupByName(self.network)
        except libvirt.libvirtError as exc:
            raise InvalidSpec(
                f"libvirt network {self.network!r} not found at {self.uri}", field="network"
            ) from exc
        if not net.isActive():
            raise InvalidSpec(
                f"libvirt network {self.network!r} at {self.uri} is not started", field="network"
            )
        return net

    def _images(self, conn: libvirt.virConnect) -> list[str]:
        names = set(self._find_pool(conn).listVolumes())
        return sorted(
            n[: -len(".qcow2")] for n in names if n.endswith(".qcow2") and {_kernel(n), _initrd(n)} <= names
        )

    def _image(self, conn: libvirt.virConnect, name: str | None) -> str:
        wanted = name or self.default_image
        known = self._images(conn)
        if wanted not in known:
            offer = ", ".join(known) or "none (python -m mypaas.iaas.libvirt_image build)"
            raise InvalidSpec(f"unknown image {wanted!r} in pool {self.pool}; images: {offer}", field="image")
        return wanted

    def _size(self, name: str | None) -> MachineSize:
        return pick_size(SIZES, name or self.default_size)

    def _refuse_taken(self, conn: libvirt.virConnect, pool: libvirt.virStoragePool, name: str) -> None:
        taken = name in {d.name() for d in conn.listAllDomains()}
        if taken or set(_volume_names(name)) & set(pool.listVolumes()):
            raise Conflict(
                f"a libvirt machine or disk named {name} already exists at {self.uri}", field="name"
            )

    def _resolved_type(self, conn: libvirt.virConnect) -> str:
        if self.domain_type != "auto":
            return self.domain_type
        return "kvm" if "<domain type='kvm'" in conn.getCapabilities() else "qemu"

    def _target(self, dom: libvirt.virDomain, tag: lx.Tag, address: str) -> HostTarget:
        name = dom.name()  # the domain is named after the request
        return HostTarget(driver="ssh", address=address, machine_id=name, host_key=tag.host_key, name=name)


class _Creation:
    """One machine being made: each step's leftovers are removed if a later step fails."""

    def __init__(
        self,
        driver: LibvirtDriver,
        conn: libvirt.virConnect,
        pool: libvirt.virStoragePool,
        req: MachineRequest,
    ) -> None:
        self.driver = driver
        self.conn = conn
        self.pool = pool
        self.request = req
        self.step = "disk"
        self._deadline = 0.0  # when the address and SSH must be there; set at boot

    def run(self, size: MachineSize, image: str) -> HostTarget:
        name = self.request.name
        host_key = lx.make_host_key()
        try:
            root, seed = self._do("disk", lambda: self._disks(image, host_key))
            kernel = self.pool.storageVolLookupByName(_kernel(f"{image}.qcow2")).path()
            initrd = self.pool.storageVolLookupByName(_initrd(f"{image}.qcow2")).path()
            labels = tuple(sorted(self.request.labels.items()))
            tag = lx.Tag(self.driver.account, name, host_key.fingerprint, labels)
            kind = self.driver._resolved_type(self.conn)
            net = self.driver.network
            spec = lx.DomainSpec(name, kind, size, root, seed, net, kernel, initrd, KERNEL_ARGS, tag)
            dom = self._do("define", lambda: self.conn.defineXML(lx.domain_xml(spec)))
            self._do("boot", dom.create)
            address = self._do("address", lambda: self._wait_address(dom))
            self._do("ssh", lambda: _wait_ssh(address, self._deadline))
        except BaseException:  # a failed step, an interrupt or a bug: leave nothing behind
            self._undo()
            raise
        return self.driver._target(dom, tag, address)

    def _do(self, step: str, action: Callable[[], Any]) -> Any:
        self.step = step
        if step == "boot":
            self._deadline = time.monotonic() + self.driver.boot_timeout
        try:
            result = action()
        except MyPaasError as exc:
            raise MachineCreateFailed(self.request.name, step, str(exc)) from exc
        except (libvirt.libvirtError, OSError, TimeoutError) as exc:
            reason = _reason(exc) if isinstance(exc, libvirt.libvirtError) else str(exc)
            raise MachineCreateFailed(self.request.name, step, reason) from exc
        if self.driver._fail_after == step:
            self.driver._fail_after = None
            raise MachineCreateFailed(self.request.name, step, "failed on purpose (a test asked for it)")
        return result

    def _disks(self, image: str, host_key: lx.HostKey) -> tuple[str, str]:
        base = self.pool.storageVolLookupByName(f"{image}.qcow2")
        root_name, seed_name = _volume_names(self.request.name)
        capacity = base.info()[1]
        root = self.pool.createXML(lx.overlay_volume_xml(root_name, capacity, base.path()), 0)
        iso = lx.seed_iso(self.request.name, self.request.ssh_public_key, host_key)
        seed = self.pool.createXML(lx.raw_volume_xml(seed_name, len(iso)), 0)
        stream = self.conn.newStream(0)
        seed.upload(stream, 0, len(iso), 0)
        stream.send(iso)
        stream.finish()
        return root.path(), seed.path()

    def _wait_address(self, dom: libvirt.virDomain) -> str:
        while time.monotonic() < self._deadline:
            address = _lease(dom)
            if address:
                return address
            if not dom.isActive():
                raise OSError("the machine stopped while booting (see its console: virsh console)")
            time.sleep(POLL_S)
        raise TimeoutError(
            f"no DHCP lease on network {self.driver.network} in {self.driver.boot_timeout:.0f} s"
        )

    def _undo(self) -> None:
        try:
            dom = self.conn.lookupByName(self.request.name)
        except libvirt.libvirtError:
            dom = None
        if dom is not None:
            _remove_domain(dom)
        _delete_volumes(self.pool, self.request.name)


def _wait_ssh(address: str, deadline: float) -> None:
    """Until the machine's sshd sends its banner."""
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((address, 22), timeout=5) as sock:
                sock.settimeout(10)
                if sock.recv(64).startswith(b"SSH-"):
                    return
                last = "no SSH banner"
        except OSError as exc:
            last = str(exc) or type(exc).__name__
        time.sleep(POLL_S)
    raise TimeoutError(f"SSH on {address}:22 did not answer: {last}")


def _lease(dom: libvirt.virDomain) -> str | None:
    """The domain's IPv4 address from its network's DHCP leases."""
    try:
        found = dom.interfaceAddresses(libvirt.VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_LEASE, 0)
    except libvirt.libvirtError:
        return None
    for iface in (found or {}).values():
        for addr in iface.get("addrs") or []:
            if addr.get("type") == libvirt.VIR_IP_ADDR_TYPE_IPV4:
                return str(addr["addr"])
    return None


def _remove_domain(dom: libvirt.virDomain) -> None:
    try:
        if dom.isActive():
            dom.destroy()
    except libvirt.libvirtError:
        pass  # stopped meanwhile
    try:
        dom.undefine()
    except libvirt.libvirtError as exc:
        if exc.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN:
            raise


def _delete_volumes(pool: libvirt.virStoragePool, name: str) -> None:
    pool.refresh(0)
    present = set(pool.listVolumes())
    for vol_name in _volume_names(name):
        if vol_name in present:
            pool.storageVolLookupByName(vol_name).delete(0)


def _volume_names(name: str) -> tuple[str, str]:
    """A machine's disks: its overlay and its seed (never ``*.qcow2`` with a kernel: not an image)."""
    return f"{name}-root.qcow2", f"{name}-seed.iso"


def _kernel(disk: str) -> str:
    return f"{PurePosixPath(disk).stem}.vmlinuz"


def _initrd(disk: str) -> str:
    return f"{PurePosixPath(disk).stem}.initrd"


def _reason(exc: libvirt.libvirtError) -> str:
    return (exc.get_error_message() or str(exc)).strip().splitlines()[0]
