"""Unit tests for the Compose parser (mypaas.spec.compose) and its value syntaxes."""

from __future__ import annotations

import textwrap
from typing import Any

import pytest

from mypaas.domain import AppSpec, BuildSpec, HealthCheck, PortSpec, ServiceSpec, VolumeMount
from mypaas.errors import InvalidSpec
from mypaas.spec.compose import parse_compose, single_image_spec
from mypaas.spec.envfile import parse_env_file
from mypaas.spec.values import parse_bytes, parse_duration


def parse(text: str, **kwargs: Any) -> AppSpec:
    return parse_compose(textwrap.dedent(text), **kwargs)


def error(text: str, **kwargs: Any) -> InvalidSpec:
    with pytest.raises(InvalidSpec) as info:
        parse(text, **kwargs)
    return info.value


def service(body: str, *, top: str = "", **kwargs: Any) -> ServiceSpec:
    """Parse one service ``web`` whose keys are ``body`` (indented by the caller's dedent)."""
    return parse(_one(body, top), **kwargs).services["web"]


def service_error(body: str, *, top: str = "", **kwargs: Any) -> InvalidSpec:
    return error(_one(body, top), **kwargs)


def _one(body: str, top: str) -> str:
    keys = textwrap.indent(textwrap.dedent(body).strip("\n"), "    ")
    return f"services:\n  web:\n{keys}\n{textwrap.dedent(top)}"


# --- the whole file --------------------------------------------------------------------------------------
TWO_SERVICES = """
    name: shop
    services:
      web:
        image: ghcr.io/acme/shop:1.2
        ports: ["8080:80"]
        environment:
          DATABASE_URL: postgres://db/shop
        depends_on:
          db:
            condition: service_healthy
        deploy:
          replicas: 2
      db:
        image: postgres:16
        volumes: ["pgdata:/var/lib/postgresql/data"]
        healthcheck:
          test: ["CMD", "pg_isready"]
          interval: 5s
    volumes:
      pgdata: {}
"""


def test_two_services_with_depends_on() -> None:
    app = parse(TWO_SERVICES)
    assert list(app.services) == ["web", "db"]
    web, db = app.services["web"], app.services["db"]
    assert web.name == "web" and db.name == "db"
    assert web.image == "ghcr.io/acme/shop:1.2" and web.image_id is None
    assert web.ports == [PortSpec(container=80, host=8080)]
    assert web.depends_on == {"db": "service_healthy"}
    assert web.replicas == 2
    assert db.volumes == [VolumeMount(source="pgdata", target="/var/lib/postgresql/data")]
    assert db.healthcheck == HealthCheck(test=["CMD", "pg_isready"], interval_s=5.0)
    assert app.volumes == ["pgdata"]
    assert app.start_order() == ["db", "web"]
    assert app.web == "web"


def test_minimal_service_gets_the_domain_defaults() -> None:
    spec = service("image: nginx")
    assert spec == ServiceSpec(name="web", image="nginx")


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("", "compose"),
        ("- a\n- b\n", "compose"),
        ("just text", "compose"),
        ("name: x\n", "services"),
        ("services: {}\n", "services"),
        ("services:\n", "services"),
        ("services: [web]\n", "services"),
    ],
)
def test_file_must_be_a_mapping_with_services(text: str, field: str) -> None:
    assert error(text).field == field


def test_malformed_yaml_names_the_line() -> None:
    exc = error("services:\n  web:\n    image: [nginx\n")
    assert exc.field == "compose"
    assert exc.message.startswith("invalid YAML: ")
    assert "(line " in exc.message


def test_duplicate_keys_are_an_error() -> None:
    exc = error("services:\n  web:\n    image: a\n    image: b\n")
    assert exc.field == "compose"
    assert "duplicate key 'image'" in exc.message
    assert "(line 4)" in exc.message


def test_yaml_anchors_and_merge_keys_work() -> None:
    app = parse(
        """
        x-common: &common
          image: nginx
          restart: always
        services:
          web:
            <<: *common
            restart: "no"
          worker:
            <<: *common
        """
    )
    assert app.services["web"].restart == "no"
    assert app.services["worker"].restart == "always"
    assert app.services["worker"].image == "nginx"


def test_yaml_is_read_with_compose_scalars() -> None:
    # YAML 1.1 would read 22:22 as 1342, `no` as False and a date as a datetime.date.
    spec = service(
        """
        image: nginx
        ports: [22:22]
        restart: no
        environment:
          DAY: 2024-01-01
          MODE: 0755
        """
    )
    assert spec.ports == [PortSpec(container=22, host=22)]
    assert spec.restart == "no"
    assert spec.environment == {"DAY": "2024-01-01", "MODE": "755"}


