"""The ``vsphere`` iaas driver: creates hosts on VMware vSphere (vCenter) with pyvmomi, VMware's own
SDK (the only module that imports it, lazily: the SDK loads with the driver).

A machine is a clone of a template (``images()``: the VMs marked as templates in the datacenter), with
the size's CPUs and memory, cloud-init user data in ``guestinfo.userdata`` (base64; the request's SSH
key for root) and the account's ``extra_config`` in its extraConfig. It is tagged by the extraConfig
key ``mypaas.account`` (an annotation is the user's, and VMware's simulator rewrites it), which is how
``machines()`` finds what this account made. The address is the one VMware Tools reports.
"""

from __future__ import annotations

import base64
import contextlib
import json
import socket
import ssl
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import urlsplit

from mypaas.errors import Conflict, InvalidSpec, NotSupported
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
    QuotaExceeded,
)

DEFAULT_SIZES = (
    MachineSize("small", cpus=1, memory_mb=1024),
    MachineSize("medium", cpus=2, memory_mb=4096),
    MachineSize("large", cpus=4, memory_mb=8192),
)
TAG_KEY = "mypaas.account"  # extraConfig key naming the driver account that made the VM
TRUE = frozenset({"1", "true", "yes", "on"})
FALSE = frozenset({"", "0", "false", "no", "off"})


@dataclass(frozen=True)
class _Found:
    """A VM as one property-collector pass sees it."""

    ref: Any  # vim.VirtualMachine
    name: str
    uuid: str
    template: bool
    account: str
    address: str
    description: str


