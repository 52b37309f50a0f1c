"""`image snapshot` on the running platform leaves a machine's secrets out of the image it pushes (every
host's pull token can read it): the image's layers hold none of them; `--include` takes one back."""

from __future__ import annotations

import io
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import kit

pytestmark = pytest.mark.integration

SECRETS = (
    "etc/shadow",
    "etc/gshadow",
    "etc/ssh/ssh_host_ed25519_key",
    "root/.ssh/id_ed25519",
    "root/.ssh/authorized_keys",
    "root/.docker/config.json",
    "var/lib/mypaas/secrets.key",
)


@pytest.fixture
def made() -> Iterator[list[str]]:
    refs: list[str] = []
    yield refs
    for ref in refs:
        subprocess.run(["docker", "rmi", "-f", ref], capture_output=True, check=False)


def layer_names(ref: str) -> set[str]:
    """Every path in the image's layers, read from `docker save`."""
    saved = subprocess.run(["docker", "save", ref], capture_output=True, check=True, timeout=60).stdout
    names: set[str] = set()
    with tarfile.open(fileobj=io.BytesIO(saved)) as image:
        for member in image.getmembers():
            if member.name.endswith("layer.tar"):
                layer = image.extractfile(member)
                assert layer is not None
                with tarfile.open(fileobj=layer) as tar:
                    names |= {name.removeprefix("./") for name in tar.getnames()}
    return names


def test_a_snapshot_pushes_no_secret_and_include_takes_one(
    platform: kit.Platform, tmp_path: Path, made: list[str]
) -> None:
    root = tmp_path / "machine"
    for name in (*SECRETS, "etc/passwd", "etc/ssh/sshd_config"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(f"{name}\n")
    made.extend(["mypaas-test/snapsecrets:1", "mypaas-test/snapsecrets:2"])

    r = platform.cli("image", "snapshot", str(root), "mypaas-test/snapsecrets:1", check=True)

    names = layer_names("mypaas-test/snapsecrets:1")
    assert {"etc/passwd", "etc/ssh/sshd_config"} <= names and not names & set(SECRETS)
    assert "left out as secrets: /etc/gshadow, /etc/shadow," in r.err

    platform.cli(
        "image", "snapshot", str(root), "mypaas-test/snapsecrets:2", "--include", "/etc/shadow", check=True
    )
    assert layer_names("mypaas-test/snapsecrets:2") & set(SECRETS) == {"etc/shadow"}