def test_deeply_nested_yaml_is_a_clear_error() -> None:
    exc = error("services: " + "[" * 5000 + "]" * 5000)
    assert exc.field == "compose"
    assert "nested too deeply" in exc.message


def test_unreadable_characters_are_a_one_line_error() -> None:
    exc = error("services:\n  web: \x00\n")
    assert exc.field == "compose"
    assert exc.message.startswith("invalid YAML: unacceptable character")
    assert "\n" not in exc.message


def test_version_and_extensions_are_ignored() -> None:
    app = parse(
        """
        version: "3.9"
        x-anything: {whatever: [1, 2]}
        services:
          web:
            image: nginx
            x-note: ignored too
        """
    )
    assert list(app.services) == ["web"]


@pytest.mark.parametrize("key", ["models"])
def test_unsupported_top_level_key(key: str) -> None:
    exc = error(f"services:\n  web:\n    image: nginx\n{key}: {{}}\n")
    assert exc.field == key
    assert exc.message == f"unsupported key '{key}' (MyPaas does not support it yet)"


def test_top_level_name_must_be_text() -> None:
    assert error("name: [a]\nservices:\n  web:\n    image: nginx\n").field == "name"


# --- service names and required keys ---------------------------------------------------------------------
@pytest.mark.parametrize("name", ["-web", "my app", "caf\u00e9", "--"])
def test_service_name_must_be_a_dns_label(name: str) -> None:
    exc = error(f"services:\n  {name}:\n    image: nginx\n")
    assert exc.field == f"services.{name}"
    assert name in exc.message


def test_service_must_be_a_mapping() -> None:
    assert error("services:\n  web:\n").field == "services.web"
    assert error("services:\n  web: nginx\n").field == "services.web"


def test_service_needs_image_or_build() -> None:
    exc = service_error("restart: always")
    assert exc.field == "services.web.image"
    assert "'image' or a 'build'" in exc.message


def test_memswap_limit_is_refused() -> None:
    exc = service_error("image: nginx\nmemswap_limit: 2g")
    assert exc.field == "services.web.memswap_limit"
    assert "unsupported key 'memswap_limit' in services.web" in exc.message
    assert "deploy.resources.limits.memory" in exc.message


def test_privileged() -> None:
    exc = service_error("image: nginx\nprivileged: true")
    assert exc.field == "services.web.privileged"
    assert exc.message == "privileged containers are not allowed (admin setting allow_privileged)"
    allowed = parse_compose(
        "services:\n  web:\n    image: nginx\n    privileged: true\n", allow_privileged=True
    )
    assert allowed.services["web"].privileged
    assert service("image: nginx\nprivileged: false").image == "nginx"


# --- image and build -------------------------------------------------------------------------------------
def test_image_must_be_a_reference() -> None:
    assert service_error("image: ''").field == "services.web.image"
    assert service_error("image: [nginx]").field == "services.web.image"
    assert service_error("image: 'ng inx'").field == "services.web.image"


def test_build_short_form() -> None:
    spec = service("build: ./app")
    assert spec.build == BuildSpec(context="./app")
    assert spec.image is None


def test_build_long_form_with_image_tag() -> None:
    spec = service(
        """
        image: shop:dev
        build:
          context: api
          dockerfile: Dockerfile.prod
          target: runtime
          args:
            VERSION: 1.2
            DEBUG: false
        """
    )
    assert spec.image == "shop:dev"
    assert spec.build == BuildSpec(
        context="api",
        dockerfile="Dockerfile.prod",
        target="runtime",
        args={"VERSION": "1.2", "DEBUG": "false"},
    )


def test_build_context_defaults_to_the_project_directory() -> None:
    assert service("build: {dockerfile: Dockerfile}").build == BuildSpec(context=".")


def test_build_args_as_list_take_missing_values_from_dotenv() -> None:
    spec = service(
        "build:\n  context: .\n  args: [A=1, B, C]",
        env_files={".env": "B=from-dotenv\n"},
    )
    assert spec.build is not None
    assert spec.build.args == {"A": "1", "B": "from-dotenv"}  # C: the Dockerfile default applies


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ("build: {context: ., cache_from: [a]}", "services.web.build.cache_from"),
        ("build: {context: ., ssh: [default]}", "services.web.build.ssh"),
        ("build: {context: [a]}", "services.web.build.context"),
        ("build: {dockerfile: ''}", "services.web.build.dockerfile"),
        ("build: {args: 3}", "services.web.build.args"),
        ("build: 3", "services.web.build"),
    ],
)
def test_build_errors(body: str, field: str) -> None:
    exc = service_error(body)
    assert exc.field == field
    assert field.rpartition(".")[2] in exc.message or field in exc.message