class VSphereDriver:
    """One vSphere driver account: a vCenter URL, credentials and where machines go."""

    OPTIONS: ClassVar[Mapping[str, str]] = {
        "url": "the vCenter SDK endpoint, https://VCENTER/sdk (http:// only for a simulator)",
        "user": "the vCenter user, e.g. administrator@vsphere.local",
        "password": "its password (stored encrypted, never shown)",
        "datacenter": "the datacenter (default: the only or first one)",
        "cluster": "the cluster or host whose resource pool machines go in (default: the first)",
        "resource_pool": "a resource pool by name instead (default: the cluster's root pool)",
        "datastore": "the datastore for the machines' disks (default: the template's)",
        "folder": "the VM folder machines go in (default: the datacenter's VM folder)",
        "network": "the network or port group of the machines' first NIC (default: the template's)",
        "template": "the default image: a VM template's name (--image overrides it)",
        "size": "the default size: small, medium, large, or one of sizes",
        "sizes": "sizes instead of small/medium/large: NAME=CPUS:MEMORY_MB[,...]",
        "insecure": "true: skip TLS certificate verification (default false)",
        "extra_config": "extraConfig keys for every machine: k=v lines (or ;-separated), or a JSON object",
        "address_timeout": "seconds to wait for VMware Tools to report the address (default 300)",
        "ssh_timeout": "seconds to wait for SSH to answer at that address (default 300)",
    }
    SECRET_OPTIONS: ClassVar[tuple[str, ...]] = ("password",)
    name = "vsphere"
    capabilities = DriverCapabilities(create_machines=True, destroy_machines=True)

    def __init__(  # noqa: PLR0913 - one parameter per account option (OPTIONS)
        self,
        *,
        account: str = "vsphere",
        url: str,
        user: str,
        password: str,
        datacenter: str = "",
        cluster: str = "",
        resource_pool: str = "",
        datastore: str = "",
        folder: str = "",
        network: str = "",
        template: str = "",
        size: str = "small",
        sizes: str = "",
        insecure: bool | str = False,
        extra_config: Mapping[str, str] | str = "",
        address_timeout: float | str = 300.0,
        ssh_timeout: float | str = 300.0,
    ) -> None:
        self.account = account
        self.url = url
        self._endpoint = _parse_url(url)
        self.user = user
        self.password = password
        self.datacenter = datacenter
        self.cluster = cluster
        self.resource_pool = resource_pool
        self.datastore = datastore
        self.folder = folder
        self.network = network
        self.template = template
        self.default_size = size
        self._sizes = parse_sizes(sizes) if sizes else list(DEFAULT_SIZES)
        self.insecure = _parse_bool(insecure, "insecure")
        self.extra_config = parse_extra_config(extra_config)
        self.address_timeout = _parse_seconds(address_timeout, "address_timeout")
        self.ssh_timeout = _parse_seconds(ssh_timeout, "ssh_timeout")

    # -- the MachineDriver protocol -----------------------------------------------------------------

    def check(self) -> None:
        with self._session() as content:
            self._datacenter(content)

    def sizes(self) -> list[MachineSize]:
        return list(self._sizes)

    def images(self) -> list[MachineImage]:
        with self._session() as content:
            found = _vms(content, self._datacenter(content))
        return [
            MachineImage(vm.name, vm.description) for vm in sorted(found, key=lambda v: v.name) if vm.template
        ]

    def machines(self) -> list[HostTarget]:
        with self._session() as content:
            found = _vms(content, self._datacenter(content))
        return [_target(vm) for vm in found if vm.account == self.account and not vm.template]

    def connect(self, target: HostTarget) -> Machine:
        raise NotSupported(f"vsphere machines are reached over SSH ({target.address}): use the ssh driver")

    def create_machine(self, request: MachineRequest) -> HostTarget:
        size = self._size(request.size)
        image = request.image or self.template
        with self._session() as content:
            dc = self._datacenter(content)
            found = _vms(content, dc)
            source = self._template(found, image)
            if any(vm.name == request.name for vm in found):
                raise Conflict(f"a VM named {request.name} already exists in {dc.name}", field="name")
            placement = self._placement(content, dc, source)
            with self._undo_on_failure(content, request.name) as made:
                made.append(self._clone(request, source, placement))
                vm = made[0]
                _run_task(request.name, "configure", vm.ReconfigVM_Task(spec=self._hardware(size)))
                _run_task(request.name, "power-on", vm.PowerOnVM_Task())
                address = _wait_address(request.name, vm, self.address_timeout)
                wait_ssh(request.name, address, 22, self.ssh_timeout)
                uuid = str(vm.config.instanceUuid)
        return HostTarget(driver="ssh", address=address, machine_id=uuid)

    def destroy_machine(self, target: HostTarget) -> None:
        if not target.machine_id:
            return
        with self._session() as content:
            vm = content.searchIndex.FindByUuid(None, target.machine_id, True, True)
            if vm is None:
                return  # already gone
            _destroy(vm, target.machine_id)

    # -- helpers ------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _session(self) -> Iterator[Any]:
        """Log in, yield the service content, log out; the SDK's errors become one line each."""
        pyvim_connect, vim = _sdk()
        scheme, host, port, path = self._endpoint
        try:
            si = pyvim_connect.SmartConnect(
                protocol=scheme,
                host=host,
                port=port,
                path=path,
                user=self.user,
                pwd=self.password,
                disableSslCertValidation=self.insecure,
                httpConnectionTimeout=30,
            )
        except vim.fault.InvalidLogin as exc:
            raise DriverAuthFailed(
                f"vsphere endpoint {self.url} refused user {self.user!r}: {exc.msg or 'wrong password'}"
            ) from exc
        except (OSError, ssl.SSLError, Exception) as exc:  # http.client, ssl and SOAP errors alike
            raise DriverUnreachable(f"vsphere endpoint {self.url} unreachable: {_reason(exc)}") from exc
        try:
            yield si.RetrieveContent()
        finally:
            with contextlib.suppress(Exception):
                pyvim_connect.Disconnect(si)

    def _datacenter(self, content: Any) -> Any:
        _, vim = _sdk()
        dcs = [e for e in _children(content.rootFolder) if isinstance(e, vim.Datacenter)]
        if not dcs:
            raise InvalidSpec(f"vsphere endpoint {self.url} has no datacenter", field="datacenter")
        if not self.datacenter:
            return dcs[0]
        for dc in dcs:
            if dc.name == self.datacenter:
                return dc
        names = ", ".join(dc.name for dc in dcs)
        raise InvalidSpec(f"unknown datacenter {self.datacenter!r}; datacenters: {names}", field="datacenter")

    def _size(self, name: str | None) -> MachineSize:
        wanted = name or self.default_size
        for size in self._sizes:
            if size.name == wanted:
                return size
        raise InvalidSpec(
            f"unknown size {wanted!r}; sizes: {', '.join(s.name for s in self._sizes)}", field="size"
        )

    def _template(self, found: list[_Found], image: str) -> _Found:
        templates = sorted(vm.name for vm in found if vm.template)
        if not image:
            raise InvalidSpec(
                "no image given and the account has no template; templates: "
                + (", ".join(templates) or "none"),
                field="image",
            )
        for vm in found:
            if vm.template and vm.name == image:
                return vm
        raise InvalidSpec(
            f"unknown image {image!r}; templates: {', '.join(templates) or 'none'}", field="image"
        )

    def _placement(self, content: Any, dc: Any, source: _Found) -> dict[str, Any]:
        """Where the clone goes: its resource pool, folder, datastore (None: the template's)."""
        placement = {
            "pool": _pool(content, dc, self.cluster, self.resource_pool),
            "folder": dc.vmFolder,
            "datastore": None,
            "network": None,
        }
        if self.folder:
            placement["folder"] = _named(content, dc.vmFolder, "Folder", self.folder, "folder")
        if self.datastore:
            placement["datastore"] = _pick(dc.datastore, self.datastore, "datastore")
        if self.network:
            placement["network"] = _pick(dc.network, self.network, "network")
        return placement

    def _clone(self, request: MachineRequest, source: _Found, placement: Mapping[str, Any]) -> Any:
        _, vim = _sdk()
        location = vim.vm.RelocateSpec(pool=placement["pool"], datastore=placement["datastore"])
        if placement["network"] is not None:
            location.deviceChange = _nic_change(source.ref, placement["network"])
        options = {
            **self.extra_config,
            **guestinfo(request),
            TAG_KEY: self.account,
        }
        config = vim.vm.ConfigSpec(
            extraConfig=[vim.option.OptionValue(key=k, value=v) for k, v in options.items()]
        )
        spec = vim.vm.CloneSpec(location=location, config=config, powerOn=False, template=False)
        task = source.ref.CloneVM_Task(folder=placement["folder"], name=request.name, spec=spec)
        return _run_task(request.name, "clone", task)

    def _hardware(self, size: MachineSize) -> Any:
        _, vim = _sdk()
        return vim.vm.ConfigSpec(numCPUs=size.cpus, memoryMB=size.memory_mb)

    @contextlib.contextmanager
    def _undo_on_failure(self, content: Any, name: str) -> Iterator[list[Any]]:
        """On any failure inside, delete the VM made (``made``, or found by name and our tag: a clone
        that failed half-way can leave one), then re-raise as MachineCreateFailed."""
        made: list[Any] = []
        try:
            yield made
        except BaseException as exc:
            leftovers = made or [
                vm.ref for vm in _vms(content, self._datacenter(content)) if _ours(vm, name, self.account)
            ]
            for vm in leftovers:
                with contextlib.suppress(Exception):
                    _destroy(vm, name)
            if isinstance(exc, MachineCreateFailed | QuotaExceeded) or not isinstance(exc, Exception):
                raise
            raise MachineCreateFailed(name, "create", _reason(exc)) from exc


