"""One contract for the Swarm as the manager sees it (the Nodes protocol), the fake included (DESIGN.md):
SwarmNodes over a real engine and FakeNodes give the same answers and the same errors.

The real half never touches this machine's own engine: it drives the engine of a test host (tests/cluster.py:
a network namespace with its own dockerd, reached on its socket), and a second test host plays the machine
that joins; both are started once for the module and leave any Swarm after each test."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from mypaas.composer.fake_nodes import FakeNodes
from mypaas.composer.nodes import Nodes
from mypaas.errors import BackendError, Conflict, InvalidSpec, NotFound
from tests.cluster import TestCluster, test_cluster

PREFIX = "mpcnod"  # unique to this module: other tests' clusters cannot collide with it
SUBNET = "10.200.91"


@dataclass
class Rig:
    """``nodes`` over a local engine in no Swarm, at ``address`` with host name ``hostname``;
    ``other`` is a second machine (its host name and address), which ``join`` makes join the Swarm with
    a token (returning its node id) and ``leave`` makes leave it; ``join_another_swarm`` makes the local
    engine a worker of a Swarm the other machine manages (returning the local node id);
    ``foreign_address`` is not the local engine's."""

    nodes: Nodes
    address: str
    hostname: str
    other: tuple[str, str]
    join: Callable[[str], str]
    leave: Callable[[], None]
    join_another_swarm: Callable[[], str]
    foreign_address: str


def fake_rig() -> Rig:
    fake = FakeNodes(hostname="boss", address="10.0.0.1")
    joined: list[str] = []

    def join(token: str) -> str:
        joined.append(fake.join(token, hostname="node2", address="10.0.0.2"))
        return joined[-1]

    return Rig(
        nodes=fake,
        address="10.0.0.1",
        hostname="boss",
        other=("node2", "10.0.0.2"),
        join=join,
        leave=lambda: fake.leave(joined[-1]),
        join_another_swarm=fake.join_another_swarm,
        foreign_address="10.0.0.99",
    )


@pytest.fixture(scope="module")
def cluster() -> Iterator[TestCluster]:
    with test_cluster(2, prefix=PREFIX, subnet=SUBNET) as hosts:
        yield hosts


def swarm_rig(cluster: TestCluster) -> Iterator[Rig]:
    from mypaas.composer.nodes import SwarmNodes

    local, other = cluster.hosts

    def docker(host: str, *args: str) -> str:
        done = cluster.host(host).docker(*args)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    def node_id(host: str) -> str:
        return docker(host, "info", "--format", "{{.Swarm.NodeID}}")

    def join(token: str) -> str:
        docker(
            other.name,
            "swarm",
            "join",
            "--token",
            token,
            "--advertise-addr",
            other.address,
            nodes.manager_addr(),
        )
        return node_id(other.name)

    def leave() -> None:
        docker(other.name, "swarm", "leave", "--force")

    def join_another_swarm() -> str:
        docker(other.name, "swarm", "init", "--advertise-addr", other.address)
        token = docker(other.name, "swarm", "join-token", "-q", "worker")
        docker(local.name, "swarm", "join", "--token", token, f"{other.address}:2377")
        return node_id(local.name)

    nodes = SwarmNodes.connect(f"unix://{local.docker_socket}")
    try:
        yield Rig(
            nodes=nodes,
            address=local.address,
            hostname=local.name,
            other=(other.name, other.address),
            join=join,
            leave=leave,
            join_another_swarm=join_another_swarm,
            foreign_address=f"{SUBNET}.99",
        )
    finally:
        # whatever a test made, no Swarm is left (the local engine first: a worker that leaves first
        # waits seconds for the manager)
        for host in (local, other):
            host.docker("swarm", "leave", "--force")
        nodes.close()


@pytest.fixture(params=["fake", pytest.param("swarm", marks=pytest.mark.integration)])
def rig(request: pytest.FixtureRequest) -> Iterator[Rig]:
    if request.param == "fake":
        yield fake_rig()
    else:
        yield from swarm_rig(request.getfixturevalue("cluster"))


