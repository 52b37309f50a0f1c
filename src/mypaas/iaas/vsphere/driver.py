"""The ``vsphere`` iaas driver: creates hosts on VMware vSphere (vCenter) with pyvmomi, VMware's own
SDK (imported lazily, by inventory.sdk(): it loads with the driver).

A machine is a clone of a template (``images()``: the VMs marked as templates in the datacenter), with
the size's CPUs and memory, cloud-init user data in ``guestinfo.userdata`` (base64; the request's SSH
key for root) and the account's ``extra_config`` in its extraConfig. It is tagged by the extraConfig
key ``mypaas.account`` (an annotation is the user's, and VMware's simulator rewrites it), which is how
``machines()`` finds what this account made. The address is the one VMware Tools reports.
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

from mypaas.errors import Conflict, InvalidSpec, MyPaasError, NotSupported
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
    pick_size,
)
from mypaas.iaas.vsphere.inventory import (
    Found,
    children,
    destroy,
    named,
    nic_change,
    ours,
    pick,
    reason,
    resource_pool,
    run_task,
    sdk,
    target_of,
    vms,
    wait_address,
    wait_ssh,
)
from mypaas.iaas.vsphere.options import (
    DEFAULT_SIZES,
    TAG_KEY,
    guestinfo,
    parse_bool,
    parse_extra_config,
    parse_seconds,
    parse_sizes,
    parse_url,
)


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
        self._endpoint = parse_url(url)
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
        self.insecure = parse_bool(insecure, "insecure")
        self.extra_config = parse_extra_config(extra_config)
        self.address_timeout = parse_seconds(address_timeout, "address_timeout")
        self.ssh_timeout = parse_seconds(ssh_timeout, "ssh_timeout")

    # -- the MachineDriver protocol -----------------------------------------------------------------

    def check(self) -> None:
        with self._session() as content:
            self._datacenter(content)

    def sizes(self) -> list[MachineSize]:
        return list(self._sizes)

    def images(self) -> list[MachineImage]:
        with self._session() as content:
            found = vms(content, self._datacenter(content))
        return [
            MachineImage(vm.name, vm.description) for vm in sorted(found, key=lambda v: v.name) if vm.template
        ]

    def machines(self) -> list[HostTarget]:
        with self._session() as content:
            found = vms(content, self._datacenter(content))
        return [target_of(vm) for vm in found if vm.account == self.account and not vm.template]

    def forget_creation(self, name: str) -> None:
        """Nothing to do: the clone carries the account's tag from the clone task on (machines() lists it),
        and its disks go with it."""

    def connect(self, target: HostTarget) -> Machine:
        raise NotSupported(f"vsphere machines are reached over SSH ({target.address}): use the ssh driver")

    def create_machine(self, request: MachineRequest) -> HostTarget:
        size = self._size(request.size)
        image = request.image or self.template
        with self._session() as content:
            dc = self._datacenter(content)
            found = vms(content, dc)
            source = self._template(found, image)
            if any(vm.name == request.name for vm in found):
                raise Conflict(f"a VM named {request.name} already exists in {dc.name}", field="name")
            placement = self._placement(content, dc, source)
            with self._undo_on_failure(content, request.name) as made:
                made.append(self._clone(request, source, placement))
                vm = made[0]
                run_task(request.name, "configure", vm.ReconfigVM_Task(spec=self._hardware(size)))
                run_task(request.name, "power-on", vm.PowerOnVM_Task())
                address = wait_address(request.name, vm, self.address_timeout)
                wait_ssh(request.name, address, 22, self.ssh_timeout)
                uuid = str(vm.config.instanceUuid)
        return HostTarget(driver="ssh", address=address, machine_id=uuid, name=request.name)

    def destroy_machine(self, target: HostTarget) -> None:
        if not target.machine_id:
            return
        with self._session() as content:
            vm = content.searchIndex.FindByUuid(None, target.machine_id, True, True)
            if vm is None:
                return  # already gone
            destroy(vm, target.machine_id)

    # -- helpers ------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _session(self) -> Iterator[Any]:
        """Log in, yield the service content, log out; the SDK's errors become one line each."""
        pyvim_connect, vim = sdk()
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
        except Exception as exc:  # socket, http.client, ssl and SOAP errors alike
            hint = (
                "; -o insecure=true skips the check" if isinstance(exc, ssl.SSLCertVerificationError) else ""
            )
            raise DriverUnreachable(f"vsphere endpoint {self.url} unreachable: {reason(exc)}{hint}") from exc
        try:
            yield si.RetrieveContent()
        finally:
            with contextlib.suppress(Exception):
                pyvim_connect.Disconnect(si)

    def _datacenter(self, content: Any) -> Any:
        _, vim = sdk()
        dcs = [e for e in children(content.rootFolder) if isinstance(e, vim.Datacenter)]
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
        return pick_size(self._sizes, name or self.default_size)

    def _template(self, found: list[Found], image: str) -> Found:
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

    def _placement(self, content: Any, dc: Any, source: Found) -> dict[str, Any]:
        """Where the clone goes: its resource pool, folder, datastore (None: the template's)."""
        placement = {
            "pool": resource_pool(content, dc, self.cluster, self.resource_pool),
            "folder": dc.vmFolder,
            "datastore": None,
            "network": None,
        }
        if self.folder:
            placement["folder"] = named(content, dc.vmFolder, "Folder", self.folder, "folder")
        if self.datastore:
            placement["datastore"] = pick(dc.datastore, self.datastore, "datastore")
        if self.network:
            placement["network"] = pick(dc.network, self.network, "network")
        return placement

    def _clone(self, request: MachineRequest, source: Found, placement: Mapping[str, Any]) -> Any:
        _, vim = sdk()
        location = vim.vm.RelocateSpec(pool=placement["pool"], datastore=placement["datastore"])
        if placement["network"] is not None:
            location.deviceChange = nic_change(source.ref, placement["network"])
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
        return run_task(request.name, "clone", task)

    def _hardware(self, size: MachineSize) -> Any:
        _, vim = sdk()
        return vim.vm.ConfigSpec(numCPUs=size.cpus, memoryMB=size.memory_mb)

    @contextlib.contextmanager
    def _undo_on_failure(self, content: Any, name: str) -> Iterator[list[Any]]:
        """On any failure inside, delete the VM made (``made``, or found by name and our tag: a clone
        that failed half-way can leave one), then re-raise as MachineCreateFailed."""
        made: list[Any] = []
        try:
            yield made
        except BaseException as exc:
            problems = self._delete(content, name, made)
            if not isinstance(exc, Exception):
                raise
            also = f"; cleaning up also failed: {'; '.join(problems)}" if problems else ""
            if isinstance(exc, MachineCreateFailed):
                raise MachineCreateFailed(name, exc.step, exc.reason + also) from exc
            if isinstance(exc, QuotaExceeded):
                if also:
                    raise QuotaExceeded(exc.message + also) from exc
                raise
            raise MachineCreateFailed(name, "create", reason(exc) + also) from exc

    def _delete(self, content: Any, name: str, made: list[Any]) -> list[str]:
        """Delete what a failed creation made. -> what could not be deleted, one line each"""
        problems = []
        try:
            leftovers = made or [
                vm.ref for vm in vms(content, self._datacenter(content)) if ours(vm, name, self.account)
            ]
        except Exception as exc:
            return [f"looking for {name}'s VM: {reason(exc)}"]
        for vm in leftovers:
            try:
                destroy(vm, name)
            except Exception as exc:
                problems.append(exc.message if isinstance(exc, MyPaasError) else reason(exc))
        return problems
