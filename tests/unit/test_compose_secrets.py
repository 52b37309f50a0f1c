"""Compose secrets and configs as the parser reads them (mypaas.spec.secrets): the top-level definitions,
the service short and long syntax, their defaults, and one clear error per mistake."""

from __future__ import annotations

import textwrap

import pytest

from mypaas.domain import AppSpec, SecretMount, SecretSource
from mypaas.errors import InvalidSpec
from mypaas.spec.compose import ComposeResult, read_compose


def read(text: str) -> ComposeResult:
    return read_compose(textwrap.dedent(text))


def parse(text: str) -> AppSpec:
    return read(text).spec


def error(text: str) -> InvalidSpec:
    with pytest.raises(InvalidSpec) as info:
        read(text)
    return info.value


FULL = """
    services:
      web:
        image: nginx
        secrets:
          - db_password
          - source: api_key
            target: key.txt
            uid: "103"
            gid: 104
            mode: 0440
        configs:
          - nginx
          - source: site
            target: /etc/site.conf
            mode: "600"
    secrets:
      db_password: {file: ./db_password.txt}
      api_key: {environment: API_KEY}
    configs:
      nginx: {external: true, name: shared_nginx}
      site:
        content: |
          port=${PORT:-8080}
          price=$$5
"""


def test_the_definitions_say_where_each_value_comes_from() -> None:
    app = parse(FULL)
    assert app.secrets == {
        "db_password": SecretSource(kind="file", name="./db_password.txt"),
        "api_key": SecretSource(kind="environment", name="API_KEY"),
    }
    assert app.configs == {
        "nginx": SecretSource(kind="external", name="shared_nginx"),
        "site": SecretSource(kind="content", content="port=8080\nprice=$5\n"),  # interpolated
    }


def test_services_mount_them_where_compose_does() -> None:
    web = parse(FULL).services["web"]
    assert web.secrets == [
        SecretMount(source="db_password", target="/run/secrets/db_password", uid=0, gid=0, mode=0o444),
        SecretMount(source="api_key", target="/run/secrets/key.txt", uid=103, gid=104, mode=0o440),
    ]
    assert web.configs == [
        SecretMount(source="nginx", target="/nginx"),
        SecretMount(source="site", target="/etc/site.conf", mode=0o600),
    ]


@pytest.mark.parametrize(
    ("written", "mode"),
    [("0440", 0o440), ("0o440", 0o440), ("288", 0o440), ('"0440"', 0o440), ('"440"', 0o440), ("0", 0)],
)
def test_a_mode_reads_as_docker_compose_reads_it(written: str, mode: int) -> None:
    text = f"""
        services:
          web: {{image: nginx, secrets: [{{source: s, mode: {written}}}]}}
        secrets:
          s: {{file: ./s}}
    """
    assert parse(text).services["web"].secrets[0].mode == mode


def test_a_zero_padded_number_elsewhere_stays_decimal() -> None:
    env = parse("services:\n  web: {image: nginx, environment: {MODE: 0755}}\n").services["web"].environment
    assert env == {"MODE": "755"}


def test_external_secrets_and_dropped_keys_are_warned() -> None:
    result = read(
        """
        services:
          web: {image: nginx, secrets: [a, b]}
        secrets:
          a: {external: true}
          b: {file: ./b, name: prod_b, labels: {team: x}}
        """
    )
    assert result.spec.secrets["a"] == SecretSource(kind="external", name="a")
    assert result.warnings == (
        "secrets.a.external: the value set with `mypaas secrets set APP a` (not a docker secret)",
        "secrets.b.labels: not kept: MyPaas labels the engine's objects itself",
        "secrets.b.name: not kept: MyPaas names the engine's objects itself",
    )


def test_the_old_external_name_syntax() -> None:
    app = parse("services:\n  web: {image: nginx}\nsecrets:\n  a: {external: {name: real}}\n")
    assert app.secrets["a"] == SecretSource(kind="external", name="real")


def test_no_secrets_no_fields() -> None:
    app = parse("services:\n  web: {image: nginx}\n")
    assert (app.secrets, app.configs, app.services["web"].secrets) == ({}, {}, [])


@pytest.mark.parametrize(
    ("top", "service", "field", "words"),
    [
        (
            "secrets: {s: {}}",
            "secrets: [s]",
            "secrets.s",
            "give exactly one of file, environment or external",
        ),
        (
            "secrets: {s: {file: ./a, environment: A}}",
            "secrets: [s]",
            "secrets.s",
            "(got file and environment)",
        ),
        ("secrets: {s: {content: x}}", "secrets: [s]", "secrets.s.content", "property 'content'"),
        (
            "configs: {c: {file: ./a, external: true}}",
            "configs: [c]",
            "configs.c",
            "file, environment, content",
        ),
        ("secrets: {s: {file: ./a, driver: vault}}", "secrets: [s]", "secrets.s.driver", "encrypted store"),
        ("secrets: {s: {file: ./a, bogus: 1}}", "secrets: [s]", "secrets.s.bogus", "property 'bogus'"),
        ("secrets: {'a/b': {file: ./a}}", "image: nginx", "secrets.a/b", "invalid name 'a/b'"),
        ("secrets: {s: {file: ./a}}", "secrets: [t]", "services.web.secrets[0]", "'t' is not declared"),
        ("configs: {c: {file: ./a}}", "configs: [s]", "services.web.configs[0]", "top-level configs"),
        ("secrets: {s: {file: ./a}}", "secrets: [{target: x}]", "services.web.secrets[0].source", "required"),
        (
            "secrets: {s: {file: ./a}}",
            "secrets: [{source: s, mode: 0999}]",
            "services.web.secrets[0].mode",
            "",
        ),
        (
            "secrets: {s: {file: ./a}}",
            "secrets: [{source: s, mode: '9'}]",
            "services.web.secrets[0].mode",
            "octal",
        ),
        ("secrets: {s: {file: ./a}}", "secrets: [{source: s, uid: -1}]", "services.web.secrets[0].uid", ""),
        (
            "configs: {c: {file: ./a}}",
            "configs: [{source: c, target: etc/c}]",
            "services.web.configs[0].target",
            "absolute",
        ),
        (
            "secrets: {s: {file: ./a}}",
            "secrets: [{source: s, target: ../x}]",
            "services.web.secrets[0].target",
            "plain path",
        ),
        (
            "secrets: {s: {file: ./a}}\nvolumes: {d: {}}",
            "secrets: [s]\n    volumes: ['d:/run/secrets/s']",
            "services.web.secrets[0]",
            "mounted twice",
        ),
    ],
)
def test_mistakes_name_their_field(top: str, service: str, field: str, words: str) -> None:
    body = service if service.startswith("image") else f"image: nginx\n    {service}"
    exc = error(f"services:\n  web:\n    {body}\n{top}\n")
    assert exc.field == field, exc.message
    assert words in exc.message
