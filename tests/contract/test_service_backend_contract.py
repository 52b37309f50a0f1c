"""One contract for every ServiceBackend (a backend that runs whole services: Swarm), run against the
fake and the real one: the same calls, the same reports, the same errors.

The real one is a SwarmBackend on a Swarm of its own: a netns host of tests/cluster.py whose engine is
made a one-node Swarm manager, so this machine's engine (which other tests use) never joins a Swarm.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import docker
import docker.errors
import pytest

from mypaas.composer.base import LABEL_PLATFORM, SecretFile, ServiceBackend, ServiceRequest, ServiceState
from mypaas.composer.fake import FakeSwarmBackend
from mypaas.domain import Instance, PortSpec, ServiceSpec
from mypaas.errors import MyPaasError
from mypaas.states import InstanceState
from tests import kit

IMAGE = "mypaas-test/web:v1"
PREFIX = "mpsvc"  # unique to this module: other tests' clusters cannot collide with it
SUBNET = "10.200.91"
SETTLE_S = 60.0  # what a real Swarm may take to start, replace or stop tasks


@pytest.fixture(scope="module")
def swarm_manager() -> Iterator[str]:
    """The engine URL of a one-node Swarm on a netns host, with the test image loaded."""
    from tests.cluster import test_cluster

    kit.web_image(IMAGE, "version one")
    with test_cluster(1, prefix=PREFIX, subnet=SUBNET) as cluster:
        host = cluster.hosts[0]
        host.load_image(IMAGE)
        init = host.docker("swarm", "init", "--advertise-addr", host.address)
        assert init.returncode == 0, init.stderr
        yield f"unix://{host.docker_socket}"


@pytest.fixture(params=["fake", pytest.param("swarm", marks=pytest.mark.integration)])
def backend(request: pytest.FixtureRequest) -> Iterator[tuple[ServiceBackend, str]]:
    """(backend, platform id) for each service backend."""
    platform = f"svc-contract-{secrets.token_hex(4)}"
    if request.param == "fake":
        fake = FakeSwarmBackend()
        fake.add_image(IMAGE, exposed=(80,))
        yield fake, platform
        return
    from mypaas.composer.swarm import SwarmBackend

    url = request.getfixturevalue("swarm_manager")
    real = SwarmBackend(
        url, restart_delay_s=0.2, update_delay_s=0.2, update_monitor_s=0.5, poll_s=0.2, ipvs=False
    )
    try:
        yield real, platform
    finally:
        _remove_labelled(url, f"{LABEL_PLATFORM}={platform}")
        _remove_labelled(url, f"{LABEL_PLATFORM}=other-{platform}")  # the pool a foreign listing filled
        real.close()


def _remove_labelled(url: str, label: str) -> None:
    """Remove the services, then the networks, a test left on the netns host's engine."""
    client = docker.DockerClient(base_url=url, version="auto")
    try:
        for service in client.services.list(filters={"label": label}):
            with contextlib.suppress(docker.errors.APIError):
                service.remove()
        for network in client.networks.list(filters={"label": label}):
            kit.wait_until(lambda n=network: _removed(n), timeout=SETTLE_S, interval=0.5)
    finally:
        client.close()


def _removed(network: Any) -> bool:
    try:
        network.remove()
    except docker.errors.NotFound:
        return True
    except docker.errors.APIError:  # its tasks are still leaving it
        return False
    return True


def request_for(backend: ServiceBackend, platform: str, app: str, **changes: Any) -> ServiceRequest:
    info = backend.image(IMAGE)
    svc = ServiceSpec(name="web", image=IMAGE, image_id=info.id, expose=[80])
    req = ServiceRequest(
        platform=platform,
        app=app,
        service=svc,
        release=1,
        generation=0,
        replicas=1,
        image=IMAGE,
        environment={"PORT": "80"},
    )
    return replace(req, **changes)


def deployed(b: ServiceBackend, platform: str, req: ServiceRequest) -> ServiceState:
    """Make the app's networks, ensure the service; return what the backend reports of it."""
    b.ensure_overlay_network(platform, req.app)
    for network in req.networks:
        b.ensure_overlay_network(platform, req.app, network)
    b.ensure_service(req)
    return one_service(b, platform, req.app)


def one_service(b: ServiceBackend, platform: str, app: str) -> ServiceState:
    [svc] = [s for s in b.list_services(platform) if s.app == app]
    return svc


