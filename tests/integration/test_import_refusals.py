"""What the real engine says about an imported tar, as the user reads it: a tar it refuses (the reason
ends the line), and an image with no command (deploy --image refuses it before anything is made)."""

from __future__ import annotations

import io
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import kit

pytestmark = pytest.mark.integration


@pytest.fixture
def repo(platform: kit.Platform) -> Iterator[str]:
    name = f"i11y-{uuid.uuid4().hex[:8]}/site"
    yield name
    kit.untag(name)
    kit.untag(f"{platform.env['MYPAAS_REGISTRY_ADDR']}/{name}")


def tar(path: Path, names: list[str]) -> Path:
    with tarfile.open(path, "w") as archive:
        for name in names:
            info = tarfile.TarInfo(name)
            info.size = 3
            archive.addfile(info, io.BytesIO(b"hi\n"))
    return path


def test_a_refused_tar_ends_with_the_engine_reason(platform: kit.Platform, repo: str, tmp_path: Path) -> None:
    path = tar(tmp_path / "dup.tar", ["www/index.html", "www/index.html"])

    result = platform.cli("image", "import", str(path), f"{repo}:v1")

    assert result.code == 1, result
    lines = result.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: importing {repo}:v1: "), result
    assert not lines[0].rstrip().endswith(":"), result


def test_an_image_without_a_command_is_refused_at_deploy(
    platform: kit.Platform, repo: str, tmp_path: Path
) -> None:
    path = tar(tmp_path / "site.tar", ["www/index.html"])
    platform.cli("image", "import", str(path), f"{repo}:v1", check=True)

    result = platform.cli("deploy", "i11y-noapp", "--image", f"{repo}:v1", "--port", "80")

    assert result.code == 1, result
    assert result.err.strip() == (
        f"error: image {repo}:v1 has no command: give one with mypaas image import -c 'CMD …' "
        "or the compose file's command:"
    )
    assert all(app["name"] != "i11y-noapp" for app in platform.api("GET", "/api/v1/apps"))
