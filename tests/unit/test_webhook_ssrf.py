"""Issue 13, slice B: alert webhooks cannot reach the platform's insides (SSRF). Refused at creation
(loopback, link-local/metadata, the platform's ports, private ranges unless an admin allows them) and
again at send time on the resolved address, which is the address connected to (DNS rebinding)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert

from mypaas.composer.fake import FakeBackend
from mypaas.egress import Egress, Refused
from mypaas.manager.platform import Platform
from mypaas.manager.state.db import open_engine
from mypaas.monitor.alerts import Alerts, Facts, RuleStore, Webhooks
from mypaas.monitor.tables import alert_rules, metadata
from tests.unit.teams import Cast, deploy_apps, make_cast, make_teams


def resolving(table: dict[str, list[str]]) -> Egress:
    def resolver(host: str, port: int) -> Sequence[str]:
        return table.get(host, [])

    return Egress(internal_ports={2019, 5000}, resolver=resolver)


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://127.0.0.1:2019/stop", "127.0.0.1 is a loopback address"),
        ("http://localhost:8080/", "localhost: 127.0.0.1 is a loopback address"),
        ("http://rebind.example/", "rebind.example: 127.0.0.2 is a loopback address"),
        (
            "http://169.254.169.254/latest/meta-data/",
            "169.254.169.254 is a link-local (or cloud metadata) address",
        ),
        ("http://[::ffff:127.0.0.1]/", "127.0.0.1 is a loopback address"),
        ("http://[fe80::1]/", "fe80::1 is a link-local (or cloud metadata) address"),
        ("http://0.0.0.0/", "0.0.0.0 is an unspecified address"),
        ("http://224.0.0.1/", "224.0.0.1 is a multicast address"),
        ("http://10.1.2.3/", "10.1.2.3 is a private address (an admin may allow it with --allow-private)"),
        (
            "http://both.example/",
            "both.example: 192.168.1.5 is a private address (an admin may allow it with --allow-private)",
        ),
    ],
)
def test_internal_targets_are_refused(url: str, why: str) -> None:
    egress = resolving(
        {
            "localhost": ["127.0.0.1"],
            "rebind.example": ["127.0.0.2"],
            "both.example": ["93.184.216.34", "192.168.1.5"],
        }
    )
    with pytest.raises(Refused) as exc:
        egress.check(url)
    assert str(exc.value) == why
    with pytest.raises(Refused):
        egress.pin(url)


def test_private_targets_need_the_flag_and_the_platform_ports_stay_closed() -> None:
    egress = resolving({"hooks.lan": ["10.0.0.7"]})
    egress.check("http://hooks.lan:8080/x", allow_private=True)
    with pytest.raises(Refused) as exc:
        egress.check("http://10.0.0.7:2019/stop", allow_private=True)
    assert str(exc.value) == "port 2019 of 10.0.0.7 is one of the platform's own endpoints"
    with pytest.raises(Refused):
        egress.check("http://127.0.0.1:8080/", allow_private=True)  # loopback: never
    egress.check("http://93.184.216.34:2019/")  # a public server on that port is not the platform


def test_pin_connects_to_the_checked_address_with_the_names_host_and_sni() -> None:
    egress = resolving({"hooks.example": ["93.184.216.34"], "v6.example": ["2606:2800:220:1::1"]})
    target = egress.pin("https://hooks.example:8443/x?y=1")
    assert (target.url, target.host, target.server_name) == (
        "https://93.184.216.34:8443/x?y=1",
        "hooks.example:8443",
        "hooks.example",
    )
    assert egress.pin("http://v6.example/x").url == "http://[2606:2800:220:1::1]/x"
    with_auth = egress.pin("https://u:p@hooks.example/x")
    assert (with_auth.url, with_auth.host) == ("https://u:p@93.184.216.34/x", "hooks.example")
    assert egress.pin("http://93.184.216.34/x").server_name is None
    with pytest.raises(Refused) as exc:
        egress.pin("http://nowhere.example/x")
    assert str(exc.value) == "nowhere.example does not resolve"
    egress.check("http://nowhere.example/x")  # at creation a name may not resolve yet


class Events:
    def __init__(self) -> None:
        self.recorded: list[tuple[str | None, str, str]] = []
        self._cond = threading.Condition()

    def record(self, app: str | None, kind: str, message: str, data: dict[str, Any] | None = None) -> None:
        with self._cond:
            self.recorded.append((app, kind, message))
            self._cond.notify_all()

    def wait_for(self, kind: str) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: any(e[1] == kind for e in self.recorded), timeout=5)


def test_a_rule_stored_before_is_not_sent_to_an_internal_address(tmp_path: Path) -> None:
    """A rule already in the database (from before the check) fires, but its webhook goes nowhere."""
    engine = open_engine(f"sqlite:///{tmp_path / 's.db'}")
    metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(
            insert(alert_rules).values(
                name="old", kind="host_unreachable", webhook="http://127.0.0.1:2019/stop", created_at=1.0
            )
        )
    posts: list[httpx.Request] = []
    events = Events()

    def receiver(request: httpx.Request) -> httpx.Response:
        posts.append(request)
        return httpx.Response(204)

    hooks = Webhooks(retries=3, transport=httpx.MockTransport(receiver), egress=resolving({}))
    alerts = Alerts(store=RuleStore(engine), sender=hooks, events=events)  # type: ignore[arg-type]
    stop = threading.Event()
    thread = threading.Thread(target=hooks.run, args=(stop,))
    thread.start()
    try:
        alerts.evaluate(Facts(engine_up=False))
        assert events.wait_for("alert_webhook_refused")
    finally:
        stop.set()
        thread.join(5)
    assert posts == [] and hooks.failed == 1 and hooks.pending() == 0
    assert events.recorded[-1] == (
        None,
        "alert_webhook_refused",
        "alert old: webhook not sent, its address is refused: 127.0.0.1 is a loopback address",
    )


def test_the_sender_connects_to_the_address_it_checked() -> None:
    seen: list[httpx.Request] = []
    delivered = threading.Event()

    def receiver(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    hooks = Webhooks(transport=httpx.MockTransport(receiver), egress=resolving({"hooks.lan": ["10.0.0.7"]}))
    stop = threading.Event()
    thread = threading.Thread(target=hooks.run, args=(stop,))
    thread.start()
    try:
        hooks.send("https://hooks.lan/x", {"a": 1}, on_delivered=delivered.set, allow_private=True)
        assert delivered.wait(5)
    finally:
        stop.set()
        thread.join(5)
    [request] = seen
    assert str(request.url) == "https://10.0.0.7/x"
    assert request.headers["host"] == "hooks.lan"
    assert request.extensions["sni_hostname"] == "hooks.lan"


# -- through the CLI and the API ------------------------------------------------------------------


@pytest.fixture
def backend() -> FakeBackend:
    fake = FakeBackend()
    fake.add_image("web:1", exposed=(80,))
    return fake


def test_allow_private_is_the_platform_admins(platform: Platform, api: TestClient) -> None:
    make_teams(platform)
    deploy_apps(api, {"shop": "a"})
    cast: Cast = make_cast(platform)
    rule = {"name": "lan", "kind": "app_down", "app": "shop", "webhook": "http://10.9.8.7:9999/"}
    deployer = cast.client(api, "deployer")
    r = deployer.post("/api/v1/alerts", json=rule)
    assert r.status_code == 400 and r.json()["field"] == "webhook"
    r = deployer.post("/api/v1/alerts", json={**rule, "allow_private": True})
    assert r.status_code == 403 and r.json()["error"] == "add_alert --allow-private needs a platform admin"
    assert api.post("/api/v1/alerts", json={**rule, "allow_private": True}).status_code == 201
