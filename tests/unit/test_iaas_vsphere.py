"""The vsphere driver's options and first-boot data, offline (the driver itself runs against vcsim in
tests/integration/test_vsphere_driver.py)."""

from __future__ import annotations

import base64
import contextlib
import json
from types import SimpleNamespace

import pytest

from mypaas.errors import BackendError, InvalidSpec
from mypaas.iaas import catalog
from mypaas.iaas.base import HostTarget, MachineCreateFailed, MachineRequest, MachineSize
from mypaas.iaas.vsphere import VSphereDriver
from mypaas.iaas.vsphere.inventory import sdk
from mypaas.iaas.vsphere.options import guestinfo, parse_extra_config, parse_sizes

URL = "https://vcenter.example/sdk"


def driver(**options: str) -> VSphereDriver:
    return VSphereDriver(**{"url": URL, "user": "u", "password": "p", **options})


def test_the_catalog_builds_it_and_knows_its_options() -> None:
    made = catalog.machine_driver(
        "vsphere", account="lab", options={"url": URL, "user": "u", "password": "p"}
    )
    assert isinstance(made, VSphereDriver) and made.account == "lab"
    options, secret = catalog.option_help("vsphere")
    assert secret == ("password",) and {"url", "template", "extra_config", "insecure"} <= set(options)
    assert made.capabilities.names() == ["create", "destroy"]


def test_extra_config_as_lines_pairs_or_json() -> None:
    run = 'RUN.container=["img:1"]'
    assert parse_extra_config(f"{run}; a=b\n c = d ") == {"RUN.container": '["img:1"]', "a": "b", "c": "d"}
    assert parse_extra_config('{"x": "1", "y": [1, 2]}') == {"x": "1", "y": "[1, 2]"}
    assert parse_extra_config("") == {}
    for bad in ("novalue", "=v", "{nope", "[1]", "mypaas.account=other", '{"mypaas.account": "x"}'):
        with pytest.raises(InvalidSpec) as caught:
            parse_extra_config(bad)
        assert caught.value.field == "extra_config"


def test_sizes_override_the_table() -> None:
    assert parse_sizes("tiny=1:512, big=8:16384") == [
        MachineSize("tiny", 1, 512),
        MachineSize("big", 8, 16384),
    ]
    for bad in ("tiny", "tiny=0:512", "tiny=1:x", "a=1:1,a=2:2"):
        with pytest.raises(InvalidSpec):
            parse_sizes(bad)
    assert [s.name for s in driver(sizes="tiny=1:512", size="tiny").sizes()] == ["tiny"]


def test_bad_options_name_their_field() -> None:
    for options, field in (
        ({"url": "ftp://x/sdk"}, "url"),
        ({"url": "https://:99999/sdk"}, "url"),
        ({"insecure": "maybe"}, "insecure"),
        ({"address_timeout": "soon"}, "address_timeout"),
        ({"ssh_timeout": "0"}, "ssh_timeout"),
    ):
        with pytest.raises(InvalidSpec) as caught:
            driver(**options)
        assert caught.value.field == field


def test_an_unknown_size_is_refused_before_any_call() -> None:
    with pytest.raises(InvalidSpec, match=r"unknown size 'huge'; sizes: small, medium, large") as caught:
        driver().create_machine(MachineRequest("w1", size="huge"))  # no vCenter at that URL: not reached
    assert caught.value.field == "size"


def test_guestinfo_carries_the_key_as_cloud_init_user_data() -> None:
    info = guestinfo(MachineRequest("w1", ssh_public_key="ssh-ed25519 AAAA k"))
    assert info["guestinfo.userdata.encoding"] == info["guestinfo.metadata.encoding"] == "base64"
    user_data = base64.b64decode(info["guestinfo.userdata"]).decode()
    assert user_data.startswith("#cloud-config\n")
    users = json.loads(user_data.split("\n", 1)[1])["users"]
    assert users == [{"name": "root", "ssh_authorized_keys": ["ssh-ed25519 AAAA k"]}]
    assert json.loads(base64.b64decode(info["guestinfo.metadata"]))["local-hostname"] == "w1"


# -- destroying: SDK objects faked, the real pyVmomi enums ----------------------------------------------


def _task(error: str | None = None) -> SimpleNamespace:
    _, vim = sdk()
    state = vim.TaskInfo.State.error if error else vim.TaskInfo.State.success
    fault = SimpleNamespace(msg=error) if error else None
    return SimpleNamespace(info=SimpleNamespace(state=state, error=fault, result=None))


def _vm(*, off: str | None = None, gone: str | None = None) -> SimpleNamespace:
    _, vim = sdk()
    return SimpleNamespace(
        runtime=SimpleNamespace(powerState=vim.VirtualMachinePowerState.poweredOn),
        PowerOffVM_Task=lambda: _task(off),
        Destroy_Task=lambda: _task(gone),
    )


def test_a_failed_destroy_says_destroying_and_the_step(monkeypatch: pytest.MonkeyPatch) -> None:
    d = driver(url="https://vc.example.com", template="debian-12")
    vm = _vm(off="the host is in maintenance mode")
    content = SimpleNamespace(searchIndex=SimpleNamespace(FindByUuid=lambda *a: vm))
    monkeypatch.setattr(d, "_session", lambda: contextlib.nullcontext(content))
    with pytest.raises(BackendError) as caught:
        d.destroy_machine(HostTarget(driver="ssh", address="10.0.0.5", machine_id="4210-ab"))
    assert not isinstance(caught.value, MachineCreateFailed)
    assert (
        caught.value.message
        == "destroying machine 4210-ab failed at power-off: the host is in maintenance mode"
    )


def test_a_creation_whose_clean_up_fails_says_so() -> None:
    d = driver(url="https://vc.example.com", template="debian-12")
    with pytest.raises(MachineCreateFailed) as caught, d._undo_on_failure(None, "w1") as made:
        made.append(_vm(gone="the disk is locked"))
        raise MachineCreateFailed("w1", "address", "VMware Tools reported no address within 600s")
    assert caught.value.step == "address"
    assert caught.value.message == (
        "creating w1 failed at address: VMware Tools reported no address within 600s; "
        "cleaning up also failed: destroying machine w1 failed at destroy: the disk is locked"
    )
