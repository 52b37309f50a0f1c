"""TLS for the platform's own endpoints on a real cluster (this machine's engine as the Swarm manager, a
netns host added with `host add`): from the host, the API, the registry and its token service answer
over TLS only (plain HTTP fails), the host's engine verifies the registry with the platform CA that
`host add` put in its certs.d (no insecure registry), and a service's image is pulled there through TLS."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mypaas.registry.distribution import Distribution
from tests.kit import Platform, busybox_image, cluster_platform, free_port, wait_until

pytestmark = pytest.mark.integration

COMPOSE = """
services:
  web:
    image: mypaas-test/cl-tls:1
    expose: [80]
    deploy:
      placement:
        constraints: [node.role==worker]
"""


@pytest.fixture(scope="module")
def cl() -> Iterator[tuple[Platform, Any]]:
    busybox_image("mypaas-test/cl-tls:1", files={"www/index.html": "tls"})
    with cluster_platform(1, prefix="mptls", subnet="10.200.23") as pair:
        yield pair


@pytest.fixture
def upstream(tmp_path: Path) -> Iterator[Distribution]:
    """A plain registry on this machine's loopback: the mirror's upstream."""
    reg = Distribution(
        name="upstream",
        addr=f"127.0.0.1:{free_port()}",
        folder=tmp_path / "upstream",
        log_path=tmp_path / "upstream.log",
        auth=None,
    )
    reg.ensure_running()
    try:
        yield reg
    finally:
        reg.stop()
        reg.close()


def _curl(host: Any, *args: str) -> tuple[int, str]:
    """curl on the host: (exit code, HTTP status or "")."""
    done = host.run("curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10", *args)
    return done.returncode, done.stdout.strip()


def test_endpoints_are_tls_only_and_the_host_pulls_through_tls(cl: tuple[Platform, Any]) -> None:
    p, cluster = cl
    host, gw = cluster.hosts[0], cluster.gateway
    registry = f"{gw}:{p.env['MYPAAS_REGISTRY_ADDR'].rsplit(':', 1)[1]}"
    api = f"{gw}:{p.api_port}"
    ca = f"/etc/docker/certs.d/{registry}/ca.crt"
    assert host.run("test", "-s", ca).returncode == 0  # `host add` installed the platform CA

    # plain HTTP from the host: the API (and the token service, on the same listener) and the registry
    # serve no plain answer
    for url in (
        f"http://{api}/api/v1/health",
        f"http://{api}/api/v1/registry/token",
        f"http://{registry}/v2/",
    ):
        code, status = _curl(host, url)
        assert code != 0 or status not in ("200", "401"), (url, code, status)

    # over TLS, verified with the platform CA only
    assert _curl(host, "--cacert", ca, f"https://{api}/api/v1/health") == (0, "200")
    assert _curl(host, "--cacert", ca, f"https://{api}/api/v1/registry/token?service=x")[0] == 0
    assert _curl(host, "--cacert", ca, f"https://{registry}/v2/") == (0, "401")  # token auth asks
    assert _curl(host, f"https://{registry}/v2/")[0] != 0  # an unknown CA is refused

    # the host's engine verifies the registry (not an insecure registry)
    info = json.loads(host.docker("info", "--format", "{{json .RegistryConfig}}").stdout)
    assert info["IndexConfigs"].get(registry, {}).get("Secure", True) is True
    assert not any(registry in str(r) for r in info.get("InsecureRegistryCIDRs") or [] if "/" not in str(r))

    # an app pinned to the host: its image is pulled there from the registry over TLS
    compose = Path(p.home) / "tls.yml"
    compose.write_text(COMPOSE)
    assert p.cli("deploy", "tls", "-f", str(compose), timeout=240).code == 0
    wait_until(lambda: [i for i in p.instances("tls") if i["ready"]], timeout=180)
    images = host.docker("images", "--format", "{{.Repository}}").stdout
    assert f"{registry}/" in images
    p.cli("rm", "tls", "--yes", check=True)


def test_the_mirror_serves_only_clients_with_a_certificate_of_the_platform_ca(
    cl: tuple[Platform, Any], upstream: Distribution
) -> None:
    p, cluster = cl
    host, gw = cluster.hosts[0], cluster.gateway
    mirror = f"{gw}:{p.env['MYPAAS_MIRROR_ADDR'].rsplit(':', 1)[1]}"
    enabled = p.cli("registry", "mirror", "enable", "--upstream", upstream.url, "--json", timeout=60)
    try:
        assert enabled.code == 0, enabled
        certs = f"/etc/docker/certs.d/{mirror}"
        # anyone on the network: plain HTTP, or TLS without a client certificate, gets nothing
        code, status = _curl(host, f"http://{mirror}/v2/")
        assert code != 0 or status not in ("200", "401"), (code, status)
        assert _curl(host, "--cacert", f"{certs}/ca.crt", f"https://{mirror}/v2/")[0] != 0
        # the host's engine certificate (what `host add` put in certs.d) is let in
        cert = f"{certs}/client.cert".replace(":", "\\:")  # curl reads CERT:PASSWORD otherwise
        shown = ("--cert", cert, "--key", f"{certs}/client.key")
        assert _curl(host, "--cacert", f"{certs}/ca.crt", *shown, f"https://{mirror}/v2/") == (0, "200")
    finally:
        p.raw("DELETE", "/api/v1/registry/mirror")
