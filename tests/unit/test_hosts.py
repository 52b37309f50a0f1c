"""Hosts and the cluster, offline: the REST API over the Hosts service with a fake iaas driver, a fake
provisioner and a fake Swarm; the CLI against that API; SwarmNodes' reading of the engine's answers."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from mypaas.api.app import create_app
from mypaas.cli import client as client_module
from mypaas.cli.main import app as cli_app
from mypaas.composer.fake import FakeBackend
from mypaas.composer.fake_nodes import FakeNodes
from mypaas.composer.nodes import NodeInfo, node_info
from mypaas.domain import Instance
from mypaas.errors import BackendError, NotSupported
from mypaas.iaas.base import HostFacts
from mypaas.iaas.fake import FakeHost, FakeHostDriver
from mypaas.manager.hosts.service import Hosts
from mypaas.manager.platform import Components, Platform, build_platform
from mypaas.manager.reconcile.view import Observed
from mypaas.manager.state.meta import BACKEND_KEY
from mypaas.manager.state.models import HostRow, Meta, OperationRow
from mypaas.router.fake import FakeRouter
from mypaas.settings import Settings
from tests.unit.cli.support import Server, isolate, serve

FINGERPRINT = "SHA256:" + "A" * 43
PEM = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n"


# -- fakes ----------------------------------------------------------------------------------------


@dataclass
class FakeProvision:
    """The bootstrap steps, recorded; ``fail_at`` makes one of them fail."""

    nodes: FakeNodes
    fail_at: str | None = None
    os_id: str = "debian"
    join_state: str = "ready"  # what a node that joins reports
    calls: list[str] = field(default_factory=list)
    configured: list[tuple[Sequence[str], Sequence[str] | None]] = field(default_factory=list)
    certs: list[dict[str, Any]] = field(default_factory=list)
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

    def install_certs(self, m: Any, certs: Mapping[str, Mapping[str, bytes]]) -> bool:
        self.certs.append(dict(certs))
        return bool(certs)

    def configure_engine(
        self, m: Any, *, insecure_registries: Sequence[str] = (), mirrors: Sequence[str] | None = None
    ) -> bool:
        self._step("configure_engine")
        self.configured.append((list(insecure_registries), mirrors))
        return True

    def swarm_join(self, m: Any, *, token: str, manager: str, advertise_addr: str | None = None) -> str:
        self.calls.append(f"join {token} {manager} {advertise_addr}")
        host = "node" + m.address.rsplit(".", 1)[-1]
        node_id = self.nodes.join(
            token, hostname=host, address=m.address, state=self.join_state, engine_version="26.1.5"
        )
        self.members[m.address] = node_id
        if self.fail_at == "join":
            raise BackendError("joining broke")
        return node_id

    def swarm_leave(self, m: Any, force: bool = False) -> None:
        self.left.append(m.address)
        node_id = self.members.pop(m.address, None)
        if node_id is not None:
            self.nodes.leave(node_id)

    def swarm_node_id(self, m: Any) -> str | None:
        return self.members.get(m.address)


class FakeEngineConfig:
    """This machine's daemon.json, in memory: the registries it trusts, and how often that changed."""

    def __init__(self) -> None:
        self.trusted: list[str] = []
        self.mirrors: list[str] = []
        self.trust_changes = 0
        self.certs: dict[str, dict[str, bytes]] = {}

    def install_certs(self, certs: dict[str, dict[str, bytes]]) -> bool:
        changed = any(self.certs.get(addr) != files for addr, files in certs.items())
        self.certs.update(certs)
        return changed

    def registry_mirrors(self) -> list[str]:
        return list(self.mirrors)

    def set_registry_mirrors(self, mirrors: list[str]) -> bool:
        changed, self.mirrors = self.mirrors != mirrors, list(mirrors)
        return changed

    def insecure_registries(self) -> list[str]:
        return list(self.trusted)

    def set_insecure_registries(self, registries: list[str]) -> bool:
        self.trust_changes += 1
        changed, self.trusted = self.trusted != registries, list(registries)
        return changed


