"""Unit tests for the front door of the compose reader: interpolation, env files, YAML limits, the structure
of a file, several files merged, extends, include and profiles (mypaas.spec.project and its helpers)."""

from __future__ import annotations

import textwrap
import tracemalloc
from typing import Any

import pytest

from mypaas.domain import AppSpec, PortSpec, VolumeMount
from mypaas.errors import InvalidSpec
from mypaas.spec.compose import ComposeResult, Policy, ProjectSource, read_compose, read_project
from mypaas.spec.envfile import parse_env_file
from mypaas.spec.interpolate import Variables, substitute
from mypaas.spec.yamlload import MAX_FILE_BYTES, load_documents


def project(
    files: dict[str, str],
    compose: tuple[str, ...] = ("compose.yml",),
    *,
    policy: Policy | None = None,
    **kwargs: Any,
) -> ComposeResult:
    texts = {name: textwrap.dedent(text) for name, text in files.items()}
    return read_project(ProjectSource(compose, texts, **kwargs), policy)


def app(files: dict[str, str], compose: tuple[str, ...] = ("compose.yml",), **kwargs: Any) -> AppSpec:
    return project(files, compose, **kwargs).spec


def refused(files: dict[str, str], compose: tuple[str, ...] = ("compose.yml",), **kwargs: Any) -> InvalidSpec:
    with pytest.raises(InvalidSpec) as info:
        project(files, compose, **kwargs)
    return info.value


# --- interpolation -----------------------------------------------------------------------------------------
def sub(text: str, **values: str) -> str:
    return substitute(text, Variables(values), "f")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$A ${A} $$A", "1 1 $A"),
        ("${E:-d} ${E-d} ${U:-d} ${U-d}", "d  d d"),
        ("${A:+alt} ${E:+alt} ${E+alt} ${U+alt}", "alt  alt "),
        ("${A:?no} ${E?no}", "1 "),
        ("${U:-${V:-${A}}}", "1"),
        ("${U:-x${A}y}-${A:+<${A}>}", "x1y-<1>"),
        ("${U:-{braces}}", "{braces}"),
        ("cost: 5$ or $1 or $-", "cost: 5$ or $1 or $-"),
        ("$A_B ${a}", " "),
        ("$$$A", "$1"),
    ],
)
def test_substitute_as_compose_does(text: str, expected: str) -> None:
    assert sub(text, A="1", E="") == expected


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("${}", "invalid interpolation"),
        ("${A", "invalid interpolation"),
        ("${A!}", "invalid interpolation"),
        ("${U:?set U please}", "variable U is required by f: set U please"),
        ("${U?}", "variable U is required by f: it is not set"),
        ("${E:?empty}", "empty"),
        ("${U:?${A} missing}", "1 missing"),
    ],
)
def test_substitute_errors(text: str, problem: str) -> None:
    with pytest.raises(InvalidSpec) as info:
        sub(text, A="1", E="")
    assert problem in info.value.message
    assert info.value.field == "f"


def test_unset_variables_are_empty_with_one_warning_each() -> None:
    text = "services:\n  web:\n    image: 'a:${TAG}'\n    environment: [X=$TAG, 'Y=${NOPE:-d}']\n"
    result = project({"compose.yml": text})
    assert result.spec.services["web"].image == "a:"
    assert result.warnings == (
        "services.web.image: variable TAG is not set, so it is an empty string (as docker compose does)",
    )


def test_the_shell_wins_over_dotenv() -> None:
    files = {
        "compose.yml": "services:\n  web:\n    image: 'a:${TAG}-${ONLY}'\n",
        ".env": "TAG=env\nONLY=env\n",
    }
    assert app(files, shell={"TAG": "shell"}).services["web"].image == "a:shell-env"