# -- the SDK, converted once ---------------------------------------------------------------------------


def _sdk() -> tuple[Any, Any]:
    """pyVim.connect and pyVmomi.vim, imported on first use."""
    from pyVim import connect as pyvim_connect
    from pyVmomi import vim

    return pyvim_connect, vim


def _reason(exc: BaseException) -> str:
    """One line for an SDK, socket or task error."""
    msg = getattr(exc, "msg", None) or getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    if isinstance(exc, TimeoutError | socket.timeout):
        msg = "timed out"
    elif isinstance(exc, ConnectionRefusedError):
        msg = "connection refused"
    return " ".join(str(msg).split())


def _run_task(name: str, step: str, task: Any) -> Any:
    """Wait for a vSphere task; its error becomes MachineCreateFailed(step), or QuotaExceeded."""
    _, vim = _sdk()
    while task.info.state in (vim.TaskInfo.State.queued, vim.TaskInfo.State.running):
        time.sleep(0.2)
    if task.info.state == vim.TaskInfo.State.success:
        return task.info.result
    fault = task.info.error
    if isinstance(fault, vim.fault.InsufficientResourcesFault):
        raise QuotaExceeded(f"vsphere refused {name} at {step}: {_reason(fault)}")
    raise MachineCreateFailed(name, step, _reason(fault) if fault is not None else "the task failed")


def _children(folder: Any) -> list[Any]:
    """A folder's entities, descending into sub-folders (datacenters can sit in folders)."""
    _, vim = _sdk()
    found: list[Any] = []
    for entity in folder.childEntity:
        found.extend(_children(entity) if isinstance(entity, vim.Folder) else [entity])
    return found


