"""What a service mounts, as compose writes it (mypaas.spec.volumes): project files, anonymous and
external volumes, modes, tmpfs, and what the admin settings let through."""

from __future__ import annotations

import textwrap
from typing import Any

import pytest

from mypaas.domain import AppSpec, ProjectFiles, ServiceSpec, TmpfsMount, VolumeMount
from mypaas.errors import InvalidSpec
from mypaas.spec.compose import ComposeResult, Policy, read_compose


def read(body: str, top: str = "", **policy: bool) -> ComposeResult:
    keys = textwrap.indent(textwrap.dedent(body).strip("\n"), "    ")
    text = f"services:\n  web:\n{keys}\n{textwrap.dedent(top)}"
    return read_compose(text, policy=Policy(**policy))


def web(body: str, top: str = "", **policy: bool) -> ServiceSpec:
    return read(body, top, **policy).spec.services["web"]


def refused(body: str, top: str = "", **policy: bool) -> InvalidSpec:
    with pytest.raises(InvalidSpec) as info:
        read(body, top, **policy)
    return info.value


# --- project files ---------------------------------------------------------------------------------------
def test_relative_binds_are_project_files_without_any_admin_setting() -> None:
    svc = web(
        """
        image: nginx
        volumes:
          - ./nginx.conf:/etc/nginx/nginx.conf:ro
          - ./html/:/usr/share/nginx/html/
          - ../shared:/shared
          - .:/project
          - {type: bind, source: ./conf, target: /etc/app, read_only: true}
        """
    )
    assert svc.volumes == []
    assert svc.project_files == [
        ProjectFiles(source="nginx.conf", target="/etc/nginx/nginx.conf", read_only=True),
        ProjectFiles(source="html", target="/usr/share/nginx/html"),
        ProjectFiles(source="../shared", target="/shared"),
        ProjectFiles(source=".", target="/project"),
        ProjectFiles(source="conf", target="/etc/app", read_only=True),
    ]
    assert [pf.shown for pf in svc.project_files] == [
        "./nginx.conf",
        "./html",
        "../shared",
        "./",
        "./conf",
    ]
    assert svc.project_files[0].part == "files:nginx.conf"


def test_create_host_path_lets_a_missing_folder_be_empty() -> None:
    body = "image: a\nvolumes:\n  - {type: bind, source: ./cache, target: /c, bind: {create_host_path: true}}"
    assert web(body).project_files == [ProjectFiles(source="cache", target="/c", create=True)]


def test_a_data_folder_as_project_files_is_a_warning() -> None:
    result = read(
        """
        image: postgres
        volumes:
          - ./data/db:/var/lib/postgresql/data
          - ./init.sql:/docker-entrypoint-initdb.d/init.sql:ro
          - ./uploads:/app/public/files
        """
    )
    warnings = "\n".join(result.warnings)
    assert "services.web.volumes[0]: ./data/db looks like a folder the app writes to" in warnings
    assert "a named volume keeps data" in warnings
    assert "volumes[1]" not in warnings  # a read-only init script is no data folder
    assert "services.web.volumes[2]: ./uploads looks like" in warnings


def test_project_files_at_the_engine_s_own_paths() -> None:
    assert "/proc" in refused("image: a\nvolumes: ['./x:/proc/sys']").message
    result = read("image: a\nvolumes: ['./resolv.conf:/etc/resolv.conf']")
    assert "the engine mounts its own /etc/resolv.conf" in result.warnings[0]


def test_modes_without_meaning_for_project_files_are_warnings() -> None:
    result = read("image: a\nvolumes: ['./src:/app:cached', './conf:/conf:ro,z']")
    assert result.warnings == (
        "services.web.volumes[0]: consistency has no meaning for project files (they are copied into "
        "the release)",
    )
    assert result.spec.services["web"].project_files[1].read_only