# --- command and entrypoint ------------------------------------------------------------------------------
@pytest.mark.parametrize("key", ["command", "entrypoint"])
def test_command_and_entrypoint(key: str) -> None:
    assert getattr(service(f"image: a\n{key}: python -m http.server 'a b'"), key) == [
        "python",
        "-m",
        "http.server",
        "a b",
    ]
    assert getattr(service(f"image: a\n{key}: [sh, -c, 'echo hi']"), key) == ["sh", "-c", "echo hi"]
    assert getattr(service(f"image: a\n{key}: [sleep, 10]"), key) == ["sleep", "10"]
    assert getattr(service(f"image: a\n{key}: ''"), key) == []
    assert getattr(service(f"image: a\n{key}: null"), key) is None


@pytest.mark.parametrize("key", ["command", "entrypoint"])
def test_command_errors(key: str) -> None:
    exc = service_error(f'image: a\n{key}: "echo \'unbalanced"')
    assert exc.field == f"services.web.{key}"
    exc = service_error(f"image: a\n{key}: [echo, {{a: 1}}]")
    assert exc.field == f"services.web.{key}[1]"
    exc = service_error(f"image: a\n{key}: {{a: 1}}")
    assert exc.field == f"services.web.{key}"


# --- environment and env_file ----------------------------------------------------------------------------
def test_environment_mapping_stringifies_values() -> None:
    spec = service(
        """
        image: a
        environment:
          NAME: shop
          PORT: 8080
          RATIO: 0.5
          DEBUG: true
          EMPTY:
        """
    )
    assert spec.environment == {"NAME": "shop", "PORT": "8080", "RATIO": "0.5", "DEBUG": "true"}


def test_environment_list() -> None:
    spec = service("image: a\nenvironment: [A=1, B=x=y, C, D=]")
    assert spec.environment == {"A": "1", "B": "x=y", "D": ""}


def test_environment_keys_are_what_the_engine_takes() -> None:
    spec = service("image: a\nenvironment: [discovery.type=single-node, BAD-KEY=1, 1A=2, a:b=3]")
    assert spec.environment == {"discovery.type": "single-node", "BAD-KEY": "1", "1A": "2", "a:b": "3"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ("environment: ['=x']", "services.web.environment"),
        ("environment: {'': x}", "services.web.environment."),
        ("environment: {A: [1]}", "services.web.environment.A"),
        ("environment: {A: {b: 1}}", "services.web.environment.A"),
        ("environment: [3]", "services.web.environment[0]"),
        ("environment: text", "services.web.environment"),
    ],
)
def test_environment_errors(body: str, field: str) -> None:
    assert service_error(f"image: a\n{body}").field == field


ENV_FILE = """
# a comment

export A=1
B = two words  # trailing comment
C='single # kept'
D="line\\nbreak \\"quoted\\""
E=
F=a=b
"""


def test_env_file_syntax() -> None:
    spec = service("image: a\nenv_file: app.env", env_files={"app.env": ENV_FILE})
    assert spec.environment == {
        "A": "1",
        "B": "two words",
        "C": "single # kept",
        "D": 'line\nbreak "quoted"',
        "E": "",
        "F": "a=b",
    }


def test_environment_wins_over_env_files_and_later_files_win() -> None:
    spec = service(
        "image: a\nenv_file: [one.env, ./two.env]\nenvironment: {A: from-environment}",
        env_files={"one.env": "A=1\nB=1\nC=1\n", "./two.env": "B=2\n"},
    )
    assert spec.environment == {"A": "from-environment", "B": "2", "C": "1"}


def test_env_file_paths_are_matched_after_normalising() -> None:
    spec = service("image: a\nenv_file: ./conf/app.env", env_files={"conf/app.env": "A=1"})
    assert spec.environment == {"A": "1"}


def test_env_file_long_syntax_with_optional_file() -> None:
    spec = service(
        "image: a\nenv_file:\n  - path: app.env\n  - path: local.env\n    required: false",
        env_files={"app.env": "A=1"},
    )
    assert spec.environment == {"A": "1"}


def test_missing_env_file_is_an_error() -> None:
    exc = service_error("image: a\nenv_file: secret.env", env_files={})
    assert exc.field == "services.web.env_file"
    assert "secret.env" in exc.message
    assert service_error("image: a\nenv_file: [a.env]").field == "services.web.env_file"


@pytest.mark.parametrize(
    ("contents", "problem"),
    [
        ("A B=1\n", "line 1"),
        ("OK=1\nA$B=2\n", "line 2"),
        ("OK=1\n\n=2\n", "line 3"),
        ("A='unterminated\n", "unterminated"),
        ('A="x" junk\n', "after the closing quote"),
    ],
)
def test_bad_env_file_lines(contents: str, problem: str) -> None:
    exc = service_error("image: a\nenv_file: app.env", env_files={"app.env": contents})
    assert exc.field == "env_file app.env"
    assert problem in exc.message


