"""What a user writes about a repository, checked before anything runs (URL#REF, branch names, --path,
--poll), deploy keys, and how the CLI's deploy ended (runner.outcome_of)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mypaas.cli.git import poll_seconds
from mypaas.errors import InvalidSpec
from mypaas.manager.git import keys, refs, runner


@pytest.mark.parametrize(
    ("text", "url", "ref"),
    [
        ("https://github.com/acme/shop.git", "https://github.com/acme/shop.git", ""),
        ("https://github.com/acme/shop.git#v1.4", "https://github.com/acme/shop.git", "v1.4"),
        ("ssh://git@git.internal:2222/shop.git#main", "ssh://git@git.internal:2222/shop.git", "main"),
        ("git@github.com:acme/shop.git#feature/x", "git@github.com:acme/shop.git", "feature/x"),
        ("https://h/r.git#9049f1265b7d", "https://h/r.git", "9049f1265b7d"),
    ],
)
def test_url_and_ref(text: str, url: str, ref: str) -> None:
    assert refs.parse_source(text) == refs.Source(url, ref)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "give the repository's URL"),
        ("/srv/repos/shop.git", "not a repository URL"),
        ("file:///srv/repos/shop.git", "file:// is not allowed"),
        ("ext::sh -c touch% /tmp/pwned", "invalid repository URL"),
        ("--upload-pack=touch /tmp/x", "invalid repository URL"),
        ("ssh://-oProxyCommand=touch%20x/r.git", "starts with '-'"),
        ("-oProxyCommand=x@h:r.git", "starts with '-'"),
        ("https://h/r.git#", "invalid branch, tag or commit ''"),
        ("https://h/r.git#a..b", "invalid branch"),
        ("https://h/r.git#-x", "invalid branch"),
        ("https://h/r.git#a b", "invalid branch"),
    ],
)
def test_bad_sources_are_one_line(text: str, message: str) -> None:
    with pytest.raises(InvalidSpec, match=message) as caught:
        refs.parse_source(text, field="git")
    assert caught.value.field == "git"


def test_subpaths_stay_inside_the_checkout(tmp_path: Path) -> None:
    assert refs.check_subpath("") == refs.check_subpath(".") == ""
    assert refs.check_subpath("services/web/") == "services/web"
    for bad in ("../x", "/etc", "a/../../b"):
        with pytest.raises(InvalidSpec, match="leaves the repository"):
            refs.check_subpath(bad)
    (tmp_path / "web").mkdir()
    (tmp_path / "out").symlink_to("/etc")
    assert refs.folder_in(tmp_path, "web", shown="r") == (tmp_path / "web").resolve()
    with pytest.raises(InvalidSpec, match="a link out of it"):
        refs.folder_in(tmp_path, "out", shown="r")
    with pytest.raises(InvalidSpec, match="--path 'nope': no such folder in r"):
        refs.folder_in(tmp_path, "nope", shown="r")


def test_something_deployable(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("docs only\n")
    with pytest.raises(InvalidSpec, match="nothing to deploy in r: no Dockerfile"):
        refs.check_deployable(tmp_path, shown="r")
    (tmp_path / "package.json").write_text("{}")
    refs.check_deployable(tmp_path, shown="r")


def test_poll_intervals() -> None:
    assert poll_seconds(None) == poll_seconds("off") == 0
    assert (poll_seconds("60s"), poll_seconds("5m"), poll_seconds("90"), poll_seconds("1h")) == (
        60,
        300,
        90,
        3600,
    )
    with pytest.raises(InvalidSpec, match="invalid --poll 'soon'"):
        poll_seconds("soon")


def test_deploy_keys_are_ed25519_in_openssh_format() -> None:
    private, public = keys.new_key_pair("mypaas-deploy-shop")
    assert private.startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    kind, _, comment = public.split(" ")
    assert (kind, comment) == ("ssh-ed25519", "mypaas-deploy-shop")
    assert keys.fingerprint(public).startswith("SHA256:") and len(keys.fingerprint(public)) == 50
    assert keys.new_key_pair("x")[1] != public


def test_the_cli_deploys_outcome() -> None:
    answer = {"operation": {"message": "deployed v3"}, "release": {"version": 3}}
    assert runner.outcome_of(0, json.dumps(answer), []) == runner.Outcome(True, "deployed v3", 3)
    failed = runner.outcome_of(1, "", ["step 1/2", "error: build failed: exit 7"])
    assert failed == runner.Outcome(False, "build failed: exit 7")
    assert runner.outcome_of(2, "garbage", []).message == "mypaas deploy exited with 2"