def test_env_file_flag_replaces_dotenv() -> None:
    files = {
        "compose.yml": "services:\n  web:\n    image: 'a:${TAG:-none}'\n",
        ".env": "TAG=dotenv\n",
        "prod.env": "TAG=prod\n",
    }
    assert app(files, env_files=("prod.env",)).services["web"].image == "a:prod"
    assert refused(files, env_files=("missing.env",)).field == "missing.env"


def test_keys_are_not_interpolated() -> None:
    spec = app(
        {"compose.yml": "services:\n  web:\n    image: a\n    labels: {'$K': v, l: '$K'}\n"}, shell={"K": "k"}
    )
    assert spec.services["web"].labels == {"$K": "v", "l": "k"}


# --- env files ---------------------------------------------------------------------------------------------
def test_env_file_syntax_as_compose_reads_it() -> None:
    text = (
        "\ufeffA=1\n"
        "export B='literal ${A} \\n'\n"
        'C="tab\\there ${A}"\n'
        "D=${A:-x}_$${A}\n"
        "INHERITED\n"
        "ABSENT\n"
        "F: yaml style\n"
        'G="two\nlines" # comment\n'
        "H=x # comment\n"
        "I=x# kept\n"
        "discovery.type=single-node\n"
    )
    assert parse_env_file(text, "f", {"INHERITED": "from shell"}.get) == {
        "A": "1",
        "B": "literal ${A} \\n",
        "C": "tab\there 1",
        "D": "1_${A}",
        "INHERITED": "from shell",
        "F": "yaml style",
        "G": "two\nlines",
        "H": "x",
        "I": "x# kept",
        "discovery.type": "single-node",
    }


def test_dotenv_interpolates_from_the_shell_first() -> None:
    files = {
        "compose.yml": "services:\n  web:\n    image: 'a:${TAG}'\n",
        ".env": "BASE=1\nTAG=${BASE}-${SUFFIX}\n",
    }
    assert app(files, shell={"SUFFIX": "s", "BASE": "9"}).services["web"].image == "a:9-s"


# --- valueless environment entries -------------------------------------------------------------------------
def test_valueless_environment_entries_come_from_the_shell_then_dotenv_else_are_left_out() -> None:
    files = {
        "compose.yml": """
            services:
              web:
                image: a
                env_file: app.env
                environment:
                  - FROM_SHELL
                  - FROM_DOTENV
                  - UNSET
                  - HIDDEN
                  - EMPTY=
            """,
        ".env": "FROM_SHELL=dotenv\nFROM_DOTENV=dotenv\n",
        "app.env": "HIDDEN=from env_file\nKEPT=1\n",
    }
    spec = app(files, shell={"FROM_SHELL": "shell"})
    assert spec.services["web"].environment == {
        "FROM_SHELL": "shell",
        "FROM_DOTENV": "dotenv",
        "EMPTY": "",
        "KEPT": "1",
    }


def test_mapping_form_valueless_and_build_args() -> None:
    files = {
        "compose.yml": "services:\n  web:\n    build: {context: ., args: [V, W]}\n    environment: {V: }\n"
    }
    web = app(files, shell={"V": "1"}).services["web"]
    assert web.environment == {"V": "1"}
    assert web.build is not None and web.build.args == {"V": "1"}


# --- YAML safety -------------------------------------------------------------------------------------------
BILLION_LAUGHS = "\n".join(
    [
        "x-a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]",
        *(f"x-{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]" for i in range(8)),
        "services:\n  web:\n    image: a\n    command: *i",
    ]
)


def test_a_billion_laughs_is_refused_fast_with_flat_memory() -> None:
    tracemalloc.start()
    try:
        with pytest.raises(InvalidSpec) as info:
            read_compose(BILLION_LAUGHS)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "expands to more than 100,000 nodes" in info.value.message
    assert info.value.field == "compose"
    assert peak < 3 * 1024 * 1024, f"peak {peak:,} bytes"  # expanded, it would be 10**9 strings


