"""Preview app names: a valid app name per (app, branch), never shared by two branches; git's branch
name rules."""

from __future__ import annotations

import pytest

from mypaas.domain import check_branch, check_name, preview_app_name
from mypaas.errors import InvalidSpec


@pytest.mark.parametrize(
    ("branch", "name"),
    [("main", "shop-main"), ("fix-login", "shop-fix-login"), ("pr-12", "shop-pr-12")],
)
def test_a_branch_that_is_its_own_slug_keeps_its_name(branch: str, name: str) -> None:
    assert preview_app_name("shop", branch) == name


def test_other_branches_are_slugged_with_a_hash() -> None:
    name = preview_app_name("shop", "feature/X_y")
    assert name.startswith("shop-feature-x-y-")
    assert len(name) == len("shop-feature-x-y-") + 8
    assert preview_app_name("shop", "feature/X_y") == name  # the same every time


BRANCHES = [
    "feature/x",
    "feature-x",
    "Feature-X",
    "feature_x",
    "feature--x",
    "x",
    "_",
    "-",
    "a" * 80,
    "a" * 81,
    "a" * 59,
    "a" * 58,
    "fix-deadbeef",
    "fix",
    "release/1.2",
    "release-1-2",
    "release/1/2",
    "über",
]


def test_every_name_is_a_valid_app_name_and_no_two_branches_share_one() -> None:
    for app in ("shop", "a" * 63, "a" * 62, "x-y"):
        names = {b: preview_app_name(app, b) for b in BRANCHES}
        for name in names.values():
            assert check_name(name) == name
        assert len(set(names.values())) == len(BRANCHES), names


def test_a_branch_named_like_a_hashed_name_gets_a_hash_of_its_own() -> None:
    hashed = preview_app_name("shop", "feature/x")  # shop-feature-x-<8 hex>
    branch = hashed.removeprefix("shop-")
    assert preview_app_name("shop", branch) != hashed


def test_long_app_names_shortened_alike_still_differ() -> None:
    # shop/a-b and shop-a/b share shop-a-b: the manager refuses a preview whose name another app has
    names = [
        preview_app_name("a" * 63, "x"),
        preview_app_name("a" * 62, "x"),
        preview_app_name("a" * 61, "x"),
    ]
    assert len(set(names)) == 3


@pytest.mark.parametrize("branch", ["main", "feature/x", "fix_1.2", "a/b/c", "UPPER", "über"])
def test_git_branch_names_are_taken(branch: str) -> None:
    assert check_branch(branch) == branch


@pytest.mark.parametrize(
    "branch",
    [
        "",
        "a..b",
        "-x",
        "x/",
        "x.lock",
        "a b",
        "@",
        "a@{b",
        ".x",
        "a//b",
        "x/.y",
        "a~b",
        "a^b",
        "a:b",
        "a?b",
        "a*b",
        "a[b",
        "a\\b",
        "a\x7fb",
        "/x",
        "x.",
        "a" * 256,
    ],
)
def test_what_git_refuses_is_refused_naming_the_field(branch: str) -> None:
    with pytest.raises(InvalidSpec) as err:
        check_branch(branch)
    assert err.value.field == "preview"
    assert "branch" in err.value.message
