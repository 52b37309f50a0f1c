"""`mypaas rm` loses nothing by surprise: named volumes are kept unless --volumes (and said so), `mypaas
volumes ls|rm` sees and removes what is kept, a redeploy of the same name mounts them again; a removal
that cannot finish says why in `ls`, `ps`, `rm` and `events`, and `rm --force` finishes it."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from mypaas.cli.volumes import removal_line, removal_question
from mypaas.composer.fake import FakeBackend
from mypaas.manager.platform import Platform
from tests.unit.cli.support import Server, cli, deploy, one_error_line, settle

WITH_DATA = """services:
  web:
    image: web:1
    volumes: [data:/var/lib/data]
volumes:
  data: {}
"""
VOLUME = "mypaas_shop_data"


def removed(platform: Platform) -> None:
    """Reconcile passes until the removals they start are done (instances, then the app)."""
    for _ in range(3):
        platform.reconciler.pass_once()
        platform.reconciler.join_removals()


@pytest.fixture
def shop(api: TestClient, platform: Platform, backend: FakeBackend) -> str:
    """App ``shop`` running v1, with its named volume ``data`` mounted."""
    deploy(api, "shop", compose=WITH_DATA)
    settle(platform, backend)
    assert VOLUME in backend.volumes
    return "shop"


def test_rm_keeps_the_volumes_and_says_so(
    shop: str, server: Server, manager: Platform, backend: FakeBackend
) -> None:
    result = cli("rm", "shop", "--yes")

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-2:] == [
        "removed shop",
        f"kept volume {VOLUME} (mypaas volumes rm {VOLUME} removes it)",
    ]
    assert VOLUME in backend.volumes
    listed = cli("volumes", "ls")
    assert listed.stdout.splitlines()[1].split() == [VOLUME, "shop", "data", "removed", "(kept)", "-"]
    [entry] = json.loads(cli("volumes", "ls", "shop", "--json").stdout)
    assert entry | {"created": ""} == {
        "name": VOLUME,
        "app": "shop",
        "volume": "data",
        "app_state": "removed",
        "used_by": [],
        "created": "",
    }


def test_a_kept_volume_is_mounted_again_by_a_deploy_of_the_same_name(
    shop: str, server: Server, api: TestClient, platform: Platform, backend: FakeBackend
) -> None:
    backend.volumes[VOLUME]["marker"] = "the data of v1"  # what the engine's volume holds
    platform.apps.delete("shop", "admin")
    removed(platform)
    assert "shop" not in {a["name"] for a in platform.apps.summaries()}

    deploy(api, "shop", compose=WITH_DATA)
    settle(platform, backend)

    assert backend.volumes[VOLUME]["marker"] == "the data of v1"  # the same volume, not a new one
    req = list(backend.requests.values())[-1]  # the new instance
    assert [m.source for m in req.service.volumes] == ["data"] and req.volumes == ("data",)
    refused = one_error_line(cli("volumes", "rm", VOLUME))
    assert refused.startswith(f"error: volume {VOLUME} is in use by app shop (container ")


def test_rm_volumes_removes_them_and_says_so(
    shop: str, server: Server, manager: Platform, backend: FakeBackend
) -> None:
    result = cli("rm", "shop", "--yes", "--volumes")

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == f"removed volume {VOLUME}"
    assert VOLUME not in backend.volumes
    assert cli("volumes", "ls").stdout == "no app volumes\n"


def test_the_question_names_the_volumes(
    shop: str, server: Server, manager: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert removal_question("shop", [VOLUME], False) == (
        f"Remove app shop with its instances, releases and config, keeping volume {VOLUME}?"
    )
    assert removal_question("shop", ["a", "b"], True) == (
        "Remove app shop with its instances, releases, config and volumes a, b (data lost)?"
    )
    assert removal_question("shop", [], True) == "Remove app shop with its instances, releases and config?"
    assert removal_question("shop", ["a"], True, images=True) == (
        "Remove app shop with its instances, releases, config, registry images and volume a (data lost)?"
    )
    assert removal_question("shop", [], False, images=True) == (
        "Remove app shop with its instances, releases, config and registry images?"
    )
    assert (
        removal_line(["a", "b"], False, waited=True)
        == "kept volumes a, b (mypaas volumes rm a b removes them)"
    )
    assert removal_line(["a"], True, waited=False) == "removing volume a"
    assert removal_line([], True, waited=True) == ""
    monkeypatch.setattr("typer.testing._NamedTextIOWrapper.isatty", lambda _self: True)  # a terminal

    answered_no = cli("rm", "shop", stdin=b"n\n")

    assert f"keeping volume {VOLUME}? [y/N]:" in answered_no.stdout, answered_no.output
    assert one_error_line(answered_no) == "error: shop not removed"


def test_volumes_rm_refuses_what_is_not_a_volume_of_an_app(server: Server, backend: FakeBackend) -> None:
    backend.volumes["somebodys"] = {}  # an engine volume MyPaas did not make

    line = one_error_line(cli("volumes", "rm", "somebodys"))

    assert line == "error: no app volume named 'somebodys' (mypaas volumes ls lists them)"
    assert "somebodys" in backend.volumes


def test_volumes_rm_removes_a_kept_volume(
    shop: str, server: Server, platform: Platform, backend: FakeBackend
) -> None:
    platform.apps.delete("shop", "admin")
    removed(platform)

    result = cli("volumes", "rm", VOLUME)

    assert result.exit_code == 0, result.output
    assert result.stdout == f"removed volume {VOLUME}\n"
    assert VOLUME not in backend.volumes


# -- a removal that cannot finish ------------------------------------------------------------------


BLOCKED = "network mypaas_shop has active endpoints (container foo)"


def test_a_blocked_removal_says_why_and_rm_force_finishes_it(
    shop: str, server: Server, manager: Platform, backend: FakeBackend
) -> None:
    backend.foreign["mypaas_shop"] = ["foo"]  # a container MyPaas did not make, on the app's network

    result = cli("rm", "shop", "--yes")

    assert one_error_line(result) == (  # said once, not also as the step's error
        f"error: removing shop cannot finish: {BLOCKED} (mypaas rm shop --force finishes it)"
    )
    listed = cli("ls").stdout.splitlines()
    assert listed[1].startswith(f"shop  default  deleting: {BLOCKED}  v1")
    ps = cli("ps", "shop")
    assert ps.exit_code == 0
    assert ps.stderr == (
        f"app shop is being deleted but cannot be: {BLOCKED} (mypaas rm shop --force finishes it)\n"
    )
    again = one_error_line(cli("rm", "shop", "--yes"))
    assert (
        again
        == f"error: app shop is being deleted but cannot be: {BLOCKED} (mypaas rm shop --force finishes it)"
    )
    manager.monitoring.events.flush()
    events = cli("events", "shop").stdout
    assert f"removing shop cannot finish: {BLOCKED}" in events

    forced = cli("rm", "shop", "--yes", "--force")

    assert forced.exit_code == 0, forced.output
    assert "removed shop" in forced.stdout
    assert "shop" not in cli("ls").stdout
    assert "mypaas_shop" not in backend.networks and not backend.foreign
    assert VOLUME in backend.volumes  # forced, but the volumes were not asked for


def test_autoscale_on_an_app_being_removed_is_refused(server: Server, api: TestClient, shop: str) -> None:
    """The removal would leave the policy behind (for a later app of the same name to inherit)."""
    assert cli("rm", shop, "--yes", "--no-wait").exit_code == 0

    line = one_error_line(cli("autoscale", shop, "web", "--max", "3", "--cpu", "50"))

    assert line == f"error: app {shop} is being deleted"
    answer = api.put(f"/api/v1/apps/{shop}/autoscale/web", json={"max": 3, "target_cpu_pct": 50})
    assert (answer.status_code, answer.json()["field"]) == (409, "app")
    assert api.get(f"/api/v1/apps/{shop}/autoscale").json() == []


def test_a_typo_is_said_before_the_question(
    shop: str, server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("typer.testing._NamedTextIOWrapper.isatty", lambda _self: True)  # a terminal

    result = cli("rm", "sohp", stdin=b"y\n")

    assert "Remove app" not in result.stdout, result.output
    assert one_error_line(result) == "error: no app named 'sohp'; did you mean 'shop'?"
    assert not server.sent("DELETE", "/api/v1/apps/sohp")
