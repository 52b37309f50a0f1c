"""A redeploy and the replica counts: a `scale` by hand survives a redeploy of a file whose `replicas`
did not change; a changed value wins, and the deploy says which it did (manager/formation.py)."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from mypaas.manager.platform import Platform
from tests.unit.cli.support import Server, change, cli


def _compose(tmp_path: Path, replicas: int) -> str:
    path = tmp_path / "compose.yml"
    path.write_text(f"services:\n  web:\n    image: web:1\n    deploy: {{replicas: {replicas}}}\n")
    return str(path)


def _replicas(api: TestClient) -> int:
    return int(api.get("/api/v1/apps/shop").json()["services"]["web"]["replicas"])


def test_a_scaled_count_stays_until_the_file_changes_its_own(
    tmp_path: Path, server: Server, api: TestClient, manager: Platform
) -> None:
    assert cli("deploy", "shop", "-f", _compose(tmp_path, 1)).exit_code == 0
    assert cli("scale", "shop", "web=5").exit_code == 0

    again = cli("deploy", "shop", "-f", _compose(tmp_path, 1))

    assert again.exit_code == 0, again.output
    assert "web: keeps 5 replicas (scaled; the file says 1)\n" in again.stderr
    assert _replicas(api) == 5

    changed = cli("deploy", "shop", "-f", _compose(tmp_path, 3))

    assert changed.exit_code == 0, changed.output
    assert "web: 5 → 3 replicas, as the file says\n" in changed.stderr
    assert _replicas(api) == 3

    same = cli("deploy", "shop", "-f", _compose(tmp_path, 3))
    assert "replicas" not in same.stderr  # nothing scaled, nothing to say
    assert _replicas(api) == 3


def test_a_config_change_keeps_the_scaled_count(
    tmp_path: Path, server: Server, api: TestClient, manager: Platform
) -> None:
    assert cli("deploy", "shop", "-f", _compose(tmp_path, 1)).exit_code == 0
    assert cli("scale", "shop", "web=4").exit_code == 0

    assert cli("config", "set", "shop", "A=1").exit_code == 0

    assert _replicas(api) == 4


def test_an_autoscaled_service_keeps_its_count_within_the_policy(
    tmp_path: Path, server: Server, api: TestClient, manager: Platform
) -> None:
    assert cli("deploy", "shop", "-f", _compose(tmp_path, 1)).exit_code == 0
    change(api, "PUT", "apps/shop/autoscale/web", {"min": 2, "max": 6, "target_cpu_pct": 50})
    assert cli("scale", "shop", "web=4").exit_code == 0

    result = cli("deploy", "shop", "-f", _compose(tmp_path, 8))

    assert result.exit_code == 0, result.output
    assert "web: keeps 4 replicas (autoscaled 2..6; the file says 8)\n" in result.stderr
    assert _replicas(api) == 4


def test_a_rollback_keeps_the_counts(
    tmp_path: Path, server: Server, api: TestClient, manager: Platform
) -> None:
    assert cli("deploy", "shop", "-f", _compose(tmp_path, 1)).exit_code == 0
    assert cli("deploy", "shop", "-f", _compose(tmp_path, 3)).exit_code == 0
    assert _replicas(api) == 3

    result = cli("rollback", "shop")

    assert result.exit_code == 0, result.output
    assert "web: keeps 3 replicas (scaled; the file says 1)\n" in result.stderr
    assert _replicas(api) == 3  # the formation is not part of a release


def test_redeploying_what_runs_after_a_scale_makes_no_release(
    tmp_path: Path, server: Server, api: TestClient, manager: Platform
) -> None:
    """The file's replicas did not change, so the scaled count stays (the rule above): the release
    would be the one running, so there is none and nothing restarts; the deploy says the count kept."""
    assert cli("deploy", "shop", "-f", _compose(tmp_path, 3)).exit_code == 0
    assert cli("scale", "shop", "web=1").exit_code == 0

    again = cli("deploy", "shop", "-f", _compose(tmp_path, 3))

    assert again.exit_code == 0, again.output
    assert again.stdout == "nothing changed: v1 is running\n"
    assert "web: keeps 1 replicas (scaled; the file says 3)\n" in again.stderr
    assert [r["version"] for r in api.get("/api/v1/apps/shop/releases").json()] == [1]
    assert _replicas(api) == 1
