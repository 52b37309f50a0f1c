"""The monitor wired into the manager, on the fake backend: user actions, rollouts and readiness become
events; the engine's die/oom events too; the sampler follows the observed instances; the API serves it."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from mypaas.api.app import create_app
from mypaas.domain import EngineEvent
from mypaas.states import InstanceState
from tests.unit.test_reconcile import World


def _kinds(world: World, app: str | None = None) -> list[str]:
    log = world.platform.monitoring.events
    log.flush()
    return [e.kind for e in log.query(app=app, limit=1000)]


def test_actions_rollouts_and_readiness_are_recorded(tmp_path: Path) -> None:
    world = World(tmp_path)
    world.backend.add_image("web:1")
    world.backend.add_image("web:2")
    world.deploy("shop", "web:1")
    world.settle()
    assert _kinds(world, "shop") == ["deploy_accepted", "instance_ready", "release_activated"]
    world.platform.apps.scale("shop", {"web": 2}, "alice")
    world.settle()
    world.platform.releases.set_config("shop", {"A": "1"}, [], "alice")
    world.settle()
    world.platform.apps.set_state("shop", "stop", "alice")
    world.settle()
    kinds = _kinds(world, "shop")
    for kind in ("scaled", "config_changed", "stop"):
        assert kind in kinds
    scaled = next(e for e in world.platform.monitoring.events.query(app="shop") if e.kind == "scaled")
    assert scaled.data["replicas"] == {"web": 2} and scaled.data["user"] == "alice"


def test_an_abandoned_rollout_says_why(tmp_path: Path) -> None:
    world = World(tmp_path)
    world.backend.add_image("web:1")
    world.backend.add_image("web:2")
    world.deploy("shop", "web:1")
    world.settle()
    world.deploy("shop", "web:2")
    rec = world.platform.reconciler
    rec.pass_once()
    world.now += 31
    rec.pass_once()
    log = world.platform.monitoring.events
    log.flush()
    [abandoned] = [e for e in log.query(app="shop") if e.kind == "rollout_abandoned"]
    assert "v1 keeps serving" in abandoned.message


def test_engine_events_and_sampler_targets(tmp_path: Path) -> None:
    world = World(tmp_path)
    world.backend.add_image("web:1")
    world.deploy("shop", "web:1")
    world.settle()
    [inst] = world.backend.instances.values()
    monitoring = world.platform.monitoring
    assert monitoring.sampler.tracked() == [inst.id]
    monitoring.on_engine_event(
        EngineEvent(instance_id=inst.id, action="oom", app="shop", service="web", name=inst.name)
    )
    monitoring.on_engine_event(
        EngineEvent(
            instance_id=inst.id, action="die", app="shop", service="web", name=inst.name, exit_code=137
        )
    )
    monitoring.on_engine_event(EngineEvent(instance_id="x", action="die"))  # not an app's: ignored
    world.backend.set_state(inst.id, InstanceState.EXITED, exit_code=137)
    world.platform.reconciler.pass_once()
    assert monitoring.sampler.tracked() == []  # an exited instance is not sampled
    kinds = _kinds(world, "shop")
    assert {"oom_killed", "instance_exited", "instance_unready"} <= set(kinds)
    died = next(e for e in monitoring.events.query(app="shop") if e.kind == "instance_exited")
    assert died.data["exit_code"] == 137 and died.data["expected"] is False


def test_api_serves_events_series_and_prometheus(tmp_path: Path) -> None:
    world = World(tmp_path)
    world.backend.add_image("web:1")
    world.deploy("shop", "web:1")
    world.settle()
    platform = world.platform
    platform.monitoring.sampler.sample_once()  # the host at least (fake instances have no process)
    platform.monitoring.events.flush()
    client = TestClient(create_app(platform))
    client.headers["Authorization"] = f"Bearer {platform.admin_token}"
    events = client.get("/api/v1/events", params={"app": "shop", "since": "1h"}).json()
    assert events[0]["kind"] == "deploy_accepted"
    assert client.get("/api/v1/events", params={"since": "soon"}).status_code == 400
    assert client.get("/api/v1/events", params={"after": events[-1]["id"], "wait": 0.2}).json() == []
    assert client.get("/api/v1/apps/shop/metrics").json()["app"] == "shop"
    assert client.get("/api/v1/apps/nope/metrics").status_code == 404
    assert client.get("/api/v1/metrics/now").json()["host"]["instance"] == "host"
    text = client.get("/metrics").text
    assert "mypaas_up 1" in text and "mypaas_host_memory_total_bytes" in text
    assert client.get("/metrics", headers={"Authorization": ""}).status_code == 401
