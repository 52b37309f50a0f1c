"""A pass plans again only the apps whose desired state, instances or verdicts changed since a plan that
found nothing to do; what changes behind its back (an instance gone, one failing its probe, a scale) is
still seen on the next pass. Real planner and store over the fake backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mypaas.manager.reconcile import kinds
from tests.unit.test_reconcile import World


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path)
    w.backend.add_image("web:1")
    yield w


@pytest.fixture
def planned(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The apps the docker kind plans, pass after pass."""
    seen: list[str] = []
    real = kinds.plan_app

    def counting(app: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(app.name)
        return real(app, *args, **kwargs)

    monkeypatch.setattr(kinds, "plan_app", counting)
    return seen


def _at_rest(world: World, *apps: str) -> None:
    for app in apps:
        world.deploy(app, "web:1")
    world.settle()


def test_apps_at_rest_are_not_planned_again(world: World, planned: list[str]) -> None:
    _at_rest(world, "shop", "blog")
    planned.clear()
    world.platform.reconciler.pass_once()
    world.platform.reconciler.pass_once()
    assert planned == []
    assert world.platform.reconciler.observed.waiting == {"shop": [], "blog": []}


def test_an_instance_removed_behind_the_loops_back_is_made_again(world: World, planned: list[str]) -> None:
    _at_rest(world, "shop", "blog")
    [gone] = [i for i in world.backend.instances.values() if i.app == "shop"]
    world.backend.instances.pop(gone.id)
    planned.clear()
    world.platform.reconciler.pass_once()
    assert planned == ["shop"]
    [new] = [i for i in world.backend.instances.values() if i.app == "shop"]
    assert new.id != gone.id
    world.settle()
    assert world.router.upstreams("shop") == (new.address,)


def test_an_instance_failing_its_probe_is_planned_again(world: World, planned: list[str]) -> None:
    _at_rest(world, "shop", "blog")
    [inst] = [i for i in world.backend.instances.values() if i.app == "shop"]
    world.healthy.discard(inst.address or "")
    world.probe_all()
    world.probe_all()  # a second failed probe: not ready any more (nothing the engine lists changed)
    assert not world.platform.reconciler.tracker.ready(inst)
    planned.clear()
    world.platform.reconciler.pass_once()
    assert planned == ["shop"]
    assert world.router.upstreams("shop") == ()  # out of the route at once


def test_a_scale_is_planned(world: World, planned: list[str]) -> None:
    _at_rest(world, "shop", "blog")
    world.platform.apps.scale("blog", {"web": 2}, "t")
    planned.clear()
    world.platform.reconciler.pass_once()
    assert planned == ["blog"]
    world.settle()
    assert len([i for i in world.backend.instances.values() if i.app == "blog"]) == 2
    assert len(world.router.upstreams("blog")) == 2
