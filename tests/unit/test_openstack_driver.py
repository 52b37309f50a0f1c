"""The openstack driver's refusals against the OpenStack API simulator (tests/openstack_sim.py), driven
by the unmodified openstacksdk: bad options, wrong credentials, an unreachable Keystone, unknown
flavor/image/network, quota refusals from Nova and Neutron, a server going to ERROR, no SSH answer.
Each is one line naming its cause, and the simulator's state proves nothing was left behind."""

from __future__ import annotations

import base64
import contextlib
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from mypaas.errors import BackendError, InvalidSpec
from mypaas.iaas import catalog
from mypaas.iaas.base import (
    DriverAuthFailed,
    DriverUnreachable,
    MachineCreateFailed,
    MachineRequest,
    QuotaExceeded,
)
from mypaas.iaas.firstboot import wait_ssh
from mypaas.iaas.openstack import RULES, OpenStackDriver
from tests.kit import free_port
from tests.openstack_sim import Cloud, Simulator, running

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOtestkeytestkeytestkeytestkeytestkeytest mypaas"
NOTHING = {"servers": [], "ports": [], "floating_ips": []}


@pytest.fixture(scope="module")
def server() -> Iterator[Simulator]:
    with running() as simulator:
        yield simulator


@pytest.fixture
def sim(server: Simulator) -> Simulator:
    server.cloud = Cloud()  # a fresh cloud for each test
    return server


def account(sim: Simulator, **options: Any) -> OpenStackDriver:
    base: dict[str, Any] = {
        "auth_url": sim.auth_url,
        "username": "demo",
        "password": "secret",
        "project_name": "demo",
        "network": "private",
        "flavor": "m1.small",
        "image": "debian-12",
    }
    wait_ssh = options.pop("wait_ssh", False)
    return OpenStackDriver(account="lab", wait_ssh=wait_ssh, **{**base, **options})


def one_line(exc: pytest.ExceptionInfo[Exception]) -> str:
    text = str(exc.value)
    assert "\n" not in text and "Traceback" not in text
    return text


def made_nothing(sim: Simulator) -> None:
    assert sim.cloud.leftovers() == NOTHING
    assert not [r for r in sim.cloud.requests if r.startswith("POST /compute/v2.1/servers")]


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"colour": "blue"}, "colour"),
        ({"network": ""}, "network"),
        ({"auth_url": "keystone:5000"}, "auth_url"),
        ({"password": None}, "password"),
        ({"project_name": None}, "project_name"),
        ({"application_credential_id": "abc"}, "application_credential_secret"),
        ({"ssh_timeout": "soon"}, "ssh_timeout"),
        ({"ssh_timeout": "0"}, "ssh_timeout"),
        ({"cloud_config": "mycloud"}, "cloud_config"),
        ({"cloud_config": {"auth_type": "token", "auth": {}}}, "auth_type"),
        ({"auth_url": None}, "auth_url"),
    ],
)
def test_bad_options_are_refused_naming_the_option(options: dict[str, Any], field: str) -> None:
    base = {"auth_url": "http://127.0.0.1:1/v3", "username": "u", "password": "p", "project_name": "p"}
    with pytest.raises(InvalidSpec) as caught:
        OpenStackDriver(account="lab", **{"network": "private", **base, **options})
    assert caught.value.field == field
    one_line(caught)


def test_the_catalog_builds_it_from_a_clouds_yaml_entry_and_names_its_secrets(sim: Simulator) -> None:
    """As `driver add --type openstack --cloud sim -o network=private` passes it: the clouds.yaml entry
    under cloud_config (flat options override it)."""
    auth = {"auth_url": sim.auth_url, "username": "demo", "password": "wrong", "project_name": "demo"}
    entry = {"auth": auth, "region_name": "RegionOne", "interface": "public", "identity_api_version": 3}
    options = {"cloud": "sim", "cloud_config": entry, "network": "private", "password": "secret"}
    driver = catalog.machine_driver("openstack", account="lab", options=options)
    assert isinstance(driver, OpenStackDriver) and driver.key_name == "mypaas-lab"
    driver.check()
    names, secret = catalog.option_help("openstack")
    assert set(secret) == {
        "password",
        "application_credential_secret",
        "cloud_config.auth.password",
        "cloud_config.auth.application_credential_secret",
    }
    assert {"cloud_config", "network", "floating_network", "flavor", "image"} <= set(names)
    app = {
        "auth_url": sim.auth_url,
        "application_credential_id": sim.cloud.app_credential_id,
        "application_credential_secret": sim.cloud.app_credential_secret,
    }
    entry = {"auth_type": "v3applicationcredential", "auth": app}
    catalog.machine_driver(
        "openstack", account="lab", options={"cloud_config": entry, "network": "private"}
    ).check()


