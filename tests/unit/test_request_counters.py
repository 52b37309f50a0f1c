"""Per-app request figures from the router's counters (HAProxy): differences per interval, a new worker's
counters counted from zero, apps without counters yet, a router that does not answer; the latency from
the durations it logged."""

from __future__ import annotations

from dataclasses import dataclass

from mypaas.monitor.request_counters import CounterMeter


@dataclass(frozen=True)
class Count:
    requests: int
    errors: int
    mean_ms: float | None
    epoch: int = 1
    durations_ms: tuple[float, ...] = ()


class Source:
    def __init__(self) -> None:
        self.now: dict[str, Count] | None = {}

    def __call__(self) -> dict[str, Count] | None:
        return self.now


def meter(source: Source, apps: tuple[str, ...] = ("shop", "blog")) -> tuple[CounterMeter, list[float]]:
    clock = [100.0]
    made = CounterMeter(
        source, hosts_to_app=lambda: {f"{a}.localhost": a for a in apps}, clock=lambda: clock[0]
    )
    return made, clock


def test_each_interval_counts_what_the_counters_grew() -> None:
    source = Source()
    source.now = {"shop": Count(10, 1, 2.0)}
    m, clock = meter(source)
    assert m.read() == []  # the first read takes the counters as they are

    source.now = {"shop": Count(40, 4, 3.0), "blog": Count(2, 0, 1.0)}
    clock[0] += 5
    figures = {f.app: f for f in m.read()}

    assert (figures["shop"].requests, figures["shop"].errors, figures["shop"].latency_ms) == (30, 3, 3.0)
    assert figures["shop"].rps == 6.0 and figures["shop"].latency_p95_ms is None
    assert (figures["blog"].requests, figures["blog"].errors) == (2, 0)  # a backend new since: all of it
    totals, latest = m.snapshot()
    assert (totals["shop"].requests, totals["shop"].errors) == (30, 3) and latest["shop"].span_s == 5.0


def test_a_new_worker_counts_from_zero_and_an_idle_app_has_no_latency() -> None:
    source = Source()
    source.now = {"shop": Count(100, 0, 2.0, epoch=1), "blog": Count(5, 0, 1.0)}
    m, clock = meter(source)
    m.read()

    source.now = {"shop": Count(7, 1, 2.0, epoch=2), "blog": Count(5, 0, 1.0)}
    clock[0] += 5
    figures = {f.app: f for f in m.read()}

    assert (figures["shop"].requests, figures["shop"].errors) == (7, 1)
    assert figures["blog"].requests == 0 and figures["blog"].latency_ms is None


def test_no_answer_means_no_figures_and_unrouted_apps_are_forgotten() -> None:
    source = Source()
    m, clock = meter(source, apps=("shop",))
    source.now = None
    assert m.read() == []
    source.now = {"shop": Count(1, 0, 1.0), "gone": Count(9, 9, 1.0)}
    m.read()
    source.now = {"shop": Count(3, 0, 1.0), "gone": Count(19, 9, 1.0)}
    clock[0] += 1

    assert [f.app for f in m.read()] == ["shop"]
    assert set(m.snapshot()[0]) == {"shop"}


def test_the_latency_is_that_of_the_durations_logged_in_the_interval() -> None:
    source = Source()
    source.now = {"shop": Count(0, 0, None)}
    m, clock = meter(source)
    m.read()

    logged = tuple(float(ms) for ms in range(1, 21))  # 1..20 ms
    source.now = {"shop": Count(20, 0, 9.0, durations_ms=logged), "blog": Count(3, 0, 4.0)}
    clock[0] += 1
    figures = {f.app: f for f in m.read()}

    assert (figures["shop"].latency_ms, figures["shop"].latency_p95_ms) == (10.5, 19.0)
    # requests counted but none logged (a router without the ring): the counters' mean, no p95
    assert (figures["blog"].latency_ms, figures["blog"].latency_p95_ms) == (4.0, None)
