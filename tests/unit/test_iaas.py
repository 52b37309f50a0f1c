"""The iaas box offline: host URLs, the driver catalog, and the bootstrap steps driven through a fake
host (iaas/fake.py) that records every command and answers from a script (no SSH, no engine, no network)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

import pytest

from mypaas.errors import BackendError, Conflict, InvalidSpec, NotSupported
from mypaas.iaas import bootstrap, catalog
from mypaas.iaas.base import (
    CommandFailed,
    CommandResult,
    DriverCapabilities,
    HostFacts,
    HostTarget,
    MachineRequest,
    run_checked,
)
from mypaas.iaas.bootstrap import (
    FACTS_SCRIPT,
    READ_FILE_SCRIPT,
    START_DOCKERD_SCRIPT,
    check_os,
    configure_engine,
    ensure_docker,
    facts,
    merge_daemon_config,
    swarm_join,
    swarm_leave,
    swarm_node_id,
)
from mypaas.iaas.fake import OK, Answer, FakeHost, FakeMachine
from mypaas.iaas.local import LocalDriver, LocalEngineConfig


def scripted(answers: dict[tuple[str, ...], Answer | list[Answer]] | None = None) -> FakeMachine:
    """A connection to a fake host that answers from ``answers`` (by the longest matching argv prefix; a
    list answers in turn, its last one repeating) and whose file scripts act on ``host.files``; anything
    else succeeds silently. ``host.calls`` records every command."""
    return FakeMachine(FakeHost(answers=dict(answers or {}), otherwise=OK))


# -- host URLs ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "address", "port", "user"),
    [
        ("ssh://10.0.0.5", "10.0.0.5", 22, "root"),
        ("ssh://deploy@host.example.com:2222", "host.example.com", 2222, "deploy"),
        ("ssh://admin@[2001:db8::7]:2200", "2001:db8::7", 2200, "admin"),
        ("ssh://[::1]", "::1", 22, "root"),
        ("  ssh://node-1/  ", "node-1", 22, "root"),
        ("ssh://Node1.Example.COM.", "node1.example.com", 22, "root"),
    ],
)
def test_parse_ssh_urls(url: str, address: str, port: int, user: str) -> None:
    target = catalog.parse_host_url(url, key_path=Path("/k"))
    assert target == HostTarget(driver="ssh", address=address, port=port, user=user, key_path=Path("/k"))


def test_parse_local_and_pinned_key() -> None:
    assert catalog.parse_host_url("local").driver == "local"
    pin = "SHA256:" + "A" * 43
    assert catalog.parse_host_url("ssh://h", host_key=pin).host_key == pin


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("10.0.0.5", "is not ssh://USER@ADDRESS[:PORT] or local"),
        ("http://10.0.0.5", "is not ssh://"),
        ("ssh://", "no valid address"),
        ("ssh://10.0.0.256", "no valid address"),
        ("ssh://bad_host", "no valid address"),
        ("ssh://h:0", "bad port"),
        ("ssh://h:70000", "bad port"),
        ("ssh://h:ssh", "bad port"),
        ("ssh://h:", "bad port"),
        ("ssh://::1", "IPv6 address in brackets"),
        ("ssh://[::1", "is not ssh://"),
        ("ssh://[host]", "is not ssh://"),
        ("ssh://u:secret@h", "password"),
        ("ssh://@h", "bad user name"),
        ("ssh://a b@h", "bad user name"),
        ("ssh://h/var/lib", "path"),
        ("ssh://h?x=1", "path, query"),
    ],
)
def test_parse_bad_urls(url: str, says: str) -> None:
    with pytest.raises(InvalidSpec) as err:
        catalog.parse_host_url(url)
    assert err.value.field == "url"
    assert says in err.value.message
    assert "\n" not in err.value.message


def test_parse_bad_pin() -> None:
    with pytest.raises(InvalidSpec) as err:
        catalog.parse_host_url("ssh://h", host_key="ab:cd:ef")
    assert err.value.field == "host_key"


# -- the catalog ----------------------------------------------------------------------------------


class FakeDriver:
    """A third-party driver, as an entry point would name it."""

    name = "fake"
    capabilities = DriverCapabilities(create_machines=True, destroy_machines=True)

    def __init__(self, region: str = "") -> None:
        self.region = region


def test_builtin_drivers() -> None:
    local = catalog.driver("local")
    assert isinstance(local, LocalDriver)
    assert local.capabilities.remote is False
    ssh = catalog.driver("ssh", known_hosts=Path("/nonexistent/known_hosts"))
    assert ssh.name == "ssh"
    assert ssh.capabilities == DriverCapabilities(create_machines=False, destroy_machines=False, remote=True)
    for d in (local, ssh):
        with pytest.raises(NotSupported):
            d.create_machine(MachineRequest(name="m1"))
        with pytest.raises(NotSupported):
            d.destroy_machine(HostTarget(driver=d.name, address="10.0.0.5"))


def test_unknown_driver_lists_the_known_ones() -> None:
    with pytest.raises(InvalidSpec) as err:
        catalog.driver("openstax")
    assert err.value.field == "driver"
    assert "openstax" in err.value.message
    assert "local, openstack, ssh" in err.value.message


def test_catalog_imports_drivers_lazily() -> None:
    code = (
        "import sys, mypaas.iaas.catalog, mypaas.iaas.bootstrap, mypaas.iaas.local\n"
        "assert 'paramiko' not in sys.modules and 'mypaas.iaas.ssh' not in sys.modules, 'eager'\n"
        "mypaas.iaas.catalog.driver('ssh', known_hosts='/tmp/kh')\n"
        "assert 'paramiko' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_broken_builtin_driver_fails_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(catalog.DRIVERS, "vmware", "mypaas.iaas.no_such_module:VMwareDriver")
    with pytest.raises(BackendError) as err:
        catalog.driver("vmware")
    assert "'vmware'" in err.value.message
    assert "failed to load" in err.value.message
    assert "ModuleNotFoundError" in err.value.message


def test_third_party_drivers_from_entry_points() -> None:
    group = catalog.ENTRY_POINT_GROUP
    points = {
        "fake": metadata.EntryPoint(name="fake", value="tests.unit.test_iaas:FakeDriver", group=group),
        "broken": metadata.EntryPoint(name="broken", value="tests.unit.no_such_module:Driver", group=group),
        "missing": metadata.EntryPoint(name="missing", value="tests.unit.test_iaas:NoSuchClass", group=group),
    }
    made = catalog.driver("fake", plugins=points, region="north")
    assert isinstance(made, FakeDriver)
    assert made.region == "north"
    known = ["broken", "fake", "libvirt", "local", "missing", "openstack", "ssh", "vsphere"]
    assert catalog.known_drivers(points) == known
    for name in ("broken", "missing"):
        with pytest.raises(BackendError) as err:
            catalog.driver(name, plugins=points)
        assert f"'{name}'" in err.value.message


# -- facts and the OS ---------------------------------------------------------------------------------

FACTS_OUT = """hostname=node1
arch=x86_64
cpus=4
mem_kb=8048464
docker=Docker version 20.10.24+dfsg1, build 297e128
os.PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
os.NAME="Debian GNU/Linux"
os.VERSION_ID="12"
os.ID=debian
"""


def test_facts_in_one_round_trip() -> None:
    m = scripted({("sh", "-c", FACTS_SCRIPT): CommandResult(0, FACTS_OUT, "")})
    f = facts(m)
    assert m.host.calls == [["sh", "-c", FACTS_SCRIPT]]
    assert f == HostFacts(
        hostname="node1",
        os_id="debian",
        os_version="12",
        arch="x86_64",
        cpus=4,
        memory_bytes=8048464 * 1024,
        docker_version="20.10.24+dfsg1",
    )


def test_facts_without_docker_and_with_a_running_engine() -> None:
    bare = FACTS_OUT.replace("docker=Docker version 20.10.24+dfsg1, build 297e128\n", "")
    m = scripted({("sh",): CommandResult(0, bare.replace("os.ID=debian", "os.ID='ubuntu'"), "")})
    f = facts(m)
    assert f.docker_version is None
    assert f.os_id == "ubuntu"
    running = FACTS_OUT.replace("Docker version 20.10.24+dfsg1, build 297e128", "26.1.5")
    assert facts(scripted({("sh",): CommandResult(0, running, "")})).docker_version == "26.1.5"


def test_facts_failures_are_one_line() -> None:
    m = scripted({("sh",): CommandResult(127, "", "sh: 1: uname: not found\n")})
    with pytest.raises(CommandFailed) as err:
        facts(m)
    assert (
        err.value.message == "reading the host's facts on 10.0.0.9 failed (exit 127): sh: 1: uname: not found"
    )
    with pytest.raises(BackendError, match="CPUs and memory"):
        facts(scripted({("sh",): CommandResult(0, "hostname=x\n", "")}))


def test_check_os() -> None:
    base = HostFacts("n", "debian", "12", "x86_64", 2, 1 << 30, None)
    check_os(base)
    check_os(HostFacts("n", "ubuntu", "24.04", "aarch64", 2, 1 << 30, "24.0.7"))
    with pytest.raises(NotSupported) as err:
        check_os(HostFacts("n", "alpine", "3.20.1", "x86_64", 2, 1 << 30, None))
    assert "alpine 3.20.1" in err.value.message
    assert "debian and ubuntu" in err.value.message


# -- the engine -------------------------------------------------------------------------------------

NO_ENGINE = CommandResult(1, "", "Cannot connect to the Docker daemon at unix:///var/run/docker.sock.\n")
ENGINE_UP = CommandResult(0, "26.1.5\n", "")


@pytest.fixture(autouse=True)
def _no_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bootstrap, "POLL_INTERVAL", 0.0)


def test_ensure_docker_when_it_runs_installs_nothing() -> None:
    m = scripted({("docker", "info"): ENGINE_UP})
    said: list[str] = []
    assert ensure_docker(m, said.append) == "26.1.5"
    assert not m.host.ran("env")
    assert not m.host.ran("systemctl")
    assert said == ["Docker Engine 26.1.5 runs on 10.0.0.9"]


def test_ensure_docker_installs_and_starts_it_under_systemd() -> None:
    m = scripted(
        {
            ("sh", "-c", bootstrap.HAS_DOCKER_SCRIPT): CommandResult(1, "", ""),
            ("docker", "info"): [NO_ENGINE, NO_ENGINE, ENGINE_UP],
            ("test", "-d", "/run/systemd/system"): OK,
        }
    )
    said: list[str] = []
    assert ensure_docker(m, said.append) == "26.1.5"
    apt = m.host.ran("env", "DEBIAN_FRONTEND=noninteractive", "apt-get")
    assert [c[-1] for c in apt] == ["update", "docker.io"]
    assert apt[1][-2:] == ["install", "docker.io"]
    assert "-y" in apt[1]
    assert m.host.ran("systemctl") == [["systemctl", "enable", "--now", "docker"]]
    assert not m.host.ran("sh", "-c", START_DOCKERD_SCRIPT)
    assert said[0] == "installing docker.io on 10.0.0.9 with apt-get"


def test_ensure_docker_without_systemd_starts_dockerd_in_the_background() -> None:
    m = scripted(
        {
            ("docker", "info"): [NO_ENGINE, ENGINE_UP],
            ("test", "-d", "/run/systemd/system"): CommandResult(1, "", ""),
        }
    )
    assert ensure_docker(m, lambda _: None) == "26.1.5"
    assert m.host.ran("sh", "-c", START_DOCKERD_SCRIPT)
    assert "nohup" in START_DOCKERD_SCRIPT
    assert "/var/log/dockerd.log" in START_DOCKERD_SCRIPT
    assert not m.host.ran("systemctl")


def test_ensure_docker_reports_a_failed_install() -> None:
    m = scripted(
        {
            ("sh", "-c", bootstrap.HAS_DOCKER_SCRIPT): CommandResult(1, "", ""),
            ("env",): CommandResult(
                100, "", "Reading package lists...\nE: Unable to locate package docker.io\n"
            ),
        }
    )
    with pytest.raises(CommandFailed) as err:
        ensure_docker(m, lambda _: None)
    assert err.value.message.endswith("(exit 100): E: Unable to locate package docker.io")
    assert "Reading package lists" in err.value.stderr


def test_ensure_docker_gives_up_on_an_engine_that_does_not_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bootstrap, "START_TIMEOUT", 0.0)
    m = scripted({("docker", "info"): NO_ENGINE, ("test",): CommandResult(1, "", "")})
    with pytest.raises(CommandFailed, match="did not start within 0s"):
        ensure_docker(m, lambda _: None)


DAEMON = "/etc/docker/daemon.json"


def registry_info(insecure: Sequence[str] = (), mirrors: Sequence[str] = ()) -> CommandResult:
    config = {
        "IndexConfigs": {
            "docker.io": {"Name": "docker.io", "Secure": True},
            **{r: {"Name": r, "Secure": False} for r in insecure},
        },
        "InsecureRegistryCIDRs": ["127.0.0.0/8"],
        "Mirrors": [f"{x.rstrip('/')}/" for x in mirrors],
    }
    return CommandResult(0, json.dumps(config) + "\n", "")


def test_configure_engine_merges_and_reloads_with_a_signal() -> None:
    m = scripted(
        {
            ("test", "-d", "/run/systemd/system"): CommandResult(1, "", ""),
            ("cat", "--", "/var/run/docker.pid"): CommandResult(0, "4242\n", ""),
            ("docker", "info"): [
                registry_info(),
                registry_info(["old:5000", "10.0.0.5:5000"], ["https://m.example"]),
            ],
        }
    )
    m.host.files[DAEMON] = json.dumps(
        {"log-driver": "journald", "insecure-registries": ["old:5000"], "debug": True}
    )
    changed = configure_engine(
        m, insecure_registries=["10.0.0.5:5000", "old:5000"], mirrors=["https://m.example"]
    )
    assert changed
    assert json.loads(m.host.files[DAEMON]) == {
        "log-driver": "journald",
        "insecure-registries": ["old:5000", "10.0.0.5:5000"],
        "debug": True,
        "registry-mirrors": ["https://m.example"],
    }
    assert m.host.ran("kill") == [["kill", "-HUP", "4242"]]
    assert not m.host.ran("systemctl", "reload")
    assert len(m.host.ran("docker", "info")) == 2  # waited until the engine showed the registries
    # the path reaches the constant script as "$1", never formatted into it
    assert ["sh", "-c", READ_FILE_SCRIPT, "sh", DAEMON] in m.host.calls


def test_configure_engine_reloads_through_systemd_when_it_runs_docker() -> None:
    m = scripted(
        {
            ("test", "-d", "/run/systemd/system"): OK,
            ("systemctl", "is-active", "--quiet", "docker"): OK,
            ("docker", "info"): registry_info(["reg.internal:5000"]),
        }
    )
    assert configure_engine(m, insecure_registries=["reg.internal:5000"])
    assert m.host.ran("systemctl", "reload") == [["systemctl", "reload", "docker"]]
    assert not m.host.ran("kill")
    assert json.loads(m.host.files[DAEMON]) == {"insecure-registries": ["reg.internal:5000"]}


def test_configure_engine_unchanged_writes_and_reloads_nothing() -> None:
    m = scripted()
    m.host.files[DAEMON] = json.dumps({"insecure-registries": ["a:5000"], "registry-mirrors": []})
    assert configure_engine(m, insecure_registries=["a:5000"], mirrors=[]) is False
    assert m.host.calls == [["sh", "-c", READ_FILE_SCRIPT, "sh", DAEMON]]


def test_configure_engine_errors() -> None:
    m = scripted()
    m.host.files[DAEMON] = "{not json"
    with pytest.raises(BackendError, match="is not valid JSON"):
        configure_engine(m, insecure_registries=["a:5000"])
    no_pid = scripted({("test",): CommandResult(1, "", ""), ("cat",): CommandResult(1, "", "No such file")})
    with pytest.raises(BackendError, match=r"no pid in /var/run/docker\.pid"):
        configure_engine(no_pid, insecure_registries=["a:5000"])
    never = scripted(
        {
            ("test",): CommandResult(1, "", ""),
            ("cat",): CommandResult(0, "7", ""),
            ("docker",): registry_info(),
        }
    )
    with pytest.raises(
        BackendError, match=r"did not apply daemon.json within 0.01s \(not yet in docker info: a:5000"
    ):
        configure_engine(never, insecure_registries=["a:5000"], wait_timeout=0.01)


def test_configure_engine_without_reload_and_with_other_paths(tmp_path: Path) -> None:
    m = scripted()
    where = str(tmp_path / "daemon.json")
    assert configure_engine(m, insecure_registries=["10.1.0.0/16"], daemon_json=Path(where), reload=False)
    assert json.loads(m.host.files[where]) == {"insecure-registries": ["10.1.0.0/16"]}
    assert not m.host.ran("kill")
    assert not m.host.ran("docker")


def test_merge_daemon_config_validates() -> None:
    assert merge_daemon_config({}, ["[2001:db8::1]:5000", "http://reg:5000"], None) is not None
    for bad in ("", "reg 5000", "reg:5000/path"):
        with pytest.raises(InvalidSpec) as err:
            merge_daemon_config({}, [bad], None)
        assert err.value.field == "insecure_registries"
    with pytest.raises(InvalidSpec) as err:
        merge_daemon_config({}, [], ["mirror.example"])
    assert err.value.field == "mirrors"
    with pytest.raises(BackendError, match="not a list"):
        merge_daemon_config({"insecure-registries": "a:5000"}, ["b:5000"], None)


def test_local_engine_config_sets_insecure_registries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reloads: list[int] = []
    config = LocalEngineConfig(tmp_path / "docker" / "daemon.json", tmp_path / "docker.pid")
    monkeypatch.setattr(config, "reload", lambda: reloads.append(1))
    config.path.parent.mkdir()
    config.path.write_text(json.dumps({"registry-mirrors": ["https://m"], "storage-driver": "overlay2"}))
    assert config.set_insecure_registries(["10.0.0.5:5000"]) is True
    assert config.set_insecure_registries(["10.0.0.5:5000"]) is False
    assert config.insecure_registries() == ["10.0.0.5:5000"]
    assert json.loads(config.path.read_text())["storage-driver"] == "overlay2"
    assert config.registry_mirrors() == ["https://m"]
    assert reloads == [1]


# -- swarm ------------------------------------------------------------------------------------------


def swarm(state: str = "inactive", node: str = "", managers: Sequence[str] = ()) -> CommandResult:
    body = {
        "NodeID": node,
        "LocalNodeState": state,
        "RemoteManagers": [{"NodeID": f"m{i}", "Addr": a} for i, a in enumerate(managers)] or None,
    }
    return CommandResult(0, json.dumps(body) + "\n", "")


SWARM = tuple(bootstrap.SWARM_STATE)


def test_swarm_join() -> None:
    m = scripted({SWARM: [swarm(), swarm("active", "node7", ["10.0.0.1:2377"])]})
    node = swarm_join(m, token="SWMTKN-1-abc", manager="10.0.0.1", advertise_addr="10.0.0.9")
    assert node == "node7"
    assert m.host.ran("docker", "swarm") == [
        [
            "docker",
            "swarm",
            "join",
            "--token",
            "SWMTKN-1-abc",
            "--advertise-addr",
            "10.0.0.9",
            "10.0.0.1:2377",
        ]
    ]


def test_swarm_join_is_idempotent_and_refuses_another_swarm() -> None:
    member = scripted({SWARM: swarm("active", "node7", ["[fd00::1]:2377"])})
    assert swarm_join(member, token="t", manager="fd00::1") == "node7"
    assert not member.host.ran("docker", "swarm")
    other = scripted({SWARM: swarm("active", "node7", ["10.9.9.9:2377"])})
    with pytest.raises(Conflict, match="already in another swarm"):
        swarm_join(other, token="t", manager="10.0.0.1")
    assert not other.host.ran("docker", "swarm")


def test_swarm_join_failure_hides_the_token() -> None:
    m = scripted(
        {
            SWARM: swarm(),
            ("docker", "swarm", "join"): CommandResult(
                1, "", "Error response from daemon: rpc error: code = Unavailable desc = connection refused\n"
            ),
        }
    )
    with pytest.raises(CommandFailed) as err:
        swarm_join(m, token="SWMTKN-1-secret", manager="10.0.0.1")
    assert "connection refused" in err.value.message
    assert "SWMTKN-1-secret" not in err.value.message
    assert "SWMTKN-1-secret" not in err.value.command
    assert "<token>" in err.value.command


def test_swarm_leave_and_node_id() -> None:
    idle = scripted({SWARM: swarm()})
    swarm_leave(idle)
    assert not idle.host.ran("docker", "swarm")
    assert swarm_node_id(idle) is None
    member = scripted({SWARM: swarm("active", "n1", ["10.0.0.1:2377"])})
    assert swarm_node_id(member) == "n1"
    swarm_leave(member, force=True)
    assert member.host.ran("docker", "swarm") == [["docker", "swarm", "leave", "--force"]]
    raced = scripted(
        {
            SWARM: swarm("active", "n1"),
            ("docker", "swarm", "leave"): CommandResult(1, "", "Error: This node is not part of a swarm\n"),
        }
    )
    swarm_leave(raced)
    manager = scripted(
        {
            SWARM: swarm("active", "n1"),
            ("docker", "swarm", "leave"): CommandResult(
                1, "", "Error: You are attempting to leave ... manager\n"
            ),
        }
    )
    with pytest.raises(CommandFailed, match=r"leaving the swarm on 10\.0\.0\.9 failed"):
        swarm_leave(manager)


# -- this machine, and the SSH driver's offline parts -------------------------------------------------


def test_local_machine_runs_argument_lists() -> None:
    with LocalDriver().connect(catalog.parse_host_url("local")) as m:
        assert m.local_address == "127.0.0.1"
        done = m.run(["sh", "-c", 'echo "$1"; echo err >&2; exit 3', "sh", "a b; $HOME"])
        assert done == CommandResult(3, "a b; $HOME\n", "err\n")
        assert m.run(["cat"], input=b"fed\n").stdout == "fed\n"
        assert m.run(["cat"]).stdout == ""  # no input: stdin is empty, never the test's terminal
        assert m.run(["no-such-program-mypaas"]).code == 127
        with pytest.raises(CommandFailed, match=r"timed out after 0\.2s"):
            m.run(["sleep", "5"], timeout=0.2)
        with pytest.raises(CommandFailed, match=r"^false on 127\.0\.0\.1 failed \(exit 1\): no output$"):
            run_checked(m, ["false"], what="false")


def test_ssh_driver_needs_a_readable_key(tmp_path: Path) -> None:
    from mypaas.iaas.ssh import SSHDriver, known_hosts_name

    assert known_hosts_name("10.0.0.5", 22) == "10.0.0.5"
    assert known_hosts_name("::1", 2222) == "[::1]:2222"
    ssh = SSHDriver(known_hosts=tmp_path / "known_hosts")
    target = HostTarget(driver="ssh", address="192.0.2.1")
    with pytest.raises(InvalidSpec, match="no SSH key") as err:
        ssh.connect(target)
    assert err.value.field == "key_path"
    with pytest.raises(InvalidSpec, match="does not exist"):
        ssh.connect(HostTarget(driver="ssh", address="192.0.2.1", key_path=tmp_path / "nope"))
    junk = tmp_path / "junk"
    junk.write_text("not a key\n")
    with pytest.raises(InvalidSpec, match="cannot read SSH key"):
        ssh.connect(HostTarget(driver="ssh", address="192.0.2.1", key_path=junk))
    assert not (tmp_path / "known_hosts").exists()