def _vms(content: Any, dc: Any) -> list[_Found]:
    """Every VM in the datacenter with the properties the driver reads, in one collector pass."""
    _, vim = _sdk()
    view = content.viewManager.CreateContainerView(dc.vmFolder, [vim.VirtualMachine], True)
    try:
        traversal = vim.PropertyCollector.TraversalSpec(
            name="view", path="view", skip=False, type=vim.view.ContainerView
        )
        props = ["name", "config.template", "config.instanceUuid", "config.extraConfig", "guest.ipAddress"]
        props.append("config.guestFullName")
        spec = vim.PropertyCollector.FilterSpec(
            objectSet=[vim.PropertyCollector.ObjectSpec(obj=view, skip=True, selectSet=[traversal])],
            propSet=[vim.PropertyCollector.PropertySpec(type=vim.VirtualMachine, pathSet=props)],
        )
        result = content.propertyCollector.RetrieveContents([spec])
    finally:
        view.Destroy()
    return [_found(obj) for obj in result]


def _found(obj: Any) -> _Found:
    props = {p.name: p.val for p in obj.propSet}
    extra = {o.key: o.value for o in props.get("config.extraConfig") or []}
    return _Found(
        ref=obj.obj,
        name=str(props.get("name", "")),
        uuid=str(props.get("config.instanceUuid") or ""),
        template=bool(props.get("config.template")),
        account=str(extra.get(TAG_KEY, "")),
        address=str(props.get("guest.ipAddress") or ""),
        description=str(props.get("config.guestFullName") or ""),
    )


def _ours(vm: _Found, name: str, account: str) -> bool:
    return vm.name == name and vm.account == account and not vm.template


def _target(vm: _Found) -> HostTarget:
    return HostTarget(driver="ssh", address=vm.address, machine_id=vm.uuid)


def _pool(content: Any, dc: Any, cluster: str, resource_pool: str) -> Any:
    _, vim = _sdk()
    if resource_pool:
        return _named(content, dc.hostFolder, "ResourcePool", resource_pool, "resource_pool")
    computes = [c for c in _children(dc.hostFolder) if isinstance(c, vim.ComputeResource)]
    if cluster:
        return _pick(computes, cluster, "cluster").resourcePool
    clusters = [c for c in computes if isinstance(c, vim.ClusterComputeResource)]
    if not (clusters or computes):
        raise InvalidSpec(f"datacenter {dc.name} has no cluster or host", field="cluster")
    return (clusters or computes)[0].resourcePool


def _named(content: Any, root: Any, kind: str, name: str, field: str) -> Any:
    _, vim = _sdk()
    view = content.viewManager.CreateContainerView(root, [getattr(vim, kind)], True)
    try:
        return _pick(list(view.view), name, field)
    finally:
        view.Destroy()


def _pick(objects: Any, name: str, field: str) -> Any:
    for obj in objects:
        if obj.name == name:
            return obj
    names = sorted({obj.name for obj in objects})
    raise InvalidSpec(f"unknown {field.replace('_', ' ')} {name!r}; known: {', '.join(names)}", field=field)


def _nic_change(template: Any, network: Any) -> list[Any]:
    """Re-point the template's first NIC at ``network`` (a standard network or a DV port group)."""
    _, vim = _sdk()
    nics = [d for d in template.config.hardware.device if isinstance(d, vim.vm.device.VirtualEthernetCard)]
    if not nics:
        raise InvalidSpec(f"template {template.name} has no network card to attach", field="network")
    nic = nics[0]
    if isinstance(network, vim.dvs.DistributedVirtualPortgroup):
        nic.backing = vim.vm.device.VirtualEthernetCard.DistributedVirtualPortBackingInfo(
            port=vim.dvs.PortConnection(
                portgroupKey=network.key, switchUuid=network.config.distributedVirtualSwitch.uuid
            )
        )
    else:
        nic.backing = vim.vm.device.VirtualEthernetCard.NetworkBackingInfo(
            network=network, deviceName=network.name
        )
    return [vim.vm.device.VirtualDeviceSpec(operation="edit", device=nic)]


def _destroy(vm: Any, label: str) -> None:
    """Power off (if on) and delete the VM with its disks."""
    _, vim = _sdk()
    if vm.runtime.powerState == vim.VirtualMachinePowerState.poweredOn:
        _run_task(label, "power-off", vm.PowerOffVM_Task())
    _run_task(label, "destroy", vm.Destroy_Task())