# --- host paths and the Docker socket ---------------------------------------------------------------------
@pytest.mark.parametrize(
    "item",
    [
        "/var/run/docker.sock:/var/run/docker.sock",
        "/run/docker.sock:/var/run/docker.sock:ro",
        "{type: bind, source: /var/run/docker.sock, target: /var/run/docker.sock}",
        "/var/run:/host-run",
    ],
)
def test_the_docker_socket_needs_its_own_setting(item: str) -> None:
    for policy in ({}, {"allow_host_mounts": True}):  # host mounts alone do not let it through
        exc = refused(f"image: a\nvolumes:\n  - {item}", **policy)
        assert exc.field == "services.web.volumes[0]"
        assert "Docker socket" in exc.message and "allow_docker_socket" in exc.message


def test_the_docker_socket_with_its_setting() -> None:
    svc = web("image: a\nvolumes: ['/var/run/docker.sock:/var/run/docker.sock']", allow_docker_socket=True)
    assert svc.volumes == [
        VolumeMount(source="/var/run/docker.sock", target="/var/run/docker.sock", bind=True)
    ]
    # a folder holding the socket is a host path too
    exc = refused("image: a\nvolumes: ['/var/run:/r']", allow_docker_socket=True)
    assert "allow_host_mounts" in exc.message
    assert web("image: a\nvolumes: ['/var/run:/r']", allow_docker_socket=True, allow_host_mounts=True).volumes


def test_host_paths_take_propagation_and_consistency() -> None:
    svc = web("image: a\nvolumes: ['/srv:/srv:ro,rshared,cached']", allow_host_mounts=True)
    assert svc.volumes == [
        VolumeMount(
            source="/srv",
            target="/srv",
            read_only=True,
            bind=True,
            propagation="rshared",
            consistency="cached",
        )
    ]


# --- volumes ---------------------------------------------------------------------------------------------
def test_anonymous_volumes_short_and_long() -> None:
    result = read("image: a\nvolumes:\n  - /data\n  - {type: volume, target: /cache, volume: {nocopy: true}}")
    assert result.spec.services["web"].volumes == [
        VolumeMount(source="", target="/data"),
        VolumeMount(source="", target="/cache", no_copy=True),
    ]
    assert len(result.warnings) == 2
    assert result.warnings[0].startswith("services.web.volumes[0]: anonymous volume /data: each instance")
    assert "docker compose keeps it" in result.warnings[0]


def test_volume_modes() -> None:
    top = "volumes:\n  data: {}\n"
    result = read(
        "image: a\nvolumes: ['data:/a:nocopy', 'data:/b:ro,delegated', 'data:/c:Z', 'data:/d:rshared']", top
    )
    assert result.spec.services["web"].volumes == [
        VolumeMount(source="data", target="/a", no_copy=True),
        VolumeMount(source="data", target="/b", read_only=True, consistency="delegated"),
        VolumeMount(source="data", target="/c"),
        VolumeMount(source="data", target="/d"),
    ]
    assert result.warnings == (
        "services.web.volumes[2]: SELinux relabelling (:Z) is not done",
        "services.web.volumes[3]: propagation rshared applies to host paths: it has no meaning for a volume",
    )


def test_external_volumes() -> None:
    top = """
    volumes:
      shared: {external: true}
      pg: {external: true, name: pg-data-2024}
      old: {external: {name: legacy}}
      own: {}
    """
    result = read("image: a\nvolumes: ['shared:/s', 'pg:/p:ro', 'old:/o', 'own:/w']", top)
    app: AppSpec = result.spec
    assert app.volumes == ["own"]
    assert app.external_volumes == ["legacy", "pg-data-2024", "shared"]
    assert [v.source for v in app.services["web"].volumes] == ["shared", "pg-data-2024", "legacy", "own"]
    assert result.warnings == ()


@pytest.mark.parametrize(
    ("top", "field", "problem"),
    [
        (
            "volumes:\n  x: {external: true, name: mypaas_other_db}",
            "volumes.x.name",
            "a volume of a MyPaas app",
        ),
        ("volumes:\n  x: {external: true, name: 'a b'}", "volumes.x.name", "invalid volume name"),
        ("volumes:\n  x: {external: true, name: own}\n  own: {}", "volumes.x.name", "the app's own"),
        ("volumes:\n  x: {external: {other: 1}}", "volumes.x.external.other", "property 'other'"),
    ],
)
def test_external_volume_errors(top: str, field: str, problem: str) -> None:
    exc = refused("image: a", top)
    assert exc.field == field and problem in exc.message


