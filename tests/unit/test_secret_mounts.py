"""How the composer mounts secrets and configs: the docker backend's files under the manager's home, and
the Swarm secrets and configs a service spec references (names, targets, owners, modes, the key)."""

from __future__ import annotations

import dataclasses
import os
import stat
from pathlib import Path

import pytest

from mypaas.composer.base import SecretFile, ServiceRequest
from mypaas.composer.secret_files import HostFiles
from mypaas.composer.swarm_secrets import object_name, references
from mypaas.composer.swarm_spec import Rollout, service_key, service_spec
from mypaas.domain import SecretMount, ServiceSpec
from mypaas.errors import BackendError

DIGEST = "ab" * 32
SECRET = SecretFile(
    kind="secret",
    name="db",
    digest=DIGEST,
    target="/run/secrets/db",
    data=b"pw",
    uid=101,
    gid=102,
    mode=0o440,
)
CONFIG = SecretFile(
    kind="config", name="nginx", digest="cd" * 32, target="/etc/nginx/nginx.conf", data=b"conf"
)


def test_secret_values_never_show_in_a_repr() -> None:
    assert "pw" not in repr(SECRET).replace("/run/secrets", "")


# -- the docker backend: files under the manager's home -----------------------------------------------


def test_files_are_private_owned_and_moded(tmp_path: Path) -> None:
    files = HostFiles(tmp_path / "secrets")
    path = files.write("shop", SECRET)
    assert path.read_bytes() == b"pw"
    info = path.stat()
    assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (101, 102, 0o440)
    for folder in (tmp_path / "secrets", tmp_path / "secrets" / "shop"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert path.parent == tmp_path / "secrets" / "shop" and DIGEST[:32] in path.name
    assert files.write("shop", SECRET) == path  # content-addressed: written once


def test_a_digest_or_app_that_is_not_a_name_is_refused(tmp_path: Path) -> None:
    files = HostFiles(tmp_path)
    with pytest.raises(BackendError):
        files.write("shop", dataclasses.replace(SECRET, digest="../../etc/passwd"))
    with pytest.raises(BackendError):
        files.write("../x", SECRET)


def test_prune_keeps_what_containers_mount_and_waits_for_creates(tmp_path: Path) -> None:
    files = HostFiles(tmp_path)
    kept, dropped = files.write("shop", SECRET), files.write("shop", CONFIG)
    with files.writing("shop"):
        files.prune("shop", set)  # an instance being created: nothing goes
    assert kept.exists() and dropped.exists()
    files.prune("shop", lambda: {str(kept)})
    assert kept.exists() and not dropped.exists()
    files.prune("shop", set)
    assert not (tmp_path / "shop").exists()


def test_remove_app(tmp_path: Path) -> None:
    files = HostFiles(tmp_path)
    files.write("shop", SECRET)
    files.remove_app("shop")
    assert not (tmp_path / "shop").exists() and not files.has_any()


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give a file to another user")
def test_files_for_other_users(tmp_path: Path) -> None:
    path = HostFiles(tmp_path).write("shop", dataclasses.replace(SECRET, uid=4242, gid=4343, mode=0o400))
    assert (path.stat().st_uid, path.stat().st_gid) == (4242, 4343)


# -- the swarm backend: Swarm secrets and configs -------------------------------------------------------

WEB = ServiceSpec(
    name="web",
    image="x",
    image_id="sha256:" + "e" * 64,
    secrets=[SecretMount(source="db", target="/run/secrets/db", uid=101, gid=102, mode=0o440)],
    configs=[SecretMount(source="nginx", target="/etc/nginx/nginx.conf")],
)


def request(*files: SecretFile) -> ServiceRequest:
    return ServiceRequest(
        platform="p1",
        app="shop",
        service=WEB,
        release=2,
        generation=0,
        replicas=1,
        image="reg/shop@sha256:" + "e" * 64,
        environment={},
        secret_files=files,
    )


def test_names_carry_app_name_and_digest_and_fit_swarm() -> None:
    assert object_name("shop", SECRET) == f"shop_db_{DIGEST[:12]}"
    long = dataclasses.replace(SECRET, name="n" * 120)
    other = dataclasses.replace(long, name="n" * 119 + "m")
    assert len(object_name("a" * 63, long)) <= 64
    assert object_name("a" * 63, long) != object_name("a" * 63, other)
    assert object_name("a" * 63, long).endswith(DIGEST[:12])


def test_the_spec_references_them_with_target_owner_and_mode() -> None:
    ids = {f"shop_db_{DIGEST[:12]}": "sec1", f"shop_nginx_{'cd' * 6}": "cfg1"}
    body = service_spec(request(SECRET, CONFIG), Rollout(), [], replicas=1, key="k", secret_ids=ids)
    container = body["task_template"]["ContainerSpec"]
    assert container["Secrets"] == [
        {
            "SecretID": "sec1",
            "SecretName": f"shop_db_{DIGEST[:12]}",
            "File": {"Name": "/run/secrets/db", "UID": "101", "GID": "102", "Mode": 0o440},
        }
    ]
    assert container["Configs"] == [
        {
            "ConfigID": "cfg1",
            "ConfigName": f"shop_nginx_{'cd' * 6}",
            "File": {"Name": "/etc/nginx/nginx.conf", "UID": "0", "GID": "0", "Mode": 0o444},
        }
    ]
    assert "pw" not in repr(body).replace("/run/secrets", "")


def test_the_key_follows_the_digest_not_the_engine_ids() -> None:
    rollout = Rollout()
    key = service_key(request(SECRET), rollout, [])
    assert key == service_key(request(dataclasses.replace(SECRET, data=b"same digest")), rollout, [])
    assert key != service_key(request(dataclasses.replace(SECRET, digest="ef" * 32)), rollout, [])
    assert key != service_key(request(dataclasses.replace(SECRET, mode=0o400)), rollout, [])
    without = service_spec(request(), rollout, [], replicas=1, key="")
    assert "Secrets" not in without["task_template"]["ContainerSpec"]  # no secrets: the spec of before


def test_references_without_ids_are_the_key_s() -> None:
    secrets, configs = references("shop", (SECRET, CONFIG), None)
    assert secrets[0]["SecretID"] == "" and configs[0]["ConfigID"] == ""