@dataclass
class Cluster:
    api: TestClient
    platform: Platform
    driver: FakeHostDriver
    nodes: FakeNodes
    provision: FakeProvision
    engine: FakeEngineConfig

    @property
    def hosts(self) -> Hosts:
        return self.platform.hosts

    @property
    def mode_changes(self) -> int:
        """How often the platform became a cluster (this engine was told to trust the registry)."""
        return self.engine.trust_changes

    def running(self, counts: dict[str, int]) -> None:
        """Let the reconcile loop have seen ``counts`` instances on each node."""
        insts = [
            Instance(
                id=f"{node}-{n}",
                name=f"web.{n}",
                app="shop",
                service="web",
                release=1,
                state="healthy",
                node=node,
            )
            for node, count in counts.items()
            for n in range(count)
        ]
        self.platform.reconciler.view.observed = Observed(instances={"shop": insts})

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
        self.driver.remember(address)
        r = self.api.post("/api/v1/hosts", json={"url": f"ssh://root@{address}", "key": PEM, **body})
        assert r.status_code == 202, r.text
        done = self.wait(r.json())
        assert done["status"] == "succeeded", done
        return done


def make_cluster(home: Path, cluster_addr: str = "10.0.0.1") -> Cluster:
    """A platform over fakes whose hosts are fake machines joining a fake Swarm."""
    nodes = FakeNodes(
        hostname="boss", address="10.0.0.1", cpus=4.0, memory_bytes=8 * 2**30, engine_version="27.1"
    )
    driver = FakeHostDriver(name="ssh", local_address="10.0.0.1")
    for i in range(2, 10):  # the machines out there, their host keys not confirmed yet
        driver.add_host(FakeHost(f"10.0.0.{i}", host_key=FINGERPRINT))
    provision = FakeProvision(nodes)
    engine = FakeEngineConfig()
    settings = Settings(home=home, registry_enabled=False, cluster_addr=cluster_addr)
    given = Components(
        backend=FakeBackend(),
        router=FakeRouter(),
        probe=lambda _: True,
        nodes=lambda: nodes,
        drivers=lambda name: driver,
        provision=provision,
        engine_config=engine,
    )
    platform = build_platform(settings, given)
    platform.hosts.timings.poll_s = 0.005
    platform.hosts.timings.ready_timeout_s = 0.2
    platform.hosts.timings.drain_timeout_s = 0.2
    api = TestClient(create_app(platform))
    api.headers["Authorization"] = f"Bearer {platform.admin_token}"
    return Cluster(api, platform, driver, nodes, provision, engine)


@pytest.fixture
def cluster(tmp_path: Path) -> Cluster:
    return make_cluster(tmp_path)


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
    assert cluster.nodes.heartbeat_s == 1.0
    worker_token, manager_token = cluster.nodes.join_tokens()
    # the host verifies the registry and the mirror with the platform CA instead of trusting them blindly
    assert cluster.provision.configured == [([], None)]
    [certs] = cluster.provision.certs
    assert set(certs) == {"10.0.0.1:5000", "10.0.0.1:5001"}
    assert certs["10.0.0.1:5000"]["ca.crt"].startswith(b"-----BEGIN CERTIFICATE-----")
    assert set(certs["10.0.0.1:5001"]) == {"ca.crt", "client.cert", "client.key"}
    assert "it verifies 10.0.0.1:5000, 10.0.0.1:5001 with the platform CA" in log
    assert f"join {worker_token} 10.0.0.1:2377 10.0.0.5" in cluster.provision.calls
    host = next(r for r in cluster.rows() if r.driver == "ssh")
    assert (host.name, host.state, host.role, host.labels) == ("node5", "ready", "worker", {"zone": "a"})
    assert host.host_key == FINGERPRINT
    key = Path(host.key_path or "")
    assert key.parent == tmp_path / "ssh" / "keys" and key.stat().st_mode & 0o777 == 0o600
    assert cluster.driver.targets[-1].key_path == key
    assert cluster.nodes.node(host.node_id or "").labels == {"zone": "a"}
    assert cluster.driver.machines[-1].closed
    with cluster.platform.sessions() as s:
        assert s.get(Meta, BACKEND_KEY).value == "swarm"  # type: ignore[union-attr]

    cluster.add("10.0.0.6", manager=True)

    assert cluster.mode_changes == 1  # once, for the first host
    assert f"join {manager_token} 10.0.0.1:2377 10.0.0.6" in cluster.provision.calls
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