def test_env_file_entry_errors() -> None:
    assert service_error("image: a\nenv_file: [{path: a.env, format: raw}]").field == (
        "services.web.env_file[0].format"
    )
    assert service_error("image: a\nenv_file: [{required: false}]").field == "services.web.env_file[0].path"
    assert service_error("image: a\nenv_file: 3").field == "services.web.env_file"


# --- ports and expose ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("port", "expected"),
    [
        ("80", PortSpec(container=80)),
        ("'80'", PortSpec(container=80)),
        ("'8080:80'", PortSpec(container=80, host=8080)),
        ("80/tcp", PortSpec(container=80)),
        ("'8080:80/tcp'", PortSpec(container=80, host=8080)),
        ("'0.0.0.0:8080:80'", PortSpec(container=80, host=8080)),
        ("'[::]:8080:80'", PortSpec(container=80, host=8080)),
        ("{target: 80}", PortSpec(container=80)),
        ("{target: 80, published: 8080, protocol: tcp, mode: host}", PortSpec(container=80, host=8080)),
        ("{target: '80', published: '8080', mode: ingress}", PortSpec(container=80, host=8080)),
    ],
)
def test_ports(port: str, expected: PortSpec) -> None:
    assert service(f"image: a\nports:\n  - {port}").ports == [expected]


@pytest.mark.parametrize(
    ("port", "field", "problem"),
    [
        ("0", "services.web.ports[1]", "at least 1"),
        ("65536", "services.web.ports[1]", "out of range"),
        ("'8080:70000'", "services.web.ports[1]", "out of range"),
        ("http", "services.web.ports[1]", "invalid port"),
        ("true", "services.web.ports[1]", "non-empty string"),
        ("{published: 8080}", "services.web.ports[1].target", "required"),
        ("{target: 80, mode: global}", "services.web.ports[1].mode", "ingress"),
    ],
)
def test_port_errors(port: str, field: str, problem: str) -> None:
    exc = service_error(f"image: a\nports:\n  - 80\n  - {port}")
    assert exc.field == field
    assert problem in exc.message


def test_ports_must_be_a_list() -> None:
    assert service_error("image: a\nports: '80'").field == "services.web.ports"


def test_expose() -> None:
    assert service("image: a\nexpose: [3000, '8080', 9000/tcp]").expose == [3000, 8080, 9000]


@pytest.mark.parametrize(
    ("item", "problem"),
    [("0", "at least 1"), ("'9000-9010'", "port ranges"), ("53/sctp", "sctp"), ("abc", "invalid port")],
)
def test_expose_errors(item: str, problem: str) -> None:
    exc = service_error(f"image: a\nexpose: [80, {item}]")
    assert exc.field == "services.web.expose[1]"
    assert problem in exc.message


# --- volumes ---------------------------------------------------------------------------------------------
DATA = "volumes:\n  data: {}\n"


def test_named_volumes_short_and_long() -> None:
    spec = service(
        """
        image: a
        volumes:
          - data:/var/data
          - data:/srv:ro
          - data:/rw:rw
          - {type: volume, source: data, target: /long, read_only: true}
        """,
        top=DATA,
    )
    assert spec.volumes == [
        VolumeMount(source="data", target="/var/data"),
        VolumeMount(source="data", target="/srv", read_only=True),
        VolumeMount(source="data", target="/rw"),
        VolumeMount(source="data", target="/long", read_only=True),
    ]


@pytest.mark.parametrize("source", ["/srv/www", "~/site"])  # ./site: tests/unit/test_volumes.py
def test_bind_mounts_need_the_admin_setting(source: str) -> None:
    exc = service_error(f"image: a\nvolumes: ['{source}:/www:ro']")
    assert exc.field == "services.web.volumes[0]"
    assert "host paths are not allowed (admin setting allow_host_mounts)" in exc.message
    spec = service(f"image: a\nvolumes: ['{source}:/www:ro']", allow_host_mounts=True)
    assert spec.volumes == [VolumeMount(source=source, target="/www", read_only=True, bind=True)]


def test_long_bind_mount() -> None:
    body = "image: a\nvolumes:\n  - {type: bind, source: /etc/app, target: /conf}"
    assert service_error(body).field == "services.web.volumes[0]"
    spec = service(body, allow_host_mounts=True)
    assert spec.volumes == [VolumeMount(source="/etc/app", target="/conf", bind=True)]