def test_merge_key_bombs_are_counted_too() -> None:
    lines = ["x-a: &a {k0: 1, k1: 1, k2: 1, k3: 1}"]
    lines += [
        f"x-{chr(98 + i)}: &{chr(98 + i)} {{<<: [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]}}"
        for i in range(14)
    ]
    with pytest.raises(InvalidSpec) as info:
        load_documents("\n".join(lines), "compose.yml")
    assert "expands to more than" in info.value.message


def test_files_past_the_size_limit_are_refused_before_parsing() -> None:
    big = "services:\n  web:\n    image: a\n" + "#" * MAX_FILE_BYTES
    exc = refused({"compose.yml": big})
    assert exc.field == "compose.yml"
    assert "limited to 1 MiB" in exc.message
    exc = refused({"compose.yml": "services:\n  web:\n    image: a\n", ".env": "A=" + "x" * MAX_FILE_BYTES})
    assert exc.field == ".env"


def test_several_documents_in_one_file_are_merged() -> None:
    spec = app({"compose.yml": "services:\n  web:\n    image: a\n---\nservices:\n  web:\n    image: b\n"})
    assert spec.services["web"].image == "b"


# --- structure ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "message", "field"),
    [
        ("ports: 80", "services.web.ports must be a list", "services.web.ports"),
        ("foo: 1", "services.web additional property 'foo' is not allowed", "services.web.foo"),
        ("deploy: {replicaz: 2}", "services.web.deploy additional property 'replicaz' is not allowed", None),
        ("healthcheck: [a]", "services.web.healthcheck must be a mapping", None),
        ("environment: 3", "services.web.environment must be a list or mapping", None),
        ("build: [a]", "services.web.build must be a mapping or string", None),
        ("ports: [{target: 80, color: red}]", "services.web.ports[0] additional property 'color'", None),
        ("volumes: [[a]]", "services.web.volumes[0] must be a mapping or string", None),
        ("extends: {service: a, x-note: 1}", "services.web.extends additional property 'x-note'", None),
    ],
)
def test_structural_errors_read_like_compose_config(body: str, message: str, field: str | None) -> None:
    exc = refused({"compose.yml": f"services:\n  web:\n    image: a\n    {body}\n"})
    assert exc.message.startswith(message)
    assert field is None or exc.field == field


def test_top_level_structure() -> None:
    exc = refused({"compose.yml": "services:\n  web:\n    image: a\nservice: {}\n"})
    assert exc.message == "the top level: additional property 'service' is not allowed"
    assert exc.field == "service"
    assert refused({"compose.yml": "services: {web: {image: a}}\nvolumes: [a]\n"}).field == "volumes"


def test_version_is_ignored_and_name_accepted() -> None:
    result = project({"compose.yml": "version: '3.8'\nname: shop\nservices:\n  web:\n    image: a\n"})
    assert list(result.spec.services) == ["web"]
    assert result.warnings == ()


def test_non_dns_service_names_reach_the_service_handlers_unchanged() -> None:
    spec = app({"compose.yml": "services:\n  my_service:\n    image: a\n"})
    assert list(spec.services) == ["my-service"]  # the service handlers' renaming, not the front door's
    assert refused({"compose.yml": "services:\n  'a b':\n    image: a\n"}).message.startswith(
        "services.a b: invalid name 'a b' (use letters, digits, '.', '_' and '-')"
    )


# --- several files ------------------------------------------------------------------------------------------
BASE = """
    services:
      web:
        image: web:1
        command: [serve, --slow]
        ports: ["8080:80", "9090:90"]
        volumes: ["data:/data", "logs:/logs"]
        environment: {A: base, B: base}
        labels: [team=shop, tier=front]
        depends_on: [db]
      db:
        image: db:1
    volumes: {data: {}, logs: {}}
"""
OVERRIDE = """
    services:
      web:
        image: web:2
        command: [serve]
        ports: ["8080:80", "8443:443"]
        volumes: ["other:/data"]
        environment: [B=override, C=override]
        labels: {tier: back}
        depends_on: {cache: {condition: service_started}}
      cache:
        image: cache:1
    volumes: {other: {}}
"""


