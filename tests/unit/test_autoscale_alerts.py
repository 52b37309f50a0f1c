"""Autoscaling decisions, the CPU window, alert transitions and webhook retries (no engine, no network),
and the REST routes on a platform over the fake backend."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from mypaas.cli.registry import tag_order
from mypaas.composer.fake import FakeBackend
from mypaas.egress import Egress
from mypaas.errors import InvalidSpec, NotFound
from mypaas.manager.state.db import open_engine
from mypaas.monitor.alerts import Alerts, Facts, Rule, RuleStore, Webhooks, memory_by_app
from mypaas.monitor.autoscale import Autoscaler, CpuWindow, Policy, PolicyStore, decide
from mypaas.monitor.metrics import Sample
from mypaas.monitor.tables import metadata
from tests.unit.fakes import WebhookSender

PUBLIC = Egress(resolver=lambda host, port: ["93.184.216.34"])  # every name: a public address
CPU = Policy(app="a", service="web", min_replicas=1, max_replicas=5, target_cpu_pct=50.0, cooldown_up_s=10)


def test_decide_scales_up_in_proportion_and_down_one_step() -> None:
    assert decide(CPU, 1, 180.0, now=100.0) == (4, "cpu 180% > target 50%")
    assert decide(CPU, 2, 500.0, now=100.0) == (5, "cpu 500% > target 50%")  # capped at max
    assert decide(CPU, 2, 52.0, now=100.0) is None  # within the tolerance
    assert decide(CPU, 3, 10.0, now=1000.0) == (2, "cpu 10% < target 50%")
    assert decide(CPU, 2, 40.0, now=1000.0) is None  # one fewer would run at 80 %: stay
    assert decide(CPU, 1, 0.0, now=1000.0) is None  # at the minimum
    assert decide(CPU, 0, None, now=0.0) == (1, "below the minimum 1")
    assert decide(CPU, 7, None, now=0.0) == (5, "above the maximum 5")


def test_decide_respects_cooldowns() -> None:
    recent = Policy(**{**CPU.to_dict(), "last_scaled_at": 95.0})
    assert decide(recent, 1, 180.0, now=100.0) is None  # up cooldown 10 s
    assert decide(recent, 1, 180.0, now=106.0) == (4, "cpu 180% > target 50%")
    assert decide(recent, 3, 1.0, now=200.0) is None  # down cooldown 120 s
    assert decide(recent, 3, 1.0, now=216.0) == (2, "cpu 1% < target 50%")


def test_policy_checks() -> None:
    for bad, field in (
        ({"min_replicas": 0}, "min"),
        ({"max_replicas": 0}, "max"),
        ({"target_cpu_pct": None}, "cpu"),
        ({"target_cpu_pct": -1.0}, "cpu"),
        ({"cooldown_up_s": -1.0}, "cooldown_up_s"),
    ):
        with pytest.raises(InvalidSpec) as info:
            Policy(**{**CPU.to_dict(), **bad}).check()
        assert info.value.field == field
    with pytest.raises(InvalidSpec) as info:
        Policy(**{**CPU.to_dict(), "min_replicas": 5, "max_replicas": 2}).check()
    assert (info.value.message, info.value.field) == ("max (2) is below min (5)", "max")


def test_tags_are_listed_as_people_count_them() -> None:
    assert tag_order(["v1", "v11", "id-0002", "v2", "latest", "v10"]) == [
        "id-0002",
        "latest",
        "v1",
        "v2",
        "v10",
        "v11",
    ]


def _sample(at: float, inst: str, cpu: float, service: str = "web", **kw: Any) -> Sample:
    return Sample(at=at, app="a", service=service, instance=inst, cpu_pct=cpu, **kw)


def test_cpu_window_averages_per_replica_and_skips_first_samples() -> None:
    window = CpuWindow(window_s=10)
    window.add([_sample(1, "x", 0.0)])  # first sample of x: no rate yet
    assert window.average("a", "web", 1) is None
    window.add([_sample(2, "x", 100.0), _sample(2, "y", 0.0)])
    window.add([_sample(3, "x", 100.0), _sample(3, "y", 50.0)])
    assert window.average("a", "web", 3) == pytest.approx((100.0 + 75.0) / 2)
    assert window.average("a", "web", 30) is None  # too old
    window.reset("a", "web")
    assert window.average("a", "web", 3) is None


class _Events:
    def __init__(self) -> None:
        self.seen: list[tuple[str | None, str, str]] = []

    def record(self, app: str | None, kind: str, message: str, data: dict[str, Any] | None = None) -> None:
        self.seen.append((app, kind, message))


def test_autoscaler_scales_through_its_callback(tmp_path: Path) -> None:
    engine = open_engine(f"sqlite:///{tmp_path / 's.db'}")
    metadata.create_all(engine)
    store = PolicyStore(engine)
    store.put(Policy(**{**CPU.to_dict(), "cooldown_up_s": 0.0}))
    window = CpuWindow(window_s=30)
    for at in (1.0, 2.0, 3.0):
        window.add([_sample(at, "x", 180.0)])
    replicas = {("a", "web"): 1}
    events = _Events()

    def scale(app: str, service: str, n: int) -> None:
        replicas[(app, service)] = n

    scaler = Autoscaler(
        store=store,
        window=window,
        replicas=lambda app, svc: replicas.get((app, svc)),
        scale=scale,
        events=events,
        clock=lambda: 3.0,
    )
    assert scaler.evaluate() == [("a", "web", 1, 4)]
    assert events.seen == [("a", "autoscaled", "autoscaled web 1→4: cpu 180% > target 50%")]
    assert store.list()[0].last_scaled_at == 3.0
    assert scaler.evaluate() == []  # the window restarts after a change


def test_alerts_fire_after_for_s_and_resolve(tmp_path: Path) -> None:
    engine = open_engine(f"sqlite:///{tmp_path / 's.db'}")
    metadata.create_all(engine)
    store = RuleStore(engine)
    store.add(Rule(name="down", kind="app_down", webhook="http://hooks.example:9/x", for_s=5))
    store.add(Rule(name="mem", kind="memory_pct", app="b", threshold=80, webhook="http://h/x"))
    store.add(Rule(name="errors", kind="error_rate", threshold=5, webhook="http://h/x"))
    now = [0.0]
    sender, events = WebhookSender(), _Events()
    alerts = Alerts(store=store, sender=sender, events=events, clock=lambda: now[0])  # type: ignore[arg-type]
    alerts.evaluate(Facts(ready={"a": 0, "b": 1}, memory_pct={"a": 99.0, "b": 50.0}))
    now[0] = 4.0
    alerts.evaluate(Facts(ready={"a": 0, "b": 1}, memory_pct={"b": 85.0}))
    assert [(p["alert"], p["app"], p["status"]) for p in sender.sent] == [("mem", "b", "firing")]
    now[0] = 6.0
    alerts.evaluate(Facts(ready={"a": 0, "b": 1}, memory_pct={"b": 70.0}))
    assert [(p["alert"], p["app"], p["status"]) for p in sender.sent][1:] == [
        ("down", "a", "firing"),
        ("mem", "b", "resolved"),
    ]
    assert alerts.firing() == [("down", "a")]
    assert alerts.firing_since() == {("down", "a"): 0.0}  # the condition has held since the first pass
    now[0] = 7.0
    alerts.evaluate(Facts(ready={"b": 1}))  # app a was deleted
    assert sender.sent[-1]["status"] == "resolved" and sender.sent[-1]["app"] == "a"
    assert [k for _, k, _ in events.seen].count("alert_firing") == 2
    assert set(sender.sent[0]) >= {"alert", "status", "app", "value", "threshold", "at"}


def test_alert_state_survives_a_restart_of_the_manager(tmp_path: Path) -> None:
    """What fired does not fire again after a restart; what held goes on counting from when it began;
    what ended while the manager was down is resolved at the first evaluation."""
    engine = open_engine(f"sqlite:///{tmp_path / 's.db'}")
    metadata.create_all(engine)
    store = RuleStore(engine)
    store.add(Rule(name="down", kind="app_down", webhook="http://h/x", for_s=5))
    now = [0.0]
    sender, events = WebhookSender(), _Events()

    def manager() -> Alerts:  # a fresh evaluator over the same database, as after a restart
        return Alerts(store=store, sender=sender, events=events, clock=lambda: now[0])  # type: ignore[arg-type]

    manager().evaluate(Facts(ready={"a": 0, "b": 0, "c": 1}))  # a and b down from t=0
    now[0] = 6.0
    first = manager()
    first.evaluate(Facts(ready={"a": 0, "b": 1, "c": 1}))  # a has held 6 s: fires; b came back
    assert [(p["app"], p["status"]) for p in sender.sent] == [("a", "firing")]
    assert store.states() == {("down", "a"): (0.0, True)}

    now[0] = 8.0
    again = manager()
    again.evaluate(Facts(ready={"a": 0, "b": 0, "c": 0}))  # a still down: no second firing
    assert [(p["app"], p["status"]) for p in sender.sent] == [("a", "firing")]
    assert again.firing() == [("down", "a")]

    now[0] = 12.0
    manager().evaluate(Facts(ready={"a": 1, "b": 0, "c": 0}))  # b and c down since t=8: not yet 5 s
    assert [(p["app"], p["status"]) for p in sender.sent][1:] == [("a", "resolved")]
    now[0] = 13.5
    manager().evaluate(Facts(ready={"a": 1, "b": 0}))  # b held 5.5 s across restarts; c deleted meanwhile
    assert [(p["app"], p["status"]) for p in sender.sent][2:] == [("b", "firing")]
    assert set(store.states()) == {("down", "b")}

    store.remove("down")  # a removed rule leaves no state behind
    assert store.states() == {}


def test_an_alert_counts_as_fired_once_its_webhook_took_it(tmp_path: Path) -> None:
    """Killed before the webhook got the news, the manager sends it again after the restart; right
    after a start, a firing alert whose figures are not gathered yet is not resolved."""
    engine = open_engine(f"sqlite:///{tmp_path / 's.db'}")
    metadata.create_all(engine)
    store = RuleStore(engine)
    store.add(Rule(name="mem", kind="memory_pct", threshold=80, webhook="http://h/x"))
    now = [0.0]
    events = _Events()
    down = WebhookSender(delivers=False)  # the receiver is down: never confirmed
    Alerts(store=store, sender=down, events=events, clock=lambda: now[0]).evaluate(  # type: ignore[arg-type]
        Facts(ready={"b": 1}, memory_pct={"b": 90.0})
    )
    assert [p["status"] for p in down.sent] == ["firing"]
    assert store.states()[("mem", "b")] == (0.0, False)  # not taken yet

    now[0] = 10.0
    up = WebhookSender()
    restarted = Alerts(store=store, sender=up, events=events, clock=lambda: now[0])  # type: ignore[arg-type]
    restarted.evaluate(Facts(ready={"b": 1}, memory_pct={"b": 91.0}))
    assert [p["status"] for p in up.sent] == ["firing"]  # sent again, now taken
    assert store.states()[("mem", "b")] == (0.0, True)

    now[0] = 20.0
    again = WebhookSender()
    third = Alerts(store=store, sender=again, events=events, clock=lambda: now[0])  # type: ignore[arg-type]
    third.evaluate(Facts(ready={"b": 1}, memory_pct={}))  # just started: no memory figures yet
    assert again.sent == [] and third.firing() == [("mem", "b")]
    third.evaluate(Facts(ready={"b": 1}, memory_pct={"b": 95.0}))
    assert again.sent == []  # still firing, already told
    now[0] = 20.0 + 121
    third.evaluate(Facts(ready={"b": 1}, memory_pct={}))  # figures gone for good: over
    assert [p["status"] for p in again.sent] == ["resolved"] and store.states() == {}


def test_a_rule_added_again_starts_afresh(tmp_path: Path) -> None:
    engine = open_engine(f"sqlite:///{tmp_path / 's.db'}")
    metadata.create_all(engine)
    store = RuleStore(engine, clock=iter(range(1, 100)).__next__)
    store.add(Rule(name="down", kind="app_down", webhook="http://h/x"))
    sender = WebhookSender()
    alerts = Alerts(store=store, sender=sender, events=_Events(), clock=lambda: 5.0)  # type: ignore[arg-type]
    alerts.evaluate(Facts(ready={"a": 0}))
    store.remove("down")
    store.add(Rule(name="down", kind="app_down", webhook="http://h/y"))
    alerts.evaluate(Facts(ready={"a": 0}))
    assert [p["status"] for p in sender.sent] == ["firing", "firing"]  # the new rule fires too


def test_alert_rule_checks(tmp_path: Path) -> None:
    for bad, field in (
        ({"kind": "nope"}, "kind"),
        ({"webhook": "ftp://x"}, "webhook"),
        ({"kind": "memory_pct", "threshold": 0.0}, "threshold"),
        ({"name": "Bad Name"}, "name"),
    ):
        with pytest.raises(InvalidSpec) as info:
            Rule(**{"name": "r", "kind": "app_down", "webhook": "http://h/x", **bad}).check()  # type: ignore[arg-type]
        assert info.value.field == field


def test_memory_by_app_takes_the_fullest_limited_instance() -> None:
    samples = [
        _sample(1, "x", 0, mem_bytes=50, mem_limit=100),
        _sample(1, "y", 0, mem_bytes=90, mem_limit=100),
        _sample(1, "z", 0, mem_bytes=10**9, mem_limit=None),
    ]
    assert memory_by_app(samples) == {"a": 90.0}


def test_webhooks_retry_with_backoff_then_deliver() -> None:
    calls: list[bytes] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.content)
        return httpx.Response(503 if len(calls) < 3 else 204)

    hooks = Webhooks(retries=3, backoff_s=0.05, transport=httpx.MockTransport(handler), egress=PUBLIC)
    stop, delivered = threading.Event(), threading.Event()
    thread = threading.Thread(target=hooks.run, args=(stop,))
    thread.start()
    hooks.send("http://hook.example/x", {"alert": "a"}, on_delivered=delivered.set)
    assert delivered.wait(5)
    stop.set()
    thread.join(5)
    assert hooks.delivered == 1 and len(calls) == 3 and b'"alert"' in calls[0]


def test_webhook_send_only_queues() -> None:
    """``send`` returns while the receiver still holds the previous webhook: it never waits on one."""
    inside, release = threading.Event(), threading.Event()
    calls: list[bytes] = []

    def receiver(request: httpx.Request) -> httpx.Response:
        calls.append(request.content)
        inside.set()
        release.wait(5)  # held until the test lets go (bounded: a regression fails, it does not hang)
        return httpx.Response(204)

    hooks = Webhooks(retries=0, transport=httpx.MockTransport(receiver), egress=PUBLIC)
    stop = threading.Event()
    thread = threading.Thread(target=hooks.run, args=(stop,))
    thread.start()
    try:
        hooks.send("http://hook.example/x", {"alert": "a"})
        assert inside.wait(5)  # the sender's thread is in the receiver, held there
        hooks.send("http://hook.example/x", {"alert": "b"})
        assert len(calls) == 1 and hooks.pending() == 1  # queued, not sent
    finally:
        release.set()
        stop.set()
        thread.join(5)


def test_webhooks_give_up_after_the_retries() -> None:
    tries: list[httpx.Request] = []
    second = threading.Event()

    def refuse(request: httpx.Request) -> httpx.Response:
        tries.append(request)
        if len(tries) == 2:
            second.set()
        return httpx.Response(500)

    hooks = Webhooks(retries=1, backoff_s=0.01, transport=httpx.MockTransport(refuse), egress=PUBLIC)
    stop = threading.Event()
    thread = threading.Thread(target=hooks.run, args=(stop,))
    thread.start()
    hooks.send("http://hook.example/x", {"alert": "a"})
    assert second.wait(5)  # the first try and its one retry
    stop.set()
    thread.join(5)  # the sender finishes the delivery it is in, then stops
    assert hooks.failed == 1 and hooks.pending() == 0 and len(tries) == 2


@pytest.fixture
def backend() -> FakeBackend:
    fake = FakeBackend()
    fake.add_image("web:1", exposed=(80,))
    return fake


def test_autoscale_and_alert_routes(api: TestClient) -> None:
    assert api.post("/api/v1/apps/hello/deploys", json={"image": "web:1"}).status_code < 300
    url = "/api/v1/apps/hello/autoscale"
    assert api.get(url).json() == []
    r = api.put(f"{url}/web", json={"min": 1, "max": 3, "target_cpu_pct": 50})
    assert r.status_code == 200, r.text
    assert api.get(url).json()[0]["max_replicas"] == 3
    assert api.put(f"{url}/nope", json={"max": 3, "target_cpu_pct": 50}).status_code == 404
    assert api.put(f"{url}/web", json={"max": 3}).json()["field"] == "cpu"
    assert api.put(f"{url}/web", json={"max": 3, "cpu": 5}).status_code == 400
    assert api.get("/api/v1/apps/nope/autoscale").status_code == 404
    assert api.delete(f"{url}/web").status_code == 204
    assert api.delete(f"{url}/web").status_code == 404

    rule = {"name": "down", "kind": "app_down", "webhook": "http://hooks.example:9/x", "for_s": 30}
    assert api.post("/api/v1/alerts", json=rule).status_code == 201
    assert api.post("/api/v1/alerts", json=rule).status_code == 409
    listed = api.get("/api/v1/alerts").json()
    assert listed[0]["name"] == "down" and listed[0]["firing"] == [] and listed[0]["firing_since"] == []
    err = api.post("/api/v1/alerts", json={**rule, "name": "err", "kind": "error_rate", "threshold": 5})
    assert err.json()["has_data"] is True  # the router's access log gives the error rate
    assert api.post("/api/v1/alerts", json={**rule, "name": "x", "kind": "what"}).json()["field"] == "kind"
    assert api.delete("/api/v1/alerts/down").status_code == 204
    assert api.delete("/api/v1/alerts/down").status_code == 404


def test_host_unreachable_is_about_the_platform(tmp_path: Path) -> None:
    engine = open_engine(f"sqlite:///{tmp_path / 's.db'}")
    metadata.create_all(engine)
    store = RuleStore(engine)
    store.add(Rule(name="engine", kind="host_unreachable", webhook="http://h/x"))
    sender, events = WebhookSender(), _Events()
    alerts = Alerts(store=store, sender=sender, events=events, clock=lambda: 1.0)  # type: ignore[arg-type]
    alerts.evaluate(Facts(engine_up=False))
    alerts.evaluate(Facts(engine_up=True))
    assert [(p["app"], p["status"], p["value"]) for p in sender.sent] == [
        (None, "firing", 1.0),
        (None, "resolved", 0.0),
    ]
    assert events.seen[0][0] is None  # a platform event


def test_non_finite_and_malformed_values_are_refused() -> None:
    import math

    import pytest

    from mypaas.errors import InvalidSpec
    from mypaas.monitor.alerts import Rule
    from mypaas.monitor.autoscale import Policy
    from mypaas.monitor.events import parse_duration

    with pytest.raises(InvalidSpec):
        parse_duration("inf")
    with pytest.raises(InvalidSpec) as exc:
        Policy(
            app="a", service="web", min_replicas=1, max_replicas=3, target_cpu_pct=50, cooldown_up_s=math.inf
        ).check()
    assert exc.value.field == "cooldown_up_s"
    for webhook in ("http://[::1", "http://a\u0000b/"):
        with pytest.raises(InvalidSpec) as exc:
            Rule(name="r", kind="app_down", threshold=0, for_s=1, webhook=webhook).check()
        assert exc.value.field == "webhook"


def test_a_rule_changed_in_place_keeps_its_state(tmp_path: Path) -> None:
    """A new webhook or threshold: the rule keeps firing without a second webhook; a new kind is another
    condition and starts afresh."""
    engine = open_engine(f"sqlite:///{tmp_path / 's.db'}")
    metadata.create_all(engine)
    store = RuleStore(engine, clock=iter(range(1, 100)).__next__)
    created = store.add(Rule(name="down", kind="app_down", webhook="http://h/x")).created_at
    sender = WebhookSender()
    alerts = Alerts(store=store, sender=sender, events=_Events(), clock=lambda: 5.0)  # type: ignore[arg-type]
    alerts.evaluate(Facts(ready={"a": 0}))
    changed = store.update(Rule(name="down", kind="app_down", webhook="http://h/y", for_s=1))
    assert changed.created_at == created and store.states() == {("down", "a"): (5.0, True)}
    alerts.evaluate(Facts(ready={"a": 0}))
    assert [p["status"] for p in sender.sent] == ["firing"]  # still firing: not sent again
    assert alerts.firing() == [("down", "a")]

    other = store.update(Rule(name="down", kind="memory_pct", threshold=50, webhook="http://h/y"))
    assert other.created_at != created and store.states() == {}
    with pytest.raises(NotFound):
        store.update(Rule(name="gone", kind="app_down", webhook="http://h/y"))
