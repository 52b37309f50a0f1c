"""Hosts and the cluster, offline: the REST API over the Hosts service with a fake iaas driver, a fake
provisioner and a fake Swarm; the CLI against that API; SwarmNodes' reading of the engine's answers."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from mypaas.cli import client as client_module
from mypaas.cli.main import app as cli_app
from mypaas.composer.nodes import NodeInfo, node_info
from mypaas.errors import BackendError, Conflict, NotFound, NotSupported
from mypaas.iaas.base import (
    CommandResult,
    DriverCapabilities,
    HostFacts,
    HostKeyUnknown,
    HostTarget,
    HostUnreachable,
)
from mypaas.manager.hosts.jobs import ClusterHooks
from mypaas.manager.hosts.service import BACKEND_KEY, Hosts
from mypaas.manager.platform import Platform
from mypaas.manager.state.models import HostRow, Meta, OperationRow
from tests.unit.cli.support import Server, isolate, serve

FINGERPRINT = "SHA256:" + "A" * 43
PEM = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n"
MANAGER_ID = "manager0000000000000000001"


# -- fakes ----------------------------------------------------------------------------------------


class FakeMachine:
    def __init__(self, address: str) -> None:
        self.address = address
        self.local_address = "10.0.0.1"
        self.closed = False

    def run(
        self, argv: Sequence[str], *, input: bytes | None = None, timeout: float = 120.0
    ) -> CommandResult:
        raise AssertionError(f"the provisioner is faked: nothing runs commands ({argv})")

    def close(self) -> None:
        self.closed = True


class FakeDriver:
    """Knows the hosts whose key was confirmed; an unknown one raises HostKeyUnknown."""

    name = "ssh"
    capabilities = DriverCapabilities(remote=True)

    def __init__(self) -> None:
        self.known: set[str] = set()
        self.unreachable: set[str] = set()
        self.targets: list[HostTarget] = []
        self.machines: list[FakeMachine] = []

    def connect(self, target: HostTarget) -> FakeMachine:
        self.targets.append(target)
        if target.address in self.unreachable:
            raise HostUnreachable(f"cannot reach {target.address}:{target.port}: connection refused")
        if target.host_key is None and target.address not in self.known:
            raise HostKeyUnknown(target.address, FINGERPRINT)
        self.known.add(target.address)
        machine = FakeMachine(target.address)
        self.machines.append(machine)
        return machine

    def create_machine(self, request: Any) -> HostTarget:
        raise NotSupported("no")

    def destroy_machine(self, target: HostTarget) -> None:
        raise NotSupported("no")


class FakeNodes:
    """A Swarm in memory, managed by the local engine."""

    def __init__(self) -> None:
        self.swarm = "inactive"
        self.advertised: str | None = None
        self.heartbeats: list[float] = []
        self.by_id: dict[str, NodeInfo] = {}
        self.tasks: dict[str, int] = {}
        self.removed: list[tuple[str, bool]] = []
        self.join_state = "ready"  # what a node that joins reports

    def state(self) -> str:
        return self.swarm

    def local_node_id(self) -> str | None:
        return MANAGER_ID if self.swarm == "active" else None

    def init(self, advertise_addr: str, *, heartbeat_s: float = 1.0) -> str:
        self.heartbeats.append(heartbeat_s)
        if self.swarm != "active":
            self.swarm, self.advertised = "active", advertise_addr
            self.by_id[MANAGER_ID] = NodeInfo(
                MANAGER_ID,
                "boss",
                advertise_addr,
                "manager",
                "ready",
                "active",
                {},
                4.0,
                8 * 2**30,
                "27.1",
                True,
            )
        return MANAGER_ID

    def join_tokens(self) -> tuple[str, str]:
        return "SWMTKN-worker", "SWMTKN-manager"

    def manager_addr(self) -> str:
        return f"{self.advertised}:2377"

    def nodes(self) -> list[NodeInfo]:
        return list(self.by_id.values())

    def node(self, node_id: str) -> NodeInfo:
        if node_id not in self.by_id:
            raise NotFound(f"no Swarm node {node_id!r}", field="host")
        return self.by_id[node_id]

    def update_node(
        self,
        node_id: str,
        *,
        availability: str | None = None,
        labels: dict[str, str] | None = None,
        role: str | None = None,
    ) -> None:
        node = self.node(node_id)
        self.by_id[node_id] = replace(
            node,
            availability=availability or node.availability,
            labels=dict(labels) if labels is not None else node.labels,
            role=role or node.role,
        )
        if availability == "drain":
            self.tasks[node_id] = 0  # Swarm moves them

    def running_tasks(self, node_id: str) -> int:
        return self.tasks.get(node_id, 0)

    def remove_node(self, node_id: str, *, force: bool = False) -> None:
        self.removed.append((node_id, force))
        self.by_id.pop(node_id, None)


@dataclass
class FakeProvision:
    """The bootstrap steps, recorded; ``fail_at`` makes one of them fail."""

    nodes: FakeNodes
    fail_at: str | None = None
    os_id: str = "debian"
    calls: list[str] = field(default_factory=list)
    configured: list[tuple[Sequence[str], Sequence[str] | None]] = field(default_factory=list)
    members: dict[str, str] = field(default_factory=dict)  # address -> node id
    left: list[str] = field(default_factory=list)

    def _step(self, name: str) -> None:
        self.calls.append(name)
        if self.fail_at == name:
            raise BackendError(f"{name} broke")

    def facts(self, m: Any) -> HostFacts:
        self._step("facts")
        host = "node" + m.address.rsplit(".", 1)[-1]
        return HostFacts(host, self.os_id, "12", "x86_64", 2, 4 * 2**30, None)

    def check_os(self, f: HostFacts) -> None:
        if f.os_id != "debian":
            raise NotSupported(f"host {f.hostname} runs {f.os_id}; MyPaas supports debian and ubuntu hosts")

    def ensure_docker(self, m: Any, emit: Callable[[str], None]) -> str:
        self._step("ensure_docker")
        emit(f"installing docker.io on {m.address} with apt-get")
        return "26.1.5"

    def configure_engine(
        self, m: Any, *, insecure_registries: Sequence[str] = (), mirrors: Sequence[str] | None = None
    ) -> bool:
        self._step("configure_engine")
        self.configured.append((list(insecure_registries), mirrors))
        return True

    def swarm_join(self, m: Any, *, token: str, manager: str, advertise_addr: str | None = None) -> str:
        self.calls.append(f"join {token} {manager} {advertise_addr}")
        node_id = f"node-{m.address}".ljust(25, "0")
        self.members[m.address] = node_id
        role = "manager" if token.endswith("manager") else "worker"
        host = "node" + m.address.rsplit(".", 1)[-1]
        self.nodes.by_id[node_id] = NodeInfo(
            node_id, host, m.address, role, self.nodes.join_state, "active", {}, 2.0, 4 * 2**30, "26.1.5"
        )
        if self.fail_at == "join":
            raise BackendError("joining broke")
        return node_id

    def swarm_leave(self, m: Any, force: bool = False) -> None:
        self.left.append(m.address)
        node_id = self.members.pop(m.address, None)
        if node_id in self.nodes.by_id:
            self.nodes.by_id[node_id] = replace(self.nodes.by_id[node_id], state="down")

    def swarm_node_id(self, m: Any) -> str | None:
        return self.members.get(m.address)


@dataclass
class Cluster:
    api: TestClient
    platform: Platform
    hosts: Hosts
    driver: FakeDriver
    nodes: FakeNodes
    provision: FakeProvision
    counts: dict[str, int]
    mode_changes: list[int]
    registries: Callable[[], list[str]] = lambda: ["10.200.0.1:5000"]  # what hosts must trust

    def wait(self, op: dict[str, Any]) -> dict[str, Any]:
        r = self.api.get(f"/api/v1/operations/{op['id']}", params={"wait": 0})
        deadline_polls = 200
        while r.json()["status"] not in ("succeeded", "failed") and deadline_polls:
            self.platform.operations.wait(op["id"], 0.05)
            r = self.api.get(f"/api/v1/operations/{op['id']}")
            deadline_polls -= 1
        body: dict[str, Any] = r.json()
        return body

    def node_of(self, name: str) -> str:
        return next(r.node_id or "" for r in self.rows() if r.name == name)

    def rows(self) -> list[HostRow]:
        with self.platform.sessions() as s:
            return list(s.scalars(select(HostRow).order_by(HostRow.id)))

    def add(self, address: str, **body: Any) -> dict[str, Any]:
        self.driver.known.add(address)
        r = self.api.post("/api/v1/hosts", json={"url": f"ssh://root@{address}", "key": PEM, **body})
        assert r.status_code == 202, r.text
        done = self.wait(r.json())
        assert done["status"] == "succeeded", done
        return done


@pytest.fixture
def cluster(api: TestClient, platform: Platform, tmp_path: Path) -> Cluster:
    nodes = FakeNodes()
    driver = FakeDriver()
    provision = FakeProvision(nodes)
    counts: dict[str, int] = {}
    mode_changes: list[int] = []

    def registries() -> list[str]:
        return found.registries()  # read at each add: a test may change what hosts must trust

    hosts = Hosts(
        sessions=platform.sessions,
        operations=platform.operations,
        home=tmp_path,
        nodes_factory=lambda: nodes,
        drivers=lambda name: driver,
        hooks=ClusterHooks(
            registries=registries,
            instances_per_node=lambda: counts,
            on_mode_change=lambda: mode_changes.append(1),
        ),
        provision=provision,
    )
    hosts.timings.poll_s = 0.005
    hosts.timings.ready_timeout_s = 0.2
    hosts.timings.drain_timeout_s = 0.2
    platform.hosts = hosts  # type: ignore[attr-defined]
    found = Cluster(api, platform, hosts, driver, nodes, provision, counts, mode_changes)
    return found


def error(r: httpx.Response, status: int, field: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body: dict[str, Any] = r.json()
    assert body["error"]
    if field is not None:
        assert body.get("field") == field, body
    return body


# -- adding ---------------------------------------------------------------------------------------


def test_add_joins_the_host_and_switches_the_mode_once(cluster: Cluster, tmp_path: Path) -> None:
    done = cluster.add("10.0.0.5", labels={"zone": "a"}, host_key=FINGERPRINT)

    log = done["log"]
    assert "node5: debian 12 x86_64, 2 CPUs" in log
    assert "installing docker.io on 10.0.0.5" in log
    assert "making this machine's engine the Swarm manager, advertised at 10.0.0.1" in log
    assert "joining the Swarm at 10.0.0.1:2377 as a worker" in log
    assert "labels: zone=a" in log
    assert done["message"].startswith("host node5 (10.0.0.5) is ready")
    assert cluster.nodes.heartbeats == [1.0]
    assert cluster.provision.configured == [(["10.200.0.1:5000"], None)]
    assert "join SWMTKN-worker 10.0.0.1:2377 10.0.0.5" in cluster.provision.calls
    host = next(r for r in cluster.rows() if r.driver == "ssh")
    assert (host.name, host.state, host.role, host.labels) == ("node5", "ready", "worker", {"zone": "a"})
    assert host.host_key == FINGERPRINT
    key = Path(host.key_path or "")
    assert key.parent == tmp_path / "ssh" / "keys" and key.stat().st_mode & 0o777 == 0o600
    assert cluster.driver.targets[-1].key_path == key
    assert cluster.nodes.by_id[host.node_id or ""].labels == {"zone": "a"}
    assert cluster.driver.machines[-1].closed
    with cluster.platform.sessions() as s:
        assert s.get(Meta, BACKEND_KEY).value == "swarm"  # type: ignore[union-attr]

    cluster.add("10.0.0.6", manager=True)

    assert cluster.mode_changes == [1]  # once, for the first host
    assert "join SWMTKN-manager 10.0.0.1:2377 10.0.0.6" in cluster.provision.calls
    names = [(h["name"], h["driver"], h["role"], h["state"]) for h in cluster.api.get("/api/v1/hosts").json()]
    assert names == [
        ("boss", "local", "manager", "ready"),
        ("node5", "ssh", "worker", "ready"),
        ("node6", "ssh", "manager", "ready"),
    ]


def test_an_unknown_host_key_is_a_409_with_its_fingerprint_and_nothing_recorded(cluster: Cluster) -> None:
    r = cluster.api.post("/api/v1/hosts", json={"url": "ssh://root@10.0.0.7", "key": PEM})

    body = error(r, 409, "host_key")
    assert body["fingerprint"] == FINGERPRINT
    assert FINGERPRINT in body["error"]
    assert cluster.rows() == []
    with cluster.platform.sessions() as s:
        assert s.scalars(select(OperationRow).where(OperationRow.kind == "host-add")).all() == []
    assert cluster.provision.calls == []


def test_without_the_cluster_address_add_fails_at_once_and_touches_nothing(cluster: Cluster) -> None:
    def unset() -> list[str]:
        raise Conflict(
            "set cluster_addr (this machine's address as the hosts reach it)", field="cluster_addr"
        )

    cluster.registries = unset
    cluster.driver.known.add("10.0.0.7")
    r = cluster.api.post("/api/v1/hosts", json={"url": "ssh://root@10.0.0.7", "key": PEM})

    assert "cluster_addr" in error(r, 409, "cluster_addr")["error"]
    assert cluster.driver.targets == []  # no SSH connection was even tried
    assert cluster.rows() == [] and not cluster.hosts.keys_dir.exists()
    with cluster.platform.sessions() as s:
        assert s.scalars(select(OperationRow).where(OperationRow.kind == "host-add")).all() == []


@pytest.mark.parametrize("fail_at", ["ensure_docker", "join", "not-ready"])
def test_a_failure_midway_leaves_nothing_behind(cluster: Cluster, fail_at: str, tmp_path: Path) -> None:
    cluster.add("10.0.0.4")  # the cluster exists already
    if fail_at == "not-ready":
        cluster.nodes.join_state = "down"
    else:
        cluster.provision.fail_at = fail_at
    cluster.driver.known.add("10.0.0.5")

    r = cluster.api.post("/api/v1/hosts", json={"url": "ssh://root@10.0.0.5", "key": PEM})
    done = cluster.wait(r.json())

    assert done["status"] == "failed"
    assert done["message"].startswith("adding 10.0.0.5 failed: ")
    assert "\n" not in done["message"]
    assert [r.address for r in cluster.rows() if r.driver == "ssh"] == ["10.0.0.4"]
    assert not (tmp_path / "ssh" / "keys" / "10.0.0.5.key").exists()
    joined = fail_at != "ensure_docker"
    assert ("10.0.0.5" in cluster.provision.left) is joined
    assert not [n for n in cluster.nodes.by_id.values() if n.address == "10.0.0.5"]
    if fail_at == "not-ready":
        assert "not ready after" in done["message"]


def test_an_unsupported_os_fails_the_add(cluster: Cluster) -> None:
    cluster.provision.os_id = "centos"
    cluster.driver.known.add("10.0.0.5")
    r = cluster.api.post("/api/v1/hosts", json={"url": "ssh://root@10.0.0.5", "key": PEM})
    done = cluster.wait(r.json())
    assert done["status"] == "failed" and "runs centos" in done["message"]
    assert cluster.rows() == []
    assert cluster.mode_changes == []  # it failed before the cluster was made


def test_the_same_address_twice_is_a_conflict(cluster: Cluster) -> None:
    cluster.add("10.0.0.5")
    error(
        cluster.api.post("/api/v1/hosts", json={"url": "ssh://admin@10.0.0.5:2222", "key": PEM}), 409, "url"
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "http://10.0.0.5"}, "url"),
        ({"url": "ssh://root@"}, "url"),
        ({"url": "ssh://root@10.0.0.5:99999"}, "url"),
        ({"url": "ssh://root@10.0.0.5", "labels": {"Bad Key": "x"}}, "labels"),
        ({"url": "ssh://root@10.0.0.5", "labels": {"zone": "a\nb"}}, "labels.zone"),
        ({"url": "ssh://root@10.0.0.5", "labels": {"zone": "x" * 257}}, "labels.zone"),
        ({"url": "ssh://root@10.0.0.5", "key": "not a key"}, "key"),
        ({"url": "ssh://root@10.0.0.5", "host_key": "md5:aa"}, "host_key"),
        ({"url": "ssh://root@10.0.0.5", "bogus": 1}, "bogus"),
        ({"url": "local"}, "url"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(cluster: Cluster, body: dict[str, Any], field: str) -> None:
    error(cluster.api.post("/api/v1/hosts", json=body), 400, field)
    assert cluster.rows() == []
    assert cluster.driver.targets == []


# -- changing and removing ------------------------------------------------------------------------


def test_drain_activate_and_label(cluster: Cluster) -> None:
    cluster.add("10.0.0.5", labels={"zone": "a"})
    node_id = cluster.node_of("node5")
    cluster.counts[node_id] = 2

    drained = cluster.api.post("/api/v1/hosts/node5/drain").json()
    assert cluster.nodes.by_id[node_id].availability == "drain"
    assert (drained["availability"], drained["state"]) == ("drain", "draining")  # 2 instances to move
    cluster.counts[node_id] = 0
    assert (
        next(h for h in cluster.api.get("/api/v1/hosts").json() if h["name"] == "node5")["state"] == "drained"
    )
    cluster.counts[node_id] = 1

    active = cluster.api.post("/api/v1/hosts/10.0.0.5/activate").json()  # by address too
    assert (active["availability"], active["state"], active["instances"]) == ("active", "ready", 1)

    labelled = cluster.api.patch(
        "/api/v1/hosts/node5/labels", json={"set": {"disk": "ssd"}, "remove": ["zone"]}
    )
    assert labelled.json()["labels"] == {"disk": "ssd"}
    assert cluster.nodes.by_id[node_id].labels == {"disk": "ssd"}
    assert next(r for r in cluster.rows() if r.name == "node5").labels == {"disk": "ssd"}

    error(cluster.api.patch("/api/v1/hosts/node5/labels", json={"remove": ["zone"]}), 404, "remove")
    error(cluster.api.patch("/api/v1/hosts/node5/labels", json={"set": {"A": "1"}}), 400, "set")
    error(cluster.api.patch("/api/v1/hosts/node5/labels", json={}), 400, "set")
    error(cluster.api.post("/api/v1/hosts/nope/drain"), 404, "host")
    error(cluster.api.delete("/api/v1/hosts/nope"), 404, "host")


def test_rm_drains_leaves_and_forgets_the_host(cluster: Cluster) -> None:
    cluster.add("10.0.0.5", manager=True)
    node_id = cluster.node_of("node5")
    cluster.nodes.tasks[node_id] = 3

    r = cluster.api.delete("/api/v1/hosts/node5")
    assert r.status_code == 202
    done = cluster.wait(r.json())

    assert done["status"] == "succeeded", done
    assert done["message"] == "host node5 removed"
    assert "draining node5" in done["log"] and "demoting it" in done["log"]
    assert cluster.provision.left == ["10.0.0.5"]
    assert cluster.nodes.removed == [(node_id, False)]  # it left: no force needed
    assert [r.driver for r in cluster.rows()] == ["local"]
    error(cluster.api.delete("/api/v1/hosts/boss"), 409, "host")  # the manager's own machine stays


def test_rm_of_an_unreachable_host_needs_force(cluster: Cluster) -> None:
    cluster.add("10.0.0.5")
    node_id = cluster.node_of("node5")
    cluster.driver.unreachable.add("10.0.0.5")
    cluster.nodes.by_id[node_id] = replace(cluster.nodes.by_id[node_id], state="down")

    body = error(cluster.api.delete("/api/v1/hosts/node5"), 409, "host")
    assert "--force" in body["error"]
    assert next(r for r in cluster.rows() if r.name == "node5").state == "ready"

    done = cluster.wait(cluster.api.delete("/api/v1/hosts/node5", params={"force": "true"}).json())
    assert done["status"] == "succeeded", done
    assert cluster.nodes.removed == [(node_id, True)]
    assert cluster.provision.left == []


def test_list_merges_the_live_node_state(cluster: Cluster) -> None:
    cluster.add("10.0.0.5")
    cluster.add("10.0.0.6")
    five, six = cluster.node_of("node5"), cluster.node_of("node6")
    cluster.nodes.by_id[five] = replace(cluster.nodes.by_id[five], state="down")
    cluster.nodes.by_id[six] = replace(cluster.nodes.by_id[six], availability="drain")
    cluster.nodes.by_id["byhand"] = NodeInfo("byhand", "spare", "10.0.0.9", "worker", "ready", "active")
    cluster.counts.update({MANAGER_ID: 4, five: 0})

    hosts = {h["name"]: h for h in cluster.api.get("/api/v1/hosts").json()}

    assert hosts["boss"]["instances"] == 4 and hosts["boss"]["leader"] is True
    assert hosts["node5"]["state"] == "down"
    assert hosts["node6"]["state"] == "drained"
    assert (hosts["spare"]["driver"], hosts["spare"]["state"]) == ("unmanaged", "ready")
    assert hosts["node5"]["cpus"] == 2.0 and hosts["node5"]["memory_bytes"] == 4 * 2**30


def test_cluster_init_and_status(cluster: Cluster) -> None:
    status = cluster.api.get("/api/v1/cluster").json()
    assert (status["mode"], status["swarm"], status["nodes"]) == ("docker", "inactive", 0)
    error(cluster.api.post("/api/v1/cluster/init", json={}), 400, "advertise_addr")
    error(
        cluster.api.post("/api/v1/cluster/init", json={"advertise_addr": "10.0.0.1; rm"}),
        400,
        "advertise_addr",
    )

    status = cluster.api.post("/api/v1/cluster/init", json={"advertise_addr": "10.0.0.1"}).json()

    assert (status["mode"], status["swarm"], status["manager_addr"]) == ("swarm", "active", "10.0.0.1:2377")
    assert (status["nodes"], status["managers"], status["hosts"]) == (1, 1, 1)
    assert cluster.mode_changes == [1]
    assert cluster.api.post("/api/v1/cluster/init", json={}).status_code == 200  # again: harmless
    assert cluster.mode_changes == [1]
    assert [(r.name, r.driver, r.role) for r in cluster.rows()] == [("boss", "local", "manager")]


def test_recover_after_a_restart(cluster: Cluster) -> None:
    with cluster.platform.sessions.begin() as s:
        op = cluster.platform.operations.new(s, app="", kind="host-add", user="admin")
        s.add(HostRow(name="a", address="10.0.0.2", labels={}, state="adding"))
        s.add(HostRow(name="b", address="10.0.0.3", labels={}, state="adding", node_id="n3"))
        s.add(HostRow(name="c", address="10.0.0.4", labels={}, state="removing", node_id="n4"))
    cluster.hosts.recover()
    rows = {r.name: r for r in cluster.rows()}
    assert set(rows) == {"b", "c"}
    assert rows["b"].state == rows["c"].state == "failed"
    assert "mypaas host rm b --force" in rows["b"].message
    assert cluster.platform.operations.get(op.id).status == "failed"


# -- SwarmNodes reads the engine ------------------------------------------------------------------


def test_node_info_from_the_engine_api() -> None:
    raw = {
        "ID": "abc",
        "Spec": {"Role": "manager", "Availability": "drain", "Labels": {"zone": "a"}},
        "Description": {
            "Hostname": "boss",
            "Resources": {"NanoCPUs": 2_500_000_000, "MemoryBytes": 1024},
            "Engine": {"EngineVersion": "27.1"},
        },
        "Status": {"State": "ready", "Addr": "0.0.0.0"},
        "ManagerStatus": {"Leader": True, "Addr": "10.0.0.1:2377"},
    }
    assert node_info(raw) == NodeInfo(
        "abc", "boss", "10.0.0.1", "manager", "ready", "drain", {"zone": "a"}, 2.5, 1024, "27.1", True
    )
    assert node_info({"ID": "x"}).state == "unknown"


# -- the CLI --------------------------------------------------------------------------------------


@pytest.fixture
def cli_cluster(cluster: Cluster, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[CliCluster]:
    """The CLI against the cluster's API (in this process, see tests/unit/cli/support.py)."""
    isolate(monkeypatch, tmp_path / "home")
    yield CliCluster(cluster, serve(monkeypatch, cluster.api, cluster.platform))
    client_module.settings.cache_clear()