@pytest.mark.parametrize(
    ("item", "field", "problem"),
    [
        ("other:/data", "services.web.volumes[0]", "'other' is not declared in the top-level volumes"),
        ("data:relative", "services.web.volumes[0]", "absolute path"),
        ("data:/x:zz", "services.web.volumes[0]", "unknown mode 'zz'"),
        ("data:/x:ro:extra", "services.web.volumes[0]", "SOURCE:TARGET"),
        ("{type: npipe, target: /tmp}", "services.web.volumes[0].type", "'npipe'"),
        ("{source: data, target: /x}", "services.web.volumes[0].type", "'volume', 'bind'"),
        ("{type: volume, source: data}", "services.web.volumes[0].target", "target"),
        ("{type: volume, source: ./x, target: /x}", "services.web.volumes[0].source", "use type bind"),
        (
            "{type: volume, source: data, target: /x, volume: {subpath: a}}",
            "services.web.volumes[0].volume.subpath",
            "",
        ),
        (
            "{type: volume, source: data, target: /x, read_only: maybe}",
            "services.web.volumes[0].read_only",
            "",
        ),
        (
            "{type: bind, source: ./x, target: /x, bind: {other: shared}}",
            "services.web.volumes[0].bind.other",
            "",
        ),
    ],
)
def test_volume_errors(item: str, field: str, problem: str) -> None:
    exc = service_error(f"image: a\nvolumes:\n  - {item}", top=DATA)
    assert exc.field == field
    assert problem in exc.message


def test_top_level_volumes() -> None:
    app = parse("services:\n  web:\n    image: a\nvolumes:\n  data:\n  cache: {driver: local}\n  logs: {}\n")
    assert app.volumes == ["data", "cache", "logs"]


@pytest.mark.parametrize(
    ("top", "field", "problem"),
    [
        ("volumes:\n  Data: {}", "volumes.Data", "invalid name 'Data'"),
        ("volumes:\n  _x: {}", "volumes._x", "invalid name"),
        ("volumes:\n  data: {driver: nfs}", "volumes.data.driver", "'nfs'"),
        ("volumes:\n  data: {external: maybe}", "volumes.data.external", "true or false"),
        ("volumes:\n  data: {driver_opts: {}}", "volumes.data.driver_opts", "driver_opts"),
        ("volumes:\n  data: big", "volumes.data", "mapping"),
        ("volumes: [data]", "volumes", "mapping"),
    ],
)
def test_top_level_volume_errors(top: str, field: str, problem: str) -> None:
    exc = error(f"services:\n  web:\n    image: a\n{top}\n")
    assert exc.field == field
    assert problem in exc.message


# --- depends_on ------------------------------------------------------------------------------------------
def test_depends_on_list_and_mapping() -> None:
    app = parse(
        """
        services:
          web:
            image: a
            depends_on: [db, cache]
          worker:
            image: a
            depends_on:
              db: {condition: service_healthy}
              migrate: {condition: service_completed_successfully}
              cache:
          db: {image: postgres}
          cache: {image: redis}
          migrate: {image: a}
        """
    )
    assert app.services["web"].depends_on == {"db": "service_started", "cache": "service_started"}
    assert app.services["worker"].depends_on == {
        "db": "service_healthy",
        "migrate": "service_completed_successfully",
        "cache": "service_started",
    }
    order = app.start_order()
    assert order.index("db") < order.index("web") and order.index("migrate") < order.index("worker")


@pytest.mark.parametrize(
    ("depends", "field", "problem"),
    [
        ("[nope]", "services.web.depends_on", "unknown service 'nope'"),
        ("{nope: {}}", "services.web.depends_on", "unknown service 'nope'"),
        ("{db: {condition: started}}", "services.web.depends_on.db.condition", "service_healthy"),
        ("{db: service_started}", "services.web.depends_on.db", "mapping"),
        ("[3]", "services.web.depends_on[0]", ""),
    ],
)
def test_depends_on_errors(depends: str, field: str, problem: str) -> None:
    exc = error(f"services:\n  web:\n    image: a\n    depends_on: {depends}\n  db:\n    image: b\n")
    assert exc.field == field
    assert problem in exc.message


def test_depends_on_cycle() -> None:
    exc = error(
        """
        services:
          a: {image: x, depends_on: [b]}
          b: {image: x, depends_on: [c]}
          c: {image: x, depends_on: [a]}
        """
    )
    assert exc.field == "depends_on"
    assert "cycle" in exc.message and "a -> b -> c -> a" in exc.message


# --- healthcheck -----------------------------------------------------------------------------------------
def test_healthcheck_full() -> None:
    spec = service(
        """
        image: a
        healthcheck:
          test: curl -f http://localhost/health || exit 1
          interval: 1m30s
          timeout: 500ms
          retries: 5
          start_period: 40s
        """
    )
    assert spec.healthcheck == HealthCheck(
        test=["CMD-SHELL", "curl -f http://localhost/health || exit 1"],
        interval_s=90.0,
        timeout_s=0.5,
        retries=5,
        start_period_s=40.0,
    )


