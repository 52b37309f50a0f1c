"""Issue 13, slice B: a Dockerfile's ``ADD <url>`` is checked before the build (the classic builder fetches
it in the host's network namespace: ``ADD http://127.0.0.1:2019/config/`` would copy Caddy's config)."""

from __future__ import annotations

import gzip
import io
import tarfile
from collections.abc import Sequence

import pytest

from mypaas.build import build_services
from mypaas.build.fetches import add_urls, check_add_sources
from mypaas.composer.build_network import rules
from mypaas.composer.fake import FakeBackend
from mypaas.domain import AppSpec
from mypaas.egress import Egress
from mypaas.errors import InvalidSpec


def context(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(buf.getvalue())


def egress(table: dict[str, list[str]] | None = None) -> Egress:
    def resolver(host: str, port: int) -> Sequence[str]:
        return (table or {}).get(host, [])

    return Egress(internal_ports={2019}, resolver=resolver)


def test_url_sources_are_found_in_every_form() -> None:
    text = (
        "FROM busybox\n"
        "# ADD http://comment.example/ /x\n"
        "ADD --chown=1:1 http://a.example/x /x\n"
        'add ["https://b.example/y", "/y"]\n'
        "ADD local.txt \\\n"
        "    http://c.example/z /dir/\n"
        "ONBUILD ADD http://d.example/w /w\n"
        "COPY http://not-a-fetch.example/ /q\n"
    )
    assert list(add_urls(text)) == [
        (3, "http://a.example/x"),
        (4, "https://b.example/y"),
        (5, "http://c.example/z"),
        (7, "http://d.example/w"),
    ]


@pytest.mark.parametrize(
    ("line", "error"),
    [
        (
            "ADD http://127.0.0.1:2019/config/ /c",
            "Dockerfile line 2: ADD http://127.0.0.1:2019/config/ is refused: "
            "127.0.0.1 is a loopback address",
        ),
        (
            "ADD http://169.254.169.254/latest/meta-data/iam/ /m",
            "Dockerfile line 2: ADD http://169.254.169.254/latest/meta-data/iam/ is refused: "
            "169.254.169.254 is a link-local (or cloud metadata) address",
        ),
        (
            "ADD http://inside.example/x /x",
            "Dockerfile line 2: ADD http://inside.example/x is refused: inside.example: 10.0.0.5 is a "
            "private address (an admin may allow it with --allow-private)",
        ),
        (
            "ADD http://$HOST/x /x",
            "Dockerfile line 2: ADD http://$HOST/x: a URL built from a variable cannot be checked; "
            "write it out",
        ),
    ],
)
def test_internal_add_sources_are_refused_naming_the_line(line: str, error: str) -> None:
    ctx = context({"Dockerfile": f"FROM busybox\n{line}\n"})
    with pytest.raises(InvalidSpec) as exc:
        check_add_sources(ctx, "Dockerfile", egress({"inside.example": ["10.0.0.5"]}), field="build")
    assert str(exc.value) == error


def test_a_public_source_passes_and_a_build_with_an_internal_one_never_starts() -> None:
    public = context({"Dockerfile": "FROM busybox\nADD https://files.example/a.tgz /a.tgz\n"})
    check_add_sources(public, "Dockerfile", egress({"files.example": ["93.184.216.34"]}), field="build")

    backend = FakeBackend()
    spec = AppSpec.model_validate({"services": {"web": {"name": "web", "build": {"context": "."}}}})
    bad = context({"Dockerfile": "FROM busybox\nADD http://localhost:2019/config/ /c\n"})
    with pytest.raises(InvalidSpec) as exc:
        build_services(
            backend, "app", "op1", spec, {".": bad}, print, egress=egress({"localhost": ["127.0.0.1"]})
        )
    assert exc.value.field == "services.web.build"
    assert "localhost: 127.0.0.1 is a loopback address" in str(exc.value)
    assert not [ref for ref in backend.images if ref.startswith("mypaas-app/")]  # never built


def test_the_build_network_drops_traffic_to_this_machine_and_to_link_local() -> None:
    assert rules("mypaas-build0") == [
        ("INPUT", ["-i", "mypaas-build0", "-j", "DROP"]),
        ("DOCKER-USER", ["-i", "mypaas-build0", "-d", "169.254.0.0/16", "-j", "DROP"]),
    ]
