"""The ``openstack`` iaas driver: creates servers in an OpenStack project with openstacksdk (the only
module that imports it, and only when a driver is built). A driver account is a clouds.yaml entry
(password or application credential) plus the tenant network, an optional floating IP network, the
default flavor and image; the driver makes the account's key pair and security group itself.

Servers carry the metadata ``mypaas-account=<account>``: ``machines()`` finds them by it. A creation
that fails deletes the server, its ports and the floating IP it made, then says which step failed.
"""

from __future__ import annotations

import base64
import contextlib
import time
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from mypaas.errors import BackendError, Conflict, InvalidSpec, MyPaasError, NotSupported
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
from mypaas.iaas.firstboot import cloud_init, wait_ssh
from mypaas.iaas.openstack_account import OPTIONS, SECRET_OPTIONS, AccountOptions

if TYPE_CHECKING:
    from openstack.connection import Connection

ACCOUNT_KEY = "mypaas-account"  # the server metadata key machines() filters on
# (protocol, port, from the group's members only): SSH and the router's HTTP(S) from anywhere, Swarm's
# ports (manager 2377/tcp, gossip 7946/tcp+udp, VXLAN 4789/udp) between the group's members; nothing else
RULES: tuple[tuple[str, int, bool], ...] = (
    ("tcp", 22, False),
    ("tcp", 80, False),
    ("tcp", 443, False),
    ("tcp", 2377, True),
    ("tcp", 7946, True),
    ("udp", 7946, True),
    ("udp", 4789, True),
)
# what marks the security group as MyPaas's own: a group found without it is refused, never changed
GROUP_DESCRIPTION = "MyPaas hosts: SSH, HTTP(S), Swarm between members"
Steps = list[Callable[[], None]]  # undo actions, newest last