def test_healthcheck_list_forms_and_defaults() -> None:
    spec = service("image: a\nhealthcheck:\n  test: [CMD-SHELL, 'pg_isready']\n  interval: 10")
    assert spec.healthcheck == HealthCheck(test=["CMD-SHELL", "pg_isready"], interval_s=10.0)
    spec = service("image: a\nhealthcheck:\n  test: [CMD, curl, -f, http://localhost]")
    assert spec.healthcheck is not None and spec.healthcheck.test == ["CMD", "curl", "-f", "http://localhost"]


@pytest.mark.parametrize(
    "body",
    [
        "healthcheck: {disable: true}",
        "healthcheck: {disable: true, test: [CMD, x]}",
        "healthcheck: {test: [NONE]}",
    ],
)
def test_healthcheck_disabled(body: str) -> None:
    check = service(f"image: a\n{body}").healthcheck  # as docker compose: not even the image's own check
    assert check is not None and check.disabled


@pytest.mark.parametrize(
    ("health", "field", "problem"),
    [
        ("{interval: 5s}", "services.web.healthcheck.test", "required"),
        ("{test: [curl, x]}", "services.web.healthcheck.test", "CMD"),
        ("{test: [CMD]}", "services.web.healthcheck.test", "CMD"),
        ("{test: [CMD-SHELL, a, b]}", "services.web.healthcheck.test", "CMD-SHELL"),
        ("{test: [CMD, 3]}", "services.web.healthcheck.test[1]", ""),
        ("{test: x, interval: 5 seconds}", "services.web.healthcheck.interval", "invalid duration"),
        ("{test: x, interval: 0s}", "services.web.healthcheck.interval", "greater than 0"),
        ("{test: x, timeout: -1}", "services.web.healthcheck.timeout", "invalid duration"),
        ("{test: x, start_period: 1y}", "services.web.healthcheck.start_period", "invalid duration"),
        ("{test: x, retries: 0}", "services.web.healthcheck.retries", "at least 1"),
        ("{test: x, retries: many}", "services.web.healthcheck.retries", "integer"),
        ("{test: x, disable: sometimes}", "services.web.healthcheck.disable", "true or false"),
        ("[CMD, x]", "services.web.healthcheck", "mapping"),
    ],
)
def test_healthcheck_errors(health: str, field: str, problem: str) -> None:
    exc = service_error(f"image: a\nhealthcheck: {health}")
    assert exc.field == field
    assert problem in exc.message


def test_healthcheck_start_period_may_be_zero() -> None:
    spec = service("image: a\nhealthcheck: {test: x, start_period: 0s}")
    assert spec.healthcheck is not None and spec.healthcheck.start_period_s == 0.0


# --- deploy ----------------------------------------------------------------------------------------------
def test_deploy_replicas_and_limits() -> None:
    spec = service(
        """
        image: a
        deploy:
          replicas: 0
          resources:
            limits:
              cpus: '0.5'
              memory: 512m
        """
    )
    assert (spec.replicas, spec.cpus, spec.memory) == (0, 0.5, 512 * 1024**2)
    assert service("image: a\ndeploy: {resources: {limits: {cpus: 2}}}").cpus == 2.0
    assert service("image: a\ndeploy: {}").replicas is None


def test_deploy_placement_and_reservations() -> None:
    svc = service(
        "image: a\ndeploy: {placement: {constraints: ['node.labels.zone == east', node.role!=manager]},"
        " resources: {reservations: {cpus: 0.5, memory: 64m}}}"
    )
    assert svc.placement == ["node.labels.zone==east", "node.role!=manager"]
    assert svc.reserve_cpus == 0.5
    assert svc.reserve_memory == 64 * 2**20


@pytest.mark.parametrize(
    ("deploy", "field", "problem"),
    [
        ("{placement: {preferences: []}}", "services.web.deploy.placement.preferences", "preferences"),
        (
            "{placement: {constraints: [zone=east]}}",
            "services.web.deploy.placement.constraints",
            "invalid constraint 'zone=east'",
        ),
        (
            "{placement: {constraints: node.role==worker}}",
            "services.web.deploy.placement.constraints",
            "a list",
        ),
        ("{replicas: -1}", "services.web.deploy.replicas", "at least 0"),
        ("{replicas: 1.5}", "services.web.deploy.replicas", "integer"),
        ("{replicas: true}", "services.web.deploy.replicas", "integer"),
        (
            "{resources: {reservations: {pids: 1}}}",
            "services.web.deploy.resources.reservations.pids",
            "pids",
        ),
        ("{resources: {limits: {pids: 10}}}", "services.web.deploy.resources.limits.pids", "pids"),
        ("{resources: {limits: {cpus: 0}}}", "services.web.deploy.resources.limits.cpus", "greater than 0"),
        ("{resources: {limits: {cpus: lots}}}", "services.web.deploy.resources.limits.cpus", "number"),
        ("{resources: {limits: {memory: 1 lot}}}", "services.web.deploy.resources.limits.memory", "size"),
        ("{resources: {limits: {memory: 0}}}", "services.web.deploy.resources.limits.memory", "size"),
        ("{resources: [limits]}", "services.web.deploy.resources", "mapping"),
    ],
)
def test_deploy_errors(deploy: str, field: str, problem: str) -> None:
    exc = service_error(f"image: a\ndeploy: {deploy}")
    assert exc.field == field
    assert problem in exc.message