def test_a_wrong_password_is_refused_in_one_line(sim: Simulator) -> None:
    driver = account(sim, password="wrong")
    with pytest.raises(DriverAuthFailed) as caught:
        driver.check()
    assert caught.value.field == "password" and sim.auth_url in one_line(caught)
    with pytest.raises(DriverAuthFailed):
        driver.create_machine(MachineRequest("web-1", ssh_public_key=KEY))
    made_nothing(sim)


def test_an_application_credential_logs_in_and_a_wrong_secret_is_refused(sim: Simulator) -> None:
    cred = {"username": None, "password": None, "project_name": None}
    good = account(
        sim,
        **cred,
        application_credential_id=sim.cloud.app_credential_id,
        application_credential_secret=sim.cloud.app_credential_secret,
    )
    good.check()
    assert [s.name for s in good.sizes()][:2] == ["m1.tiny", "m1.small"]
    assert [i.name for i in good.images()] == ["cirros-0.3.2-x86_64-disk", "debian-12"]  # active ones only
    bad = account(
        sim,
        **cred,
        application_credential_id=sim.cloud.app_credential_id,
        application_credential_secret="nope",
    )
    with pytest.raises(DriverAuthFailed) as caught:
        bad.check()
    assert caught.value.field == "application_credential_secret"


def test_an_unreachable_keystone_is_one_line() -> None:
    url = f"http://127.0.0.1:{free_port()}/v3"
    driver = OpenStackDriver(
        account="lab", auth_url=url, username="u", password="p", project_name="p", network="private"
    )
    for call in (driver.check, driver.sizes, driver.machines):
        with pytest.raises(DriverUnreachable) as caught:
            call()
        assert one_line(caught).startswith(f"openstack endpoint {url} unreachable: ")


@pytest.mark.parametrize(
    ("options", "request_fields", "field"),
    [
        ({}, {"size": "m9.huge"}, "size"),
        ({}, {"image": "windows-95"}, "image"),
        ({"flavor": None}, {}, "size"),
        ({"network": "nowhere"}, {}, "network"),
        ({"floating_network": "private"}, {}, "floating_network"),  # not an external network
        ({}, {"ssh_public_key": ""}, "ssh_public_key"),
    ],
)
def test_unknown_names_are_refused_before_anything_is_made(
    sim: Simulator, options: dict[str, Any], request_fields: dict[str, str], field: str
) -> None:
    request = MachineRequest("web-1", **{"ssh_public_key": KEY, **request_fields})
    with pytest.raises(InvalidSpec) as caught:
        account(sim, **options).create_machine(request)
    assert caught.value.field == field
    one_line(caught)
    made_nothing(sim)


def test_a_nova_quota_refusal_names_the_quota_and_leaves_nothing(sim: Simulator) -> None:
    sim.cloud.quota_exceeded = "cores"
    with pytest.raises(QuotaExceeded) as caught:
        account(sim).create_machine(MachineRequest("web-1", ssh_public_key=KEY))
    assert "Quota exceeded for cores" in one_line(caught)
    assert sim.cloud.leftovers() == NOTHING


def test_a_floating_ip_quota_refusal_deletes_the_server_it_made(sim: Simulator) -> None:
    sim.cloud.floating_ip_quota = 0
    with pytest.raises(QuotaExceeded) as caught:
        account(sim, floating_network="public").create_machine(MachineRequest("web-1", ssh_public_key=KEY))
    assert "floatingip" in one_line(caught)
    assert sim.cloud.leftovers() == NOTHING
    assert [r for r in sim.cloud.requests if r.startswith("DELETE /compute/v2.1/servers/")]


