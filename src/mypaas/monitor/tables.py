"""The monitor's tables in the state store (SQLAlchemy Core): the event log and the metric points.

They live next to the manager's tables in one database; the manager's Alembic migrations create them.
"""

from __future__ import annotations

from sqlalchemy import JSON, Boolean, Column, Float, Index, Integer, MetaData, String, Table, Text, false

metadata = MetaData()

# One row per event; ``app`` is NULL for the platform's own events (engine, hosts).
events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", Float, nullable=False),
    Column("app", String(63), nullable=True),
    Column("kind", String(32), nullable=False),
    Column("message", Text, nullable=False, default=""),
    Column("data", JSON, nullable=False, default=dict),
    Index("ix_events_app_id", "app", "id"),
)

# Samples of one instance (or of the host, instance "host"). ``res`` is the resolution in seconds:
# 0 for raw points, 60 for one-minute averages. Counters are cumulative; rates are per second.
# The router's figures of an app are rows of instance "router" (service ""): ``requests`` and ``errors``
# counted over the point's interval (summed by the rollup), ``rps`` and the latencies in ms (the mean
# weighted by requests, the p95 as the highest of the minute); NULL in the rows of instances.
metric_points = Table(
    "metric_points",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", Float, nullable=False),
    Column("res", Integer, nullable=False, default=0),
    Column("app", String(63), nullable=False, default=""),
    Column("service", String(63), nullable=False, default=""),
    Column("instance", String(80), nullable=False),
    Column("cpu_pct", Float, nullable=False, default=0.0),
    Column("mem_bytes", Float, nullable=False, default=0.0),
    Column("mem_limit", Float, nullable=False, default=0.0),
    Column("rx_rate", Float, nullable=False, default=0.0),
    Column("tx_rate", Float, nullable=False, default=0.0),
    Column("read_rate", Float, nullable=False, default=0.0),
    Column("write_rate", Float, nullable=False, default=0.0),
    Column("restarts", Integer, nullable=False, default=0),
    Column("requests", Integer, nullable=True),
    Column("errors", Integer, nullable=True),
    Column("rps", Float, nullable=True),
    Column("latency_ms", Float, nullable=True),
    Column("latency_p95_ms", Float, nullable=True),
    Index("ix_metric_points_app_at", "app", "res", "at"),
    Index("ix_metric_points_res_at", "res", "at"),
)

# One autoscaling policy per service (see monitor/autoscale.py); ``last_scaled_at`` makes cooldowns
# survive a restart of the manager.
autoscale_policies = Table(
    "autoscale_policies",
    metadata,
    Column("app", String(63), primary_key=True),
    Column("service", String(63), primary_key=True),
    Column("min_replicas", Integer, nullable=False),
    Column("max_replicas", Integer, nullable=False),
    Column("target_cpu_pct", Float, nullable=True),
    Column("target_rps_per_replica", Float, nullable=True),
    Column("cooldown_up_s", Float, nullable=False),
    Column("cooldown_down_s", Float, nullable=False),
    Column("last_scaled_at", Float, nullable=False, default=0.0),
)

# Alert rules (see monitor/alerts.py); ``app`` NULL means every app (or the platform, for host rules).
alert_rules = Table(
    "alert_rules",
    metadata,
    Column("name", String(63), primary_key=True),
    Column("app", String(63), nullable=True),
    Column("kind", String(32), nullable=False),
    Column("threshold", Float, nullable=False, default=0.0),
    Column("for_s", Float, nullable=False, default=0.0),
    Column("webhook", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    # the webhook may be on a private network (see mypaas/egress.py)
    Column("allow_private", Boolean, nullable=False, default=False, server_default=false()),
)

# Where each alert stands (see monitor/alerts.py), so a restarted manager neither fires again what it
# fired already nor forgets how long a condition has held: one row per rule and target (an app, "" for
# the platform, "host NAME") while the condition holds or the alert fires.
alert_states = Table(
    "alert_states",
    metadata,
    Column("rule", String(63), primary_key=True),
    Column("target", String(140), primary_key=True),
    Column("since", Float, nullable=True),
    Column("firing", Integer, nullable=False, default=0),
)
