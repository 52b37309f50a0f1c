"""Unit tests for the compose keys of spec/container_keys.py: what each gives the ServiceSpec and the engine
(docker create/host config, the Swarm task), what Swarm refuses, and the keys refused with a reason."""

from __future__ import annotations

import posixpath
import textwrap

import pytest

from mypaas.composer.base import ServiceRequest
from mypaas.composer.options import container_options, host_options
from mypaas.composer.swarm_spec import Rollout, service_spec
from mypaas.container_options import check_swarm
from mypaas.domain import ServiceSpec
from mypaas.errors import InvalidSpec
from mypaas.spec.compose import read_compose, read_project
from mypaas.spec.container_keys import REFUSALS
from mypaas.spec.discover import discover
from mypaas.spec.project import ProjectSource
from mypaas.spec.services import Policy

PLAIN = ServiceSpec(name="web", image="a", image_id="sha256:" + "a" * 64, expose=[80])


def one(body: str, *, privileged: bool = False) -> tuple[ServiceSpec, tuple[str, ...]]:
    keys = textwrap.indent(textwrap.dedent(body).strip("\n"), "    ")
    result = read_compose(
        f"services:\n  web:\n    image: a\n{keys}\n", policy=Policy(allow_privileged=privileged)
    )
    return result.spec.services["web"], result.warnings


def refused(body: str, *, privileged: bool = False) -> InvalidSpec:
    with pytest.raises(InvalidSpec) as info:
        one(body, privileged=privileged)
    return info.value


def request(svc: ServiceSpec) -> ServiceRequest:
    return ServiceRequest(
        platform="p1",
        app="shop",
        service=svc,
        release=1,
        generation=0,
        replicas=1,
        image="shop/web:1",
        environment={},
    )


ALL = """
read_only: true
dns: [1.1.1.1, "2606:4700:4700::1111"]
dns_search: example.com
dns_opt: [ndots:2, use-vc]
domainname: example.com
group_add: [audio, 1001]
pids_limit: 100
cpu_shares: 512
cpuset: "0-1"
oom_score_adj: 500
mem_reservation: 64m
mem_swappiness: 10
"""


def test_the_keys_give_their_fields() -> None:
    svc, warnings = one(ALL)
    assert warnings == ()
    assert svc.read_only is True
    assert svc.dns == ["1.1.1.1", "2606:4700:4700::1111"] and svc.dns_search == ["example.com"]
    assert svc.dns_opt == ["ndots:2", "use-vc"] and svc.domainname == "example.com"
    assert svc.group_add == ["audio", "1001"] and svc.pids_limit == 100
    assert (svc.cpu_shares, svc.cpuset, svc.oom_score_adj) == (512, "0-1", 500)
    assert (svc.reserve_memory, svc.mem_swappiness) == (64 << 20, 10)


def test_unset_and_false_keys_keep_the_defaults_and_the_engine_requests() -> None:
    svc, _ = one("read_only: false\noom_kill_disable: false\nattach: false\n")
    assert svc == one("")[0]
    assert container_options(svc) == {} and host_options(svc) == {}
    task = service_spec(request(PLAIN), Rollout(ipvs=False), [], replicas=1, key="k")["task_template"]
    assert not {"ReadOnly", "Groups", "DNSConfig"} & set(task["ContainerSpec"])
    assert "Limits" not in task.get("Resources", {})


def test_the_docker_backend_takes_them() -> None:
    svc, _ = one(ALL + "oom_kill_disable: true\n", privileged=True)
    assert container_options(svc) == {"domainname": "example.com"}
    assert host_options(svc) == {
        "read_only": True,
        "dns": ["1.1.1.1", "2606:4700:4700::1111"],
        "dns_search": ["example.com"],
        "dns_opt": ["ndots:2", "use-vc"],
        "group_add": ["audio", "1001"],
        "pids_limit": 100,
        "cpu_shares": 512,
        "cpuset_cpus": "0-1",
        "oom_score_adj": 500,
        "mem_swappiness": 10,
        "oom_kill_disable": True,
    }


def test_swarm_takes_what_a_task_has() -> None:
    svc, _ = one("read_only: true\ndns: 10.0.0.2\ndns_opt: [ndots:1]\ngroup_add: [audio]\npids_limit: 50\n")
    check_swarm(svc, "services.web")
    task = service_spec(request(svc), Rollout(ipvs=False), [], replicas=1, key="k")["task_template"]
    spec = task["ContainerSpec"]
    assert spec["ReadOnly"] is True and spec["Groups"] == ["audio"]
    assert spec["DNSConfig"] == {"Nameservers": ["10.0.0.2"], "Options": ["ndots:1"]}
    assert task["Resources"]["Limits"]["Pids"] == 50


@pytest.mark.parametrize(
    "key",
    [
        "domainname: a.b",
        "cpu_shares: 512",
        "cpuset: '0'",
        "oom_score_adj: 10",
        "mem_swappiness: 0",
        "oom_kill_disable: true",
    ],
)
def test_swarm_refuses_what_a_task_lacks(key: str) -> None:
    svc, _ = one(key, privileged=True)
    with pytest.raises(InvalidSpec, match=key.partition(":")[0]) as info:
        check_swarm(svc, "services.web")
    assert info.value.field == "services.web"
    with pytest.raises(InvalidSpec):
        service_spec(request(svc), Rollout(ipvs=False), [], replicas=1, key="k")