def test_without_the_cluster_address_add_fails_at_once_and_touches_nothing(tmp_path: Path) -> None:
    cluster = make_cluster(tmp_path, cluster_addr="")
    cluster.driver.remember("10.0.0.7")
    r = cluster.api.post("/api/v1/hosts", json={"url": "ssh://root@10.0.0.7", "key": PEM})

    assert "cluster_addr" in error(r, 409, "cluster_addr")["error"]
    assert cluster.driver.targets == []  # no SSH connection was even tried
    assert cluster.rows() == [] and not cluster.hosts.keys.folder.exists()
    with cluster.platform.sessions() as s:
        assert s.scalars(select(OperationRow).where(OperationRow.kind == "host-add")).all() == []


@pytest.mark.parametrize("fail_at", ["ensure_docker", "join", "not-ready"])
def test_a_failure_midway_leaves_nothing_behind(cluster: Cluster, fail_at: str, tmp_path: Path) -> None:
    cluster.add("10.0.0.4")  # the cluster exists already
    if fail_at == "not-ready":
        cluster.provision.join_state = "down"
    else:
        cluster.provision.fail_at = fail_at
    cluster.driver.remember("10.0.0.5")

    r = cluster.api.post("/api/v1/hosts", json={"url": "ssh://root@10.0.0.5", "key": PEM})
    done = cluster.wait(r.json())

    assert done["status"] == "failed"
    assert done["message"].startswith("adding 10.0.0.5 failed: ")
    assert "\n" not in done["message"]
    assert [r.address for r in cluster.rows() if r.driver == "ssh"] == ["10.0.0.4"]
    assert not (tmp_path / "ssh" / "keys" / "10.0.0.5.key").exists()
    joined = fail_at != "ensure_docker"
    assert ("10.0.0.5" in cluster.provision.left) is joined
    assert not [n for n in cluster.nodes.nodes() if n.address == "10.0.0.5"]
    if fail_at == "not-ready":
        assert "not ready after" in done["message"]


def test_an_unsupported_os_fails_the_add(cluster: Cluster) -> None:
    cluster.provision.os_id = "centos"
    cluster.driver.remember("10.0.0.5")
    r = cluster.api.post("/api/v1/hosts", json={"url": "ssh://root@10.0.0.5", "key": PEM})
    done = cluster.wait(r.json())
    assert done["status"] == "failed" and "runs centos" in done["message"]
    assert cluster.rows() == []
    assert cluster.mode_changes == 0  # it failed before the cluster was made


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
    cluster.running({node_id: 2})

    drained = cluster.api.post("/api/v1/hosts/node5/drain").json()
    assert cluster.nodes.node(node_id).availability == "drain"
    assert (drained["availability"], drained["state"]) == ("drain", "draining")  # 2 instances to move
    cluster.running({node_id: 0})
    assert (
        next(h for h in cluster.api.get("/api/v1/hosts").json() if h["name"] == "node5")["state"] == "drained"
    )
    cluster.running({node_id: 1})

    active = cluster.api.post("/api/v1/hosts/10.0.0.5/activate").json()  # by address too
    assert (active["availability"], active["state"], active["instances"]) == ("active", "ready", 1)

    labelled = cluster.api.patch(
        "/api/v1/hosts/node5/labels", json={"set": {"disk": "ssd"}, "remove": ["zone"]}
    )
    assert labelled.json()["labels"] == {"disk": "ssd"}
    assert cluster.nodes.node(node_id).labels == {"disk": "ssd"}
    assert next(r for r in cluster.rows() if r.name == "node5").labels == {"disk": "ssd"}

    error(cluster.api.patch("/api/v1/hosts/node5/labels", json={"remove": ["zone"]}), 404, "remove")
    error(cluster.api.patch("/api/v1/hosts/node5/labels", json={"set": {"A": "1"}}), 400, "set")
    error(cluster.api.patch("/api/v1/hosts/node5/labels", json={}), 400, "set")
    error(cluster.api.post("/api/v1/hosts/nope/drain"), 404, "host")
    error(cluster.api.delete("/api/v1/hosts/nope"), 404, "host")