def test_a_server_going_to_error_says_the_fault(sim: Simulator) -> None:
    sim.cloud.fault = "No valid host was found. There are not enough hosts available."
    with pytest.raises(MachineCreateFailed) as caught:
        account(sim, floating_network="public").create_machine(MachineRequest("web-1", ssh_public_key=KEY))
    assert caught.value.step == "active"
    assert one_line(caught).startswith("creating web-1 failed at active: ")
    assert "No valid host was found" in str(caught.value)
    assert sim.cloud.leftovers() == NOTHING


def test_no_ssh_answer_fails_at_the_ssh_step_and_releases_the_floating_ip(sim: Simulator) -> None:
    driver = account(sim, floating_network="public", wait_ssh=True, ssh_timeout="1")
    with pytest.raises(MachineCreateFailed) as caught:
        driver.create_machine(MachineRequest("web-1", ssh_public_key=KEY))
    assert caught.value.step == "ssh" and "no SSH server answered on 198.51.100." in one_line(caught)
    assert sim.cloud.leftovers() == NOTHING


def test_a_machine_gets_the_key_the_group_and_the_account_tag(sim: Simulator) -> None:
    driver = account(sim, floating_network="public")
    target = driver.create_machine(MachineRequest("web-1", ssh_public_key=KEY))
    (server,) = [s.body for s in sim.cloud.servers.values()]
    assert server["metadata"] == {"mypaas-account": "lab"} and server["key_name"] == "mypaas-lab"
    assert server["security_groups"] == [{"name": "mypaas-lab"}]
    config = base64.b64decode(server["user_data"]).decode()
    assert config.startswith("#cloud-config\n")
    assert yaml.safe_load(config) == {"disable_root": False, "ssh_authorized_keys": [KEY]}
    assert sim.cloud.keypairs["mypaas-lab"]["public_key"] == KEY
    assert target.address.startswith("198.51.100.") and target.user == "root"  # the floating IP

    (group,) = sim.cloud.security_groups.values()
    ingress = sorted(
        (r["protocol"], r["port_range_min"], r["remote_group_id"] == group["id"], r["remote_ip_prefix"])
        for r in group["security_group_rules"]
        if r["direction"] == "ingress"
    )
    opened = sorted((p, port, members, None if members else "0.0.0.0/0") for p, port, members in RULES)
    assert ingress == opened
    assert {(p, port) for p, port, members in RULES if not members} == {
        ("tcp", 22),
        ("tcp", 80),
        ("tcp", 443),
    }

    # another machine reuses the group and the key pair; a new platform key replaces the key pair's
    other = driver.create_machine(MachineRequest("web-2", ssh_public_key=KEY.replace("mypaas", "new")))
    assert len(group["security_group_rules"]) == 2 + len(RULES)
    assert sim.cloud.keypairs["mypaas-lab"]["public_key"].endswith(" new")
    for made in (target, other):
        driver.destroy_machine(made)
    assert sim.cloud.leftovers() == NOTHING


def test_machines_lists_this_accounts_servers_only(sim: Simulator) -> None:
    mine, theirs = (
        account(sim),
        OpenStackDriver(
            account="other",
            auth_url=sim.auth_url,
            username="demo",
            password="secret",
            project_name="demo",
            network="private",
            flavor="m1.tiny",
            image="debian-12",
            wait_ssh=False,
        ),
    )
    target = mine.create_machine(MachineRequest("web-1", ssh_public_key=KEY))
    foreign = theirs.create_machine(MachineRequest("web-1", ssh_public_key=KEY))  # same name, other account
    assert [t.machine_id for t in mine.machines()] == [target.machine_id]
    assert target.address.startswith("192.0.2.")  # no floating network: the fixed address
    mine.destroy_machine(target)
    mine.destroy_machine(target)  # gone already: fine
    assert [t.machine_id for t in theirs.machines()] == [foreign.machine_id]
    theirs.destroy_machine(foreign)
    assert sim.cloud.leftovers() == NOTHING