def tasks(b: ServiceBackend, platform: str, app: str) -> list[Instance]:
    return [i for i in b.list_instances(platform) if i.app == app and i.node is not None]


def settled(check: Callable[[], Any]) -> Any:
    return kit.wait_until(check, timeout=SETTLE_S, interval=0.2)


def running(b: ServiceBackend, platform: str, app: str, n: int) -> Callable[[], list[Instance]]:
    """A check: the app's ``n`` tasks, once there are exactly ``n`` and all run with an address."""

    def check() -> list[Instance]:
        found = tasks(b, platform, app)
        up = [t for t in found if t.address and t.state in (InstanceState.STARTING, InstanceState.HEALTHY)]
        return found if len(found) == n == len(up) else []

    return check


def test_a_service_runs_its_replicas_as_tasks(backend: tuple[ServiceBackend, str]) -> None:
    b, platform = backend
    app = f"s{secrets.token_hex(3)}"
    req = request_for(b, platform, app, replicas=2)
    svc = deployed(b, platform, req)
    assert (svc.name, svc.service, svc.release, svc.generation) == (f"{app}_web_1_0", "web", 1, 0)
    assert svc.replicas == 2 and svc.spec_key == b.service_key(req)
    assert svc.update_state is None and svc.previous is None
    found = settled(running(b, platform, app, 2))
    for task in found:
        assert (task.service, task.release, task.generation) == ("web", 1, 0)
        assert task.host and task.address and task.address.rpartition(":")[2].isdigit()
    assert b.list_services(f"other-{platform}") == []
    assert [i for i in b.list_instances(f"other-{platform}") if i.app == app] == []


def test_ensuring_again_changes_nothing_and_scaling_keeps_the_service(
    backend: tuple[ServiceBackend, str],
) -> None:
    b, platform = backend
    app = f"s{secrets.token_hex(3)}"
    req = request_for(b, platform, app, replicas=2)
    first = deployed(b, platform, req)
    b.ensure_service(req)
    assert one_service(b, platform, app) == first  # not even a new version: no update at all
    b.ensure_service(replace(req, replicas=1))
    scaled = one_service(b, platform, app)
    assert scaled.id == first.id and scaled.replicas == 1 and scaled.spec_key == first.spec_key
    settled(running(b, platform, app, 1))


def test_a_changed_spec_is_rolled_out_in_place(backend: tuple[ServiceBackend, str]) -> None:
    b, platform = backend
    app = f"s{secrets.token_hex(3)}"
    req = request_for(b, platform, app)
    first = deployed(b, platform, req)
    changed = replace(req, environment={"PORT": "80", "COLOR": "blue"})
    assert b.service_key(changed) != first.spec_key
    b.ensure_service(changed)
    updated = one_service(b, platform, app)
    assert updated.id == first.id and updated.spec_key == b.service_key(changed)
    assert updated.previous == (1, 0)
    settled(lambda: one_service(b, platform, app).update_state == "completed")
    settled(running(b, platform, app, 1))


def test_secrets_and_configs_are_in_the_key_by_digest_and_roll_out_in_place(
    backend: tuple[ServiceBackend, str],
) -> None:
    b, platform = backend
    app = f"s{secrets.token_hex(3)}"
    token = SecretFile("secret", "token", "a" * 32, "/run/secrets/token", b"one", uid=10, gid=10, mode=0o400)
    site = SecretFile("config", "site", "b" * 32, "/etc/site.conf", b"site", mode=0o440)
    req = request_for(b, platform, app, secret_files=(token, site))
    assert b.service_key(req) != b.service_key(replace(req, secret_files=()))
    assert b.service_key(replace(req, secret_files=(replace(token, data=b"x"), site))) == b.service_key(req)
    first = deployed(b, platform, req)
    assert first.spec_key == b.service_key(req)
    settled(running(b, platform, app, 1))
    b.ensure_service(req)
    assert one_service(b, platform, app) == first  # the objects are found again: no update
    changed = replace(req, secret_files=(replace(token, digest="c" * 32, data=b"two"), site))
    assert b.service_key(changed) != first.spec_key
    b.ensure_service(changed)
    updated = one_service(b, platform, app)
    assert updated.id == first.id and updated.spec_key == b.service_key(changed)
    settled(lambda: one_service(b, platform, app).update_state == "completed")
    settled(running(b, platform, app, 1))
    settled(lambda: _done(lambda: b.remove_app_resources(platform, app)))  # once the tasks left
    assert [s for s in b.list_services(platform) if s.app == app] == []


