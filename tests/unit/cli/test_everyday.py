"""Issue 11, slice E: small everyday behaviours seen through the `mypaas` CLI against the real API
(the fake backend underneath): autoscale targets, probe lines in `logs`, `--json` on mutating verbs,
release descriptions and no-op deploys, a stopped app."""

from __future__ import annotations

from fastapi.testclient import TestClient

from mypaas.composer.fake import FakeBackend
from mypaas.manager.platform import Platform
from tests.unit.cli.support import Server, cli, deploy, one_error_line, settle

WEB_AND_WORKER = "services:\n  web:\n    image: web:1\n    expose: [80]\n  worker:\n    image: web:1\n"


# -- autoscale --rps needs the routed service ----------------------------------------------------


def test_autoscale_rps_on_an_unrouted_service_is_refused(
    server: Server, api: TestClient, platform: Platform, backend: FakeBackend
) -> None:
    deploy(api, "hello", compose=WEB_AND_WORKER)
    settle(platform, backend)

    line = one_error_line(cli("autoscale", "hello", "worker", "--max", "4", "--rps", "10"))

    assert line == (
        "error: --rps needs a routed service: the router counts requests per second, and worker has "
        "no routed port (only web is routed); scale worker on --cpu instead"
    )
    assert api.get("/api/v1/apps/hello/autoscale").json() == []
    answer = api.put("/api/v1/apps/hello/autoscale/worker", json={"max": 4, "target_rps_per_replica": 10})
    assert (answer.status_code, answer.json()["field"]) == (400, "rps")


def test_autoscale_cpu_on_an_unrouted_service_and_rps_on_the_routed_one_work(
    server: Server, api: TestClient, platform: Platform, backend: FakeBackend
) -> None:
    deploy(api, "hello", compose=WEB_AND_WORKER)
    settle(platform, backend)

    assert cli("autoscale", "hello", "worker", "--max", "4", "--cpu", "50").exit_code == 0
    assert cli("autoscale", "hello", "web", "--max", "4", "--rps", "10").exit_code == 0

    policies = {p["service"]: p for p in api.get("/api/v1/apps/hello/autoscale").json()}
    assert policies["worker"]["target_cpu_pct"] == 50
    assert policies["web"]["target_rps_per_replica"] == 10

