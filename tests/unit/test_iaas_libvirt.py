"""The libvirt driver against libvirt's built-in test driver (test:///default, in memory, no daemon):
options, refusals, a creation failing half-way leaving nothing; and the seed the guest reads."""

from __future__ import annotations

import secrets
import shutil
import subprocess
from collections.abc import Iterator
from xml.etree import ElementTree as ET

import pytest

from mypaas.errors import Conflict, InvalidSpec
from mypaas.iaas import catalog
from mypaas.iaas import libvirt_xml as lx
from mypaas.iaas.base import DriverUnreachable, HostTarget, MachineCreateFailed, MachineRequest, MachineSize
from mypaas.iaas.libvirt import LibvirtDriver
from mypaas.iaas.libvirt_image import SEED_SCRIPT

libvirt = pytest.importorskip("libvirt")

URI = "test:///default"  # one in-memory host per process: pool "default-pool", network "default"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBWu7cS0jXCWSGc5JUSO8e3A0vOa9CTa0MlqcmXDKlB4 me@laptop"


@pytest.fixture
def image() -> Iterator[str]:
    """A base disk in the test pool: NAME.qcow2 with its kernel and initrd."""
    conn = libvirt.open(URI)
    pool = conn.storagePoolLookupByName("default-pool")
    name = f"img-{secrets.token_hex(3)}"
    vols = [
        pool.createXML(lx.raw_volume_xml(f"{name}.{ext}", 4096), 0) for ext in ("qcow2", "vmlinuz", "initrd")
    ]
    yield name
    for vol in vols:
        vol.delete(0)
    conn.close()


def driver(**options: object) -> LibvirtDriver:
    return LibvirtDriver(
        account="lab",
        uri=URI,
        pool="default-pool",
        network="default",
        **options,  # type: ignore[arg-type]
    )


def request(name: str = "m1", **fields: object) -> MachineRequest:
    return MachineRequest(name=name, ssh_public_key=KEY, **fields)  # type: ignore[arg-type]


def test_the_catalog_builds_it_with_the_accounts_options() -> None:
    made = catalog.machine_driver("libvirt", account="lab", options={"uri": URI, "pool": "default-pool"})
    assert isinstance(made, LibvirtDriver) and made.account == "lab" and made.pool == "default-pool"
    options, secret = catalog.option_help("libvirt")
    assert {"uri", "pool", "network", "image", "size", "domain_type"} <= set(options) and secret == ()


def test_check_reaches_the_endpoint_and_finds_pool_and_network() -> None:
    driver().check()
    with pytest.raises(InvalidSpec) as pool:
        LibvirtDriver(uri=URI, pool="nope", network="default").check()
    assert pool.value.field == "pool" and "'nope'" in str(pool.value)
    with pytest.raises(InvalidSpec) as net:
        LibvirtDriver(uri=URI, pool="default-pool", network="nonet").check()
    assert net.value.field == "network"


def test_an_unreachable_endpoint_is_one_line() -> None:
    with pytest.raises(DriverUnreachable) as caught:
        LibvirtDriver(uri="qemu+tcp://127.0.0.1:1/system").check()
    message = str(caught.value)
    assert message.startswith("libvirt endpoint qemu+tcp://127.0.0.1:1/system unreachable: ")
    assert "\n" not in message


@pytest.mark.parametrize(("option", "value"), [("domain_type", "xen"), ("boot_timeout", "soon")])
def test_bad_options_name_their_field(option: str, value: str) -> None:
    with pytest.raises(InvalidSpec) as caught:
        driver(**{option: value})
    assert caught.value.field == option


def test_sizes_and_images(image: str) -> None:
    assert MachineSize("small", cpus=1, memory_mb=1024) in driver().sizes()
    assert image in [i.name for i in driver().images()]  # the qcow2 of a machine is not an image


def test_refusals_name_the_field_and_make_nothing(image: str) -> None:
    cases = [
        (request(size="huge"), "size"),
        (request(image="nope"), "image"),
        (request(name="Bad_Name", image=image), "name"),
        (MachineRequest(name="m2", image=image), "ssh_public_key"),
    ]
    before = _volumes()
    for req, field in cases:
        with pytest.raises(InvalidSpec) as caught:
            driver().create_machine(req)
        assert caught.value.field == field
    assert _volumes() == before


def test_a_taken_name_is_a_conflict(image: str) -> None:
    with pytest.raises(Conflict):
        driver().create_machine(request(name="test", image=image))  # the test driver's own domain


