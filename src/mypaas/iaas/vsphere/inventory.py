"""pyvmomi, converted once for the vsphere driver: the inventory (datacenters, VMs in one property
collector pass, pools, folders, networks), tasks waited for with their faults made MyPaas errors, and
the waits for a new VM's address and SSH."""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from typing import Any

from mypaas.errors import BackendError, InvalidSpec
from mypaas.iaas.base import HostTarget, MachineCreateFailed, QuotaExceeded
from mypaas.iaas.vsphere.options import TAG_KEY


@dataclass(frozen=True)
class Found:
    """A VM as one property-collector pass sees it."""

    ref: Any  # vim.VirtualMachine
    name: str
    uuid: str
    template: bool
    account: str
    address: str
    description: str


def sdk() -> tuple[Any, Any]:
    """pyVim.connect and pyVmomi.vim, imported on first use."""
    from pyVim import connect as pyvim_connect
    from pyVmomi import vim

    return pyvim_connect, vim


def reason(exc: BaseException) -> str:
    """One line for an SDK, socket or task error."""
    msg = getattr(exc, "msg", None) or getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    if isinstance(exc, TimeoutError | socket.timeout):
        msg = "timed out"
    elif isinstance(exc, ConnectionRefusedError):
        msg = "connection refused"
    return " ".join(str(msg).split())


class TaskFailed(Exception):
    """A vSphere task ended in error; ``fault`` is its vim fault (None when it gave none)."""

    def __init__(self, fault: Any) -> None:
        super().__init__(reason(fault) if fault is not None else "the task failed")
        self.fault = fault


def wait_task(task: Any) -> Any:
    """Wait for a vSphere task: its result, or TaskFailed."""
    _, vim = sdk()
    while task.info.state in (vim.TaskInfo.State.queued, vim.TaskInfo.State.running):
        time.sleep(0.2)
    if task.info.state == vim.TaskInfo.State.success:
        return task.info.result
    raise TaskFailed(task.info.error)


def run_task(name: str, step: str, task: Any) -> Any:
    """Wait for a creation's task; its error becomes MachineCreateFailed(step), or QuotaExceeded."""
    _, vim = sdk()
    try:
        return wait_task(task)
    except TaskFailed as exc:
        if isinstance(exc.fault, vim.fault.InsufficientResourcesFault):
            raise QuotaExceeded(f"vsphere refused {name} at {step}: {exc}") from exc
        raise MachineCreateFailed(name, step, str(exc)) from exc


def children(folder: Any) -> list[Any]:
    """A folder's entities, descending into sub-folders (datacenters can sit in folders)."""
    _, vim = sdk()
    found: list[Any] = []
    for entity in folder.childEntity:
        found.extend(children(entity) if isinstance(entity, vim.Folder) else [entity])
    return found


def vms(content: Any, dc: Any) -> list[Found]:
    """Every VM in the datacenter with the properties the driver reads, in one collector pass."""
    _, vim = sdk()
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
    return [found(obj) for obj in result]


def found(obj: Any) -> Found:
    props = {p.name: p.val for p in obj.propSet}
    extra = {o.key: o.value for o in props.get("config.extraConfig") or []}
    return Found(
        ref=obj.obj,
        name=str(props.get("name", "")),
        uuid=str(props.get("config.instanceUuid") or ""),
        template=bool(props.get("config.template")),
        account=str(extra.get(TAG_KEY, "")),
        address=str(props.get("guest.ipAddress") or ""),
        description=str(props.get("config.guestFullName") or ""),
    )


def ours(vm: Found, name: str, account: str) -> bool:
    return vm.name == name and vm.account == account and not vm.template


def target_of(vm: Found) -> HostTarget:
    return HostTarget(driver="ssh", address=vm.address, machine_id=vm.uuid, name=vm.name)


def resource_pool(content: Any, dc: Any, cluster: str, resource_pool: str) -> Any:
    _, vim = sdk()
    if resource_pool:
        return named(content, dc.hostFolder, "ResourcePool", resource_pool, "resource_pool")
    computes = [c for c in children(dc.hostFolder) if isinstance(c, vim.ComputeResource)]
    if cluster:
        return pick(computes, cluster, "cluster").resourcePool
    clusters = [c for c in computes if isinstance(c, vim.ClusterComputeResource)]
    if not (clusters or computes):
        raise InvalidSpec(f"datacenter {dc.name} has no cluster or host", field="cluster")
    return (clusters or computes)[0].resourcePool


def named(content: Any, root: Any, kind: str, name: str, field: str) -> Any:
    _, vim = sdk()
    view = content.viewManager.CreateContainerView(root, [getattr(vim, kind)], True)
    try:
        return pick(list(view.view), name, field)
    finally:
        view.Destroy()


def pick(objects: Any, name: str, field: str) -> Any:
    for obj in objects:
        if obj.name == name:
            return obj
    names = sorted({obj.name for obj in objects})
    raise InvalidSpec(f"unknown {field.replace('_', ' ')} {name!r}; known: {', '.join(names)}", field=field)


def nic_change(template: Any, network: Any) -> list[Any]:
    """Re-point the template's first NIC at ``network`` (a standard network or a DV port group)."""
    _, vim = sdk()
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


def destroy(vm: Any, label: str) -> None:
    """Power off (if on) and delete the VM with its disks; a failure is a BackendError reading
    "destroying machine <label> failed at <step>: <reason>"."""
    _, vim = sdk()
    step = "power-off"
    try:
        if vm.runtime.powerState == vim.VirtualMachinePowerState.poweredOn:
            wait_task(vm.PowerOffVM_Task())
        step = "destroy"
        wait_task(vm.Destroy_Task())
    except Exception as exc:  # a failed task, or the SDK's call itself (a SOAP fault)
        raise BackendError(f"destroying machine {label} failed at {step}: {reason(exc)}") from exc


def wait_address(name: str, vm: Any, timeout: float) -> str:
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
            last = reason(exc)
        time.sleep(0.5)
    raise MachineCreateFailed(name, "ssh", f"no SSH server at {address}:{port} within {timeout:g}s ({last})")
