"""Issue 11, slice E: small everyday behaviours seen through the `mypaas` CLI against the real API
(the fake backend underneath): autoscale targets, probe lines in `logs`, `--json` on mutating verbs,
release descriptions and no-op deploys, a stopped app."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from mypaas.composer.base import ImageInfo
from mypaas.composer.fake import FakeBackend
from mypaas.manager.platform import Platform
from mypaas.monitor.requests import RequestFigures
from mypaas.router.config import Route
from tests.unit.cli.support import Server, cli, deploy, finished, one_error_line, settle

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


# -- health probe lines in `logs` ----------------------------------------------------------------

PROBE_LINE = '10.0.0.1 - - [05/Dec/2026:00:00:00] "GET / HTTP/1.1" 200 5 "-" "MyPaas-probe/0.1.0"'


def test_logs_leave_probe_lines_out_unless_asked(
    server: Server, api: TestClient, platform: Platform, backend: FakeBackend
) -> None:
    deploy(api, "hello", image="web:1")
    settle(platform, backend)
    [iid] = backend.instances
    backend.logs_by_id[iid] = ["listening on :80", PROBE_LINE, PROBE_LINE, 'GET /shop "curl/8.0"', PROBE_LINE]

    quiet = cli("logs", "hello")
    everything = cli("logs", "hello", "--probes")
    last = cli("logs", "hello", "--tail", "1")

    assert quiet.exit_code == 0, quiet.output
    assert quiet.stdout == 'listening on :80\nGET /shop "curl/8.0"\n'
    assert everything.stdout.count("MyPaas-probe/") == 3
    assert last.stdout == 'GET /shop "curl/8.0"\n'  # the last line that is not a probe's
    assert [q.url.params["probes"] for q, _ in server.sent("GET", "/api/v1/apps/hello/logs")] == [
        "false",
        "true",
        "false",
    ]
    assert "MyPaas-probe/" in api.get("/api/v1/apps/hello/logs", params={"probes": True}).text
    assert "MyPaas-probe/" not in api.get("/api/v1/apps/hello/logs").text  # the API's default


def test_logs_tail_reads_the_end_of_the_log_not_all_of_it(
    server: Server, api: TestClient, platform: Platform, backend: FakeBackend
) -> None:
    deploy(api, "hello", image="web:1")
    settle(platform, backend)
    [iid] = backend.instances
    backend.logs_by_id[iid] = ["listening on :80", *[PROBE_LINE] * 5000, 'GET /shop "curl/8.0"', PROBE_LINE]
    asked: list[int | None] = []
    read = backend.logs

    def logs(ids: list[str], *, tail: int | None, follow: bool, stop: threading.Event) -> Iterator[str]:
        asked.append(tail)
        return read(ids, tail=tail, follow=follow, stop=stop)

    backend.logs = logs  # type: ignore[method-assign]

    assert cli("logs", "hello", "--tail", "1").stdout == 'GET /shop "curl/8.0"\n'
    assert asked == [200]  # the last 200 lines hold it: the 5000 probe lines before are not read


# -- release descriptions; deploying the running release again ------------------------------------


def compose_file(tmp_path: Path, image: str, env: str = "") -> Path:
    path = tmp_path / "compose.yml"
    environment = f"\n    environment: [{env}]" if env else ""
    path.write_text(f"services:\n  web:\n    image: {image}\n    expose: [80]{environment}\n")
    return path


def test_a_deploy_without_m_describes_what_changed(
    server: Server, manager: Platform, backend: FakeBackend, tmp_path: Path
) -> None:
    backend.add_image("uxhello/web:v2", exposed=(80,))
    assert cli("deploy", "hello", "-f", str(compose_file(tmp_path, "web:1"))).exit_code == 0
    second = cli("deploy", "hello", "-f", str(compose_file(tmp_path, "uxhello/web:v2", "DEBUG=1")))
    assert second.exit_code == 0, second.output

    listed = cli("releases", "hello", "--json")

    descriptions = [r["description"] for r in json.loads(listed.stdout)]
    assert descriptions == ["web image uxhello/web:v2, env +DEBUG", "First deploy: web web:1"]


def test_deploying_the_running_release_again_changes_nothing(
    server: Server, manager: Platform, backend: FakeBackend, tmp_path: Path
) -> None:
    compose = compose_file(tmp_path, "web:1")
    assert cli("deploy", "hello", "-f", str(compose)).exit_code == 0
    before = set(backend.instances)

    again = cli("deploy", "hello", "-f", str(compose))

    assert again.exit_code == 0, again.output
    assert again.stdout == "nothing changed: v1 is running\n"
    assert [r["version"] for r in json.loads(cli("releases", "hello", "--json").stdout)] == [1]
    assert set(backend.instances) == before  # nothing restarted
    assert cli("deploy", "hello", "-f", str(compose), "-m", "same").stdout.startswith("nothing changed")


def test_deploying_what_runs_during_a_build_supersedes_the_build(
    server: Server, manager: Platform, backend: FakeBackend, api: TestClient, tmp_path: Path
) -> None:
    """The later deploy wins, as any later deploy does: the build in flight makes no release."""
    compose = compose_file(tmp_path, "web:1")
    assert cli("deploy", "hello", "-f", str(compose)).exit_code == 0
    gate = threading.Event()
    build = backend.build_image

    def held_build(context: bytes, **kwargs: Any) -> ImageInfo:
        gate.wait(30)
        return build(context, **kwargs)

    backend.build_image = held_build  # type: ignore[method-assign]
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "Dockerfile").write_text("FROM scratch\n")
    started = cli("deploy", "hello", str(tmp_path / "app"), "--port", "80", "--no-wait", "--json")
    building = json.loads(started.stdout)["operation"]

    again = cli("deploy", "hello", "-f", str(compose))
    gate.set()

    assert again.stdout == "nothing changed: v1 is running\n"
    ended = finished(api, building["id"])
    assert ended["status"] == "failed"
    assert ended["message"].startswith("superseded by operation ")
    assert [r["version"] for r in json.loads(cli("releases", "hello", "--json").stdout)] == [1]


# -- a stopped app: the router says so, and app_down stays quiet ----------------------------------


def routes_after(platform: Platform, backend: FakeBackend) -> list[Route]:
    """Settle, probe every instance (the router is pushed once verdicts are in), one more pass."""
    settle(platform, backend)
    platform.reconciler.tracker.check_all()
    platform.reconciler.pass_once()
    return list(platform.router.routes)  # type: ignore[attr-defined]


def test_a_stopped_app_is_routed_as_stopped(
    server: Server, api: TestClient, platform: Platform, backend: FakeBackend
) -> None:
    deploy(api, "hello", compose=WEB_AND_WORKER)
    settle(platform, backend)

    assert cli("stop", "hello", "--no-wait").exit_code == 0

    [route] = routes_after(platform, backend)
    assert (route.app, route.upstreams, route.stopped) == ("hello", (), True)
    assert cli("start", "hello", "--no-wait").exit_code == 0
    [route] = routes_after(platform, backend)
    assert (len(route.upstreams), route.stopped) == (1, False)


def test_stop_resolves_app_down_and_a_stopped_app_never_fires(
    server: Server, api: TestClient, platform: Platform, backend: FakeBackend
) -> None:
    rule = {"name": "down", "kind": "app_down", "webhook": "http://hooks.example:9/x", "for_s": 0}
    assert api.post("/api/v1/alerts", json=rule).status_code == 201
    deploy(api, "hello", compose=WEB_AND_WORKER)
    deploy(api, "quiet", compose=WEB_AND_WORKER)
    settle(platform, backend)
    assert cli("scale", "hello", "web=0", "worker=0", "--no-wait").exit_code == 0
    assert cli("stop", "quiet", "--no-wait").exit_code == 0
    settle(platform, backend)
    platform.automation.evaluate_once()
    assert platform.automation.alerts.firing() == [("down", "hello")]  # quiet was stopped: no page

    assert cli("stop", "hello", "--no-wait").exit_code == 0
    platform.automation.evaluate_once()

    assert platform.automation.alerts.firing() == []
    listed = json.loads(cli("alerts", "ls", "--json").stdout)
    assert listed[0]["firing"] == []
    platform.monitoring.events.flush()
    kinds = {
        app: [e["kind"] for e in api.get("/api/v1/events", params={"app": app}).json()]
        for app in ("hello", "quiet")
    }
    assert "alert_resolved" in kinds["hello"]
    assert "alert_firing" not in kinds["quiet"]


def test_a_stopped_apps_503s_fire_no_error_rate(
    server: Server, api: TestClient, platform: Platform, backend: FakeBackend
) -> None:
    rule = {"name": "errors", "kind": "error_rate", "threshold": 5, "webhook": "http://hooks.example:9/x"}
    assert api.post("/api/v1/alerts", json=rule).status_code == 201
    for app in ("hello", "quiet"):
        deploy(api, app, compose=WEB_AND_WORKER)
    settle(platform, backend)
    assert cli("stop", "quiet", "--no-wait").exit_code == 0
    now = time.time()
    platform.automation.requests.add(
        RequestFigures(at=now, app=app, span_s=1.0, requests=10, errors=10) for app in ("hello", "quiet")
    )

    platform.automation.evaluate_once()

    assert platform.automation.alerts.firing() == [("errors", "hello")]


# -- --json on the verbs that change an app; scale says what changed ------------------------------


def test_mutating_verbs_print_the_operation_and_the_release_as_json(
    server: Server, manager: Platform, tmp_path: Path
) -> None:
    deployed = cli("deploy", "hello", "-f", str(compose_file(tmp_path, "web:1")), "--json")
    configured = cli("config", "set", "hello", "DEBUG=1", "--json")
    unset = cli("config", "unset", "hello", "DEBUG", "--json", "--no-wait")
    back = cli("rollback", "hello", "v2", "--json")

    answers = [json.loads(r.stdout) for r in (deployed, configured, unset, back)]
    assert [r.exit_code for r in (deployed, configured, unset, back)] == [0, 0, 0, 0]
    assert [(a["app"], a["operation"]["kind"], a["release"]["version"]) for a in answers] == [
        ("hello", "deploy", 1),
        ("hello", "config", 2),
        ("hello", "config", 3),
        ("hello", "rollback", 4),
    ]
    assert [a["release"]["description"] for a in answers] == [
        "First deploy: web web:1",
        "set DEBUG",
        "unset DEBUG",
        "Rollback to v2",
    ]
    assert answers[0]["operation"]["status"] == "succeeded"
    assert answers[2]["operation"]["status"] == "running"  # --no-wait: as accepted
    assert set(answers[0]["operation"]) == {"id", "kind", "status", "message"}
    again = json.loads(cli("deploy", "hello", "-f", str(compose_file(tmp_path, "web:1")), "--json").stdout)
    assert (again["operation"]["message"], again["release"]["version"]) == (
        "nothing changed: v4 is running",
        4,
    )


def test_scale_says_what_changed(server: Server, manager: Platform, api: TestClient) -> None:
    assert cli("deploy", "hello", "--image", "web:1").exit_code == 0

    scaled = cli("scale", "hello", "web=3")
    same = cli("scale", "hello", "web=3", "--json")

    assert scaled.exit_code == 0, scaled.output
    assert scaled.stdout == "web: 1 → 3 replicas\n"
    answer = json.loads(same.stdout)
    assert answer["replicas"] == {"web": {"from": 3, "to": 3}}
    assert answer["operation"]["kind"] == "scale" and answer["operation"]["status"] == "succeeded"
    assert cli("scale", "hello", "web=1", "--no-wait").stdout.splitlines()[-1] == "web: 3 → 1 replica"


def test_scale_of_a_stopped_app_says_when_the_counts_run(
    server: Server, manager: Platform, api: TestClient
) -> None:
    assert cli("deploy", "hello", "--image", "web:1").exit_code == 0
    assert cli("stop", "hello").exit_code == 0

    scaled = cli("scale", "hello", "web=3")

    assert scaled.exit_code == 0, scaled.output
    said = "hello is stopped: these counts run at `mypaas start hello`"
    assert scaled.stdout == f"web: 1 → 3 replicas\n{said}\n"
