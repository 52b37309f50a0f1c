"""`mypaas driver add --type openstack` and `mypaas host create` through the manager's REST API, with the
real iaas catalog and the openstack driver against the OpenStack API simulator (tests/openstack_sim/).
No machine exists behind the simulator's servers, so a creation must fail at the SSH step, in one line,
and leave nothing behind: no server, port or floating IP in the cloud, no host row in the manager."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient
from typer.testing import CliRunner, Result

from mypaas.api.app import create_app
from mypaas.cli import client as client_module
from mypaas.cli.main import app as cli_app
from mypaas.composer.fake import FakeBackend
from mypaas.composer.fake_nodes import FakeNodes
from mypaas.iaas.fake import FakeHostDriver
from mypaas.manager.platform import Components, Platform, build_platform
from mypaas.manager.state.models import HostRow
from mypaas.router.fake import FakeRouter
from mypaas.settings import Settings
from tests.openstack_sim import Cloud, Simulator, running
from tests.unit.cli.support import isolate, serve
from tests.unit.test_hosts import FakeEngineConfig, FakeProvision

NOTHING = {"servers": [], "ports": [], "floating_ips": []}


@pytest.fixture(scope="module")
def server() -> Iterator[Simulator]:
    with running() as simulator:
        yield simulator


@pytest.fixture
def sim(server: Simulator) -> Simulator:
    server.cloud = Cloud()
    return server


@pytest.fixture
def platform(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Platform]:
    """A platform over the fake engine and Swarm, with the real machine catalog; the CLI reaches its API."""
    nodes = FakeNodes(hostname="boss", address="10.0.0.1", cpus=4.0, memory_bytes=8 * 2**30)
    ssh = FakeHostDriver(name="ssh", local_address="10.0.0.1")  # reaches none of the cloud's addresses
    given = Components(
        backend=FakeBackend(),
        router=FakeRouter(),
        probe=lambda _: True,
        nodes=lambda: nodes,
        drivers=lambda name: ssh,
        provision=FakeProvision(nodes),
        engine_config=FakeEngineConfig(),
    )
    made = build_platform(Settings(home=tmp_path, registry_enabled=False, cluster_addr="10.0.0.1"), given)
    api = TestClient(create_app(made))
    isolate(monkeypatch, tmp_path / "home")
    serve(monkeypatch, api, made)
    yield made
    client_module.settings.cache_clear()


def run(*args: str) -> Result:
    return CliRunner().invoke(cli_app, list(args))


def one_line(result: Result) -> str:
    """The one error line a failed command ends with (long work shows its progress above it)."""
    assert result.exit_code != 0, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and result.stderr.rstrip().endswith(errors[0]), result.stderr
    assert "Traceback" not in result.output
    return errors[0]


def clouds_file(tmp_path: Path, sim: Simulator, password: str) -> Path:
    auth = {"auth_url": sim.auth_url, "username": "demo", "password": password, "project_name": "demo"}
    entry = {"auth": auth, "region_name": "RegionOne", "identity_api_version": 3}
    path = tmp_path / "clouds.yaml"
    path.write_text(yaml.safe_dump({"clouds": {"sim": entry}}))
    return path


def add(path: Path, *options: str) -> Result:
    defaults = ["network=private", "floating_network=public", "flavor=m1.small", "image=debian-12"]
    args = [a for o in [*defaults, *options] for a in ("-o", o)]
    return run(
        "driver", "add", "os1", "--type", "openstack", "--cloud", "sim", "--clouds-file", str(path), *args
    )


def host_rows(platform: Platform) -> list[str]:
    with platform.sessions() as s:
        return [r.name for r in s.query(HostRow).all() if r.account]


def test_driver_add_then_host_create_fails_at_ssh_and_leaves_nothing(
    platform: Platform, sim: Simulator, tmp_path: Path
) -> None:
    # a wrong password and a network the cloud does not have: refused in one line, nothing kept
    says = one_line(add(clouds_file(tmp_path, sim, "wrong")))
    assert f"{sim.auth_url} refused the credentials" in says
    assert "no network 'nowhere'" in one_line(add(clouds_file(tmp_path, sim, "secret"), "network=nowhere"))
    assert json.loads(run("driver", "ls", "--json").stdout) == []

    added = add(clouds_file(tmp_path, sim, "secret"), "ssh_timeout=1")
    assert added.exit_code == 0, added.output
    assert added.stdout.startswith(
        f"driver account os1 (openstack, {sim.auth_url}) added; it can: create, destroy"
    )
    [account] = json.loads(run("driver", "ls", "--json").stdout)
    assert "secret" not in json.dumps(account)  # the password is stored sealed, never shown back
    sizes = json.loads(run("driver", "sizes", "os1", "--json").stdout)
    assert sizes[0] == {"name": "m1.tiny", "cpus": 1, "memory_mb": 512, "disk_gb": 1}
    assert "debian-12" in run("driver", "images", "os1").stdout

    says = one_line(run("host", "create", "web-1", "--driver", "os1", "--size", "m1.nano"))
    assert "unknown size 'm1.nano'" in says
    # a Glance image's id is taken as well as its name (it fails later, at ssh, as below)
    [debian] = [
        i for i in json.loads(run("driver", "images", "os1", "--json").stdout) if i["name"] == "debian-12"
    ]
    by_id = run("host", "create", "web-0", "--driver", "os1", "--image", debian["description"])
    assert "failed at ssh" in one_line(by_id)

    created = run("host", "create", "web-1", "--driver", "os1")
    says = one_line(created)
    assert says.startswith("error: creating web-1 failed at ssh: no SSH server answered on 198.51.100.")
    assert sim.cloud.leftovers() == NOTHING
    assert [r for r in sim.cloud.requests if r.startswith("DELETE /network/v2.0/floatingips/")]
    assert [r for r in sim.cloud.requests if r.startswith("DELETE /compute/v2.1/servers/")]
    assert host_rows(platform) == []
    # what the driver made for the account stays for the next machine: its key pair and security group
    assert list(sim.cloud.keypairs) == ["mypaas-os1"]
    assert [g["name"] for g in sim.cloud.security_groups.values()] == ["mypaas-os1"]
    assert run("driver", "rm", "os1").exit_code == 0


def test_a_quota_refusal_through_the_api_is_one_line_and_leaves_nothing(
    platform: Platform, sim: Simulator, tmp_path: Path
) -> None:
    assert add(clouds_file(tmp_path, sim, "secret"), "ssh_timeout=1").exit_code == 0
    sim.cloud.quota_exceeded = "instances"
    says = one_line(run("host", "create", "web-1", "--driver", "os1"))
    assert "Quota exceeded for instances" in says
    assert sim.cloud.leftovers() == NOTHING and host_rows(platform) == []


def test_driver_update_rotates_a_password_only_once_the_cloud_takes_it(
    platform: Platform, sim: Simulator, tmp_path: Path
) -> None:
    assert add(clouds_file(tmp_path, sim, "secret")).exit_code == 0
    wrong = tmp_path / "wrong.pw"
    wrong.write_text("wrong\n")
    says = one_line(run("driver", "update", "os1", "--password-file", str(wrong)))
    assert f"{sim.auth_url} refused the credentials" in says
    assert "unknown option 'colour'" in one_line(run("driver", "update", "os1", "-o", "colour=blue"))
    assert "no driver account 'nope'" in one_line(run("driver", "update", "nope", "-o", "flavor=m1.tiny"))
    assert "nothing to change" in one_line(run("driver", "update", "os1"))
    # the account still logs in with the password it had: nothing was kept from the refused updates
    assert run("driver", "sizes", "os1").exit_code == 0

    sim.cloud.password = "rotated"  # the cloud's password changes: the kept one is refused now
    assert "refused the credentials" in one_line(run("driver", "sizes", "os1"))
    new = tmp_path / "new.pw"
    new.write_text("rotated\n")
    updated = run("driver", "update", "os1", "--password-file", str(new), "-o", "flavor=m1.tiny")
    assert updated.exit_code == 0, updated.output
    assert updated.stdout.strip() == "driver account os1 updated (flavor, password)"
    [account] = json.loads(run("driver", "ls", "--json").stdout)
    assert account["options"]["flavor"] == "m1.tiny" and "rotated" not in json.dumps(account)
    assert run("driver", "sizes", "os1").exit_code == 0
    # an empty value removes an option
    assert run("driver", "update", "os1", "-o", "flavor=").exit_code == 0
    assert "flavor" not in json.loads(run("driver", "ls", "--json").stdout)[0]["options"]
