"""A host short of resources takes no new instances: with the memory line set below what any host
uses, the manager checks each host over SSH, pauses it in the Swarm and records why."""

from __future__ import annotations

import pytest

from tests.kit import cluster_platform, wait_until

pytestmark = pytest.mark.integration


def test_a_host_short_of_memory_is_paused() -> None:
    with cluster_platform(1, prefix="mpp", subnet="10.200.8", host_mem_pressure_pct=0.1, host_check_s=1) as (
        p,
        cluster,
    ):
        host = cluster.hosts[0]

        def listed() -> dict[str, object]:
            return next(h for h in p.cli("host", "ls", "--json", check=True).json() if h["name"] == host.name)

        assert wait_until(lambda: listed()["state"] == "pressure", timeout=30)
        entry = listed()
        assert entry["availability"] == "pause"
        assert "short of memory" in str(entry["message"])
        events = p.cli("events", "--json", check=True).json()
        assert wait_until(
            lambda: any(
                e["kind"] == "host_pressure" and host.name in e["message"]
                for e in p.cli("events", "--json", check=True).json()
            ),
            timeout=10,
        ), events
        shown = p.cli("host", "ls", check=True).out
        assert "pressure" in shown and "short of memory" in shown