class OpenStackDriver:
    """Creates, lists and deletes servers of one OpenStack project (one driver account)."""

    name = "openstack"
    capabilities = DriverCapabilities(create_machines=True, destroy_machines=True, remote=True)
    OPTIONS: ClassVar[Mapping[str, str]] = OPTIONS
    SECRET_OPTIONS: ClassVar[tuple[str, ...]] = SECRET_OPTIONS

    def __init__(
        self,
        *,
        account: str = "openstack",
        wait_ssh: bool = True,
        timeout: float = 600.0,
        connector: Callable[[HostTarget], Machine] | None = None,
        **options: Any,
    ) -> None:
        """``options``: the driver account's (OPTIONS); ``wait_ssh`` off only where no machine can
        exist (the API simulator); ``connector`` logs in to a created machine (the platform's SSH)."""
        self.account = account
        self.options = AccountOptions.parse(options)
        self.auth_url = self.options.auth_url
        self.key_name = self.options.key_name or f"mypaas-{account}"
        self.security_group = self.options.security_group or f"mypaas-{account}"
        self.wait_ssh = wait_ssh
        self.timeout = timeout
        self._connector = connector
        self._conn: Connection | None = None

    # the connection ----------------------------------------------------------------------------
    def _cloud(self) -> Connection:
        """The SDK connection, built on first use (the SDK is imported here, not at module load)."""
        if self._conn is None:
            import openstack
            from openstack import config as os_config

            region = os_config.get_cloud_region(
                load_yaml_config=False,
                load_envvars=False,
                auth_type=self.options.auth_type,
                auth=self.options.keystone_auth(),
                region_name=self.options.region_name,
                api_timeout=self.options.api_timeout,
            )
            self._conn = openstack.connection.Connection(config=region)
        return self._conn

    @contextlib.contextmanager
    def _api(self, what: str) -> Iterator[None]:
        """Turns the SDK's and keystoneauth's exceptions into MyPaas errors, saying ``what`` failed."""
        from keystoneauth1 import exceptions as ka
        from openstack import exceptions as sdk

        try:
            yield
        except ka.Unauthorized as exc:
            raise self._refused(exc) from exc
        except (ka.ConnectionError, ka.DiscoveryFailure) as exc:
            raise DriverUnreachable(
                f"openstack endpoint {self.auth_url} unreachable: {_first_line(exc)}"
            ) from exc
        except sdk.HttpException as exc:
            raise self._http_error(what, exc) from exc
        except (ka.EndpointNotFound, sdk.ServiceDisabledException) as exc:
            region = self.options.region_name
            where = f" in region {region!r}" if region else ""
            raise InvalidSpec(
                f"openstack account {self.account}: the cloud's catalog lacks a service{where}"
                f" ({_first_line(exc)})",
                field="region_name",
            ) from exc
        except (ka.ClientException, sdk.SDKException) as exc:
            raise BackendError(f"openstack {what} failed: {_first_line(exc)}") from exc

    def _refused(self, exc: Exception) -> DriverAuthFailed:
        field = "application_credential_secret" if self.options.auth_type != "password" else "password"
        return DriverAuthFailed(
            f"openstack account {self.account}: {self.auth_url} refused the credentials ({_first_line(exc)})",
            field=field,
        )

    def _http_error(self, what: str, exc: Any) -> MyPaasError:
        message = str(exc.details or exc.message or exc)
        if exc.status_code == 401:
            return self._refused(exc)
        if "quota exceeded" in message.lower() or "overquota" in message.lower():
            return QuotaExceeded(f"openstack {what}: the cloud refused for lack of quota: {message}")
        return BackendError(f"openstack {what} failed ({exc.status_code}): {message}")

    # what the account offers -----------------------------------------------------------------
    def check(self) -> None:
        """Log in to Keystone (DriverAuthFailed for refused credentials, DriverUnreachable if no answer),
        then look up the account's networks and default flavor and image (InvalidSpec naming the option)."""
        with self._api("login"):
            cloud = self._cloud()
            cloud.session.get_token()
        self._networks()
        with self._api("checking the account"):
            if self.options.flavor:
                _one(self.options.flavor, "flavor", list(cloud.compute.flavors(details=True)))
            if self.options.image:
                _one(self.options.image, "image", list(cloud.image.images(status="active")))

    def sizes(self) -> list[MachineSize]:
        with self._api("listing flavors"):
            flavors = list(self._cloud().compute.flavors(details=True))
        return sorted(
            (
                MachineSize(f.name, int(f.vcpus), int(f.ram), int(f.disk or 0), aliases=(f.id,))
                for f in flavors
            ),
            key=lambda s: (s.memory_mb, s.cpus, s.name),
        )

    def images(self) -> list[MachineImage]:
        with self._api("listing images"):
            images = list(self._cloud().image.images(status="active"))
        return sorted((MachineImage(i.name, i.id, aliases=(i.id,)) for i in images), key=lambda i: i.name)

    def machines(self) -> list[HostTarget]:
        with self._api("listing servers"):
            servers = list(self._cloud().compute.servers(details=True))
        return [self._target(s) for s in servers if (s.metadata or {}).get(ACCOUNT_KEY) == self.account]

    def forget_creation(self, name: str) -> None:
        """Nothing to do: the server carries the account's tag from its creating call on, so machines()
        lists it, and deleting it deletes its ports."""

    def _target(self, server: Any, address: str | None = None) -> HostTarget:
        return HostTarget(
            driver="ssh",  # a created machine is reached as any raw machine is
            address=address or _address(server, self.options.network) or "",
            machine_id=str(server.id),
            name=str(server.name),  # the server is named after the request
        )

    # machines ------------------------------------------------------------------------------------
    def connect(self, target: HostTarget) -> Machine:
        if self._connector is None:
            raise NotSupported(
                f"the openstack driver account {self.account} logs in to its machines through the ssh driver"
            )
        return self._connector(target)

    def create_machine(self, request: MachineRequest) -> HostTarget:
        """Validate, then create the server; on any failure delete what was made, then raise."""
        plan = self._plan(request)
        undo: Steps = []
        step = "keypair"
        try:
            self._ensure_keypair(request.ssh_public_key)
            step = "security-group"
            self._ensure_security_group()
            step = "server"
            server = self._create_server(request, plan, undo)
            step = "active"
            server = self._wait_active(request.name, server.id)
            step = "floating-ip"
            address = self._floating_ip(server, plan, undo) or _address(server, plan["network"].name)
            if not address:
                raise BackendError(f"server {server.id} has no address on network {self.options.network}")
            step = "ssh"
            if self.wait_ssh:
                wait_ssh(address, 22, self.options.ssh_timeout)
        except BaseException as exc:
            problems = _undo(undo)
            if isinstance(exc, QuotaExceeded | DriverAuthFailed | DriverUnreachable):
                raise
            if not isinstance(exc, MyPaasError):
                raise
            reason = exc.message + (f"; cleaning up also failed: {'; '.join(problems)}" if problems else "")
            raise MachineCreateFailed(request.name, step, reason) from exc
        return self._target(server, address)

    def _plan(self, request: MachineRequest) -> dict[str, Any]:
        """The flavor, image and networks ``request`` names, checked before anything is made."""
        if not request.ssh_public_key.strip():
            raise InvalidSpec("a machine needs the platform's SSH public key", field="ssh_public_key")
        with self._api("checking the request"):
            cloud = self._cloud()
            flavor = _one(
                request.size or self.options.flavor, "size", list(cloud.compute.flavors(details=True))
            )
            image = _one(
                request.image or self.options.image, "image", list(cloud.image.images(status="active"))
            )
            taken = [
                s for s in cloud.compute.servers(details=True, name=request.name) if s.name == request.name
            ]
        network, floating = self._networks()
        if any((s.metadata or {}).get(ACCOUNT_KEY) == self.account for s in taken):
            raise Conflict(
                f"openstack account {self.account} already has a machine {request.name}", field="name"
            )
        return {"flavor": flavor, "image": image, "network": network, "floating": floating}

    def _networks(self) -> tuple[Any, Any]:
        """The account's tenant network and its external network for floating IPs (None if not asked)."""
        net = self._cloud().network
        with self._api("looking up networks"):
            network = _find(net.find_network, self.options.network, "network")
            floating = None
            if self.options.floating_network:
                floating = _find(
                    net.find_network,
                    self.options.floating_network,
                    "floating_network",
                    is_router_external=True,
                )
        if network is None:
            raise InvalidSpec(
                f"openstack account {self.account}: no network {self.options.network!r}", field="network"
            )
        if self.options.floating_network and floating is None:
            raise InvalidSpec(
                f"openstack account {self.account}: no external network {self.options.floating_network!r}",
                field="floating_network",
            )
        return network, floating

    def _ensure_keypair(self, public_key: str) -> None:
        """The account's key pair holds the platform's public key: imported once, replaced if it changed."""
        compute = self._cloud().compute
        key = public_key.strip()
        with self._api(f"key pair {self.key_name}"):
            existing = _find(compute.find_keypair, self.key_name, "key_name")
            if existing is not None and (existing.public_key or "").strip() == key:
                return
            if existing is not None and self.options.key_name:
                raise InvalidSpec(
                    f"openstack account {self.account}: key pair {self.key_name!r} holds another key and was"
                    " named by the account, not made by MyPaas: leave key_name out or name a new one",
                    field="key_name",
                )
            if existing is not None:  # the account's own key pair, made from an older platform key
                compute.delete_keypair(self.key_name, ignore_missing=True)
            compute.create_keypair(name=self.key_name, public_key=key)

    def _ensure_security_group(self) -> None:
        """The account's security group, with exactly the ingress rules of RULES added if missing."""
        from openstack import exceptions as sdk

        net = self._cloud().network
        with self._api(f"security group {self.security_group}"):
            group = _find(net.find_security_group, self.security_group, "security_group")
            if group is None:
                group = net.create_security_group(name=self.security_group, description=GROUP_DESCRIPTION)
            elif (group.description or "") != GROUP_DESCRIPTION:
                raise InvalidSpec(
                    f"openstack account {self.account}: security group {self.security_group!r} was not"
                    " made by MyPaas (it would open SSH and HTTP(S) to the world on it): leave"
                    " security_group out or name a new one",
                    field="security_group",
                )
            have = {_rule_key(r) for r in group.security_group_rules or []}
            for rule in self._rules(str(group.id)):
                if _rule_key({"direction": "ingress", "ethertype": "IPv4", **rule}) in have:
                    continue
                with contextlib.suppress(sdk.ConflictException):  # made meanwhile by another creation
                    net.create_security_group_rule(
                        security_group_id=group.id, direction="ingress", ethertype="IPv4", **rule
                    )

    def _rules(self, group_id: str) -> list[dict[str, Any]]:
        """The ingress rules of RULES; Swarm's ports also from ``manager_cidr`` when it is given."""
        rules = []
        for protocol, port, members in RULES:
            remotes: list[dict[str, Any]] = [{"remote_ip_prefix": "0.0.0.0/0"}]
            if members:
                remotes = [{"remote_group_id": group_id}]
                if self.options.manager_cidr:
                    remotes.append({"remote_ip_prefix": self.options.manager_cidr})
            rules += [
                {"protocol": protocol, "port_range_min": port, "port_range_max": port, **remote}
                for remote in remotes
            ]
        return rules

    def _create_server(self, request: MachineRequest, plan: dict[str, Any], undo: Steps) -> Any:
        compute = self._cloud().compute
        with self._api(f"creating server {request.name}"):
            server = compute.create_server(
                name=request.name,
                flavor_id=plan["flavor"].id,
                image_id=plan["image"].id,
                networks=[{"uuid": plan["network"].id}],
                key_name=self.key_name,
                security_groups=[{"name": self.security_group}],
                user_data=base64.b64encode(cloud_init(request.ssh_public_key).encode()).decode(),
                metadata={ACCOUNT_KEY: self.account},
            )
        undo.append(lambda: self._delete_server(str(server.id)))
        return server

    def _wait_active(self, name: str, server_id: str) -> Any:
        deadline = time.monotonic() + self.timeout
        delay = 0.1
        while True:
            with self._api(f"server {name}"):
                server = self._cloud().compute.get_server(server_id)
            if server.status == "ACTIVE":
                return server
            if server.status == "ERROR":
                fault = (server.fault or {}).get("message") or "no fault message"
                raise BackendError(f"server {server_id} went to ERROR: {fault}")
            if time.monotonic() > deadline:
                raise BackendError(f"server {server_id} still {server.status} after {self.timeout:g}s")
            time.sleep(delay)
            delay = min(delay * 2, 5.0)

    def _floating_ip(self, server: Any, plan: dict[str, Any], undo: Steps) -> str | None:
        """A floating IP on the server's port on the tenant network, when the account asks for one."""
        if plan["floating"] is None:
            return None
        net = self._cloud().network
        with self._api(f"floating IP for {server.name}"):
            ports = list(net.ports(device_id=server.id, network_id=plan["network"].id))
            if not ports:
                raise BackendError(f"server {server.id} has no port on network {self.options.network}")
            fip = net.create_ip(
                floating_network_id=plan["floating"].id,
                port_id=ports[0].id,
                description=f"{ACCOUNT_KEY}={self.account} server={server.id}",
            )
        undo.append(lambda: self._release_ip(str(fip.id)))
        return str(fip.floating_ip_address)

    def destroy_machine(self, target: HostTarget) -> None:
        """Release the floating IPs the driver made for it, delete the server and wait until it is gone.
        A server already gone is done (idempotent)."""
        server_id = target.machine_id or self._find_id(target.address)
        if server_id is None:
            return
        with self._api(f"releasing floating IPs of {server_id}"):
            mine = f"{ACCOUNT_KEY}={self.account} server={server_id}"
            for fip in list(self._cloud().network.ips()):
                if fip.description == mine:
                    self._release_ip(str(fip.id))
        self._delete_server(server_id)

    def _find_id(self, address: str) -> str | None:
        return next((m.machine_id for m in self.machines() if m.address == address), None)

    def _release_ip(self, fip_id: str) -> None:
        with self._api(f"releasing floating IP {fip_id}"):
            self._cloud().network.delete_ip(fip_id, ignore_missing=True)

    def _delete_server(self, server_id: str) -> None:
        """Delete the server, wait until Nova no longer knows it, then any port left on it."""
        cloud = self._cloud()
        with self._api(f"deleting server {server_id}"):
            server = _find(cloud.compute.find_server, server_id, "machine_id")
            if server is not None:
                cloud.compute.delete_server(server_id, ignore_missing=True)
                cloud.compute.wait_for_delete(server, interval=0.2, wait=int(self.timeout))
            for port in list(cloud.network.ports(device_id=server_id)):
                cloud.network.delete_port(port.id, ignore_missing=True)


