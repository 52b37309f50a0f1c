"""Reading desired state each pass costs what changed, not every release again: a target release's
encrypted spec and config are decrypted and parsed once, and forgotten once no app targets it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mypaas.manager.state import desired, sealed
from mypaas.manager.state.desired import load_desired
from tests.unit.test_reconcile import World


@pytest.fixture
def world(tmp_path: Path) -> World:
    w = World(tmp_path)
    w.backend.add_image("web:1")
    w.backend.add_image("web:2")
    return w


def _count_parses(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every release spec the desired-state reader parses from here on."""
    parsed: list[Any] = []
    real = desired.AppSpec

    class Counting:
        @staticmethod
        def model_validate(value: Any) -> Any:
            parsed.append(value)
            return real.model_validate(value)

    monkeypatch.setattr(desired, "AppSpec", Counting)
    return parsed


def test_a_pass_parses_only_the_releases_it_has_not_seen(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    for app in ("shop", "blog", "wiki"):
        world.deploy(app, "web:1")
    world.settle()
    parsed = _count_parses(monkeypatch)
    opened: list[Any] = []
    real_unseal = sealed.unseal
    monkeypatch.setattr(sealed, "unseal", lambda *a: opened.append(a) or real_unseal(*a))
    for _ in range(3):
        world.platform.reconciler.pass_once()
    assert parsed == [] and opened == []  # every spec and config came from what was read before
    world.deploy("shop", "web:2")
    world.settle()
    assert len(parsed) == 1  # shop's new release, once, however many passes followed
    with world.platform.reconciler._sessions() as s:
        apps, _ = load_desired(s)
    assert apps["shop"].spec is not None and apps["shop"].spec.services["web"].image == "web:2"
    assert apps["blog"].config == {}


def test_releases_no_app_targets_are_forgotten(world: World) -> None:
    world.deploy("shop", "web:1")
    world.settle()
    world.deploy("shop", "web:2")
    world.settle()
    with world.platform.reconciler._sessions() as s:
        load_desired(s)
        targets = s.execute(
            desired.select(desired.ReleaseRow.id).where(desired.ReleaseRow.version == 2)
        ).all()
    assert {rid for rid, _ in desired._RELEASES} == {rid for (rid,) in targets}


class _Rows:
    """A session that loads any release asked for."""

    def execute(self, _stmt: Any) -> Any:
        class Result:
            def __iter__(self) -> Any:
                ids = [v for v in _stmt.whereclause.right.value]
                return iter([(rid, 0.0, {"n": rid}, {}) for rid in ids])

        return Result()


def test_two_threads_reading_different_targets_never_trip_over_the_cache(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sys
    import threading

    class Spec:
        @staticmethod
        def model_validate(value: Any) -> Any:
            return value

    monkeypatch.setattr(desired, "AppSpec", Spec)
    monkeypatch.setattr(desired, "_RELEASES", {})
    errors: list[BaseException] = []

    def hammer(ids: list[int]) -> None:
        session = _Rows()
        try:
            for _ in range(3000):
                got = desired._releases(session, {(rid, 0.0) for rid in ids})  # type: ignore[arg-type]
                assert {k[0] for k in got} == set(ids)
                assert all(spec == {"n": rid} for (rid, _), (spec, _) in got.items())
        except BaseException as exc:
            errors.append(exc)

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=hammer, args=(ids,)) for ids in ([1, 2, 3], [4, 5, 6])]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(old)
    assert errors == []


def test_an_unchanged_app_is_the_same_object_and_the_order_stays(world: World) -> None:
    for app in ("shop", "blog", "wiki"):
        world.deploy(app, "web:1")
    world.settle()
    unchanged = desired.Unchanged()
    with world.platform.reconciler._sessions() as s:
        first, _ = load_desired(s, unchanged)
    world.platform.apps.scale("blog", {"web": 2}, "t")
    with world.platform.reconciler._sessions() as s:
        second, _ = load_desired(s, unchanged)
    assert list(second) == list(first) == ["shop", "blog", "wiki"]
    assert second["shop"] is first["shop"] and second["wiki"] is first["wiki"]
    assert second["blog"] is not first["blog"] and second["blog"].scale == {"web": 2}
    assert second["blog"].spec is first["blog"].spec  # its release was not parsed again


def test_a_write_to_an_app_s_row_is_read_whole_again(world: World) -> None:
    world.deploy("shop", "web:1")
    world.settle()
    unchanged = desired.Unchanged()
    with world.platform.reconciler._sessions() as s:
        first, _ = load_desired(s, unchanged)
    world.platform.apps.set_state("shop", "stop", "t")
    with world.platform.reconciler._sessions() as s:
        second, _ = load_desired(s, unchanged)
    assert first["shop"].state == "running" and second["shop"].state == "stopped"
    assert second["shop"].operation_id is not None