# --- restart, labels, networks ---------------------------------------------------------------------------
@pytest.mark.parametrize("policy", ["no", '"no"', "always", "on-failure", "unless-stopped"])
def test_restart(policy: str) -> None:
    assert service(f"image: a\nrestart: {policy}").restart == policy.strip('"')


@pytest.mark.parametrize(("policy", "problem"), [("always:3", "on-failure:N"), ("sometimes", "one of")])
def test_restart_errors(policy: str, problem: str) -> None:
    exc = service_error(f"image: a\nrestart: {policy}")
    assert exc.field == "services.web.restart"
    assert problem in exc.message


def test_labels() -> None:
    expected = {"com.example.team": "shop", "tier": "1", "bare": ""}
    assert service("image: a\nlabels: {com.example.team: shop, tier: 1, bare: }").labels == expected
    assert service("image: a\nlabels: [com.example.team=shop, tier=1, bare]").labels == expected


@pytest.mark.parametrize("labels", ["{mypaas.app: x}", "[MyPaaS.release=1]", "['bad key=1']", "text"])
def test_label_errors(labels: str) -> None:
    assert service_error(f"image: a\nlabels: {labels}").field == "services.web.labels"


NETS = "networks:\n  front: {}\n  back: {driver: overlay}\n  edge:\n"


def test_networks() -> None:
    app = parse(_one("image: a\nnetworks: [front, back, front]", NETS))
    assert app.networks == ["front", "back", "edge"]
    assert app.services["web"].networks == ["front", "back"]
    assert service("image: a\nnetworks: {front: {}, edge: null}", top=NETS).networks == ["front", "edge"]


@pytest.mark.parametrize(
    ("networks", "field", "problem"),
    [
        ("[nope]", "services.web.networks", "'nope' is not declared in the top-level networks"),
        ("front", "services.web.networks", "mapping"),
    ],
)
def test_network_errors(networks: str, field: str, problem: str) -> None:
    exc = service_error(f"image: a\nnetworks: {networks}", top=NETS)
    assert exc.field == field
    assert problem in exc.message


@pytest.mark.parametrize(
    ("top", "field", "problem"),
    [
        ("networks:\n  front: {driver: macvlan}", "networks.front.driver", "'macvlan'"),
        (
            "networks:\n  front: {attachable: true}",
            "networks.front.attachable",
            "unsupported key 'attachable'",
        ),
        ("networks:\n  front: {ipam: {driver: dhcp}}", "networks.front.ipam.driver", "default IPAM"),
        ("networks:\n  Front: {}", "networks.Front", "invalid name"),
    ],
)
def test_top_level_network_errors(top: str, field: str, problem: str) -> None:
    exc = error(f"services:\n  web:\n    image: a\n{top}\n")
    assert exc.field == field
    assert problem in exc.message


# --- interpolation ---------------------------------------------------------------------------------------
def test_interpolation_from_dotenv() -> None:
    app = parse(
        """
        services:
          web:
            image: "shop:${TAG}"
            command: echo $$HOME $USER
            environment:
              URL: ${URL:-http://default}
              EMPTY_DEFAULT: ${EMPTY:-fallback}
              EMPTY_SET: ${EMPTY-fallback}
              UNSET: ${NOPE}
              ALT: ${TAG:+yes}
            deploy:
              replicas: ${REPLICAS:-1}
            ports: ["${PORT}:80"]
        """,
        env_files={".env": "TAG=1.4\nUSER=ann\nEMPTY=\nREPLICAS=3\nPORT=8081\n"},
    )
    web = app.services["web"]
    assert web.image == "shop:1.4"
    assert web.command == ["echo", "$HOME", "ann"]
    assert web.environment == {
        "URL": "http://default",
        "EMPTY_DEFAULT": "fallback",
        "EMPTY_SET": "",
        "UNSET": "",
        "ALT": "yes",
    }
    assert web.replicas == 3
    assert web.ports == [PortSpec(container=80, host=8081)]


