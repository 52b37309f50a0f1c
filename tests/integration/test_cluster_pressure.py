"""A host short of resources takes no new instances: with the memory line set below what any host
uses, the manager checks each host over SSH, pauses it in the Swarm and records why. A host that stays
short of memory has its instances moved to the other hosts."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.kit import busybox_image, cluster_platform, wait_until

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


def test_a_host_still_short_of_memory_has_its_instances_moved_off(tmp_path: Path) -> None:
    """Only one host is short of memory (its /proc/meminfo says 99 % used, as lxcfs would show a
    container's own figures): it is paused, then its instances are moved one by one to the other host,
    and it is let go once its memory is back."""
    busybox_image("mypaas-test/ev-web:1", files={"www/index.html": "ev"})
    settings = {"host_mem_pressure_pct": 90, "host_check_s": 1, "host_evict_after_s": 1}
    with cluster_platform(2, prefix="mpe", subnet="10.200.9", **settings) as (p, cluster):
        short, other = cluster.hosts
        compose = tmp_path / "compose.yml"
        compose.write_text(
            "services:\n  web:\n    image: mypaas-test/ev-web:1\n    expose: [80]\n    deploy:\n"
            "      replicas: 4\n      placement:\n        constraints: [node.role==worker]\n"
        )
        p.cli("deploy", "ev", "-f", str(compose), check=True, timeout=180)
        p.wait_ready("ev", 4, timeout=60)
        assert {i["host"] for i in p.instances("ev")} == {short.name, other.name}

        for host, available in ((other, 900000), (short, 10000)):  # the other one stays clear of the line
            fake = host.root / "meminfo"
            fake.write_text(f"MemTotal: 1000000 kB\nMemFree: {available} kB\nMemAvailable: {available} kB\n")
            mounted = host.run("mount", "--bind", str(fake), "/proc/meminfo")
            assert mounted.returncode == 0, mounted.stderr
        try:

            def on(host: str) -> int:
                return sum(1 for i in p.instances("ev") if i["host"] == host and i["ready"])

            assert wait_until(lambda: on(short.name) == 0 and on(other.name) == 4, timeout=90), p.instances(
                "ev"
            )
            kinds = [(e["kind"], e["message"]) for e in p.cli("events", "--json", check=True).json()]
            evicted = [m for k, m in kinds if k == "instance_evicted"]
            assert len(evicted) >= 2 and all(short.name in m for m in evicted), kinds
            assert any(k == "host_pressure" and short.name in m for k, m in kinds)
            assert p.get("ev")[0] == 200
        finally:
            short.run("umount", "/proc/meminfo")
            other.run("umount", "/proc/meminfo")

        def state(name: str) -> str:
            return str(
                next(h for h in p.cli("host", "ls", "--json", check=True).json() if h["name"] == name)[
                    "state"
                ]
            )

        assert wait_until(lambda: state(short.name) == "ready", timeout=30)
        assert state(other.name) == "ready"