def test_a_name_without_external_is_a_warning() -> None:
    result = read("image: a\nvolumes: ['data:/d']", "volumes:\n  data: {name: my-data, labels: {a: b}}\n")
    assert result.spec.volumes == ["data"]
    assert any("volumes.data.name: the volume is the app's own" in w for w in result.warnings)
    assert any("volumes.data.labels: not applied" in w for w in result.warnings)


# --- tmpfs -----------------------------------------------------------------------------------------------
def test_tmpfs_key_and_mounts() -> None:
    result = read(
        """
        image: a
        tmpfs: ['/run', '/tmp:size=64m,mode=1777,noexec']
        volumes:
          - {type: tmpfs, target: /cache, tmpfs: {size: 1g, mode: "0o700"}}
          - {type: tmpfs, target: /ro, read_only: true}
        """
    )
    assert result.spec.services["web"].tmpfs == [
        TmpfsMount(target="/run"),
        TmpfsMount(target="/tmp", size=64 * 1024**2, mode=0o1777),
        TmpfsMount(target="/cache", size=1024**3, mode=0o700),
        TmpfsMount(target="/ro", read_only=True),
    ]
    assert result.warnings == (
        "services.web.tmpfs[1]: tmpfs options noexec are not applied (only size, mode and ro are)",
    )
    assert web("image: a\ntmpfs: /run").tmpfs == [TmpfsMount(target="/run")]


@pytest.mark.parametrize(
    ("body", "field", "problem"),
    [
        ("tmpfs: run", "services.web.tmpfs", "absolute path"),
        ("tmpfs: ['/run:bogus']", "services.web.tmpfs[0]", "unknown tmpfs option 'bogus'"),
        ("tmpfs: ['/run:size=lots']", "services.web.tmpfs[0] size", "invalid size"),
        ("volumes: [{type: tmpfs, source: x, target: /t}]", "services.web.volumes[0].source", "no source"),
        (
            "volumes: [{type: tmpfs, target: /t, tmpfs: {mode: 99999}}]",
            "services.web.volumes[0].tmpfs.mode",
            "",
        ),
        (
            "volumes: [{type: tmpfs, target: /t, volume: {nocopy: true}}]",
            "services.web.volumes[0].volume",
            "",
        ),
    ],
)
def test_tmpfs_errors(body: str, field: str, problem: str) -> None:
    exc = refused(f"image: a\n{body}")
    assert exc.field == field and problem in exc.message


# --- all mounts together ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "body",
    [
        "volumes: ['/x']\ntmpfs: /x",
        "volumes: ['./a:/x/', './b:/x']",
    ],
)
def test_two_mounts_at_one_target(body: str) -> None:
    exc = refused(f"image: a\n{body}")
    assert exc.field == "services.web.volumes" and "two mounts at /x" in exc.message


@pytest.mark.parametrize(
    ("item", "problem"),
    [
        ("./a:/", "the root folder"),
        ("data", "an absolute path (an anonymous volume)"),
        (":/x", "SOURCE:TARGET"),
        ("{type: bind, source: data, target: /x}", "start a project path with ./"),
        ("{type: bind, target: /x}", "required"),
        ("{type: cluster, source: a, target: /x}", "cluster volumes"),
    ],
)
def test_mount_errors(item: str, problem: str) -> None:
    exc = refused(f"image: a\nvolumes:\n  - {item}")
    assert exc.field.startswith("services.web.volumes[0]") and problem in exc.message


def test_defaults_leave_the_spec_as_it_was() -> None:
    """A service without the new keys has the new fields at their defaults (nothing in its JSON)."""
    svc = web("image: a\nvolumes: ['data:/d']", "volumes:\n  data: {}\n")
    dumped: dict[str, Any] = svc.model_dump(exclude_defaults=True)
    assert dumped == {"name": "web", "image": "a", "volumes": [{"source": "data", "target": "/d"}]}
