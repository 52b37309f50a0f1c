"""The pool of networks made ahead for new apps (composer/network_pool.py): taking one costs no network
creation, the refill keeps the pool full, no two apps ever share one (a manager killed mid-claim
included), and an app's removal removes the one it took."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import docker.errors
import pytest

from mypaas.composer.docker import DockerBackend
from mypaas.composer.network_pool import LABEL_POOL, PREFIX, NetworkPool
from mypaas.errors import Conflict


class Engine:
    """The Docker API calls the pool and an app's removal make, over an in-memory engine."""

    def __init__(self) -> None:
        self.networks_: dict[str, dict[str, str]] = {}  # name -> labels
        self.containers_: list[dict[str, Any]] = []
        self.created = 0

    # networks
    def create_network(self, name: str, **options: Any) -> dict[str, str]:
        assert name not in self.networks_
        self.created += 1
        self.networks_[name] = dict(options.get("labels") or {})
        return {"Id": name}

    def networks(self, names: list[str] | None = None, filters: dict[str, Any] | None = None) -> list[Any]:
        wanted = (filters or {}).get("label") or []
        rows = []
        for name, labels in self.networks_.items():
            if names and not any(n in name for n in names):  # the engine matches parts of names
                continue
            if all(labels.get(k) == v for k, _, v in (w.partition("=") for w in wanted)):
                rows.append({"Id": name, "Name": name, "Labels": labels})
        return rows

    def remove_network(self, name: str) -> None:
        if any(name in c["NetworkSettings"]["Networks"] for c in self.containers_):
            raise docker.errors.APIError("in use", explanation="network has active endpoints")
        del self.networks_[name]

    # containers
    def run(self, name: str, network: str, labels: dict[str, str]) -> None:
        self.containers_.append(
            {
                "Id": name,
                "Names": [f"/{name}"],
                "Labels": labels,
                "NetworkSettings": {"Networks": {network: {}}},
            }
        )

    def containers(self, all: bool = False, filters: dict[str, Any] | None = None) -> list[Any]:
        wanted = (filters or {}).get("label") or []
        on = (filters or {}).get("network")
        return [
            c
            for c in self.containers_
            if all_labels(c["Labels"], wanted)
            and (
                on is None
                or any(n in c["NetworkSettings"]["Networks"] for n in ([on] if isinstance(on, str) else on))
            )
        ]

    def images(self, filters: dict[str, Any] | None = None) -> list[Any]:
        return []

    def disconnect_container_from_network(self, cid: str, net: str, force: bool = False) -> None:
        for c in self.containers_:
            if c["Id"] == cid:
                c["NetworkSettings"]["Networks"].pop(net, None)


def all_labels(labels: dict[str, str], wanted: list[str]) -> bool:
    return all(labels.get(k) == v for k, _, v in (w.partition("=") for w in wanted))


def later(runs: list[Callable[[], None]]) -> Callable[[Callable[[], None]], None]:
    """A pool's ``spawn`` that keeps the refill for the test to run."""
    return runs.append


def mine(app: str) -> dict[str, str]:
    return {"mypaas.platform": "p1", "mypaas.app": app}


def pooled(engine: Engine) -> set[str]:
    return {n for n in engine.networks_ if n.startswith(PREFIX)}


def test_a_new_app_takes_a_network_made_ahead_and_the_pool_is_refilled() -> None:
    engine, runs = Engine(), list[Callable[[], None]]()
    pool = NetworkPool(engine, size=2, spawn=later(runs))
    pool.keep_up("p1")
    pool.keep_up("p1")  # one refill at a time
    assert len(runs) == 1 and not engine.created
    runs.pop()()
    assert len(pooled(engine)) == 2 and engine.created == 2
    assert all(engine.networks_[n] == {"mypaas.platform": "p1", LABEL_POOL: "1"} for n in pooled(engine))

    made_before = engine.created
    shop = pool.network_for("p1", "shop")

    assert shop in pooled(engine) and engine.created == made_before  # nothing made while it waited
    assert pool.network_for("p1", "shop") == shop  # held: every instance of the app joins it
    assert not runs  # no refill while the engine makes the app's container
    pool.observe("p1", [])  # the loop's next listing
    runs.pop()()
    assert len(pool.unused("p1") - {shop}) == 2  # two free again besides the taken one


def test_two_apps_never_share_a_network_and_an_empty_pool_makes_one() -> None:
    engine = Engine()
    pool = NetworkPool(
        engine, spawn=later([]), size=0
    )  # nothing made ahead: each app waits for its own, as before
    shop, blog = pool.network_for("p1", "shop"), pool.network_for("p1", "blog")
    assert shop != blog and {shop, blog} == pooled(engine)


