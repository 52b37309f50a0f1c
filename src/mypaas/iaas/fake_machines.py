"""An in-memory MachineDriver for unit tests, behind the same protocol as vsphere/libvirt/openstack.

A ``FakeCloud`` is the cloud's state: the machines it made, its quota, the password it accepts, the
step a creation fails at. Its machines are ``FakeHost``s added to a ``FakeHostDriver`` (``world``), so
the manager's bootstrap reaches them as it reaches the hosts of ``host add`` tests. A
``FakeMachineDriver`` is one driver account over a cloud; drivers are built per call from an
account's options, so clouds named by ``url`` (``fake://NAME``) live in ``CLOUDS`` and outlive them.

The catalog offers the ``fake`` driver only when ``MYPAAS_FAKE_DRIVERS=1`` (tests); never by default.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from mypaas.errors import Conflict, InvalidSpec, NotSupported
from mypaas.iaas.base import (
    DriverAuthFailed,
    DriverCapabilities,
    DriverUnreachable,
    HostTarget,
    MachineCreateFailed,
    MachineImage,
    MachineRequest,
    MachineSize,
    QuotaExceeded,
    pick_size,
)
from mypaas.iaas.fake import FakeHost, FakeHostDriver, FakeMachine

DEFAULT_SIZES = (
    MachineSize("small", cpus=1, memory_mb=1024, disk_gb=10),
    MachineSize("medium", cpus=2, memory_mb=4096, disk_gb=20),
    MachineSize("large", cpus=4, memory_mb=8192, disk_gb=40),
)
DEFAULT_IMAGES = (MachineImage("debian-12", "Debian 12 with the Docker engine"),)
STEPS = ("boot", "address", "ssh")  # what a creation goes through; the machine exists from "boot" on


@dataclass(frozen=True)
class FakeMachineRecord:
    """A machine the cloud made: which account made it, from what request, and where it answers."""

    account: str
    request: MachineRequest
    target: HostTarget
    size: MachineSize
    image: MachineImage


@dataclass(eq=False)
class FakeCloud:
    """One cloud. ``fail_at``: the creation step that fails (``STEPS``), once (``fail_once``) or
    always; ``quota``: how many machines it holds at most (None: no limit); ``password``: the one
    it accepts ("" any); ``sizes``/``images``: what it offers; ``make_host``: the FakeHost a new
    machine is, given its address (tests script its answers there, e.g. what the bootstrap asks)."""

    world: FakeHostDriver = field(default_factory=FakeHostDriver)
    quota: int | None = None
    password: str = ""
    reachable: bool = True
    fail_at: str = ""
    fail_once: bool = False
    make_host: Callable[[str], FakeHost] = FakeHost
    sizes: Sequence[MachineSize] = DEFAULT_SIZES
    images: Sequence[MachineImage] = DEFAULT_IMAGES
    subnet: str = "10.200.9."
    records: dict[str, FakeMachineRecord] = field(default_factory=dict)  # by machine id
    destroyed: list[str] = field(default_factory=list)  # machine ids, in order
    _next: int = 10

    def address(self) -> str:
        self._next += 1
        return f"{self.subnet}{self._next}"

    def failing(self, step: str) -> bool:
        if self.fail_at != step:
            return False
        if self.fail_once:
            self.fail_at = ""
        return True


CLOUDS: dict[str, FakeCloud] = {}  # clouds named by a ``fake://NAME`` url


def cloud_named(name: str) -> FakeCloud:
    """The cloud called ``name``, made on first use."""
    return CLOUDS.setdefault(name, FakeCloud())


class FakeMachineDriver:
    """One driver account over a FakeCloud: creates, lists and destroys its machines."""

    OPTIONS: ClassVar[Mapping[str, str]] = {
        "url": "the cloud, fake://NAME (an in-memory cloud; tests only)",
        "user": "the account's user name",
        "password": "the account's password",
        "size": "the default size (small, medium, large)",
        "image": "the default image",
    }
    SECRET_OPTIONS: ClassVar[tuple[str, ...]] = ("password",)
    capabilities = DriverCapabilities(create_machines=True, destroy_machines=True)

    def __init__(
        self,
        *,
        account: str = "fake",
        url: str = "fake://default",
        user: str = "admin",
        password: str = "",
        size: str = "small",
        image: str = "debian-12",
        cloud: FakeCloud | None = None,
        capabilities: DriverCapabilities | None = None,
    ) -> None:
        if not url.startswith("fake://") or len(url) <= len("fake://"):
            raise InvalidSpec(f"fake driver url {url!r} is not fake://NAME", field="url")
        self.name = "fake"
        self.account = account
        self.url = url
        self.user = user
        self.password = password
        self.default_size = size
        self.default_image = image
        self.cloud = cloud if cloud is not None else cloud_named(url[len("fake://") :])
        if capabilities is not None:
            self.capabilities = capabilities

    # -- the MachineDriver protocol ----------------------------------------------------------------

    def check(self) -> None:
        if not self.cloud.reachable:
            raise DriverUnreachable(f"fake endpoint {self.url} unreachable: connection refused")
        if self.cloud.password and self.password != self.cloud.password:
            raise DriverAuthFailed(f"fake endpoint {self.url} refused user {self.user!r}: wrong password")

    def sizes(self) -> list[MachineSize]:
        self.check()
        return list(self.cloud.sizes)

    def images(self) -> list[MachineImage]:
        self.check()
        return list(self.cloud.images)

    def machines(self) -> list[HostTarget]:
        self.check()
        return [r.target for r in self.cloud.records.values() if r.account == self.account]

    def forget_creation(self, name: str) -> None:
        """The fake cloud records a machine whole or not at all: nothing is ever left unlisted."""

    def connect(self, target: HostTarget) -> FakeMachine:
        return self.cloud.world.connect(target)

    def create_machine(self, request: MachineRequest) -> HostTarget:
        self._refuse("create", self.capabilities.create_machines, request.name)
        self.check()
        size, image = self._size(request.size), self._image(request.image)
        if any(r.request.name == request.name for r in self._records()):
            raise Conflict(f"a machine named {request.name} already exists in {self.url}", field="name")
        if self.cloud.quota is not None and len(self.cloud.records) >= self.cloud.quota:
            quota = self.cloud.quota
            raise QuotaExceeded(f"quota exceeded for instances: {quota} of {quota} used")
        machine_id = f"fake-{self.account}-{request.name}"
        if self.cloud.failing("boot"):
            raise MachineCreateFailed(request.name, "boot", "the fake cloud failed to boot it")
        address = self.cloud.address()
        target = HostTarget(driver="ssh", address=address, machine_id=machine_id, name=request.name)
        self.cloud.records[machine_id] = FakeMachineRecord(self.account, request, target, size, image)
        for step in STEPS[1:]:
            if self.cloud.failing(step):
                self._delete(machine_id)
                raise MachineCreateFailed(request.name, step, f"the fake cloud failed at {step}")
        self.cloud.world.add_host(self.cloud.make_host(address))
        return target

    def destroy_machine(self, target: HostTarget) -> None:
        self._refuse("destroy", self.capabilities.destroy_machines, target.machine_id or target.address)
        self.check()
        if target.machine_id is not None:
            self._delete(target.machine_id)

    # -- helpers -------------------------------------------------------------------------------------

    def _records(self) -> list[FakeMachineRecord]:
        return [r for r in self.cloud.records.values() if r.account == self.account]

    def _refuse(self, what: str, able: bool, name: str) -> None:
        if not able:
            raise NotSupported(f"the fake driver account {self.account} cannot {what} machines ({name})")

    def _size(self, name: str | None) -> MachineSize:
        return pick_size(self.cloud.sizes, name or self.default_size)

    def _image(self, name: str | None) -> MachineImage:
        wanted = name or self.default_image
        for image in self.cloud.images:
            if image.name == wanted:
                return image
        known = ", ".join(i.name for i in self.cloud.images)
        raise InvalidSpec(f"unknown image {wanted!r}; images: {known}", field="image")

    def _delete(self, machine_id: str) -> None:
        record = self.cloud.records.pop(machine_id, None)
        if record is None:
            return
        self.cloud.world.hosts.pop(record.target.address, None)
        self.cloud.destroyed.append(machine_id)