def test_the_key_follows_the_spec_not_the_replica_count(backend: tuple[ServiceBackend, str]) -> None:
    b, platform = backend
    req = request_for(b, platform, "k")
    assert b.service_key(replace(req, replicas=5)) == b.service_key(req)
    assert b.service_key(replace(req, release=2)) != b.service_key(req)
    assert b.service_key(replace(req, networks=("back",))) != b.service_key(req)


def test_removing_a_service_is_idempotent(backend: tuple[ServiceBackend, str]) -> None:
    b, platform = backend
    app = f"s{secrets.token_hex(3)}"
    svc = deployed(b, platform, request_for(b, platform, app))
    settled(running(b, platform, app, 1))
    assert b.failed_tasks(svc.id) == {}  # its task runs
    b.remove_service(svc.id)
    b.remove_service(svc.id)
    assert [s for s in b.list_services(platform) if s.app == app] == []
    assert b.failed_tasks(svc.id) == {}  # gone: none
    settled(lambda: not tasks(b, platform, app))


def test_networks_are_idempotent_and_go_with_the_app(backend: tuple[ServiceBackend, str]) -> None:
    b, platform = backend
    app = f"s{secrets.token_hex(3)}"
    for _ in range(2):
        b.ensure_overlay_network(platform, app)
        b.ensure_overlay_network(platform, app, "back")
    req = request_for(b, platform, app, networks=("", "back"))
    svc = deployed(b, platform, req)  # a third time, and the service joins both
    settled(running(b, platform, app, 1))
    b.remove_service(svc.id)
    settled(lambda: not tasks(b, platform, app))
    settled(lambda: _done(lambda: b.remove_app_resources(platform, app)))  # once the tasks left
    with pytest.raises(MyPaasError, match=r"network .* not found"):  # the networks went with the app
        b.ensure_service(req)  # (the engine answers 500 for it, the fake NotFound)


def _done(step: Callable[[], None]) -> bool:
    try:
        step()
    except MyPaasError:  # the engine detaches a removed service's tasks in the background
        return False
    return True


def test_a_port_a_service_publishes_is_taken(backend: tuple[ServiceBackend, str]) -> None:
    b, platform = backend
    app = f"s{secrets.token_hex(3)}"
    port = kit.free_port()
    assert b.host_port_free(port)
    req = request_for(b, platform, app)
    req = replace(req, service=req.service.model_copy(update={"ports": [PortSpec(container=80, host=port)]}))
    svc = deployed(b, platform, req)
    assert not b.host_port_free(port)
    [task] = settled(running(b, platform, app, 1))
    assert task.address and task.address.endswith(f":{port}")
    b.remove_service(svc.id)
    settled(lambda: b.host_port_free(port))


def test_a_task_belongs_to_its_service(backend: tuple[ServiceBackend, str]) -> None:
    b, platform = backend
    app = f"s{secrets.token_hex(3)}"
    deployed(b, platform, request_for(b, platform, app))
    [task] = settled(running(b, platform, app, 1))
    b.remove_instance(task.id, grace_s=1)  # the service's to stop, not the caller's: nothing happens
    assert [t.id for t in tasks(b, platform, app)] == [task.id]


def test_a_task_that_exits_is_kept_as_failed(backend: tuple[ServiceBackend, str]) -> None:
    b, platform = backend
    app = f"x{secrets.token_hex(3)}"
    req = request_for(b, platform, app)
    crashing = req.service.model_copy(update={"command": ["sh", "-c", "echo boom; exit 3"]})
    svc = deployed(b, platform, replace(req, service=crashing))
    if isinstance(b, FakeSwarmBackend):  # the fake runs nothing: its task exits as the engine's would
        [task] = settled(lambda: tasks(b, platform, app))
        b.fail_task(task.id, 3, logs=["boom"])

    failed = settled(lambda: b.failed_tasks(svc.id))

    task_id, report = next(iter(failed.items()))
    assert (report.exits, report.exit_code) == (1, 3)
    assert report.message == "failed: task: non-zero exit (3)"
    assert b.tail(task_id, 10).strip() == "boom"  # its logs, though Swarm replaced it
    b.remove_service(svc.id)
    assert b.failed_tasks(svc.id) == {}