def test_two_files_merge_like_docker_compose() -> None:
    spec = app({"compose.yml": BASE, "override.yml": OVERRIDE}, ("compose.yml", "override.yml"))
    web = spec.services["web"]
    assert web.image == "web:2"
    assert web.command == ["serve"]
    assert web.ports == [
        PortSpec(container=80, host=8080),
        PortSpec(container=90, host=9090),
        PortSpec(container=443, host=8443),
    ]
    assert web.volumes == [
        VolumeMount(source="other", target="/data"),
        VolumeMount(source="logs", target="/logs"),
    ]
    assert web.environment == {"A": "base", "B": "override", "C": "override"}
    assert web.labels == {"team": "shop", "tier": "back"}
    assert web.depends_on == {"db": "service_started", "cache": "service_started"}
    assert set(spec.services) == {"web", "db", "cache"}
    assert spec.volumes == ["data", "logs", "other"]


def test_reset_and_override_tags() -> None:
    override = """
        services:
          web:
            ports: !reset []
            volumes: !override ["logs:/var/log"]
            environment:
              A: !reset null
    """
    web = app({"compose.yml": BASE, "o.yml": override}, ("compose.yml", "o.yml")).services["web"]
    assert web.ports == []
    assert web.volumes == [VolumeMount(source="logs", target="/var/log")]
    assert web.environment == {"B": "base"}


def test_errors_in_later_files_name_the_file() -> None:
    exc = refused(
        {"compose.yml": BASE, "o.yml": "services:\n  web:\n    ports: 80\n"}, ("compose.yml", "o.yml")
    )
    assert exc.message == "o.yml: services.web.ports must be a list"
    exc = refused({"compose.yml": BASE, "o.yml": "services: [\n"}, ("compose.yml", "o.yml"))
    assert exc.field == "o.yml"
    assert exc.message.startswith("invalid YAML in o.yml: ")
    assert (
        refused({"compose.yml": BASE}, ("compose.yml", "nope.yml")).message
        == "compose file 'nope.yml' was not found"
    )


def test_a_later_file_may_not_change_a_shape() -> None:
    exc = refused(
        {"compose.yml": BASE, "o.yml": "services:\n  web:\n    deploy: 1\n  db: {deploy: {replicas: 1}}\n"},
        ("compose.yml", "o.yml"),
    )
    assert exc.field == "services.web.deploy"


# --- extends ------------------------------------------------------------------------------------------------
def test_extends_in_the_same_file_and_another_file() -> None:
    files = {
        "compose.yml": """
            services:
              base:
                image: base:1
                environment: {LEVEL: base, KEEP: 1}
                ports: ["80"]
              web:
                extends: base
                environment: {LEVEL: web}
              worker:
                extends: {file: common/worker.yml, service: worker}
                command: [work, --fast]
        """,
        "common/worker.yml": """
            services:
              parent:
                image: worker:1
                env_file: worker.env
                build: ./src
              worker:
                extends: parent
                command: [work]
        """,
        "common/worker.env": "FROM_FILE=1\n",
    }
    spec = app(files)
    assert spec.services["web"].environment == {"LEVEL": "web", "KEEP": "1"}
    assert spec.services["web"].ports == [PortSpec(container=80)]
    worker = spec.services["worker"]
    assert worker.command == ["work", "--fast"]
    assert worker.environment == {"FROM_FILE": "1"}
    assert worker.build is not None and worker.build.context == "./common/src"


@pytest.mark.parametrize(
    ("services", "problem"),
    [
        ("a: {extends: b}\n  b: {extends: a}", "circle"),
        ("a: {extends: nope}", "service 'nope' not found"),
        ("a: {extends: {file: other.yml, service: x}}", "'other.yml' was not found"),
        ("a: {extends: {file: x.yml}}", "extends.service is required"),
    ],
)
def test_extends_errors(services: str, problem: str) -> None:
    exc = refused({"compose.yml": f"services:\n  {services}\n"})
    assert problem in exc.message