def eventually(check: Callable[[], bool], timeout: float = 30.0) -> None:
    """Wait until ``check()`` holds (a real Swarm takes a moment; the fake is there at once)."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


# -- the Swarm itself -------------------------------------------------------------------------------


def test_an_engine_in_no_swarm_manages_nothing(rig: Rig) -> None:
    n = rig.nodes
    assert n.state() == "inactive"
    assert n.local_node_id() is None
    calls: list[Callable[[], object]] = [
        n.join_tokens,
        n.manager_addr,
        n.nodes,
        lambda: n.node("nosuchnode"),
        lambda: n.update_node("nosuchnode", availability="drain"),
        lambda: n.running_tasks("nosuchnode"),
        lambda: n.remove_node("nosuchnode"),
    ]
    for call in calls:
        with pytest.raises(Conflict):
            call()


def test_init_makes_the_local_engine_the_manager_and_again_changes_nothing(rig: Rig) -> None:
    node_id = rig.nodes.init(rig.address)

    assert node_id
    assert rig.nodes.state() == "active"
    assert rig.nodes.local_node_id() == node_id
    assert rig.nodes.init(rig.address, heartbeat_s=2.0) == node_id
    assert rig.nodes.manager_addr() == f"{rig.address}:2377"
    me = rig.nodes.node(node_id)
    assert rig.nodes.nodes() == [me]
    assert (me.id, me.hostname, me.address) == (node_id, rig.hostname, rig.address)
    assert (me.role, me.state, me.availability, me.leader) == ("manager", "ready", "active", True)
    assert me.labels == {}
    assert me.cpus > 0 and me.memory_bytes > 0 and me.engine_version


def test_join_tokens_one_for_workers_one_for_managers(rig: Rig) -> None:
    rig.nodes.init(rig.address)

    worker, manager = rig.nodes.join_tokens()

    assert worker != manager
    assert worker.startswith("SWMTKN-1-") and manager.startswith("SWMTKN-1-")
    assert rig.nodes.join_tokens() == (worker, manager)


def test_init_at_a_bad_or_foreign_address_fails_and_leaves_no_swarm(rig: Rig) -> None:
    with pytest.raises(InvalidSpec):
        rig.nodes.init("not an address")
    with pytest.raises(BackendError):
        rig.nodes.init(rig.foreign_address)  # not an address of this machine's

    assert rig.nodes.state() == "inactive"


def test_a_worker_of_another_swarm_is_not_made_a_manager(rig: Rig) -> None:
    node_id = rig.join_another_swarm()

    assert rig.nodes.state() == "active"
    assert rig.nodes.local_node_id() == node_id
    with pytest.raises(Conflict) as err:
        rig.nodes.init(rig.address)
    assert err.value.field == "advertise_addr"
    for call in (rig.nodes.join_tokens, rig.nodes.nodes, lambda: rig.nodes.node(node_id)):
        with pytest.raises(Conflict):
            call()


# -- nodes ------------------------------------------------------------------------------------------


def test_an_unknown_node_is_not_found_and_removing_it_is_fine(rig: Rig) -> None:
    rig.nodes.init(rig.address)

    for call in (
        lambda: rig.nodes.node("nosuchnode"),
        lambda: rig.nodes.update_node("nosuchnode", availability="drain"),
        lambda: rig.nodes.running_tasks("nosuchnode"),
    ):
        with pytest.raises(NotFound) as err:
            call()
        assert err.value.field == "host"
    rig.nodes.remove_node("nosuchnode")
    rig.nodes.remove_node("nosuchnode", force=True)


def test_update_node_sets_availability_and_replaces_labels(rig: Rig) -> None:
    me = rig.nodes.init(rig.address)

    rig.nodes.update_node(me, availability="pause", labels={"zone": "a", "disk": "ssd"})
    assert (rig.nodes.node(me).availability, rig.nodes.node(me).labels) == (
        "pause",
        {"zone": "a", "disk": "ssd"},
    )
    rig.nodes.update_node(me, labels={"zone": "b"})  # every label: the others go
    assert (rig.nodes.node(me).availability, rig.nodes.node(me).labels) == ("pause", {"zone": "b"})
    rig.nodes.update_node(me, availability="drain")
    assert rig.nodes.node(me).availability == "drain"
    assert rig.nodes.running_tasks(me) == 0
    rig.nodes.update_node(me, availability="active", labels={})
    assert (rig.nodes.node(me).availability, rig.nodes.node(me).labels) == ("active", {})


def test_bad_updates_are_refused_and_change_nothing(rig: Rig) -> None:
    me = rig.nodes.init(rig.address)
    before = rig.nodes.node(me)

    with pytest.raises(InvalidSpec):
        rig.nodes.update_node(me, availability="asleep")
    with pytest.raises(InvalidSpec):
        rig.nodes.update_node(me, role="boss")
    with pytest.raises(Conflict):
        rig.nodes.update_node(me, role="worker")  # the last manager

    assert rig.nodes.node(me) == before


def test_a_host_that_joins_is_a_node_of_the_swarm(rig: Rig) -> None:
    me = rig.nodes.init(rig.address)
    worker_token, _ = rig.nodes.join_tokens()

    node_id = rig.join(worker_token)

    eventually(lambda: rig.nodes.node(node_id).state == "ready")
    node = rig.nodes.node(node_id)
    assert (node.hostname, node.address) == rig.other
    assert (node.role, node.availability, node.leader) == ("worker", "active", False)
    assert {n.id for n in rig.nodes.nodes()} == {me, node_id}
    assert rig.nodes.running_tasks(node_id) == 0


def test_a_host_that_joins_with_the_manager_token_is_a_manager(rig: Rig) -> None:
    me = rig.nodes.init(rig.address)
    _, manager_token = rig.nodes.join_tokens()

    node_id = rig.join(manager_token)

    eventually(lambda: rig.nodes.node(node_id).state == "ready")
    assert (rig.nodes.node(node_id).role, rig.nodes.node(node_id).leader) == ("manager", False)
    assert rig.nodes.node(me).leader
    rig.nodes.update_node(node_id, role="worker")  # not the last manager: it may be demoted
    assert rig.nodes.node(node_id).role == "worker"


def test_a_manager_node_is_not_removed_even_by_force(rig: Rig) -> None:
    me = rig.nodes.init(rig.address)

    for force in (False, True):
        with pytest.raises(Conflict):
            rig.nodes.remove_node(me, force=force)
    assert rig.nodes.node(me).role == "manager"


def test_a_node_that_is_up_is_removed_only_by_force(rig: Rig) -> None:
    rig.nodes.init(rig.address)
    node_id = rig.join(rig.nodes.join_tokens()[0])
    eventually(lambda: rig.nodes.node(node_id).state == "ready")

    with pytest.raises(Conflict):
        rig.nodes.remove_node(node_id)
    assert rig.nodes.node(node_id).state == "ready"
    rig.nodes.remove_node(node_id, force=True)

    with pytest.raises(NotFound):
        rig.nodes.node(node_id)
    assert node_id not in {n.id for n in rig.nodes.nodes()}
    rig.nodes.remove_node(node_id)  # gone already: fine


def test_a_host_that_left_is_down_and_its_node_is_removed_without_force(rig: Rig) -> None:
    rig.nodes.init(rig.address)
    node_id = rig.join(rig.nodes.join_tokens()[0])
    eventually(lambda: rig.nodes.node(node_id).state == "ready")

    rig.leave()

    eventually(lambda: rig.nodes.node(node_id).state == "down")
    rig.nodes.remove_node(node_id)
    with pytest.raises(NotFound):
        rig.nodes.node(node_id)
