"""`mypaas image ls / rm / import` and `mypaas rm APP` with the private registry on: the real REST API
over the fake backend and a fake registry API. What goes from the registry and from the engine, what is
refused, and what the user reads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from mypaas.composer.fake import FakeBackend
from mypaas.errors import Conflict
from mypaas.manager.platform import Components, Platform, build_platform
from mypaas.manager.state.models import AppRow, ReleaseRow
from mypaas.registry.fake import FakeRegistry
from mypaas.router.fake import FakeRouter
from mypaas.settings import Settings
from tests.unit.cli.support import Server, cli, deploy, one_error_line, settle
from tests.unit.cli.test_images import archive

ADDR = "127.0.0.1:5999"


class PushingBackend(FakeBackend):
    """The fake engine whose pushes land in the fake registry."""

    def __init__(self, registry: FakeRegistry) -> None:
        super().__init__()
        self.registry = registry

    def push_image(self, image: str, *, repository: str, tag: str, username: str, password: str) -> str:
        info = self.image(image)
        return self.registry.push(repository.removeprefix(f"{ADDR}/"), tag, info.id, size=12_300_000)


@pytest.fixture
def registry() -> FakeRegistry:
    return FakeRegistry()


@pytest.fixture
def backend(registry: FakeRegistry) -> PushingBackend:
    fake = PushingBackend(registry)
    fake.add_image("web:1", exposed=(80,))
    return fake


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path, registry_enabled=True, registry_addr=ADDR)


@pytest.fixture
def platform(settings: Settings, backend: FakeBackend, registry: FakeRegistry) -> Platform:
    parts = Components(backend=backend, router=FakeRouter(), probe=lambda _: True, registry=registry)
    return build_platform(settings, parts)


def three_tags(backend: FakeBackend, registry: FakeRegistry) -> str:
    """uxhello/web:v1, v2 and v3: one image on the engine, one manifest in the registry."""
    info = backend.add_image("uxhello/web:v1")
    for tag in ("v1", "v2", "v3"):
        backend.images[f"uxhello/web:{tag}"] = info
        digest = registry.push("uxhello/web", tag, info.id, size=12_300_000)
    return digest


def test_one_of_three_shared_tags_is_refused_naming_the_others(
    server: Server, backend: FakeBackend, registry: FakeRegistry
) -> None:
    digest = three_tags(backend, registry)

    line = one_error_line(cli("image", "rm", "uxhello/web:v1"))

    assert line == (
        "error: uxhello/web:v1 shares its manifest with v2, v3, which would go too: name them all "
        "(mypaas image rm uxhello/web:v1 uxhello/web:v2 uxhello/web:v3), "
        f"or give the digest (uxhello/web@{digest})"
    )
    assert registry.tags("uxhello/web") == ["v1", "v2", "v3"] and "uxhello/web:v1" in backend.images


def test_three_tags_named_at_once_go_from_registry_and_engine(
    server: Server, api: TestClient, backend: FakeBackend, registry: FakeRegistry
) -> None:
    digest = three_tags(backend, registry)
    image_id = backend.images["uxhello/web:v1"].id

    result = cli("image", "rm", "uxhello/web:v1", "uxhello/web:v2", "uxhello/web:v3")

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"registry: deleted uxhello/web:v1, v2, v3 (manifest {digest[:19]}, 12.3 MB compressed)",
        "registry: its space comes back at the next `mypaas registry gc`",
        f"engine (this host): removed uxhello/web:v1 (image {image_id[7:19]}, 0 B)",
        f"engine (this host): removed uxhello/web:v2 (image {image_id[7:19]}, 0 B)",
        f"engine (this host): removed uxhello/web:v3 (image {image_id[7:19]}, 0 B)",
    ]
    assert registry.tags("uxhello/web") == []
    assert not any(ref.startswith("uxhello/web:") for ref in backend.images)
    refused = api.post("/api/v1/apps/hello/deploys", json={"image": "uxhello/web:v1"})
    assert refused.status_code == 400 and refused.json()["field"] == "services.web.image", refused.text


def test_by_digest_and_whole_repositories(
    server: Server, backend: FakeBackend, registry: FakeRegistry
) -> None:
    digest = three_tags(backend, registry)
    other = registry.push("team/api", "1.0", "sha256:" + "a" * 64)
    registry.push("team/api", "2.0", "sha256:" + "b" * 64)

    by_digest = cli("image", "rm", f"uxhello/web@{digest}", "--registry-only")
    whole = cli("image", "rm", "team/api", "--all", "--json")

    assert by_digest.exit_code == 0, by_digest.output
    assert f"registry: deleted uxhello/web:v1, v2, v3 (manifest {digest[:19]}" in by_digest.stdout
    assert "engine (this host): kept (--registry-only)" in by_digest.stdout
    assert "uxhello/web:v2" in backend.images  # kept, as asked
    assert whole.exit_code == 0, whole.output
    removed = json.loads(whole.stdout)["registry"]
    assert sorted((m["digest"], tuple(m["tags"])) for m in removed)[0][1] in (("1.0",), ("2.0",))
    assert other in {m["digest"] for m in removed} and registry.tags("team/api") == []


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["uxhello/web"], "error: 'uxhello/web' is a repository: add --all to remove all of it"),
        (
            ["uxhello/web@sha256:123"],
            "error: expected REPO@sha256:<64 hex digits>, got 'uxhello/web@sha256:123'",
        ),
        (
            ["uxhello/web:v1", "--all"],
            "error: --all takes repository names (e.g. myapp/web), got 'uxhello/web:v1'",
        ),
        (["uxhello/web:v9"], "error: uxhello/web:v9: not in the registry nor on this host's engine"),
        (
            ["Bad Name:1"],
            "error: expected REPO:TAG, REPO@sha256:DIGEST, or REPO with --all, got 'Bad Name:1'",
        ),
        (
            ["uxhello/web:v1", "--registry-only", "--engine-only"],
            "error: --registry-only and --engine-only leave nothing to remove: give one of them",
        ),
    ],
)
def test_bad_names_are_one_error_line(
    server: Server, backend: FakeBackend, registry: FakeRegistry, args: list[str], error: str
) -> None:
    three_tags(backend, registry)
    assert one_error_line(cli("image", "rm", *args)) == error
    assert registry.tags("uxhello/web") == ["v1", "v2", "v3"]


def test_what_a_live_app_runs_is_refused_unless_forced(
    server: Server, api: TestClient, platform: Platform, backend: FakeBackend, registry: FakeRegistry
) -> None:
    deploy(api, "hello", image="web:1")
    settle(platform, backend)
    digest = registry.push("hello/web", "v1", backend.image("web:1").id)
    with platform.sessions.begin() as s:
        rel = s.scalar(select(ReleaseRow).join(AppRow).where(AppRow.name == "hello"))
        assert rel is not None
        rel.images = {"web": f"{ADDR}/hello/web@{digest}"}

    registry_copy = one_error_line(cli("image", "rm", "hello/web:v1"))
    engine_copy = one_error_line(cli("image", "rm", "web:1", "--engine-only"))
    forced = cli("image", "rm", "hello/web:v1", "--force")

    assert registry_copy == (
        "error: hello/web:v1 is pinned: app hello runs it (release v1, service web); "
        "deploy another image first, or pass --force to remove it anyway"
    )
    assert engine_copy.startswith("error: web:1 is in use: app hello runs it (release v1, service web);")
    assert forced.exit_code == 0, forced.output
    assert registry.tags("hello/web") == []


def test_image_ls_says_which_digest_and_size_is_which(
    server: Server, backend: FakeBackend, registry: FakeRegistry
) -> None:
    assert cli("image", "ls").stdout == "no images in the private registry\n"
    three_tags(backend, registry)
    registry.push("gone/web", "1", "sha256:" + "c" * 64)  # the engine has no copy of this one

    table = cli("image", "ls")
    rows = json.loads(cli("image", "ls", "--json").stdout)

    header = table.stdout.splitlines()[0].split()
    assert header == [
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
    ]
    engine_id = backend.images["uxhello/web:v1"].id
    assert rows[0]["repository"] == "gone/web" and rows[0]["engine_id"] is None
    assert {(r["tag"], r["engine_id"], r["size"]) for r in rows[1:]} == {
        (t, engine_id, 12_300_000) for t in ("v1", "v2", "v3")
    }
    lines = [line.split() for line in table.stdout.splitlines()[1:]]
    assert lines[0] == ["gone/web", "1", rows[0]["digest"][:19], "1.0", "kB"]
    assert lines[1] == ["uxhello/web", "v1", rows[1]["digest"][:19], "12.3", "MB", engine_id[7:19], "0", "B"]


def test_import_says_which_copy_is_which(server: Server, backend: FakeBackend, tmp_path: Path) -> None:
    result = cli("image", "import", str(archive(tmp_path)), "uxhello/web:v1")

    assert result.exit_code == 0, result.output
    info = backend.image("uxhello/web:v1")
    digest = server.platform.image_copies.listing("uxhello/web")[0]["digest"]
    assert result.stdout.strip() == (
        f"imported uxhello/web:v1 — registry digest {digest[:19]} (12.3 MB compressed), "
        f"engine id {info.id[:19]} (0 B)"
    )
    as_json = json.loads(cli("image", "import", str(archive(tmp_path)), "uxhello/web:v2", "--json").stdout)
    assert as_json["registry"]["digest"].startswith("sha256:") and as_json["registry"]["size"] == 12_300_000


def test_rm_app_removes_its_repositories_unless_kept(
    server: Server, api: TestClient, platform: Platform, backend: FakeBackend, registry: FakeRegistry
) -> None:
    for app in ("hello", "kept"):
        deploy(api, app, image="web:1")
        settle(platform, backend)
        registry.push(f"{app}/web", "v1", backend.image("web:1").id, size=12_300_000)
        registry.push(f"{app}/web", "id-000000000001", backend.image("web:1").id, size=12_300_000)
    registry.push("hellothere/web", "v1", "sha256:" + "d" * 64)  # another app's, with a similar name
    registry.push("hello/web", "base", "sha256:" + "e" * 64)  # imported by hand: kept

    removed = cli("rm", "hello", "--yes", "--no-wait")
    kept = cli("rm", "kept", "--yes", "--no-wait", "--keep-images")

    assert removed.exit_code == 0, removed.output
    assert (
        removed.stdout.splitlines()[0]
        == "registry: deleted hello/web:id-000000000001, v1 (12.3 MB compressed)"
    )
    assert removed.stdout.splitlines()[1:3] == [
        "registry: kept hello/web:base (not tagged by hello's releases)",
        "registry: a garbage collection reclaims their space now",
    ]
    assert registry.tags("hello/web") == ["base"] and registry.tags("hellothere/web") == ["v1"]
    assert kept.exit_code == 0, kept.output
    assert "registry" not in kept.stdout and registry.tags("kept/web") == ["id-000000000001", "v1"]


def test_an_app_deployed_again_after_rm_has_its_images_pushed_again(
    server: Server, api: TestClient, platform: Platform, backend: FakeBackend, registry: FakeRegistry
) -> None:
    """The hosts of a cluster pull what for_hosts answers: after `rm APP` deleted the app's manifests,
    a deploy of the same name and image must push it again, not answer the deleted reference."""
    publisher = platform.image_copies._publisher
    assert publisher is not None
    image_id = backend.image("web:1").id
    deploy(api, "hello", image="web:1")
    settle(platform, backend)
    first = publisher.for_hosts("hello", "web", image_id)
    [tag] = registry.tags("hello/web")

    assert cli("rm", "hello", "--yes", "--no-wait").exit_code == 0
    assert registry.tags("hello/web") == []

    again = publisher.for_hosts("hello", "web", image_id)
    assert registry.tags("hello/web") == [tag]  # pushed again
    assert again == first  # the same image: the same manifest, there again


def test_an_engine_copy_that_cannot_go_leaves_the_registry_copy(
    server: Server, backend: FakeBackend, registry: FakeRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A container MyPaas does not know of uses the image: the engine refuses, and nothing is removed
    (not the registry copy with the engine copy left, which `deploy --image` would still take)."""
    three_tags(backend, registry)

    def in_use(ref: str, *, force: bool = False) -> None:
        raise Conflict(
            f"removing image {ref}: image is being used by stopped container 0123abcd", field="image"
        )

    monkeypatch.setattr(backend, "remove_image", in_use)
    result = cli("image", "rm", "uxhello/web:v1", "uxhello/web:v2", "uxhello/web:v3")

    assert one_error_line(result) == (
        "error: removing image uxhello/web:v1: image is being used by stopped container 0123abcd"
    )
    assert registry.tags("uxhello/web") == ["v1", "v2", "v3"]
