"""Unit tests for the compose keys docker compose users write that MyPaas maps its own way: the v2
resource keys (spec/resources.py), the host's time-zone files (spec/volumes.py), the top-level networks'
name/external/internal/enable_ipv6 (spec/networks.py), security_opt (spec/security.py) and an empty
value after interpolation."""

from __future__ import annotations

import dataclasses
import textwrap

import pytest

from mypaas.composer.base import ServiceRequest
from mypaas.composer.options import host_options, swarm_container
from mypaas.composer.swarm_spec import Rollout, service_spec
from mypaas.domain import ServiceSpec, VolumeMount
from mypaas.errors import InvalidSpec
from mypaas.spec.compose import ComposeResult, read_compose
from mypaas.spec.services import Policy


def read(text: str, *, privileged: bool = False, env: str = "") -> ComposeResult:
    files = {".env": env} if env else None
    return read_compose(textwrap.dedent(text), env_files=files, policy=Policy(allow_privileged=privileged))


def one(
    body: str, *, top: str = "", privileged: bool = False, env: str = ""
) -> tuple[ServiceSpec, list[str]]:
    keys = textwrap.indent(textwrap.dedent(body).strip("\n"), "    ")
    result = read(f"services:\n  web:\n{keys}\n{textwrap.dedent(top)}", privileged=privileged, env=env)
    return result.spec.services["web"], list(result.warnings)


def refused(body: str, *, top: str = "", privileged: bool = False) -> InvalidSpec:
    with pytest.raises(InvalidSpec) as info:
        one(body, top=top, privileged=privileged)
    return info.value


# --- mem_limit, cpus, mem_reservation, scale -----------------------------------------------------------
def test_v2_resource_keys_give_the_deploy_fields() -> None:
    svc, warnings = one("image: a\nmem_limit: 1g\ncpus: 0.5\nmem_reservation: 256m\nscale: 3")
    assert (svc.memory, svc.cpus, svc.reserve_memory, svc.replicas) == (1 << 30, 0.5, 1 << 28, 3)
    deployed, _ = one(
        """
        image: a
        deploy:
          replicas: 3
          resources:
            limits: {memory: 1g, cpus: "0.5"}
            reservations: {memory: 256m}
        """
    )
    assert (deployed.memory, deployed.cpus, deployed.reserve_memory, deployed.replicas) == (
        svc.memory,
        svc.cpus,
        svc.reserve_memory,
        svc.replicas,
    )
    assert warnings == []


def test_v2_and_deploy_keys_that_agree_are_taken() -> None:
    svc, _ = one(
        "image: a\nmem_limit: 1024m\nscale: 2\ndeploy: {replicas: 2, resources: {limits: {memory: 1g}}}"
    )
    assert svc.memory == 1 << 30 and svc.replicas == 2


@pytest.mark.parametrize(
    ("body", "field", "twin"),
    [
        ("mem_limit: 1g\ndeploy: {resources: {limits: {memory: 2g}}}", "mem_limit", "limits.memory"),
        ("deploy: {resources: {limits: {cpus: '2'}}}\ncpus: 1", "cpus", "limits.cpus"),
        ("scale: 2\ndeploy: {replicas: 3}", "scale", "deploy.replicas"),
        (
            "mem_reservation: 1g\ndeploy: {resources: {reservations: {memory: 2g}}}",
            "mem_reservation",
            "reservations",
        ),
    ],
)
def test_v2_and_deploy_keys_that_differ_are_refused(body: str, field: str, twin: str) -> None:
    exc = refused(f"image: a\n{body}")
    assert exc.field == f"services.web.{field}"
    assert f"services.web.{field} (" in exc.message and twin in exc.message and "differ" in exc.message


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ("mem_limit: lots", "mem_limit"),
        ("cpus: 0", "cpus"),
        ("scale: -1", "scale"),
        ("scale: 100000", "scale"),
    ],
)
def test_bad_v2_resource_values(body: str, field: str) -> None:
    assert refused(f"image: a\n{body}").field == f"services.web.{field}"


# --- the host's time zone ----------------------------------------------------------------------------
def test_zone_files_read_only_need_no_admin_setting() -> None:
    svc, warnings = one(
        """
        image: a
        volumes:
          - /etc/localtime:/etc/localtime:ro
          - type: bind
            source: /etc/timezone
            target: /etc/timezone
            read_only: true
        """
    )
    assert svc.volumes == [
        VolumeMount(source="/etc/localtime", target="/etc/localtime", read_only=True, bind=True),
        VolumeMount(source="/etc/timezone", target="/etc/timezone", read_only=True, bind=True),
    ]
    assert warnings == []


def test_a_zone_file_without_a_mode_is_mounted_read_only() -> None:
    svc, warnings = one("image: a\nvolumes: ['/etc/localtime:/etc/localtime']")
    assert svc.volumes[0].read_only and svc.volumes[0].bind
    assert warnings == ["services.web.volumes[0]: /etc/localtime is the host's: mounted read-only"]


def test_a_zone_file_read_write_or_another_etc_file_stays_refused() -> None:
    for source in ("/etc/localtime:/etc/localtime:rw", "/etc/passwd:/etc/passwd:ro", "/etc:/host-etc:ro"):
        exc = refused(f"image: a\nvolumes: ['{source}']")
        assert exc.field == "services.web.volumes[0]" and "allow_host_mounts" in exc.message


