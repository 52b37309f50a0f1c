"""Unit tests for the compose keys of a service's container options (spec/options.py, ports.py,
networks.py, rollout.py): what each gives the ServiceSpec, what it warns about, what it refuses."""

from __future__ import annotations

import textwrap

import pytest

from mypaas.container_options import LogSpec, RestartPolicy, Ulimit, UpdatePolicy
from mypaas.domain import AppSpec, PortSpec, ServiceSpec
from mypaas.errors import InvalidSpec
from mypaas.spec.compose import ComposeResult, read_compose
from mypaas.spec.services import Policy


def read(text: str, *, privileged: bool = False) -> ComposeResult:
    return read_compose(textwrap.dedent(text), policy=Policy(allow_privileged=privileged))


def one(body: str, *, top: str = "", privileged: bool = False) -> tuple[ServiceSpec, tuple[str, ...]]:
    keys = textwrap.indent(textwrap.dedent(body).strip("\n"), "    ")
    result = read(
        f"services:\n  web:\n{keys}\n  db:\n    image: db\n{textwrap.dedent(top)}", privileged=privileged
    )
    return result.spec.services["web"], result.warnings


def refused(body: str, *, top: str = "", privileged: bool = False) -> InvalidSpec:
    with pytest.raises(InvalidSpec) as info:
        one(body, top=top, privileged=privileged)
    return info.value


def app(text: str) -> AppSpec:
    return read(text).spec


# --- process options ---------------------------------------------------------------------------------
def test_process_options() -> None:
    svc, warnings = one(
        """
        image: a
        user: "1000:1000"
        working_dir: /srv/app
        init: false
        stop_signal: sigint
        stop_grace_period: 1m30s
        shm_size: 64m
        stdin_open: true
        tty: true
        ulimits: {nofile: {soft: 1024, hard: 4096}, nproc: 512}
        extra_hosts: ["db.local:10.0.0.5", "gw=host-gateway"]
        sysctls: {net.core.somaxconn: 1024}
        """
    )
    assert (svc.user, svc.working_dir, svc.init, svc.stop_signal) == (
        "1000:1000",
        "/srv/app",
        False,
        "SIGINT",
    )
    assert svc.stop_grace_s == 90 and svc.shm_size == 64 << 20 and svc.stdin_open and svc.tty
    assert svc.ulimits == [
        Ulimit(name="nofile", soft=1024, hard=4096),
        Ulimit(name="nproc", soft=512, hard=512),
    ]
    assert svc.extra_hosts == ["db.local:10.0.0.5", "gw:host-gateway"]
    assert svc.sysctls == {"net.core.somaxconn": "1024"}
    assert any("host-gateway" in w for w in warnings)


def test_an_unset_option_keeps_its_default() -> None:
    svc, warnings = one("image: a")
    assert svc == ServiceSpec(name="web", image="a")
    assert warnings == ()


@pytest.mark.parametrize(
    ("body", "field", "problem"),
    [
        ("user: 'a b'", "services.web.user", "USER"),
        ("working_dir: app", "services.web.working_dir", "absolute"),
        ("stop_signal: SIGNOPE", "services.web.stop_signal", "unknown signal"),
        ("stop_grace_period: soon", "services.web.stop_grace_period", "duration"),
        ("ulimits: {files: 3}", "services.web.ulimits.files", "unknown limit"),
        ("ulimits: {nofile: {soft: 10}}", "services.web.ulimits.nofile", "both soft and hard"),
        ("ulimits: {nofile: {soft: 10, hard: 5}}", "services.web.ulimits.nofile", "above the hard"),
        ("extra_hosts: [nohost]", "services.web.extra_hosts", "HOST:ADDRESS"),
        ("extra_hosts: ['db:nowhere']", "services.web.extra_hosts[0]", "not an IP address"),
        ("sysctls: {kernel.panic: 1}", "services.web.sysctls", "namespaces"),
        ("runtime: nvidia", "services.web.runtime", "runc"),
        ("platform: windows/amd64", "services.web.platform", "Linux"),
        ("platform: linux/z80", "services.web.platform", "OS/ARCH"),
        ("pull_policy: sometimes", "services.web.pull_policy", "every_<duration>"),
        (
            "logging: {driver: local, options: {tag: x}}",
            "services.web.logging.options",
            "unknown local option",
        ),
    ],
)
def test_process_option_errors(body: str, field: str, problem: str) -> None:
    exc = refused(f"image: a\n{body}")
    assert exc.field == field
    assert problem in exc.message


def test_logging_local_drivers_and_others() -> None:
    svc, _ = one("image: a\nlogging: {driver: local, options: {max-size: 5m}}")
    assert svc.logging == LogSpec(driver="local", options={"max-size": "5m"})
    svc, warnings = one("image: a\nlogging: {driver: syslog}")
    assert svc.logging is None and any("json-file" in w for w in warnings)


def test_runtime_platform_and_pull_policy() -> None:
    svc, warnings = one("image: a\nruntime: runc\nplatform: linux/AMD64\npull_policy: always")
    assert svc.platform == "linux/amd64"
    assert any("pull_policy" in w and "digest" in w for w in warnings)