def test_a_creation_failing_half_way_leaves_no_disk(image: str) -> None:
    """The test driver cannot upload the seed: creation fails at "disk" with the overlay made."""
    before = _volumes()
    name = f"m-{secrets.token_hex(3)}"
    with pytest.raises(MachineCreateFailed) as caught:
        driver().create_machine(request(name=name, image=image))
    assert caught.value.step == "disk" and str(caught.value).startswith(f"creating {name} failed at disk: ")
    assert _volumes() == before


def test_destroy_is_idempotent_and_spares_what_it_did_not_make() -> None:
    lab = driver()
    lab.destroy_machine(lab_target("gone-already"))
    with pytest.raises(Conflict):
        lab.destroy_machine(lab_target("test"))  # a domain without the account's tag
    assert lab.machines() == []


def lab_target(name: str) -> HostTarget:
    return HostTarget(driver="ssh", address="10.0.0.1", machine_id=name)


def test_the_domain_xml_boots_the_kernel_and_carries_the_tag() -> None:
    tag = lx.Tag("lab", "web-1", "SHA256:abc", (("zone", "a"),))
    spec = lx.DomainSpec(
        "web-1", "qemu", MachineSize("small", 1, 1024), "/p/web-1-root.qcow2", "/p/web-1-seed.iso",
        "lan", "/p/d.vmlinuz", "/p/d.initrd", "root=LABEL=x console=ttyS0", tag,
    )  # fmt: skip
    text = lx.domain_xml(spec)
    root = ET.fromstring(text)
    assert root.get("type") == "qemu" and root.findtext("memory") == "1024"
    assert root.findtext("os/kernel") == "/p/d.vmlinuz" and root.find("cpu") is None
    assert [d.get("file") for d in root.iter("source") if d.get("file")] == [spec.root_disk, spec.seed_disk]
    assert root.find("devices/interface/source").get("network") == "lan"  # type: ignore[union-attr]
    assert lx.parse_tag(text) == tag


def test_the_overlay_is_backed_by_the_base_disk() -> None:
    vol = ET.fromstring(lx.overlay_volume_xml("m-root.qcow2", 10, "/p/base.qcow2"))
    assert vol.findtext("backingStore/path") == "/p/base.qcow2"
    assert vol.find("target/format").get("type") == "qcow2"  # type: ignore[union-attr]


@pytest.mark.skipif(shutil.which("awk") is None, reason="awk is the guest's parser")
def test_the_guest_reads_the_key_and_host_key_from_user_data() -> None:
    """The base disk's seed unit parses user-data with awk: run its very lines on what we write."""
    host_key = lx.make_host_key()
    text = lx.user_data(KEY, host_key)
    programs = [line.split("'")[1] for line in SEED_SCRIPT.splitlines() if "awk '" in line]
    assert len(programs) == 2
    keys = subprocess.run(["awk", programs[0]], input=text, capture_output=True, text=True, check=True)
    assert keys.stdout == KEY + "\n"
    private = subprocess.run(["awk", programs[1]], input=text, capture_output=True, text=True, check=True)
    assert private.stdout.strip() == host_key.private_openssh.strip()
    assert host_key.fingerprint.startswith("SHA256:") and len(host_key.fingerprint) == 50


def _volumes() -> set[str]:
    conn = libvirt.open(URI)
    try:
        return set(conn.storagePoolLookupByName("default-pool").listVolumes())
    finally:
        conn.close()


def test_forget_creation_deletes_disks_left_without_a_domain_only() -> None:
    conn = libvirt.open(URI)
    pool = conn.storagePoolLookupByName("default-pool")
    lost = f"m-{secrets.token_hex(3)}"
    for name in (lost, "test"):  # "test": the test driver's own domain
        pool.createXML(lx.raw_volume_xml(f"{name}-root.qcow2", 4096), 0)
        pool.createXML(lx.raw_volume_xml(f"{name}-seed.iso", 4096), 0)
    try:
        lab = driver()
        lab.forget_creation(lost)
        lab.forget_creation("test")
        lab.forget_creation("../etc")  # no machine could have that name: nothing is touched
        assert {f"{lost}-root.qcow2", f"{lost}-seed.iso"}.isdisjoint(_volumes())
        assert {"test-root.qcow2", "test-seed.iso"} <= _volumes()  # a domain of that name exists
    finally:
        for name in ("test-root.qcow2", "test-seed.iso"):
            pool.storageVolLookupByName(name).delete(0)
        conn.close()