# --- top-level networks -------------------------------------------------------------------------------
def test_an_external_network_becomes_the_apps_own_with_a_warning() -> None:
    result = read(
        """
        services:
          web: {image: a, networks: [proxy, back]}
        networks:
          proxy: {external: true, name: traefik_proxy}
          back: {external: {name: old}}
          default: {external: true, name: nginx-proxy}
        """
    )
    assert result.spec.networks == ["proxy", "back"]
    assert result.spec.services["web"].networks == ["proxy", "back"]
    assert result.warnings == (
        "networks.proxy.external: the existing network 'traefik_proxy' is not joined: the platform's router "
        "reaches the app's routed service itself; the services on it join a network of the app's own",
        "networks.back.external: the existing network 'old' is not joined: the platform's router "
        "reaches the app's routed service itself; the services on it join a network of the app's own",
        "networks.default.external: the existing network 'nginx-proxy' is not joined: the platform's router "
        "reaches the app's routed service itself; the services on it join a network of the app's own",
    )


def test_network_name_internal_and_ipv6_are_warned() -> None:
    result = read(
        """
        services:
          web: {image: a, networks: [front, back, v4]}
        networks:
          front: {name: my_front}
          back: {internal: true, enable_ipv6: true}
          v4: {internal: false, enable_ipv6: false}
        """
    )
    assert result.spec.networks == ["front", "back", "v4"]
    assert result.warnings == (
        "networks.front.name: the platform names the app's networks: 'my_front' is not the engine's name",
        "networks.back.internal: not made internal: the services on it can still reach outside the "
        "platform (an app's networks are only shared by its own services)",
        "networks.back.enable_ipv6: IPv6 is not enabled: the app's networks are IPv4",
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ("{external: maybe}", "networks.n.external"),
        ("{internal: 1}", "networks.n.internal"),
        ("{enable_ipv6: yes}", "networks.n.enable_ipv6"),
        ("{name: 5}", "networks.n.name"),
        ("{external: {id: x}}", "networks.n.external"),
    ],
)
def test_bad_network_keys(body: str, field: str) -> None:
    with pytest.raises(InvalidSpec) as info:
        read(f"services:\n  web: {{image: a}}\nnetworks:\n  n: {body}\n")
    assert info.value.field is not None and info.value.field.startswith(field)


# --- security_opt ------------------------------------------------------------------------------------
def test_no_new_privileges_goes_to_the_docker_engine() -> None:
    svc, warnings = one("image: a\nsecurity_opt: [no-new-privileges, 'no-new-privileges:true']")
    assert svc.security_opt == ["no-new-privileges=true"]
    assert host_options(svc) == {"security_opt": ["no-new-privileges=true"]}
    assert warnings == [
        "services.web.security_opt: no-new-privileges=true: applied on the docker backend; a Swarm service "
        "cannot set it (the engine's API for Swarm services has no such option): left out there"
    ]
    off, warnings = one("image: a\nsecurity_opt: ['no-new-privileges:false']")
    assert off.security_opt == ["no-new-privileges=false"] and warnings == []  # an opt-out: spec/hardening.py


def test_swarm_leaves_security_opt_out() -> None:
    svc, _ = one("image: a\nsecurity_opt: [no-new-privileges]")
    req = ServiceRequest(
        platform="p1", app="shop", service=svc, release=1, generation=0, replicas=1, image="i", environment={}
    )
    plain = dataclasses.replace(req, service=svc.model_copy(update={"security_opt": []}))
    assert service_spec(req, Rollout(), [], replicas=1, key="") == service_spec(
        plain, Rollout(), [], replicas=1, key=""
    )
    assert "security_opt" not in str(swarm_container(svc, {}))


def test_label_disable_is_warned_not_applied() -> None:
    svc, warnings = one("image: a\nsecurity_opt: ['label:disable', label=disable]")
    assert svc.security_opt == []
    assert warnings[0] == (
        "services.web.security_opt[0]: label:disable: SELinux labelling is left to the engine's default "
        "(not disabled)"
    )


@pytest.mark.parametrize("option", ["seccomp:unconfined", "apparmor=unconfined", "systempaths=unconfined"])
def test_unconfined_needs_allow_privileged(option: str) -> None:
    exc = refused(f"image: a\nsecurity_opt: ['{option}']")
    assert exc.field == "services.web.security_opt[0]"
    assert "allow_privileged" in exc.message and option in exc.message
    svc, _ = one(f"image: a\nsecurity_opt: ['{option}']", privileged=True)
    assert svc.security_opt == [option.replace(":", "=")]


@pytest.mark.parametrize(
    "option", ["seccomp:/etc/profile.json", "apparmor:custom", "label:type:svirt_t", "x"]
)
def test_other_security_options_are_refused(option: str) -> None:
    exc = refused(f"image: a\nsecurity_opt: ['{option}']", privileged=True)
    assert exc.field == "services.web.security_opt[0]" and "not supported" in exc.message


# --- an empty value after interpolation -----------------------------------------------------------------
def test_an_empty_platform_or_user_is_not_set() -> None:
    svc, _ = one(
        "image: a\nplatform: ${DOCKER_PLATFORM:-}\nuser: ${APP_USER:-}\nrestart: ${RESTART:-}\nhostname: ''"
    )
    assert svc.platform is None and svc.user is None and svc.hostname is None
    assert svc.restart == "unless-stopped"
    set_, _ = one("image: a\nplatform: ${DOCKER_PLATFORM:-}", env="DOCKER_PLATFORM=linux/arm64\n")
    assert set_.platform == "linux/arm64"


def test_an_empty_image_with_a_build_is_not_set() -> None:
    svc, _ = one("image: ''\nbuild: .")
    assert svc.image is None and svc.build is not None
    assert refused("image: ''").field == "services.web.image"


@pytest.mark.parametrize("key", ["shm_size", "stop_grace_period", "pull_policy"])
def test_other_empty_values_are_still_checked(key: str) -> None:
    assert refused(f"image: a\n{key}: ''").field is not None