# --- capabilities and labels ---------------------------------------------------------------------------
def test_contained_capabilities_are_allowed() -> None:
    svc, _ = one("image: a\ncap_add: [NET_BIND_SERVICE, cap_chown, SETUID]\ncap_drop: [ALL]")
    assert svc.cap_add == ["NET_BIND_SERVICE", "CHOWN", "SETUID"] and svc.cap_drop == ["ALL"]


def test_a_capability_beyond_the_container_needs_allow_privileged() -> None:
    exc = refused("image: a\ncap_add: [CHOWN, SYS_ADMIN]")
    assert exc.field == "services.web.cap_add"
    assert "SYS_ADMIN" in exc.message and "allow_privileged" in exc.message
    svc, _ = one("image: a\ncap_add: [SYS_ADMIN]", privileged=True)
    assert svc.cap_add == ["SYS_ADMIN"]


@pytest.mark.parametrize("key", ["labels", "deploy.labels"])
@pytest.mark.parametrize("label", ["com.docker.swarm.task.id", "mypaas.app", "MyPaas.x"])
def test_reserved_labels_are_refused(key: str, label: str) -> None:
    body = f"labels: {{{label}: x}}" if key == "labels" else f"deploy: {{labels: {{{label}: x}}}}"
    exc = refused(f"image: a\n{body}")
    assert exc.field == f"services.web.{key}"
    assert "reserved" in exc.message and label in exc.message


def test_labels_and_deploy_labels() -> None:
    svc, warnings = one("image: a\nlabels: {a: b}\ndeploy: {labels: {c: d}}")
    assert svc.labels == {"a": "b"} and svc.service_labels == {"c": "d"}
    assert any("deploy.labels" in w for w in warnings)


# --- ports ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("port", "expected"),
    [
        ("'127.0.0.1:8080:80'", [PortSpec(container=80, host=8080, host_ip="127.0.0.1")]),
        ("'[::1]:8080:80'", [PortSpec(container=80, host=8080, host_ip="::1")]),
        ("':2283:2283'", [PortSpec(container=2283, host=2283)]),
        ("'0.0.0.0:53:53/udp'", [PortSpec(container=53, host=53, protocol="udp")]),
        ("'7000-7001:8000-8001'", [PortSpec(container=8000, host=7000), PortSpec(container=8001, host=7001)]),
        ("'9000-9001'", [PortSpec(container=9000), PortSpec(container=9001)]),
        (
            "{target: 5432, published: 5432, host_ip: 127.0.0.1, name: pg, app_protocol: postgresql}",
            [PortSpec(container=5432, host=5432, host_ip="127.0.0.1", name="pg", app_protocol="postgresql")],
        ),
    ],
)
def test_ports(port: str, expected: list[PortSpec]) -> None:
    svc, _ = one(f"image: a\nports: [{port}]")
    assert svc.ports == expected


def test_a_port_on_one_address_warns_and_udp_is_not_routed() -> None:
    svc, warnings = one("image: a\nports: ['53:53/udp', '127.0.0.1:8080:80']")
    assert svc.http_port == 80
    assert any("Swarm cannot bind an address" in w for w in warnings)
    svc, _ = one("image: a\nports: ['53:53/udp', {target: 5432, app_protocol: postgresql}]")
    assert svc.http_port is None


@pytest.mark.parametrize(
    ("port", "problem"),
    [
        ("'7000-7002:8000-8001'", "must be as many"),
        ("'127.0.0.1::80'", "needs a host port"),
        ("'10.0.0.300:80:80'", "not an IP address"),
        ("'53:53/sctp'", "sctp"),
        ("'1-2000'", "more than 1000"),
    ],
)
def test_port_errors(port: str, problem: str) -> None:
    exc = refused(f"image: a\nports: [{port}]")
    assert exc.field == "services.web.ports[0]"
    assert problem in exc.message


# --- names and networks -----------------------------------------------------------------------------------
def test_container_name_hostname_and_links_are_aliases() -> None:
    spec = app(
        """
        services:
          web:
            image: a
            container_name: shop-web
            hostname: www
            links: ["db:database"]
            deploy: {replicas: 3}
          db: {image: db}
        """
    )
    web, db = spec.services["web"], spec.services["db"]
    assert web.aliases == ["shop-web", "www"] and web.hostname == "www" and web.replicas == 3
    assert db.aliases == ["database"]
    assert web.depends_on == {"db": "service_started"}


def test_hostname_warns() -> None:
    _, warnings = one("image: a\nhostname: www")
    assert any("services.web.hostname" in w and "replicas too" in w for w in warnings)


def test_a_service_name_that_is_not_a_dns_label() -> None:
    result = read("services:\n  My_App:\n    image: a\n    depends_on: [db_1]\n  db_1:\n    image: b\n")
    assert set(result.spec.services) == {"my-app", "db-1"}
    assert result.spec.services["my-app"].aliases == ["My_App"]
    assert result.spec.services["my-app"].depends_on == {"db-1": "service_started"}
    assert any("'my-app'" in w for w in result.warnings)