def _wait_address(name: str, vm: Any, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        address = vm.guest.ipAddress if vm.guest is not None else None
        if address:
            return str(address)
        time.sleep(1)
    raise MachineCreateFailed(name, "address", f"VMware Tools reported no address within {timeout:g}s")


def wait_ssh(name: str, address: str, port: int, timeout: float) -> None:
    """Wait until an SSH server greets at ``address:port`` (its "SSH-" banner)."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((address, port), timeout=5) as sock:
                sock.settimeout(5)
                if sock.recv(4).startswith(b"SSH-"):
                    return
                last = "something other than SSH answered"
        except OSError as exc:
            last = _reason(exc)
        time.sleep(0.5)
    raise MachineCreateFailed(name, "ssh", f"no SSH server at {address}:{port} within {timeout:g}s ({last})")


# -- options ---------------------------------------------------------------------------------------------


def guestinfo(request: MachineRequest) -> dict[str, str]:
    """cloud-init's VMware data source: user data (root's SSH key) and meta data (the host name)."""
    user_data = "#cloud-config\n" + json.dumps(
        {"disable_root": False, "users": [{"name": "root", "ssh_authorized_keys": [request.ssh_public_key]}]}
    )
    meta_data = json.dumps({"instance-id": request.name, "local-hostname": request.name})
    return {
        "guestinfo.userdata": base64.b64encode(user_data.encode()).decode(),
        "guestinfo.userdata.encoding": "base64",
        "guestinfo.metadata": base64.b64encode(meta_data.encode()).decode(),
        "guestinfo.metadata.encoding": "base64",
    }


def parse_extra_config(value: Mapping[str, str] | str) -> dict[str, str]:
    """``k=v`` lines (or ``;``-separated), or a JSON object, into extraConfig pairs."""
    if isinstance(value, Mapping):
        return {str(k): str(v) for k, v in value.items()}
    text = value.strip()
    if text.startswith("{"):
        try:
            loaded = json.loads(text)
        except ValueError as exc:
            raise InvalidSpec(f"extra_config is not a JSON object: {exc}", field="extra_config") from exc
        if not isinstance(loaded, dict):
            raise InvalidSpec("extra_config is not a JSON object", field="extra_config")
        return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in loaded.items()}
    pairs: dict[str, str] = {}
    for item in text.replace(";", "\n").splitlines():
        if not item.strip():
            continue
        key, eq, val = item.partition("=")
        if not eq or not key.strip():
            raise InvalidSpec(f"extra_config entry {item.strip()!r} is not KEY=VALUE", field="extra_config")
        if key.strip() == TAG_KEY:
            raise InvalidSpec(f"extra_config may not set {TAG_KEY} (the driver's tag)", field="extra_config")
        pairs[key.strip()] = val.strip()
    return pairs


def parse_sizes(text: str) -> list[MachineSize]:
    """``NAME=CPUS:MEMORY_MB[,...]`` into sizes."""
    sizes: list[MachineSize] = []
    for item in text.split(","):
        name, _, shape = item.strip().partition("=")
        cpus, _, memory = shape.partition(":")
        if not (name and cpus.isdigit() and memory.isdigit() and int(cpus) > 0 and int(memory) > 0):
            raise InvalidSpec(f"size {item.strip()!r} is not NAME=CPUS:MEMORY_MB", field="sizes")
        sizes.append(MachineSize(name, cpus=int(cpus), memory_mb=int(memory)))
    if len({s.name for s in sizes}) != len(sizes):
        raise InvalidSpec("sizes names a size twice", field="sizes")
    return sizes


def _parse_url(url: str) -> tuple[str, str, int, str]:
    parts = urlsplit(url.strip())
    try:
        port = parts.port
    except ValueError:
        port = -1
    if parts.scheme not in ("https", "http") or not parts.hostname or port == -1:
        raise InvalidSpec(f"vsphere url {url!r} is not https://VCENTER[:PORT]/sdk", field="url")
    default = 443 if parts.scheme == "https" else 80
    return parts.scheme, parts.hostname, port or default, parts.path or "/sdk"


def _parse_bool(value: bool | str, field: str) -> bool:
    if isinstance(value, bool):
        return value
    if value.strip().lower() in TRUE | FALSE:
        return value.strip().lower() in TRUE
    raise InvalidSpec(f"{field} {value!r} is not true or false", field=field)


def _parse_seconds(value: float | str, field: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds <= 3600:
        raise InvalidSpec(f"{field} {value!r} is not a number of seconds (0-3600)", field=field)
    return seconds
