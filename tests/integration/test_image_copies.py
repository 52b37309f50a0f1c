"""An image's copies for real (Distribution, the Docker engine, the CLI): `image import` and `image ls`
telling the registry's digest and size from the engine's, `image rm` of several tags of one manifest, of a
digest and of a whole repository, from the registry and the engine; what a live app runs refused unless
forced; `rm APP` removing the app's repositories (and a collection their folders) unless --keep-images."""

from __future__ import annotations

import re
import secrets
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import kit
from tests.integration.test_images import busybox_tree

pytestmark = pytest.mark.integration


@pytest.fixture
def repo(platform: kit.Platform) -> Iterator[str]:
    """A fresh repository name; its engine references go afterwards, even when the test fails."""
    name = f"uxhello-{secrets.token_hex(3)}/web"
    yield name
    kit.untag(f"{name}:")
    kit.untag(f"{platform.env['MYPAAS_REGISTRY_ADDR']}/{name}")


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("copies")
    path = folder / "rootfs.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        tar.add(busybox_tree(folder / "rootfs"), arcname=".")
    return path


def docker(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=False)


def engine_has(ref: str) -> bool:
    return docker("image", "inspect", ref).returncode == 0


def import_image(platform: kit.Platform, archive: Path, ref: str, mark: str = "") -> dict[str, str]:
    r = platform.cli("image", "import", str(archive), ref, "-c", f"LABEL mypaas.test.mark={mark or ref}")
    assert r.code == 0, r
    found = re.fullmatch(
        rf"imported {re.escape(ref)} — registry digest (sha256:[0-9a-f]{{12}}) "
        r"\(([0-9.]+ [kM]B) compressed\), "
        r"engine id (sha256:[0-9a-f]{12}) \(([0-9.]+ [kM]B)\)",
        r.out.strip(),
    )
    assert found, r.out
    return {"digest": found[1], "size": found[2], "id": found[3], "engine_size": found[4]}