@pytest.mark.parametrize(
    ("body", "field", "problem"),
    [
        ("read_only: maybe", "services.web.read_only", "read_only"),
        ("dns: [dns.google]", "services.web.dns[0]", "not an IP address"),
        ("dns_search: ['-bad-']", "services.web.dns_search[0]", "not a domain name"),
        ("dns_opt: ['ndots 2']", "services.web.dns_opt[0]", "resolver option"),
        ("domainname: 'a b'", "services.web.domainname", "not a domain name"),
        ("group_add: ['a b']", "services.web.group_add[0]", "group name or GID"),
        ("pids_limit: 0", "services.web.pids_limit", "pids_limit"),
        ("cpu_shares: 1", "services.web.cpu_shares", "cpu_shares"),
        ("cpuset: 0-a", "services.web.cpuset", "0-3"),
        ("oom_score_adj: 1001", "services.web.oom_score_adj", "-1000 to 1000"),
        ("mem_swappiness: 101", "services.web.mem_swappiness", "mem_swappiness"),
        ("mem_reservation: lots", "services.web.mem_reservation", "mem_reservation"),
    ],
)
def test_bad_values(body: str, field: str, problem: str) -> None:
    error = refused(body)
    assert error.field == field and problem in str(error)


def test_pids_limit_unlimited() -> None:
    assert one("pids_limit: -1")[0].pids_limit == -1


@pytest.mark.parametrize("body", ["oom_score_adj: -500", "oom_kill_disable: true"])
def test_what_shields_from_the_oom_killer_needs_allow_privileged(body: str) -> None:
    error = refused(body)
    assert "allow_privileged" in str(error) and error.field == f"services.web.{body.partition(':')[0]}"
    svc, _ = one(body, privileged=True)
    assert svc.oom_score_adj == -500 or svc.oom_kill_disable


_SAMPLES = {
    "devices": "[/dev/ttyUSB0]",
    "gpus": "all",
    "device_cgroup_rules": "['c 1:3 mr']",
    "volumes_from": "[db]",
    "external_links": "[redis]",
    "credential_spec": "{file: spec.json}",
    "storage_opt": "{size: 1G}",
    "blkio_config": "{weight: 300}",
    "post_start": "[{command: ./hook}]",
    "pre_stop": "[{command: ./hook}]",
    "provider": "{type: model}",
    "models": "[llm]",
    "use_api_socket": "true",
    **{key: "100" for key in ("cpu_rt_runtime", "cpu_rt_period", "cpu_period", "cpu_quota")},
    **{key: "1" for key in ("cpu_count", "cpu_percent")},
}


@pytest.mark.parametrize("key", sorted(REFUSALS))
def test_refused_keys_say_why(key: str) -> None:
    error = refused(f"{key}: {_SAMPLES.get(key, 'host')}")
    assert error.field == f"services.web.{key}"
    assert f"unsupported key {key!r}" in str(error) and REFUSALS[key] in str(error)
    assert "\n" not in str(error)


def test_refusal_reasons() -> None:
    assert "allow_docker_socket" in REFUSALS["use_api_socket"]
    assert "named volumes" in REFUSALS["volumes_from"]
    assert "lifecycle hooks" in REFUSALS["post_start"]


def test_attach_develop_and_annotations() -> None:
    svc, warnings = one(
        "attach: false\ndevelop:\n  watch: [{path: ., action: sync, target: /app}]\n"
        "annotations: {com.example.team: shop}\n"
    )
    assert svc == one("")[0]
    assert any(w.startswith("services.web.develop: ignored") for w in warnings)
    assert any(w.startswith("services.web.annotations:") for w in warnings)
    assert refused("attach: maybe").field == "services.web.attach"


# --- label_file ----------------------------------------------------------------------------------------
LABELED = """
services:
  web:
    image: a
    label_file: [labels/base.env, ./extra.env]
    labels: {team: shop}
"""
LABEL_FILES = {
    "compose.yml": LABELED,
    "labels/base.env": "# the team's\nteam=infra\ntier=${TIER}\n",
    "extra.env": "owner=ops\n",
}


def test_label_file_labels_under_labels() -> None:
    source = ProjectSource(("compose.yml",), files=LABEL_FILES, shell={"TIER": "front"})
    svc = read_project(source).spec.services["web"]
    assert svc.labels == {"team": "shop", "tier": "front", "owner": "ops"}


def test_the_cli_sends_the_label_files() -> None:
    def read(name: str) -> str | None:  # as the CLI reads the project folder
        return LABEL_FILES.get(posixpath.normpath(name))

    found = discover(ProjectSource(("compose.yml",), read=read))
    assert {"labels/base.env", "./extra.env"} <= set(found.files) and "TIER" in found.variables


def test_a_label_file_not_sent_or_with_a_reserved_label() -> None:
    files = {"compose.yml": LABELED, "extra.env": "owner=ops\n"}
    with pytest.raises(InvalidSpec, match=r"label_file 'labels/base\.env' named in .* not found") as info:
        discover(ProjectSource(("compose.yml",), read=lambda name: files.get(posixpath.normpath(name))))
    assert info.value.field == "services.web.label_file"
    with pytest.raises(InvalidSpec, match="was not sent") as info:
        read_project(ProjectSource(("compose.yml",), files=files))
    assert info.value.field == "services.web.label_file[0]"
    reserved = {**LABEL_FILES, "extra.env": "mypaas.app=other\n"}
    with pytest.raises(InvalidSpec, match="reserved") as info:
        read_project(ProjectSource(("compose.yml",), files=reserved))
    assert info.value.field == "services.web.label_file[1]"


def test_a_soft_memory_limit_above_the_hard_one() -> None:
    body = "mem_reservation: 1g\ndeploy: {resources: {limits: {memory: 512m}}}"
    error = refused(body)
    assert error.field == "services.web.mem_reservation" and "above the memory limit" in str(error)
    assert one(body.replace("1g", "256m"))[0].reserve_memory == 256 << 20