def test_rm_drains_leaves_and_forgets_the_host(cluster: Cluster) -> None:
    cluster.add("10.0.0.5", manager=True)
    node_id = cluster.node_of("node5")
    cluster.nodes.set_running_tasks(node_id, 3)

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
    cluster.driver.hosts["10.0.0.5"].reachable = False  # the machine died
    cluster.nodes.set_state(node_id, "down")

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
    cluster.nodes.set_state(five, "down")
    cluster.nodes.update_node(six, availability="drain")
    cluster.nodes.join(cluster.nodes.join_tokens()[0], hostname="spare", address="10.0.0.9")  # by hand
    cluster.running({cluster.nodes.local_node_id() or "": 4, five: 0})

    hosts = {h["name"]: h for h in cluster.api.get("/api/v1/hosts").json()}

    assert hosts["boss"]["instances"] == 4 and hosts["boss"]["leader"] is True
    assert hosts["node5"]["state"] == "down"
    assert hosts["node6"]["state"] == "drained"
    assert (hosts["spare"]["driver"], hosts["spare"]["state"]) == ("unmanaged", "ready")
    assert hosts["node5"]["cpus"] == 2.0 and hosts["node5"]["memory_bytes"] == 4 * 2**30


def test_cluster_init_and_status(tmp_path: Path) -> None:
    cluster = make_cluster(tmp_path, cluster_addr="")  # no address to advertise until one is given
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
    assert cluster.hosts.mode() == "swarm"
    assert cluster.api.post("/api/v1/cluster/init", json={}).status_code == 200  # again: harmless
    assert cluster.hosts.mode() == "swarm" and cluster.nodes.state() == "active"
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
    assert rows["b"].message.endswith("`mypaas host rm b --force` and add it again")
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
    cluster.running({cluster.node_of("node5"): 3})

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
        "DRIVER",
        "ROLE",
        "STATE",
        "AVAILABILITY",
        "LABELS",
        "CPUS",
        "MEMORY",
        "INSTANCES",
    ]
    assert row.split() == [
        "node5",
        "10.0.0.5",
        "ssh",
        "worker",
        "ready",
        "active",
        "zone=a",
        "2",
        "4.3",
        "GB",
        "3",
    ]


def test_cli_host_add_confirms_a_new_host_key(cli_cluster: CliCluster, tmp_path: Path) -> None:
    key = tmp_path / "id"
    key.write_text(PEM)

    refused = CliRunner().invoke(cli_app, ["host", "add", "ssh://root@10.0.0.5", "--key", str(key)])
    assert refused.exit_code == 1
    assert f"pass --host-key {FINGERPRINT}" in refused.stderr.splitlines()[-1]

    # --yes (a script: no one to check the key) does not trust a key never seen: one line, the flag to pin it
    unpinned = CliRunner().invoke(cli_app, ["host", "add", "ssh://root@10.0.0.5", "--key", str(key), "--yes"])
    assert unpinned.exit_code == 1
    assert unpinned.stderr.splitlines() == [
        f"error: ssh://root@10.0.0.5: the host key {FINGERPRINT} was never seen and --yes does not trust it: "
        f"check it on the host (ssh-keygen -lf), then pass --host-key {FINGERPRINT}"
    ]
    assert cli_cluster.cluster.api.get("/api/v1/hosts").json()[1:] == []

    add = ["host", "add", "ssh://root@10.0.0.5", "--key", str(key), "-l", "zone=a", "--yes"]
    result = CliRunner().invoke(cli_app, [*add, "--fingerprint", FINGERPRINT])
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
