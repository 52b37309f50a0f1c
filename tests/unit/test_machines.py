"""Driver accounts and the hosts they make, offline: the REST API over the Hosts service with the fake
MachineDriver (iaas/fake_machines.py), whose machines are FakeHosts of the fake SSH driver, a fake
provisioner and a fake Swarm (as tests/unit/test_hosts.py); the CLI against that API."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from typer.testing import CliRunner

from mypaas.api.app import create_app
from mypaas.cli import client as client_module
from mypaas.cli.main import app as cli_app
from mypaas.composer.fake import FakeBackend
from mypaas.composer.fake_nodes import FakeNodes
from mypaas.errors import BackendError, InvalidSpec
from mypaas.iaas.base import DriverCapabilities, MachineDriver, MachineRequest
from mypaas.iaas.fake import FakeHost, FakeHostDriver
from mypaas.iaas.fake_machines import FakeCloud, FakeMachineDriver
from mypaas.manager.hosts.accounts import MachineCatalog, join_secrets, split_secrets
from mypaas.manager.platform import Components, build_platform
from mypaas.manager.state.models import HostRow
from mypaas.router.fake import FakeRouter
from mypaas.settings import Settings
from tests.unit.cli.support import isolate, serve
from tests.unit.test_hosts import FINGERPRINT, Cluster, FakeEngineConfig, FakeProvision, error

ACCOUNT = {
    "name": "lab",
    "type": "fake",
    "options": {"url": "fake://lab", "user": "ops", "password": "s3cret"},
}


class FakeCatalog(MachineCatalog):
    """The fake driver, over one cloud; ``capabilities`` for an account that cannot do everything."""

    def __init__(self, cloud: FakeCloud) -> None:
        self.cloud = cloud
        self.capabilities: DriverCapabilities | None = None

    def options(self, type_: str) -> tuple[Mapping[str, str], tuple[str, ...]]:
        if type_ != "fake":
            raise InvalidSpec(f"unknown iaas driver {type_!r}; known drivers: fake", field="type")
        return FakeMachineDriver.OPTIONS, FakeMachineDriver.SECRET_OPTIONS

    def build(self, type_: str, account: str, options: Mapping[str, Any]) -> MachineDriver:
        return FakeMachineDriver(account=account, cloud=self.cloud, capabilities=self.capabilities, **options)


@dataclass
class Machines(Cluster):
    cloud: FakeCloud
    catalog: FakeCatalog

    def create(self, **body: Any) -> list[dict[str, Any]]:
        r = self.api.post("/api/v1/hosts/create", json={"driver": "lab", **body})
        assert r.status_code == 202, r.text
        return [self.wait(op) for op in r.json()["operations"]]

    def host(self, name: str) -> HostRow:
        return next(r for r in self.rows() if r.name == name)


@pytest.fixture
def machines(tmp_path: Path) -> Machines:
    nodes = FakeNodes(
        hostname="boss", address="10.0.0.1", cpus=4.0, memory_bytes=8 * 2**30, engine_version="27"
    )
    ssh = FakeHostDriver(name="ssh", local_address="10.0.0.1")
    for i in range(2, 10):  # machines for `host add`
        ssh.add_host(FakeHost(f"10.0.0.{i}", host_key=FINGERPRINT))
    cloud = FakeCloud(world=ssh, password="s3cret")
    catalog = FakeCatalog(cloud)
    provision = FakeProvision(nodes)
    engine = FakeEngineConfig()
    given = Components(
        backend=FakeBackend(),
        router=FakeRouter(),
        probe=lambda _: True,
        nodes=lambda: nodes,
        drivers=lambda name: ssh,
        machines=catalog,
        provision=provision,
        engine_config=engine,
    )
    platform = build_platform(Settings(home=tmp_path, registry_enabled=False, cluster_addr="10.0.0.1"), given)
    timings = platform.hosts.timings
    timings.poll_s, timings.ready_timeout_s, timings.drain_timeout_s = 0.005, 0.2, 0.2
    api = TestClient(create_app(platform))
    api.headers["Authorization"] = f"Bearer {platform.admin_token}"
    made = Machines(api, platform, ssh, nodes, provision, engine, cloud, catalog)
    r = api.post("/api/v1/drivers", json=ACCOUNT)
    assert r.status_code == 201, r.text
    return made


# -- driver accounts -------------------------------------------------------------------------------


def test_an_account_keeps_its_secret_encrypted_and_never_shows_it(machines: Machines) -> None:
    [account] = machines.api.get("/api/v1/drivers").json()
    assert account["options"] == {"url": "fake://lab", "user": "ops", "password": "********"}
    assert (account["type"], account["endpoint"], account["hosts"]) == ("fake", "fake://lab", 0)
    assert account["capabilities"] == ["create", "destroy"]
    assert machines.api.get("/api/v1/drivers/lab").json()["options"]["password"] == "********"
    with machines.platform.sessions() as s:
        options, secrets = s.execute(text("SELECT options, secrets FROM driver_accounts")).one()
    assert "s3cret" not in options and "s3cret" not in secrets and "$sealed" in secrets
    assert machines.platform.hosts.accounts.driver("lab").password == "s3cret"  # type: ignore[attr-defined]


def test_secrets_split_and_join_by_dotted_name() -> None:
    options = {"cloud": "c", "cloud_config": {"auth": {"auth_url": "http://k", "password": "pw"}}}
    plain, hidden = split_secrets(options, ("cloud_config.auth.password", "password"))
    assert plain == {"cloud": "c", "cloud_config": {"auth": {"auth_url": "http://k"}}}
    assert hidden == {"cloud_config.auth.password": "pw"}
    assert join_secrets(plain, hidden) == options


@pytest.mark.parametrize(
    ("change", "status", "field"),
    [
        ({"options": {"url": "fake://lab", "password": "wrong"}}, 400, "password"),  # the endpoint refused
        ({"options": {"url": "fake://lab", "zone": "a"}}, 400, "options.zone"),
        ({"type": "nosuch"}, 400, "type"),
        ({"name": "Bad_Name"}, 400, "name"),
        ({"name": "lab"}, 409, "name"),
        ({"options": {"url": "http://x", "password": "s3cret"}}, 400, "url"),
    ],
)
def test_a_bad_account_is_refused_with_nothing_kept(
    machines: Machines, change: dict[str, Any], status: int, field: str
) -> None:
    error(machines.api.post("/api/v1/drivers", json={**ACCOUNT, "name": "other", **change}), status, field)
    assert [a["name"] for a in machines.api.get("/api/v1/drivers").json()] == ["lab"]


@pytest.mark.parametrize(
    ("type_", "options", "says"),
    [
        ("vsphere", {"url": 123}, "option 'url' of the vsphere driver is a string, not a number"),
        (
            "vsphere",
            {"url": "https://vc", "insecure": 1},
            "option 'insecure' of the vsphere driver is a string",
        ),
        ("vsphere", {"url": "https://vc", "insecure": True}, "is a string, not a boolean"),
        ("vsphere", {"url": "https://vc", "extra_config": ["a"]}, "is a mapping or a string, not a list"),
        ("libvirt", {"uri": 123}, "option 'uri' of the libvirt driver is a string, not a number"),
        (
            "libvirt",
            {"uri": "qemu:///system", "pool": None},
            "option 'pool' of the libvirt driver is a string",
        ),
        ("openstack", {"cloud_config": "x", "network": {"a": 1}}, "option 'network' of the openstack driver"),
        ("openstack", {"cloud_config": 5}, "option 'cloud_config' of the openstack driver is a mapping"),
    ],
)
def test_options_of_the_wrong_type_are_a_400_naming_the_option(
    machines: Machines, type_: str, options: dict[str, Any], says: str
) -> None:
    machines.platform.hosts.accounts._catalog = MachineCatalog()  # the real drivers' options
    body = error(
        machines.api.post("/api/v1/drivers", json={"name": "x", "type": type_, "options": options}),
        400,
        "options",
    )
    assert says in body["error"] and "\n" not in body["error"]


@pytest.mark.parametrize("timeout", ["inf", "-inf", "nan", "0", "soon"])
def test_a_libvirt_boot_timeout_that_is_no_number_of_seconds_is_a_400(
    machines: Machines, timeout: str
) -> None:
    machines.platform.hosts.accounts._catalog = MachineCatalog()
    options = {"uri": "qemu:///system", "boot_timeout": timeout}
    r = machines.api.post("/api/v1/drivers", json={"name": "x", "type": "libvirt", "options": options})
    assert error(r, 400, "boot_timeout")["error"] == f"libvirt boot_timeout {timeout!r}: seconds, > 0"


def test_an_endpoint_that_does_not_answer_is_a_502_and_nothing_kept(machines: Machines) -> None:
    machines.cloud.reachable = False
    body = error(machines.api.post("/api/v1/drivers", json={**ACCOUNT, "name": "down"}), 502)
    assert "fake://lab unreachable" in body["error"]
    machines.cloud.reachable = True
    assert [a["name"] for a in machines.api.get("/api/v1/drivers").json()] == ["lab"]


def test_sizes_and_images(machines: Machines) -> None:
    sizes = machines.api.get("/api/v1/drivers/lab/sizes").json()
    assert sizes[0] == {"name": "small", "cpus": 1, "memory_mb": 1024, "disk_gb": 10}
    assert machines.api.get("/api/v1/drivers/lab/images").json() == [
        {"name": "debian-12", "description": "Debian 12 with the Docker engine"}
    ]
    error(machines.api.get("/api/v1/drivers/nosuch/sizes"), 404, "driver")


# -- host create ----------------------------------------------------------------------------------


def test_create_makes_the_machine_bootstraps_and_joins_it(machines: Machines, tmp_path: Path) -> None:
    [done] = machines.create(name="w1", size="medium", labels={"zone": "a"})

    assert done["status"] == "succeeded", done
    assert done["kind"] == "host-create"
    log = done["log"]
    assert "creating machine w1 with driver account lab (medium, the default image)" in log
    assert "machine fake-lab-w1 is up at 10.200.9.11" in log
    assert ": pinned" in log and "joining the Swarm at 10.0.0.1:2377 as a worker" in log
    host = machines.host("w1")  # named as asked, not after its hostname
    assert (host.account, host.machine_id, host.address, host.state) == (
        "lab",
        "fake-lab-w1",
        "10.200.9.11",
        "ready",
    )
    assert host.host_key == machines.driver.hosts["10.200.9.11"].host_key
    [record] = machines.cloud.records.values()
    key = tmp_path / "ssh" / "machine_ed25519"
    assert record.request.ssh_public_key == (tmp_path / "ssh" / "machine_ed25519.pub").read_text().strip()
    assert record.size.name == "medium" and record.request.labels == {"zone": "a"}
    assert key.stat().st_mode & 0o777 == 0o600 and machines.driver.targets[-1].key_path == key
    entry = next(h for h in machines.api.get("/api/v1/hosts").json() if h["name"] == "w1")
    assert (entry["account"], entry["machine_id"], entry["driver"]) == ("lab", "fake-lab-w1", "ssh")
    assert machines.api.get("/api/v1/drivers/lab").json()["hosts"] == 1


def test_count_makes_name_1_to_n(machines: Machines) -> None:
    done = machines.create(name="web", count=2)
    assert [d["status"] for d in done] == ["succeeded", "succeeded"]
    assert sorted(r.name for r in machines.rows() if r.account) == ["web-1", "web-2"]


@pytest.mark.parametrize("step", ["boot", "address", "ssh"])
def test_a_driver_failing_half_way_leaves_nothing(machines: Machines, step: str) -> None:
    machines.cloud.fail_at = step
    [done] = machines.create(name="w1")
    assert done["status"] == "failed"
    assert done["message"] == f"creating w1 failed at {step}: " + (
        "the fake cloud failed to boot it" if step == "boot" else f"the fake cloud failed at {step}"
    )
    assert machines.cloud.records == {} and [r for r in machines.rows() if r.account] == []


@pytest.mark.parametrize(
    ("fail_at", "step"), [("facts", "bootstrap"), ("ensure_docker", "bootstrap"), ("join", "join")]
)
def test_a_bootstrap_failing_deletes_the_machine_and_the_host(
    machines: Machines, fail_at: str, step: str
) -> None:
    machines.provision.fail_at = fail_at
    [done] = machines.create(name="w1")
    assert done["status"] == "failed"
    assert done["message"].startswith(f"creating w1 failed at {step}: ")
    assert "machine fake-lab-w1 deleted" in done["log"]
    assert machines.cloud.records == {} and machines.cloud.destroyed == ["fake-lab-w1"]
    assert [r for r in machines.rows() if r.account] == []
    assert machines.provision.members == {}  # it left the Swarm again, if it had joined


def test_a_failing_clean_up_step_still_deletes_the_machine_and_ends_the_operation(
    machines: Machines, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(path: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(machines.platform.hosts._jobs, "_drop_key", broken)  # forgetting the host fails
    machines.provision.fail_at = "facts"
    [done] = machines.create(name="w1")  # waits for the operation: it ends
    assert done["status"] == "failed"
    assert done["message"].startswith("creating w1 failed at bootstrap: ")
    assert done["message"].endswith("; forgetting host w1 failed too: RuntimeError: disk full")
    assert machines.cloud.records == {} and machines.cloud.destroyed == ["fake-lab-w1"]


def test_a_machine_that_cannot_be_deleted_is_said_and_the_host_still_forgotten(
    machines: Machines, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(self: FakeMachineDriver, target: object) -> None:
        raise BackendError("the fake cloud is down")

    monkeypatch.setattr(FakeMachineDriver, "destroy_machine", refuse)
    machines.provision.fail_at = "facts"
    [done] = machines.create(name="w1")
    assert done["status"] == "failed"
    assert done["message"].endswith("; machine fake-lab-w1 is left behind: delete it by hand")
    assert "deleting machine fake-lab-w1 failed: the fake cloud is down; it is left behind" in done["log"]
    assert [r for r in machines.rows() if r.account] == []


def test_ssh_refusing_the_key_deletes_the_machine(machines: Machines) -> None:
    machines.cloud.make_host = _refusing
    [done] = machines.create(name="w1")
    assert done["message"].startswith("creating w1 failed at ssh: ")
    assert machines.cloud.records == {}


def _refusing(address: str) -> FakeHost:
    return FakeHost(address, authorized_keys={Path("/some/other/key")})


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"name": "w1", "driver": "nosuch"}, 404, "driver"),
        ({"name": "w1", "size": "huge"}, 400, "size"),
        ({"name": "w1", "image": "windows"}, 400, "image"),
        ({"name": "W_1"}, 400, "name"),
        ({"name": "w1", "count": 0}, 400, "count"),
        ({"name": "w1", "labels": {"Bad Key": "x"}}, 400, "labels"),
        ({"name": "w1", "extra": 1}, 400, "extra"),
    ],
)
def test_bad_input_to_create_is_refused_and_nothing_made(
    machines: Machines, body: dict[str, Any], status: int, field: str
) -> None:
    error(machines.api.post("/api/v1/hosts/create", json={"driver": "lab", **body}), status, field)
    assert machines.cloud.records == {} and [r for r in machines.rows() if r.account] == []


def test_a_name_taken_and_an_account_that_cannot_create_are_refused(machines: Machines) -> None:
    machines.create(name="w1")
    error(machines.api.post("/api/v1/hosts/create", json={"driver": "lab", "name": "w1"}), 409, "name")
    machines.catalog.capabilities = DriverCapabilities(create_machines=False)
    body = error(
        machines.api.post("/api/v1/hosts/create", json={"driver": "lab", "name": "w2"}), 400, "driver"
    )
    assert body["error"] == "driver account lab (fake) cannot create machines"
    assert len(machines.cloud.records) == 1


# -- host destroy, driver rm ------------------------------------------------------------------------


def test_destroy_drains_leaves_and_deletes_the_machine(machines: Machines) -> None:
    machines.create(name="w1")
    error(machines.api.delete("/api/v1/drivers/lab"), 409, "name")  # it made a host
    body = error(machines.api.delete("/api/v1/hosts/w1"), 409, "host")  # host rm would leave it behind
    assert "`mypaas host destroy w1`" in body["error"]

    r = machines.api.post("/api/v1/hosts/w1/destroy")
    assert r.status_code == 202, r.text
    done = machines.wait(r.json())
    assert done["status"] == "succeeded", done
    assert done["message"] == "host w1 destroyed: its machine is deleted"
    assert "w1 left the Swarm" in done["log"] and "machine fake-lab-w1 deleted" in done["log"]
    assert machines.cloud.records == {} and [r for r in machines.rows() if r.account] == []
    assert machines.api.delete("/api/v1/drivers/lab").status_code == 200
    assert machines.api.get("/api/v1/drivers").json() == []


def test_destroy_refuses_a_host_that_was_added(machines: Machines) -> None:
    machines.add("10.0.0.5")
    body = error(machines.api.post("/api/v1/hosts/node5/destroy"), 409, "host")
    assert body["error"] == "host node5 was added with `host add`; remove it with `host rm`"


def test_destroy_with_an_account_that_cannot_is_a_501(machines: Machines) -> None:
    machines.create(name="w1")
    machines.catalog.capabilities = DriverCapabilities(create_machines=True)
    body = error(machines.api.post("/api/v1/hosts/w1/destroy"), 501)
    assert "cannot destroy machines" in body["error"]
    assert machines.host("w1").state == "ready"


# -- a restart --------------------------------------------------------------------------------------


def test_recover_deletes_only_the_machines_of_creations_it_cut_short(machines: Machines) -> None:
    machines.create(name="kept")
    lab = machines.platform.hosts.accounts.driver("lab")
    key = "ssh-ed25519 AAAA"
    other = lab.create_machine(MachineRequest("other", ssh_public_key=key))  # another platform's, a clone
    half = lab.create_machine(MachineRequest("half", ssh_public_key=key))
    lost = lab.create_machine(MachineRequest("lost", ssh_public_key=key))
    with machines.platform.sessions.begin() as s:  # caught creating: the machine made, not joined yet
        s.add(
            HostRow(
                name="half",
                address=half.address,
                labels={},
                state="adding",
                account="lab",
                machine_id=half.machine_id,
            )
        )
        s.add(HostRow(name="lost", address="lost", labels={}, state="adding", account="lab"))  # id unknown
        s.add(HostRow(name="other", address="10.0.0.7", labels={}, state="adding"))  # `host add`: no account

    machines.hosts.recover()
    assert machines.platform.hosts.machines.swept.wait(5)

    assert set(machines.cloud.records) == {"fake-lab-kept", other.machine_id}
    assert set(machines.cloud.destroyed) == {half.machine_id, lost.machine_id}
    assert [r.name for r in machines.rows() if r.account] == ["kept"]


def test_recover_tells_to_destroy_and_create_again_a_created_host_caught_half_way(machines: Machines) -> None:
    lab = machines.platform.hosts.accounts.driver("lab")
    joined = lab.create_machine(MachineRequest("joined", ssh_public_key="ssh-ed25519 AAAA"))
    with machines.platform.sessions.begin() as s:  # it had joined the Swarm when the manager stopped
        s.add(
            HostRow(
                name="joined",
                address=joined.address,
                labels={},
                state="adding",
                account="lab",
                machine_id=joined.machine_id,
                node_id="n9",
            )
        )
    machines.hosts.recover()
    assert machines.platform.hosts.machines.swept.wait(5)
    row = machines.host("joined")
    assert row.state == "failed"
    assert row.message == (
        "the manager restarted while adding it: "
        "`mypaas host destroy joined --force`, then `host create` it again"
    )
    assert set(machines.cloud.records) == {joined.machine_id}  # its host claims it


def test_recover_leaves_unclaimed_machines_it_was_not_creating(machines: Machines) -> None:
    lab = machines.platform.hosts.accounts.driver("lab")
    lab.create_machine(MachineRequest("staging-1", ssh_public_key="ssh-ed25519 AAAA"))
    machines.hosts.recover()
    assert machines.platform.hosts.machines.swept.wait(5)
    assert set(machines.cloud.records) == {"fake-lab-staging-1"} and machines.cloud.destroyed == []


# -- the CLI ---------------------------------------------------------------------------------------


@pytest.fixture
def cli(machines: Machines, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Machines]:
    isolate(monkeypatch, tmp_path / "home")
    serve(monkeypatch, machines.api, machines.platform)
    yield machines
    client_module.settings.cache_clear()


def run(*args: str, input: str | None = None) -> Any:
    return CliRunner().invoke(cli_app, list(args), input=input)


def test_cli_driver_add_ls_sizes_rm(cli: Machines, tmp_path: Path) -> None:
    password = tmp_path / "pw"
    password.write_text("s3cret\n")
    added = run(
        "driver", "add", "lab2", "--type", "fake", "--url", "fake://lab", "--password-file", str(password)
    )
    assert added.exit_code == 0, added.output
    assert added.stdout == "driver account lab2 (fake, fake://lab) added; it can: create, destroy\n"

    listing = run("driver", "ls")
    assert listing.exit_code == 0, listing.output
    assert listing.stdout.splitlines()[0].split() == ["NAME", "TYPE", "ENDPOINT", "CAPABILITIES", "HOSTS"]
    assert listing.stdout.splitlines()[2].split() == ["lab2", "fake", "fake://lab", "create,destroy", "0"]
    assert "s3cret" not in run("driver", "ls", "--json").stdout
    assert json.loads(run("driver", "ls", "--json").stdout)[1]["options"]["password"] == "********"

    sizes = run("driver", "sizes", "lab2")
    assert sizes.stdout.splitlines()[1].split() == ["small", "1", "1.1", "GB", "10", "GB"]
    assert json.loads(run("driver", "images", "lab2", "--json").stdout)[0]["name"] == "debian-12"
    assert run("driver", "rm", "lab2").stdout == "driver account lab2 removed\n"


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (
            ["driver", "add", "x", "--type", "fake", "--url", "fake://lab", "-o", "zone=a"],
            "unknown option 'zone'",
        ),
        (
            ["driver", "add", "x", "--type", "fake", "--url", "fake://lab", "--password-file", "/no/such"],
            "cannot read",
        ),
        (["driver", "add", "x", "--type", "fake", "-o", "novalue"], "is not KEY=VALUE"),
        (["driver", "add", "x", "--type", "fake", "--url", "fake://lab"], "refused user"),
        (["host", "create", "w1", "--driver", "nosuch"], "no driver account 'nosuch'"),
        (["host", "create", "w1", "--driver", "lab", "--size", "huge"], "unknown size 'huge'"),
        (
            ["driver", "add", "x", "--type", "fake", "--cloud", "c", "--clouds-file", "/no/such.yaml"],
            "no clouds.yaml",
        ),
    ],
)
def test_cli_bad_input_is_one_error_line(cli: Machines, args: list[str], says: str) -> None:
    result = run(*args)
    assert result.exit_code != 0
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and says in lines[0], result.stderr
    assert [a["name"] for a in cli.api.get("/api/v1/drivers").json()] == ["lab"]
    assert cli.cloud.records == {}


def test_cli_openstack_style_cloud_entry_is_sent_whole(cli: Machines, tmp_path: Path) -> None:
    clouds = tmp_path / "clouds.yaml"
    clouds.write_text("clouds:\n  mine:\n    auth: {auth_url: 'http://keystone:5000', password: pw}\n")
    result = run("driver", "add", "x", "--type", "fake", "--cloud", "mine", "--clouds-file", str(clouds))
    assert result.exit_code != 0  # the fake driver has no cloud options: refused, naming the option
    assert "unknown option 'cloud'" in result.stderr


def test_cli_host_create_ls_destroy(cli: Machines) -> None:
    created = run("host", "create", "w1", "--driver", "lab", "--size", "small", "-l", "zone=a")
    assert created.exit_code == 0, created.output
    assert "host w1 (10.200.9.11) is ready" in created.stdout
    assert "creating machine w1 with driver account lab" in created.stderr

    listing = run("host", "ls")
    header, _boss, row = listing.stdout.splitlines()[:3]
    assert header.split()[:4] == ["NAME", "ADDRESS", "DRIVER", "ROLE"]
    assert row.split()[:4] == ["w1", "10.200.9.11", "lab", "worker"]
    assert json.loads(run("host", "ls", "--json").stdout)[1]["machine_id"] == "fake-lab-w1"

    refused = run("host", "rm", "w1")
    assert refused.exit_code == 1 and "mypaas host destroy w1" in refused.stderr

    destroyed = run("host", "destroy", "w1")
    assert destroyed.exit_code == 0, destroyed.output
    assert destroyed.stdout == "host w1 destroyed: its machine is deleted\n"
    assert cli.cloud.records == {}


def test_cli_host_create_count_reports_each_host(cli: Machines) -> None:
    cli.cloud.fail_at, cli.cloud.fail_once = "address", True
    result = run("host", "create", "web", "--driver", "lab", "--count", "2")
    assert result.exit_code == 1  # one of the two failed (they run side by side): each one said
    [ready] = result.stdout.splitlines()
    assert ready.startswith("host web-") and " is ready: a Swarm worker" in ready
    failed = result.stderr.splitlines()[-1]
    assert failed.startswith("error: creating web-") and failed.endswith(
        " failed at address: the fake cloud failed at address"
    )
    assert len(cli.cloud.records) == 1


def test_a_creation_waits_for_the_sweep_after_a_restart(machines: Machines) -> None:
    swept = machines.platform.hosts.machines.swept
    swept.clear()  # as recover() leaves it while the sweep runs
    r = machines.api.post("/api/v1/hosts/create", json={"driver": "lab", "name": "w1"})
    assert r.status_code == 202, r.text
    [op] = r.json()["operations"]
    assert machines.platform.operations.get(op["id"]).status == "running"
    assert machines.cloud.records == {}  # nothing made while the sweep may still delete unclaimed machines
    swept.set()
    assert machines.wait(op)["status"] == "succeeded"
    assert set(machines.cloud.records) == {"fake-lab-w1"}


def test_the_sweep_asks_the_driver_to_forget_each_lost_creation(
    machines: Machines, monkeypatch: pytest.MonkeyPatch
) -> None:
    forgotten: list[tuple[str, str]] = []
    monkeypatch.setattr(
        FakeMachineDriver, "forget_creation", lambda self, name: forgotten.append((self.account, name))
    )
    machines.platform.hosts.machines.sweep({("lab", "w2"), ("lab", "w1")})
    assert forgotten == [("lab", "w1"), ("lab", "w2")]  # what machines() could not list, per lost name