def test_two_services_with_one_dns_name_are_refused() -> None:
    with pytest.raises(InvalidSpec) as info:
        read("services:\n  my_app: {image: a}\n  my-app: {image: b}\n")
    assert "both named 'my-app'" in info.value.message


def test_networks_default_aliases_priority_and_ipam() -> None:
    result = read(
        """
        services:
          web:
            image: a
            networks:
              default: {}
              back: {aliases: [api], priority: 10}
        networks:
          back:
            ipam: {config: [{subnet: 172.28.0.0/16}]}
        """
    )
    web = result.spec.services["web"]
    assert web.networks == ["back", ""]  # the highest priority first
    assert web.network_options["back"].aliases == ["api"]
    assert any("networks.back.ipam" in w for w in result.warnings)


@pytest.mark.parametrize(
    ("networks", "field", "problem"),
    [
        (
            "{default: {ipv4_address: 172.28.0.5}}",
            "services.web.networks.default.ipv4_address",
            "fixed address",
        ),
        ("{default: {mac_address: 02:42:ac:11:00:02}}", "services.web.networks.default.mac_address", "MAC"),
        ("{default: {aliases: ['a b']}}", "services.web.networks.default.aliases[0]", "host name"),
    ],
)
def test_network_option_errors(networks: str, field: str, problem: str) -> None:
    exc = refused(f"image: a\nnetworks: {networks}")
    assert exc.field == field
    assert problem in exc.message


def test_ipam_errors() -> None:
    exc = refused("image: a", top="networks:\n  back: {ipam: {config: [{subnet: nope}]}}")
    assert exc.field == "networks.back.ipam.config[0].subnet"


# --- restarts and rollouts ------------------------------------------------------------------------------
def test_on_failure_with_a_count() -> None:
    svc, warnings = one("image: a\nrestart: on-failure:3")
    assert svc.restart == "on-failure" and svc.restart_policy == RestartPolicy(max_attempts=3)
    assert any("on-failure:3" in w for w in warnings)


def test_deploy_policies() -> None:
    svc, warnings = one(
        """
        image: a
        deploy:
          mode: global
          restart_policy: {condition: on-failure, max_attempts: 5, delay: 5s}
          update_config: {order: stop-first, parallelism: 2, delay: 10s, failure_action: pause}
        """
    )
    assert svc.mode == "global" and svc.restart == "on-failure"
    assert svc.restart_policy == RestartPolicy(max_attempts=5, delay_s=5)
    assert svc.update == UpdatePolicy(order="stop-first", parallelism=2, delay_s=10, failure_action="pause")
    assert svc.stop_first
    assert any("global" in w for w in warnings) and any("parallelism" in w for w in warnings)


@pytest.mark.parametrize(
    ("deploy", "field"),
    [
        ("{mode: everywhere}", "services.web.deploy.mode"),
        ("{mode: global, replicas: 2}", "services.web.deploy.replicas"),
        ("{restart_policy: {condition: always}}", "services.web.deploy.restart_policy.condition"),
        ("{update_config: {order: random}}", "services.web.deploy.update_config.order"),
        ("{update_config: {failure_action: retry}}", "services.web.deploy.update_config.failure_action"),
        ("{update_config: {max_failure_ratio: 2}}", "services.web.deploy.update_config.max_failure_ratio"),
    ],
)
def test_deploy_policy_errors(deploy: str, field: str) -> None:
    assert refused(f"image: a\ndeploy: {deploy}").field == field


def test_depends_on_restart_and_required() -> None:
    svc, warnings = one(
        "image: a\ndepends_on: {db: {condition: service_started, restart: true}, cache: {required: false}}"
    )
    assert svc.depends_on == {"db": "service_started"}
    assert any("depends_on.db.restart" in w for w in warnings)
    assert any("depends_on.cache" in w and "required: false" in w for w in warnings)


def test_healthcheck_start_interval_and_disable_without_test() -> None:
    svc, _ = one("image: a\nhealthcheck: {test: [CMD, 'true'], start_period: 30s, start_interval: 2s}")
    assert svc.healthcheck is not None and svc.healthcheck.start_interval_s == 2
    svc, _ = one("image: a\nhealthcheck: {disable: false}")
    assert svc.healthcheck is None


def test_host_namespaces_need_allow_privileged() -> None:
    exc = refused("image: a\nnetwork_mode: host")
    assert exc.field == "services.web.network_mode" and "allow_privileged" in exc.message
    svc, warnings = one("image: a\nnetwork_mode: host\npid: host", privileged=True)
    assert (svc.network_mode, svc.pid) == ("host", "host")
    assert any("Swarm cannot run it" in w for w in warnings)
    assert "namespace" in refused("image: a\nnetwork_mode: 'service:db'").message
    assert refused("image: a\nnetwork_mode: none\nports: ['80']").field == "services.web.ports"
    svc, _ = one("image: a\nnetwork_mode: bridge")
    assert svc.network_mode is None