# --- include ------------------------------------------------------------------------------------------------
def test_include_brings_services_with_paths_from_their_own_folder() -> None:
    files = {
        "compose.yml": """
            include:
              - db/compose.yml
              - path: [cache/compose.yml]
                env_file: cache/values.env
            services:
              web:
                image: web:1
                depends_on: [db, cache]
        """,
        "db/compose.yml": """
            services:
              db:
                image: 'db:${DB_TAG}'
                build: .
                env_file: db.env
                volumes: ["./init:/docker-entrypoint-initdb.d", "data:/var/lib/db"]
            volumes:
              data: {}
        """,
        "db/.env": "DB_TAG=16\n",
        "db/db.env": "POSTGRES_DB=shop\n",
        "cache/compose.yml": "services:\n  cache:\n    image: 'cache:${CACHE_TAG}'\n",
        "cache/values.env": "CACHE_TAG=7\n",
    }
    spec = app(files, policy=Policy(allow_host_mounts=True))
    db = spec.services["db"]
    assert db.image == "db:16"
    assert db.build is not None and db.build.context == "./db"
    assert db.environment == {"POSTGRES_DB": "shop"}
    assert [(f.source, f.target) for f in db.project_files] == [("db/init", "/docker-entrypoint-initdb.d")]
    assert spec.services["cache"].image == "cache:7"
    assert spec.volumes == ["data"]


def test_the_including_file_wins_and_its_variables_too() -> None:
    files = {
        "compose.yml": "include: [sub/compose.yml]\nservices:\n  db:\n    environment: {MINE: 1}\n",
        "sub/compose.yml": "services:\n  db:\n    image: 'db:${TAG}'\n",
        "sub/.env": "TAG=sub\n",
        ".env": "TAG=project\n",
    }
    db = app(files).services["db"]
    assert db.image == "db:project"
    assert db.environment == {"MINE": "1"}


def test_include_cycles_are_refused() -> None:
    files = {
        "compose.yml": "include: [a.yml]\nservices: {web: {image: a}}\n",
        "a.yml": "include: [compose.yml]\n",
    }
    assert "include cycle: compose.yml -> a.yml -> compose.yml" in refused(files).message


# --- profiles -----------------------------------------------------------------------------------------------
PROFILES = """
    services:
      web: {image: a}
      debug: {image: b, profiles: [debug]}
      tools: {image: c, profiles: [tools, debug], depends_on: [web]}
"""


@pytest.mark.parametrize(
    ("profiles", "shell", "expected"),
    [
        (None, {}, {"web"}),
        (("debug",), {}, {"web", "debug", "tools"}),
        (("tools",), {}, {"web", "tools"}),
        (None, {"COMPOSE_PROFILES": "tools"}, {"web", "tools"}),
        (("*",), {}, {"web", "debug", "tools"}),
    ],
)
def test_profiles(profiles: tuple[str, ...] | None, shell: dict[str, str], expected: set[str]) -> None:
    assert set(app({"compose.yml": PROFILES}, profiles=profiles, shell=shell).services) == expected


def test_a_dependency_outside_the_active_profiles() -> None:
    files = {
        "compose.yml": "services:\n  web: {image: a, depends_on: [db]}\n  db: {image: b, profiles: [db]}\n"
    }
    exc = refused(files)
    assert exc.field == "services.web.depends_on"
    assert "'db' is not enabled (its profiles: db)" in exc.message
    optional = (
        "services:\n  web: {image: a, depends_on: {db: {condition: service_started, required: false}}}\n"
    )
    assert set(app({"compose.yml": optional + "  db: {image: b, profiles: [db]}\n"}).services) == {"web"}
    only = refused({"compose.yml": "services:\n  db: {image: b, profiles: [db]}\n"})
    assert "no service is enabled" in only.message