def _find(finder: Callable[..., Any], name: str, field: str, **filters: Any) -> Any:
    """What ``finder`` (a proxy's find_*) finds by name or id, or None; two of that name: InvalidSpec."""
    from openstack import exceptions as sdk

    try:
        return finder(name, ignore_missing=False, **filters)
    except sdk.NotFoundException:
        return None
    except sdk.DuplicateResource as exc:
        raise InvalidSpec(f"more than one {field} is called {name!r}; give its id", field=field) from exc


def _one(wanted: str | None, field: str, choices: list[Any]) -> Any:
    """The flavor or image called (or with the id) ``wanted``; InvalidSpec naming the choices if none."""
    if not wanted:
        raise InvalidSpec(f"no {field}: give --{field} or set the account's default", field=field)
    for choice in choices:
        if wanted in (choice.name, choice.id):
            return choice
    names = ", ".join(sorted(c.name for c in choices)) or "none"
    raise InvalidSpec(f"unknown {field} {wanted!r}; the cloud offers: {names}", field=field)


def _rule_key(rule: Mapping[str, Any]) -> tuple[Any, ...]:
    keys = ("direction", "ethertype", "protocol", "port_range_min", "port_range_max", "remote_group_id")
    return (*(rule.get(k) for k in keys), rule.get("remote_ip_prefix"))


def _address(server: Any, network: str) -> str | None:
    """The server's floating IPv4 address if it has one, else its fixed one, on ``network`` (a name: Nova
    files addresses by network name; given an id, on whichever network the server has)."""
    addresses = server.addresses or {}
    on = addresses.get(network) or [e for entries in addresses.values() for e in entries]
    entries = [e for e in on if e.get("version") == 4]
    for kind in ("floating", "fixed"):
        for entry in entries:
            if entry.get("OS-EXT-IPS:type", "fixed") == kind:
                return str(entry["addr"])
    return None


def _undo(undo: Steps) -> list[str]:
    """Run the undo actions, newest first; what failed, as lines."""
    problems = []
    for action in reversed(undo):
        try:
            action()
        except MyPaasError as exc:
            problems.append(exc.message)
    return problems


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