@dataclass
class CliCluster:
    cluster: Cluster
    server: Server


def test_cli_host_ls(cli_cluster: CliCluster) -> None:
    cluster = cli_cluster.cluster
    cluster.add("10.0.0.5", labels={"zone": "a"}, host_key=FINGERPRINT)
    cluster.counts[cluster.node_of("node5")] = 3

    result = CliRunner().invoke(cli_app, ["host", "ls", "--json"])
    assert result.exit_code == 0, result.output
    listing = json.loads(result.stdout)
    assert listing == cluster.api.get("/api/v1/hosts").json()
    assert [h["name"] for h in listing] == ["boss", "node5"]

    result = CliRunner().invoke(cli_app, ["host", "ls"])
    assert result.exit_code == 0, result.output
    header, _boss, row = result.stdout.splitlines()[:3]
    assert header.split() == [
        "NAME",
        "ADDRESS",
        "ROLE",
        "STATE",
        "AVAILABILITY",
        "LABELS",
        "CPUS",
        "MEMORY",
        "INSTANCES",
    ]
    assert row.split() == ["node5", "10.0.0.5", "worker", "ready", "active", "zone=a", "2", "4.3", "GB", "3"]


def test_cli_host_add_confirms_a_new_host_key(cli_cluster: CliCluster, tmp_path: Path) -> None:
    key = tmp_path / "id"
    key.write_text(PEM)

    refused = CliRunner().invoke(cli_app, ["host", "add", "ssh://root@10.0.0.5", "--key", str(key)])
    assert refused.exit_code == 1
    assert f"pass --host-key {FINGERPRINT}" in refused.stderr.splitlines()[-1]

    result = CliRunner().invoke(
        cli_app, ["host", "add", "ssh://root@10.0.0.5", "--key", str(key), "-l", "zone=a", "--yes"]
    )
    assert result.exit_code == 0, result.output
    assert "host node5 (10.0.0.5) is ready" in result.stdout
    assert "joining the Swarm" in result.stderr
    assert cli_cluster.server.body("POST", "/api/v1/hosts") == {
        "url": "ssh://root@10.0.0.5",
        "labels": {"zone": "a"},
        "manager": False,
        "key": PEM,
        "host_key": FINGERPRINT,
    }


@pytest.mark.parametrize(
    "args",
    [
        ["host", "add", "ssh://root@10.0.0.5", "--label", "novalue"],
        ["host", "label", "node5", "zone"],
        ["host", "add", "ssh://root@10.0.0.5", "--key", "/nonexistent/key"],
    ],
)
def test_cli_bad_input_is_one_error_line(cli_cluster: CliCluster, args: list[str]) -> None:
    result = CliRunner().invoke(cli_app, args)
    assert result.exit_code != 0
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert not [r for r in cli_cluster.server.requests if r.method == "POST"]
