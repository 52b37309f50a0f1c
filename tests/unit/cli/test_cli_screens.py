"""What a person looks at, at 80 columns: `metrics`, `top`, `alerts ls`, and every command's --help
(issue 11, slice D). The figures come from a stub API with the shapes of the real one (the unit
platform samples no cgroup); the alert rules go through the real API."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import typer
from fastapi.testclient import TestClient
from rich.console import Console

from mypaas.cli import client as client_module
from mypaas.cli.client import ApiClient
from mypaas.cli.helptext import EXAMPLE_WIDTH, flow
from mypaas.cli.main import app
from mypaas.cli.top import frame
from mypaas.composer.fake import FakeBackend
from mypaas.manager.platform import Platform
from mypaas.states import THRESHOLD_KINDS, AlertKind
from tests.unit.cli.support import Server, cli, deploy, settle

MB = 2**20


def _point(i: int) -> dict[str, Any]:
    return {
        "at": 1000.0 + 5 * i,
        "instances": 2,
        "cpu_pct": (i * 7) % 60 + 0.5,
        "mem_bytes": 130 * MB + i * MB,
        "mem_limit": 512 * MB,
        "rx_rate": 12345.0,
        "tx_rate": 987654.0,
        "read_rate": 1023.9 * 1024,
        "write_rate": 40960.0,
        "restarts": 3,
    }


POINTS = [_point(i) for i in range(120)]  # 10 minutes of samples
REQUESTS = [
    {"at": p["at"], "requests": 617, "errors": 3, "rps": 123.4, "latency_ms": 12.5, "latency_p95_ms": 1450.0}
    for p in POINTS
]
METRICS = {
    "services": {"web": POINTS, "worker": POINTS[:30], "scheduler-beat": POINTS},
    "total": POINTS,
    "requests": REQUESTS,
}


def _instance(app_name: str, cpu: float) -> dict[str, Any]:
    return {
        "app": app_name,
        "service": "web",
        "cpu_pct": cpu,
        "mem_bytes": 150 * MB,
        "rx_rate": 123456.0,
        "tx_rate": 1234567.0,
        "read_rate": 1023.9 * 1024,
        "write_rate": 40960.0,
        "restarts": 12,
    }


NOW = {
    "interval_s": 5.0,
    "host": {
        "cpu_pct": 137.5,
        "mem_bytes": 6.2 * 2**30,
        "mem_limit": 23.5 * 2**30,
        "rx_rate": 234567.0,
        "tx_rate": 1234567.0,
    },
    "instances": [_instance("shop", 145.2), _instance("shop", 12.0), _instance("uxhello-api", 3.1)],
    "requests": {"shop": {"rps": 1234.5, "error_pct": 12.5, "latency_ms": 20.0, "latency_p95_ms": 1450.0}},
    "hosts": [],
}
APPS = [
    {"name": "shop", "state": "running"},
    {"name": "uxhello-api", "state": "running"},
    {"name": "oldshop", "state": "deleting"},
    {"name": "paused", "state": "stopped"},
]


@pytest.fixture
def stub_api(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[httpx.Request]]:
    asked: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        asked.append(request)
        path = request.url.path
        if path == "/api/v1/metrics/now":
            return httpx.Response(200, json=NOW)
        if path == "/api/v1/apps/shop/metrics":
            return httpx.Response(200, json=METRICS)
        assert path == "/api/v1/apps", path
        return httpx.Response(200, json=APPS)

    transport = httpx.MockTransport(answer)
    monkeypatch.setattr(client_module, "connect", lambda: ApiClient("http://x", "t", transport=transport))
    yield asked


def _widest(text: str) -> int:
    return max(len(line) for line in text.splitlines())


# -- metrics ------------------------------------------------------------------------------------------


def test_metrics_fits_80_columns(stub_api: list[httpx.Request]) -> None:
    result = cli("metrics", "shop")

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert _widest(result.stdout) <= 80, result.stdout
    assert lines[0].split() == ["SERVICE", "INST", "CPU", "CPU", "TREND", "MEM", "LIMIT"]
    assert lines[1].split()[:3] == ["scheduler-beat", "2", "53.5%"]
    assert lines[4].startswith("(all)")
    io_header = lines.index("") + 1
    assert lines[io_header].split() == [
        "SERVICE",
        "NET",
        "IN",
        "NET",
        "OUT",
        "DISK",
        "READ",
        "DISK",
        "WRITE",
        "RESTARTS",
    ]
    assert lines[io_header + 1].split() == [
        "scheduler-beat",
        "12.1KB/s",
        "964.5KB/s",
        "1023.9KB/s",
        "40.0KB/s",
        "3",
    ]
    assert lines[-2:] == [
        "requests (the router's figures of the app, last minute):",
        "  123.4/s, 0.5% errors (5xx), latency mean 12ms, p95 1450ms",
    ]


# -- top ------------------------------------------------------------------------------------------------


def test_top_fits_80_columns_and_shows_every_app_with_its_state(stub_api: list[httpx.Request]) -> None:
    result = cli("top", "--once")

    assert result.exit_code == 0, result.output
    assert _widest(result.stdout) <= 80, result.stdout
    lines = result.stdout.splitlines()
    assert lines[0].endswith("every 5s")  # as often as the platform samples (interval_s)
    assert lines[1].split() == ["APP", "STATE", "INST", "CPU", "MEM", "RESTARTS", "REQ/S", "ERR", "P95"]
    assert lines[2].split() == [
        "shop",
        "running",
        "2",
        "157.2%",
        "300.0MB",
        "24",
        "1234.5",
        "12.5%",
        "1450ms",
    ]
    assert lines[4].split() == ["oldshop", "deleting", "0", *["-"] * 6]
    assert lines[5].split() == ["paused", "stopped", "0", *["-"] * 6]
    io = lines.index("") + 1
    assert lines[io].split() == ["APP", "NET", "IN", "NET", "OUT", "DISK", "READ", "DISK", "WRITE"]
    assert lines[io + 1].split() == ["shop", "241.1KB/s", "2.4MB/s", "2.0MB/s", "80.0KB/s"]


def test_top_on_a_wide_terminal_is_one_table_and_refreshes_as_asked(stub_api: list[httpx.Request]) -> None:
    console = Console(width=160, record=True, file=open("/dev/null", "w"))  # noqa: SIM115 - a sink
    console.print(frame({**NOW, "apps": APPS}, 160, 2.0))
    text = console.export_text()

    header, columns, *_ = text.splitlines()
    assert header.endswith("every 2s")
    assert columns.split()[-9:] == ["P95", "NET", "IN", "NET", "OUT", "DISK", "READ", "DISK", "WRITE"]
    assert "" not in [line.strip() for line in text.splitlines()[:6]]


def test_top_help_says_the_real_refresh_interval() -> None:
    option = next(p for p in typer.main.get_command(app).commands["top"].params if p.name == "interval")

    assert option.default is None  # the platform's sampling interval, read from the API each time
    assert "as often as the platform samples" in (option.help or "")
    assert "2 s" not in (option.help or "")
    shown = " ".join(cli("top", "--help").stdout.replace("│", " ").split())
    assert "Seconds between refreshes (default: as often as the platform samples, every 5s" in shown


# -- alerts ----------------------------------------------------------------------------------------------


def test_alerts_ls_shows_a_threshold_only_for_the_kinds_that_have_one(
    server: Server, api: TestClient
) -> None:
    for kind, threshold in (("app_down", 0), ("memory_pct", 90), ("error_rate", 5)):
        body = {
            "name": kind.replace("_", "-"),
            "kind": kind,
            "webhook": "http://hooks.example:9/x",
            "threshold": threshold,
        }
        assert api.post("/api/v1/alerts", json=body).status_code == 201

    rows = {line.split()[1]: line.split() for line in cli("alerts", "ls").stdout.splitlines()[1:]}

    assert [rows[k][3] for k in ("app_down", "memory_pct", "error_rate")] == ["-", "90", "5"]


def test_alerts_help_lists_the_kinds_the_api_takes(server: Server, api: TestClient) -> None:
    text = cli("alerts", "--help").stdout
    listed = [line.split()[0] for line in text.splitlines() if line.startswith("   ") and line.split()]

    assert listed == [kind.value for kind in AlertKind]
    for kind in listed:
        threshold = 50 if kind in THRESHOLD_KINDS else 0
        body = {
            "name": f"k-{kind}".replace("_", "-"),
            "kind": kind,
            "webhook": "http://hooks.example:9/x",
            "threshold": threshold,
        }
        assert api.post("/api/v1/alerts", json=body).is_success, kind
    assert "engine is gone" not in text


# -- every --help at 80 columns ----------------------------------------------------------------------------


def _walk(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    yield path, command
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        yield from _walk(sub, (*path, name))


EVERY_COMMAND = list(_walk(typer.main.get_command(app)))


@pytest.mark.parametrize(
    ("path", "command"), EVERY_COMMAND, ids=lambda v: " ".join(v) if isinstance(v, tuple) else ""
)
def test_every_help_reads_well_at_80_columns(
    monkeypatch: pytest.MonkeyPatch, path: tuple[str, ...], command: Any
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    result = cli(*path, "--help")

    assert result.exit_code == 0, result.output
    assert _widest(result.stdout) <= 80
    assert "nginx" not in result.stdout and "alpine" not in result.stdout  # no Docker Hub here
    shown = [line.rstrip() for line in result.stdout.splitlines()]
    words = " ".join(result.stdout.replace("│", " ").split())
    for param in command.params:  # shown whole: no [...] in it taken for markup
        assert " ".join((getattr(param, "help", None) or "").split()) in words, param.name
    for line in flow(command.help or "").splitlines():
        if line.startswith(" ") and line.strip():  # an example or a list: shown whole, indented
            assert len(line) <= EXAMPLE_WIDTH, line
            assert f" {line.rstrip()}" in shown, line


def test_flow_joins_prose_keeps_examples_and_runs_twice_the_same() -> None:
    text = """First line
    of the summary.

    A paragraph written
    over three
    lines.

    Examples:

      mypaas x --one
      mypaas x --two
    """

    flowed = flow(text)

    assert flowed == (
        "First line of the summary.\n\n\nA paragraph written over three lines.\n\nExamples:\n\n"
        "  mypaas x --one\n  mypaas x --two"
    )
    assert flow(flowed) == flowed


def test_top_shows_an_app_being_deleted_with_its_state(
    server: Server, api: TestClient, platform: Platform, backend: FakeBackend
) -> None:
    deploy(api, "web", image="web:1")
    deploy(api, "gone", image="web:1")
    settle(platform, backend)
    assert api.delete("/api/v1/apps/gone").status_code == 202  # no reconcile pass yet: still deleting

    result = cli("top", "--once")

    assert result.exit_code == 0, result.output
    header, _, *lines = result.stdout.splitlines()
    load = [line.split() for line in lines[: lines.index("")]]
    assert load == [["gone", "deleting", "0", *["-"] * 6], ["web", "running", "0", *["-"] * 6]]
    assert header == "host  no figures yet   every 5s"  # the unit platform samples nothing