def test_a_driver_that_cannot_create_names_openstack_among_those_that_can() -> None:
    with pytest.raises(InvalidSpec) as caught:
        catalog.machine_driver_class("ssh", plugins={})
    assert caught.value.field == "type" and "openstack" in one_line(caught)


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"network": "nowhere"}, "network"),
        ({"floating_network": "nowhere"}, "floating_network"),
        ({"flavor": "m9.huge"}, "flavor"),
        ({"image": "ubuntu-uploading"}, "image"),  # not active yet
    ],
)
def test_check_looks_up_the_accounts_networks_flavor_and_image(
    sim: Simulator, options: dict[str, Any], field: str
) -> None:
    """What `driver add` runs: a typo in the account's options is refused before it is kept."""
    with pytest.raises(InvalidSpec) as caught:
        account(sim, **options).check()
    assert caught.value.field == field
    one_line(caught)


@pytest.mark.parametrize(
    ("greeting", "ok"), [(b"SSH-2.0-OpenSSH_9.2\r\n", True), (b"HTTP/1.1 400\r\n", False)]
)
def test_the_ssh_wait_wants_an_ssh_greeting(greeting: bytes, ok: bool) -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]

        def greet() -> None:
            with contextlib.suppress(OSError):
                while True:
                    conn, _ = listener.accept()
                    with conn:
                        conn.sendall(greeting)

        threading.Thread(target=greet, daemon=True).start()
        if ok:
            wait_ssh("127.0.0.1", port, 5)
        else:
            with pytest.raises(BackendError, match="something that is not SSH answered"):
                wait_ssh("127.0.0.1", port, 1)


def test_a_region_the_catalog_lacks_is_refused_naming_region_name(sim: Simulator) -> None:
    with pytest.raises(InvalidSpec) as caught:
        account(sim, region_name="Nowhere").check()
    assert caught.value.field == "region_name" and "in region 'Nowhere'" in one_line(caught)


def test_a_network_given_by_id_works_too(sim: Simulator) -> None:
    driver = account(sim, network=sim.cloud.networks[0]["id"])
    target = driver.create_machine(MachineRequest("web-1", ssh_public_key=KEY))
    assert target.address.startswith("192.0.2.")
    assert [t.address for t in driver.machines()] == [target.address]
    driver.destroy_machine(target)
    assert sim.cloud.leftovers() == NOTHING


def test_a_security_group_mypaas_did_not_make_is_refused_and_left_unchanged(sim: Simulator) -> None:
    driver = account(sim, security_group="default")
    conn = driver._cloud()
    made = conn.network.create_security_group(name="default", description="Default security group")
    with pytest.raises(MachineCreateFailed) as exc:
        driver.create_machine(MachineRequest("web-1", ssh_public_key=KEY))
    assert "'default' was not made by MyPaas" in one_line(exc) and "security-group" in one_line(exc)
    group = sim.cloud.security_groups[made.id]
    assert [r for r in group["security_group_rules"] if r["direction"] == "ingress"] == []
    made_nothing(sim)


def test_a_named_key_pair_holding_another_key_is_refused_not_replaced(sim: Simulator) -> None:
    other = KEY.replace("mypaas", "alice")
    account(sim)._cloud().compute.create_keypair(name="alice", public_key=other)
    with pytest.raises(MachineCreateFailed) as exc:
        account(sim, key_name="alice").create_machine(MachineRequest("web-1", ssh_public_key=KEY))
    assert "key pair 'alice' holds another key" in one_line(exc)
    assert sim.cloud.keypairs["alice"]["public_key"] == other
    made_nothing(sim)


def test_manager_cidr_opens_swarms_ports_to_the_manager_too(sim: Simulator) -> None:
    driver = account(sim, manager_cidr="203.0.113.7")
    target = driver.create_machine(MachineRequest("web-1", ssh_public_key=KEY))
    (group,) = sim.cloud.security_groups.values()
    from_manager = sorted(
        (r["protocol"], r["port_range_min"])
        for r in group["security_group_rules"]
        if r["direction"] == "ingress" and r["remote_ip_prefix"] == "203.0.113.7/32"
    )
    assert from_manager == sorted((p, port) for p, port, members in RULES if members)
    driver.destroy_machine(target)
    with pytest.raises(InvalidSpec) as exc:
        account(sim, manager_cidr="the office")
    assert exc.value.field == "manager_cidr"
