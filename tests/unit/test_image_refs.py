"""What `mypaas image rm` names (tags, digests, whole repositories) and which manifests that deletes;
the emptied repositories a collection removes from the registry's storage."""

from __future__ import annotations

from pathlib import Path

import pytest

from mypaas.errors import Conflict, InvalidSpec
from mypaas.registry.distribution import Distribution
from mypaas.registry.refs import Doomed, ImageRef, Listing, parse_ref, plan, releases_own

D1, D2, D3 = ("sha256:" + c * 64 for c in "123")
LISTINGS = {
    "uxhello/web": Listing({"v1": (D1, 10), "v2": (D1, 10), "v3": (D1, 10), "latest": (D2, 20)}),
    "team/api": Listing({"1.0": (D3, 30)}),
    "empty/repo": Listing({}),
}


def listing(repo: str) -> Listing:
    return LISTINGS.get(repo, Listing({}))


@pytest.mark.parametrize(
    ("text", "whole", "ref"),
    [
        ("uxhello/web:v1", False, ImageRef("uxhello/web", tag="v1")),
        ("web:1.0-rc_1", False, ImageRef("web", tag="1.0-rc_1")),
        (f"uxhello/web@{D1}", False, ImageRef("uxhello/web", digest=D1)),
        ("127.0.0.1:5000/app/web:v3", False, ImageRef("app/web", tag="v3")),
        (f"127.0.0.1:5000/app/web@{D2}", False, ImageRef("app/web", digest=D2)),
        ("uxhello/web", True, ImageRef("uxhello/web")),
    ],
)
def test_parse(text: str, whole: bool, ref: ImageRef) -> None:
    assert parse_ref(text, whole=whole, registry_addr="127.0.0.1:5000") == ref


@pytest.mark.parametrize(
    ("text", "whole", "says"),
    [
        ("uxhello/web", False, "is a repository: add --all"),
        ("uxhello/web@sha256:abc", False, "expected REPO@sha256:<64 hex digits>"),
        (f"UX/web@{D1}", False, "expected REPO@sha256"),
        ("uxhello/web:v1", True, "--all takes repository names"),
        ("uxhello/web:", False, "expected REPO:TAG"),
        (":v1", False, "expected REPO:TAG"),
        ("localhost:5000/x", False, "expected REPO:TAG"),
        ("", False, "expected REPO:TAG"),
    ],
)
def test_parse_refuses(text: str, whole: bool, says: str) -> None:
    with pytest.raises(InvalidSpec) as caught:
        parse_ref(text, whole=whole)
    assert says in caught.value.message and caught.value.field == "image"


def test_every_tag_of_a_manifest_named_deletes_it() -> None:
    refs = [ImageRef("uxhello/web", tag=t) for t in ("v3", "v1", "v2", "v1")]
    assert plan(refs, listing) == ([Doomed("uxhello/web", D1, ("v1", "v2", "v3"), 10)], [])


def test_a_tag_shared_with_tags_not_named_is_refused() -> None:
    with pytest.raises(Conflict) as caught:
        plan([ImageRef("uxhello/web", tag="v1"), ImageRef("uxhello/web", tag="latest")], listing)
    assert caught.value.message.startswith(
        "uxhello/web:v1 shares its manifest with v2, v3, which would go too"
    )
    assert f"or give the digest (uxhello/web@{D1})" in caught.value.message


def test_without_whole_manifests_only_the_named_tags() -> None:
    doomed, _ = plan([ImageRef("uxhello/web", tag="v1")], listing, whole_manifests=False)
    assert doomed == [Doomed("uxhello/web", D1, ("v1",), 10)]


def test_a_digest_takes_its_tags_and_all_takes_the_repository() -> None:
    assert plan([ImageRef("uxhello/web", digest=D1)], listing)[0] == [
        Doomed("uxhello/web", D1, ("v1", "v2", "v3"), 10)
    ]
    doomed, missing = plan([ImageRef("uxhello/web"), ImageRef("team/api")], listing)
    assert {(d.repo, d.digest, d.tags) for d in doomed} == {
        ("uxhello/web", D1, ("v1", "v2", "v3")),
        ("uxhello/web", D2, ("latest",)),
        ("team/api", D3, ("1.0",)),
    }
    assert missing == []


def test_what_the_registry_lacks_is_answered_apart() -> None:
    refs = [ImageRef("uxhello/web", tag="v9"), ImageRef("team/api", digest=D1), ImageRef("empty/repo")]
    assert plan(refs, listing) == ([], refs)


def test_an_app_takes_the_manifests_only_its_releases_tagged() -> None:
    tags = {"v1": (D1, 10), "v2": (D1, 10), "id-0123456789ab": (D2, 20), "base": (D3, 30), "v3": (D3, 30)}
    doomed, kept = releases_own("hello/web", Listing(tags))
    assert set(doomed) == {
        Doomed("hello/web", D1, ("v1", "v2"), 10),
        Doomed("hello/web", D2, ("id-0123456789ab",), 20),
    }
    assert kept == ["hello/web:base", "hello/web:v3"]  # v3 shares its manifest with a tag made by hand


def test_a_collection_removes_emptied_repositories(tmp_path: Path) -> None:
    dist = Distribution(
        name="registry", addr="127.0.0.1:1", folder=tmp_path, log_path=tmp_path / "log", auth=None
    )
    root = dist.storage / "docker" / "registry" / "v2" / "repositories"
    for repo, tags in (("a", []), ("a/b", ["v1"]), ("c/d", []), ("c/e/f", [])):
        (root / repo / "_manifests" / "tags").mkdir(parents=True)
        (root / repo / "_layers" / "sha256").mkdir(parents=True)
        for tag in tags:
            (root / repo / "_manifests" / "tags" / tag / "current").mkdir(parents=True)

    assert dist.remove_empty_repositories() == ["a", "c/d", "c/e/f"]
    assert (root / "a" / "b" / "_manifests" / "tags" / "v1").is_dir()  # a's folder holds repo a/b
    assert not (root / "a" / "_manifests").exists() and not (root / "c").exists()