def test_interpolation_without_dotenv_applies_defaults() -> None:
    spec = service("image: ${IMAGE:-nginx}\nenvironment: {A: '${A}', B: '${B-b}'}")
    assert spec.image == "nginx"
    assert spec.environment == {"A": "", "B": "b"}


def test_interpolation_does_not_read_other_env_files() -> None:
    spec = service("image: 'x:${TAG:-latest}'\nenv_file: app.env", env_files={"app.env": "TAG=9"})
    assert spec.image == "x:latest"
    assert spec.environment == {"TAG": "9"}


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("'${}'", "invalid interpolation"),
        ("'${A'", "'$$' for a literal '$'"),
        ("'${A B}'", "invalid interpolation"),
        ("'${1A}'", "invalid interpolation"),
        ("'${SECRET:?set SECRET in .env}'", "set SECRET in .env"),
        ("'${SECRET?}'", "SECRET"),
    ],
)
def test_interpolation_errors(value: str, problem: str) -> None:
    exc = service_error(f"image: a\nenvironment:\n  A: {value}")
    assert exc.field == "services.web.environment.A"
    assert problem in exc.message


def test_interpolation_in_ignored_extensions_does_not_fail() -> None:
    assert parse("x-bad: '$'\nservices:\n  web:\n    image: a\n").services["web"].image == "a"


def test_bad_dotenv_is_an_error() -> None:
    exc = error("services:\n  web:\n    image: a\n", env_files={".env": "not a line\n"})
    assert exc.field == ".env"
    assert "line 1" in exc.message


def test_yaml_aliases_are_interpolated_and_cycles_are_refused() -> None:
    bomb = "x-a: &a ['${X}', '${X}']\nx-b: &b [*a, *a, *a, *a]\n"
    app = parse(bomb + "services:\n  web:\n    image: a\n    command: *a\n", env_files={".env": "X=1"})
    assert app.services["web"].command == ["1", "1"]
    exc = error("services:\n  web:\n    image: a\n    command: &c [x, *c]\n")
    assert exc.field == "compose"
    assert "alias refers to its own anchor (line 4)" in exc.message


# --- value helpers ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("1m30s", 90.0),
        ("500ms", 0.5),
        ("10s", 10.0),
        ("2h", 7200.0),
        ("1.5s", 1.5),
        ("100us", 1e-4),
        (3, 3.0),
    ],
)
def test_parse_duration(value: object, seconds: float) -> None:
    assert parse_duration(value, "f") == pytest.approx(seconds)


@pytest.mark.parametrize("value", ["10", "1d", "", "s", "-1s", True, None, [1]])
def test_parse_duration_errors(value: object) -> None:
    with pytest.raises(InvalidSpec) as info:
        parse_duration(value, "services.web.healthcheck.interval")
    assert info.value.field == "services.web.healthcheck.interval"


@pytest.mark.parametrize(
    ("value", "size"),
    [
        ("512m", 512 * 1024**2),
        ("1g", 1024**3),
        ("256M", 256 * 1024**2),
        ("100k", 102400),
        ("1024b", 1024),
        ("2gb", 2 * 1024**3),
        ("1.5g", int(1.5 * 1024**3)),
        (1048576, 1048576),
        ("4096", 4096),
    ],
)
def test_parse_bytes(value: object, size: int) -> None:
    assert parse_bytes(value, "f") == size


@pytest.mark.parametrize("value", ["1x", "", "m", "-1m", 0, 1.5, True, None])
def test_parse_bytes_errors(value: object) -> None:
    with pytest.raises(InvalidSpec):
        parse_bytes(value, "f")


def test_parse_env_file_direct() -> None:
    assert parse_env_file("A=1\r\nexport  B='x'\n\n#C=3\n", "f") == {"A": "1", "B": "x"}


def test_single_image_spec() -> None:
    app = single_image_spec("nginx:1.27", port=8080, env={"A": "1"})
    assert app == AppSpec(
        services={"web": ServiceSpec(name="web", image="nginx:1.27", expose=[8080], environment={"A": "1"})}
    )
    assert app.web == "web"
    worker = single_image_spec("busybox", port=None, service="worker")
    assert worker.services["worker"].expose == [] and worker.web is None


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"image": "nginx", "port": 0}, "port"),
        ({"image": "nginx", "port": 70000}, "port"),
        ({"image": "", "port": None}, "image"),
        ({"image": "a b", "port": None}, "image"),
        ({"image": "nginx", "port": None, "service": "Web"}, "service"),
        ({"image": "nginx", "port": None, "env": {"1A": "x"}}, "env"),
    ],
)
def test_single_image_spec_errors(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidSpec) as info:
        single_image_spec(**kwargs)
    assert info.value.field == field