def three_tags(platform: kit.Platform, archive: Path, repo: str) -> str:
    """REPO:v1 imported; v2 and v3 the same image pushed by the docker CLI: one manifest, three tags."""
    import_image(platform, archive, f"{repo}:v1")
    registry = platform.env["MYPAAS_REGISTRY_ADDR"]
    config = platform.home / "docker-config"
    login = subprocess.run(
        ["docker", "--config", str(config), "login", registry, "-u", "me", "--password-stdin"],
        input=platform.token,
        capture_output=True,
        text=True,
        check=False,
    )
    assert login.returncode == 0, login.stderr
    for tag in ("v2", "v3"):
        assert docker("tag", f"{repo}:v1", f"{repo}:{tag}").returncode == 0
        assert docker("tag", f"{repo}:v1", f"{registry}/{repo}:{tag}").returncode == 0
        pushed = subprocess.run(
            ["docker", "--config", str(config), "push", f"{registry}/{repo}:{tag}"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert pushed.returncode == 0, pushed.stderr
        docker("rmi", f"{registry}/{repo}:{tag}")
    rows = platform.cli("image", "ls", repo, "--json").json()
    assert [r["tag"] for r in rows] == ["v1", "v2", "v3"] and len({r["digest"] for r in rows}) == 1
    return str(rows[0]["digest"])


def test_import_and_ls_tell_the_two_copies_apart(platform: kit.Platform, archive: Path, repo: str) -> None:
    imported = import_image(platform, archive, f"{repo}:v1")

    table = platform.cli("image", "ls", repo)
    [row] = platform.cli("image", "ls", repo, "--json").json()

    assert table.code == 0, table
    assert table.out.splitlines()[0].split() == [
        *(
            "REPOSITORY",
            "TAG",
            "DIGEST",
            "(registry)",
            "SIZE",
            "(compressed)",
            "ENGINE",
            "ID",
            "SIZE",
            "(engine)",
        )
    ]
    assert row["digest"].startswith(imported["digest"]) and row["engine_id"].startswith(imported["id"])
    assert row["digest"] != row["engine_id"] and row["size"] < row["engine_size"]  # compressed < unpacked
    cells = table.out.splitlines()[1].split()
    assert cells[:3] == [repo, "v1", imported["digest"]] and cells[5] == imported["id"].removeprefix(
        "sha256:"
    )


def test_three_tags_of_one_manifest_removed_at_once_from_both_copies(
    platform: kit.Platform, archive: Path, repo: str
) -> None:
    digest = three_tags(platform, archive, repo)

    refused = platform.cli("image", "rm", f"{repo}:v1")
    removed = platform.cli("image", "rm", f"{repo}:v1", f"{repo}:v2", f"{repo}:v3")

    assert refused.code == 1 and refused.err.strip() == (
        f"error: {repo}:v1 shares its manifest with v2, v3, which would go too: name them all "
        f"(mypaas image rm {repo}:v1 {repo}:v2 {repo}:v3), or give the digest ({repo}@{digest})"
    )
    assert removed.code == 0, removed
    lines = removed.out.splitlines()
    assert re.fullmatch(
        rf"registry: deleted {re.escape(repo)}:v1, v2, v3 "
        rf"\(manifest {digest[:19]}, [0-9.]+ [kM]B compressed\)",
        lines[0],
    ), lines
    assert lines[1] == "registry: its space comes back at the next `mypaas registry gc`"
    assert [line.split(" (image ")[0] for line in lines[2:]] == [
        f"engine (this host): removed {repo}:{tag}" for tag in ("v1", "v2", "v3")
    ]
    assert not any(engine_has(f"{repo}:{tag}") for tag in ("v1", "v2", "v3"))
    gone = platform.cli("image", "ls", repo)
    assert gone.code == 1 and "no repository" in gone.err
    app = f"gone-{secrets.token_hex(3)}"
    deploy = platform.cli("deploy", app, "--image", f"{repo}:v1")
    assert deploy.code == 1 and "error:" in deploy.err and f"{repo}:v1" in deploy.err, deploy


def test_by_digest_and_a_whole_repository(platform: kit.Platform, archive: Path, repo: str) -> None:
    first = import_image(platform, archive, f"{repo}:1", mark="one")
    import_image(platform, archive, f"{repo}:2", mark="two")
    digest = next(r["digest"] for r in platform.cli("image", "ls", repo, "--json").json() if r["tag"] == "1")
    assert digest.startswith(first["digest"])
    disk = platform.cli("registry", "status", "--json").json()["disk_bytes"]

    by_digest = platform.cli("image", "rm", f"{repo}@{digest}")
    assert by_digest.code == 0, by_digest
    assert by_digest.out.startswith(f"registry: deleted {repo}:1 (manifest {digest[:19]}")
    assert [r["tag"] for r in platform.cli("image", "ls", repo, "--json").json()] == ["2"]
    assert not engine_has(f"{repo}:1") and engine_has(f"{repo}:2")

    whole = platform.cli("image", "rm", repo, "--all", "--json")
    assert whole.code == 0, whole
    assert [m["tags"] for m in whole.json()["registry"]] == [["2"]]
    assert [e["ref"] for e in whole.json()["engine"]] == [f"{repo}:2"] and not engine_has(f"{repo}:2")
    gc = platform.cli("registry", "gc")
    assert gc.code == 0, gc
    assert (
        gc.out.splitlines()[-1].startswith("removed the repositories left with no tag: ") and repo in gc.out
    )
    assert platform.cli("registry", "status", "--json").json()["disk_bytes"] < disk


def test_what_a_live_app_runs_is_kept_unless_forced(platform: kit.Platform, images: dict[str, str]) -> None:
    app = f"pin-{secrets.token_hex(3)}"
    assert platform.cli("deploy", app, "--image", images["v1"]).code == 0
    kit.wait_until(lambda: platform.cli("releases", app, "--json").json()[0]["images"]["web"]["registry"])

    refused = platform.cli("image", "rm", f"{app}/web:v1")
    engine = platform.cli("image", "rm", images["v1"], "--engine-only")
    forced = platform.cli("image", "rm", f"{app}/web:v1", "--force")

    assert refused.code == 1 and refused.err.strip() == (
        f"error: {app}/web:v1 is pinned: app {app} runs it (release v1, service web); "
        "deploy another image first, or pass --force to remove it anyway"
    )
    assert engine.code == 1 and f"{images['v1']} is in use: app {app} runs it" in engine.err
    assert engine_has(images["v1"])
    assert forced.code == 0, forced
    assert "engine (this host): had no image of these names" in forced.out
    assert platform.cli("rm", app, "--yes").code == 0


def test_rm_app_removes_its_repositories_unless_kept(platform: kit.Platform, images: dict[str, str]) -> None:
    gone, kept = f"rmi-{secrets.token_hex(3)}", f"keep-{secrets.token_hex(3)}"
    for app in (gone, kept):
        assert platform.cli("deploy", app, "--image", images["v1"]).code == 0
        kit.wait_until(
            lambda a=app: platform.cli("releases", a, "--json").json()[0]["images"]["web"]["registry"]
        )
    folders = platform.home / "registry" / "data" / "docker" / "registry" / "v2" / "repositories"
    assert (folders / gone / "web").is_dir()

    removed = platform.cli("rm", gone, "--yes")
    held = platform.cli("rm", kept, "--yes", "--keep-images")

    assert removed.code == 0, removed
    assert re.fullmatch(
        r"registry: deleted \S+/web:v1 \([0-9.]+ [kM]B compressed\)", removed.out.splitlines()[0]
    )
    assert f"registry: deleted {gone}/web:v1" in removed.out
    assert "registry: a garbage collection reclaims their space now" in removed.out
    assert removed.out.splitlines()[-1] == f"removed {gone}"
    kit.wait_until(lambda: not (folders / gone).exists(), timeout=60)  # the collection ran
    assert platform.cli("image", "ls", f"{gone}/web").code == 1
    assert held.code == 0 and "registry" not in held.out, held
    assert [r["tag"] for r in platform.cli("image", "ls", f"{kept}/web", "--json").json()] == ["v1"]
    assert platform.cli("registry", "status", "--json").json()["healthy"]
    assert platform.cli("image", "rm", f"{kept}/web", "--all").code == 0
