"""Compose projects on the real engine: two -f files, include and extends (with a build in the included
folder), and the dry run, which makes nothing on the engine or in the state."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import pytest

from tests import kit

pytestmark = pytest.mark.integration


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def project(root: Path, images: dict[str, str]) -> list[str]:
    """A project of two -f files; the first includes backend/ (built there) and extends common.yml."""
    write(
        root,
        {
            "compose.yml": (
                "include: [backend/compose.yml]\n"
                "services:\n"
                "  web:\n"
                "    extends: {file: common.yml, service: base}\n"
                f"    image: {images['v1']}\n"
                "    ports: ['80']\n"
            ),
            "common.yml": (
                "services:\n  base:\n    environment: {FROM_EXTENDS: 'yes'}\n    labels: {origin: extends}\n"
            ),
            "backend/compose.yml": "services:\n  api:\n    build: ./site\n    expose: ['80']\n",
            "backend/site/Dockerfile": f"FROM {images['v1']}\nCOPY index.html /www/index.html\n",
            "backend/site/index.html": "built in backend\n",
            "override.yml": (
                f"services:\n  web:\n    image: {images['v2']}\n"
                "    environment: {FROM_OVERRIDE: '${WHO:-no}'}\n"
            ),
        },
    )
    return ["-f", str(root / "compose.yml"), "-f", str(root / "override.yml")]


def engine_state() -> dict[str, Any]:
    client = kit.docker_client()
    return {
        "containers": sorted(c.id for c in client.containers.list(all=True)),
        "images": sorted(i.id for i in client.images.list(all=True)),
        "volumes": sorted(v.name for v in client.volumes.list()),
        "networks": sorted(n.id for n in client.networks.list()),
    }


def test_two_files_with_include_and_extends_deploy(
    platform: kit.Platform, images: dict[str, str], tmp_path: Path
) -> None:
    app = f"proj-{secrets.token_hex(3)}"
    files = project(tmp_path, images)
    platform.env["WHO"] = "shell"
    try:
        r = platform.cli("deploy", app, *files)
        assert r.code == 0, r
        platform.wait_for(app, body="version two")  # the override's image
        insts = platform.wait_ready(app, 2)
        assert sorted(i["service"] for i in insts) == ["api", "web"]
        client = kit.docker_client()
        web = client.containers.get(next(i["id"] for i in insts if i["service"] == "web"))
        env = web.attrs["Config"]["Env"]
        assert "FROM_EXTENDS=yes" in env and "FROM_OVERRIDE=shell" in env
        assert web.attrs["Config"]["Labels"]["origin"] == "extends"
        api = client.containers.get(next(i["id"] for i in insts if i["service"] == "api"))
        assert api.exec_run(["cat", "/www/index.html"]).output == b"built in backend\n"

        write(tmp_path, {"override.yml": "services:\n  web:\n    environment: {LATER: 'yes'}\n"})
        before = engine_state()
        dry = platform.cli("deploy", app, *files, "--dry-run")
        assert dry.code == 0, dry
        assert "changes against v1:" in dry.out
        assert "  ~ web: image, image_id, environment" in dry.out and "  ~ api: build" in dry.out
        assert engine_state() == before  # no pull, no build, no container
        assert len(platform.cli("releases", app, "--json").json()) == 1
    finally:
        platform.env.pop("WHO", None)
        platform.cli("rm", app, "--yes")


def test_dry_run_makes_nothing(platform: kit.Platform, images: dict[str, str], tmp_path: Path) -> None:
    app = f"dry-{secrets.token_hex(3)}"
    files = project(tmp_path, images)
    before = engine_state()

    r = platform.cli("deploy", app, *files, "--dry-run")

    assert r.code == 0, r
    assert "FROM_OVERRIDE: 'no'" in r.out and "origin: extends" in r.out
    assert "  + web (added)" in r.out and "  + api (added)" in r.out
    assert r.out.rstrip().endswith("dry run: nothing was made")
    assert engine_state() == before
    assert app not in [a["name"] for a in platform.api("GET", "/api/v1/apps")]

    bad = platform.cli("deploy", app, "-f", str(tmp_path / "compose.yml"), "-f", str(tmp_path / "nope.yml"))
    assert bad.code == 1 and "nope.yml" in bad.err
