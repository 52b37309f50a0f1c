"""The Prometheus text format (version 0.0.4) of the newest samples: platform, host and every instance,
and the router's request figures of every app.

Names follow Prometheus' conventions: a ``mypaas_`` prefix, base units, ``_total`` for counters.
Request counters count from the manager's start (a restart is a counter reset, which ``rate()`` handles).
``mypaas_app_request_duration_seconds`` is a summary: ``_sum`` and ``_count`` since the start (so
``rate(_sum) / rate(_count)`` is the mean latency) and the 0.95 quantile of the last sampling interval's
requests only (absent when it had none) — not a quantile over any longer time.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from mypaas.monitor.metrics import Sample
from mypaas.monitor.requests import RequestFigures, Totals

# name -> (type, help, attribute of Sample)
_INSTANCE = {
    "mypaas_instance_cpu_seconds_total": ("counter", "CPU time used by the instance", "cpu_seconds"),
    "mypaas_instance_cpu_percent": ("gauge", "CPU use over the last interval, % of one core", "cpu_pct"),
    "mypaas_instance_memory_bytes": ("gauge", "Memory in use (without inactive page cache)", "mem_bytes"),
    "mypaas_instance_memory_limit_bytes": ("gauge", "Memory limit (absent: none)", "mem_limit"),
    "mypaas_instance_network_receive_bytes_total": ("counter", "Bytes received", "rx_bytes"),
    "mypaas_instance_network_transmit_bytes_total": ("counter", "Bytes sent", "tx_bytes"),
    "mypaas_instance_block_read_bytes_total": ("counter", "Bytes read from block devices", "read_bytes"),
    "mypaas_instance_block_write_bytes_total": ("counter", "Bytes written to block devices", "write_bytes"),
    "mypaas_instance_restarts_total": ("counter", "Restarts by the engine's restart policy", "restarts"),
}
_HOST = {
    "mypaas_host_cpu_seconds_total": ("counter", "Busy CPU time of the host, all CPUs", "cpu_seconds"),
    "mypaas_host_cpu_percent": ("gauge", "Host CPU use over the last interval, % of one core", "cpu_pct"),
    "mypaas_host_memory_used_bytes": ("gauge", "Host memory in use (total - available)", "mem_bytes"),
    "mypaas_host_memory_total_bytes": ("gauge", "Host memory", "mem_limit"),
    "mypaas_host_network_receive_bytes_total": ("counter", "Bytes received by the host", "rx_bytes"),
    "mypaas_host_network_transmit_bytes_total": ("counter", "Bytes sent by the host", "tx_bytes"),
}


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(labels: Mapping[str, str]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items()) + "}"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def family(
    name: str, kind: str, help_text: str, points: Iterable[tuple[Mapping[str, str], float]]
) -> list[str]:
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
    lines.extend(f"{name}{_labels(labels)} {_number(value)}" for labels, value in points)
    return lines


def render(
    latest: Mapping[str, Sample],
    *,
    platform: Mapping[str, float] | None = None,
    apps: Iterable[tuple[str, str, str, float]] = (),
    requests: tuple[Mapping[str, Totals], Mapping[str, RequestFigures]] | None = None,
) -> str:
    """The text of ``GET /metrics``. ``platform`` holds ``mypaas_*`` gauges of the manager itself;
    ``apps`` extra (name, type, app, value) figures; ``requests`` the router's counts per app since the
    start and its newest interval's figures (RequestMeter.snapshot)."""
    lines: list[str] = []
    for name, value in (platform or {}).items():
        lines += family(name, "gauge", name.removeprefix("mypaas_").replace("_", " "), [({}, value)])
    instances = sorted((s for key, s in latest.items() if key != "host"), key=lambda s: (s.app, s.instance))
    for name, (kind, help_text, attr) in _INSTANCE.items():
        points: list[tuple[Mapping[str, str], float]] = [
            ({"app": s.app, "service": s.service, "instance": s.instance}, float(getattr(s, attr)))
            for s in instances
            if getattr(s, attr) is not None
        ]
        lines += family(name, kind, help_text, points)
    host = latest.get("host")
    if host is not None:
        for name, (kind, help_text, attr) in _HOST.items():
            value = getattr(host, attr)
            if value is not None:
                lines += family(name, kind, help_text, [({}, float(value))])
    by_name: dict[tuple[str, str], list[tuple[Mapping[str, str], float]]] = {}
    for name, kind, app, value in apps:
        by_name.setdefault((name, kind), []).append(({"app": app}, value))
    for (name, kind), points in sorted(by_name.items()):
        lines += family(name, kind, name.removeprefix("mypaas_").replace("_", " "), points)
    if requests is not None:
        lines += _request_lines(*requests)
    return "\n".join(lines) + "\n"


def _request_lines(totals: Mapping[str, Totals], latest: Mapping[str, RequestFigures]) -> list[str]:
    apps = sorted(totals)
    lines = family(
        "mypaas_app_requests_total",
        "counter",
        "Requests the router answered for the app",
        [({"app": a}, totals[a].requests) for a in apps],
    )
    lines += family(
        "mypaas_app_request_errors_total",
        "counter",
        "Requests answered with a 5xx status (the app's, or the router's 502/503/504)",
        [({"app": a}, totals[a].errors) for a in apps],
    )
    name = "mypaas_app_request_duration_seconds"
    lines += [
        f"# HELP {name} Time to answer a request at the router; quantile over the last sampling interval",
        f"# TYPE {name} summary",
    ]
    for a in apps:
        p95 = latest[a].latency_p95_ms if a in latest else None
        if p95 is not None:
            lines.append(f"{name}{_labels({'app': a, 'quantile': '0.95'})} {_number(p95 / 1000.0)}")
        lines.append(f"{name}_sum{_labels({'app': a})} {_number(round(totals[a].duration_s, 6))}")
        lines.append(f"{name}_count{_labels({'app': a})} {_number(totals[a].requests)}")
    return lines