def test_a_manager_killed_before_the_first_container_took_nothing() -> None:
    engine = Engine()
    first = NetworkPool(engine, spawn=later([]), size=1)
    first.refill("p1")
    taken = first.network_for("p1", "shop")  # then killed: no container was made on it

    after = NetworkPool(engine, spawn=later([]), size=1)  # the next manager, same engine
    after.refill("p1")

    assert taken in after.unused("p1")  # free again: no leak
    assert len(pooled(engine)) == 1


def test_a_manager_killed_after_the_first_container_never_gives_it_to_another_app() -> None:
    engine = Engine()
    first = NetworkPool(engine, spawn=later([]), size=1)
    first.refill("p1")
    taken = first.network_for("p1", "shop")
    engine.run("shop-web-1", taken, mine("shop"))  # the claim reached the engine, then the kill

    after = NetworkPool(engine, spawn=later([]), size=1)
    after.refill("p1")

    assert taken not in after.unused("p1")
    assert after.network_for("p1", "blog") != taken
    assert after.network_for("p1", "shop") == taken  # found on the app's containers


def test_a_network_a_foreign_container_is_on_is_never_handed_out() -> None:
    engine = Engine()
    pool = NetworkPool(engine, spawn=later([]), size=1)
    pool.refill("p1")
    [free] = pooled(engine)
    engine.run("theirs", free, {})  # after the pool found it free
    assert pool.network_for("p1", "shop") != free
    assert free not in pool.unused("p1")
    assert NetworkPool(engine, spawn=later([]), size=1).network_for("p1", "blog") != free


def test_an_app_from_before_the_pool_keeps_its_own_network() -> None:
    engine = Engine()
    engine.networks_["mypaas_shop"] = mine("shop")
    engine.run("shop-web-1", "mypaas_shop", mine("shop"))
    assert NetworkPool(engine, spawn=later([]), size=1).network_for("p1", "shop") == "mypaas_shop"


def test_the_refill_trims_what_removed_apps_left_free() -> None:
    engine = Engine()
    for n in range(4):
        engine.networks_[f"{PREFIX}{n}"] = {"mypaas.platform": "p1", LABEL_POOL: "1"}
    engine.networks_[f"{PREFIX}other"] = {"mypaas.platform": "p2", LABEL_POOL: "1"}  # another platform's
    NetworkPool(engine, spawn=later([]), size=2).refill("p1")
    assert len(pooled(engine)) == 3 and f"{PREFIX}other" in engine.networks_


def _backend(engine: Engine) -> DockerBackend:
    backend = DockerBackend.__new__(DockerBackend)
    backend._api = engine  # type: ignore[assignment]
    backend._files = None
    backend._pool = NetworkPool(engine, spawn=later([]), size=1)
    return backend


def test_removing_an_app_removes_the_network_it_took() -> None:
    engine = Engine()
    backend = _backend(engine)
    backend._pool.refill("p1")
    backend.ensure_network("p1", "shop")
    taken = backend._pool.network_for("p1", "shop")
    backend.ensure_network("p1", "shop", "back")  # a named network: its own, labelled for the app

    backend.remove_app_resources("p1", "shop", volumes=False)

    assert taken not in engine.networks_ and "mypaas_shop_back" not in engine.networks_
    assert backend._pool.network_for("p1", "shop") != taken  # a deploy of the same name takes another


def test_a_foreign_container_blocks_the_removal_each_time_until_forced() -> None:
    engine = Engine()
    backend = _backend(engine)
    taken = backend._pool.network_for("p1", "shop")
    engine.run("theirs", taken, {})
    for _ in range(2):  # the removal is tried again: it must say so again
        with pytest.raises(Conflict, match=f"network {taken} has active endpoints \\(container theirs\\)"):
            backend.remove_app_resources("p1", "shop", volumes=False)
    backend.remove_app_resources("p1", "shop", volumes=False, force=True)
    assert taken not in engine.networks_


def test_the_loops_listing_says_whose_networks_are_whose_without_asking_again() -> None:
    engine = Engine()
    first = NetworkPool(engine, spawn=later([]), size=1)
    first.refill("p1")
    taken = first.network_for("p1", "shop")
    engine.run("shop-web-1", taken, mine("shop"))

    after, runs = Engine(), list[Callable[[], None]]()  # the next manager: it lists, then deploys
    after.__dict__.update(engine.__dict__)
    pool = NetworkPool(after, spawn=later(runs), size=1)
    pool.observe("p1", after.containers(all=True, filters={"label": ["mypaas.platform=p1"]}))
    assert len(runs) == 1  # the first listing starts the refill
    runs.pop()()
    pool.observe("p1", [])
    assert not runs  # the pool is full: a listing asks nothing more
    asked: list[Any] = []
    after.containers = lambda **kw: asked.append(kw) or []  # type: ignore[method-assign]

    assert pool.network_for("p1", "shop") == taken
    assert asked == []  # known from the listing
    blog = pool.network_for("p1", "blog")
    assert blog != taken and asked == [{"all": True, "filters": {"network": [blog]}}]  # only the check
