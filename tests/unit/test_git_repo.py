"""The real git against a local repository (offline; the file transport allowed for the test only): a
branch, a tag and a commit checked out, an unknown ref, a clone over the size limit, a submodule that
cannot be fetched, and ls-remote — each failure one line."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from mypaas.errors import InvalidSpec
from mypaas.manager.git import repo

MiB = 2**20


def _git(cwd: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t"}
    env |= {"GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t", "GIT_CONFIG_GLOBAL": "/dev/null"}
    done = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True)
    return done.stdout.strip()


@pytest.fixture
def origin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Path]]:
    monkeypatch.setattr(repo, "ALLOWED_PROTOCOLS", "file")
    work = tmp_path / "work"
    work.mkdir()
    _git(work, "init", "--quiet", "-b", "main")
    (work / "Dockerfile").write_text("FROM scratch\n")
    _git(work, "add", "-A")
    _git(work, "commit", "--quiet", "-m", "first")
    _git(work, "tag", "v1")
    (work / "Dockerfile").write_text("FROM scratch\nENV A=2\n")
    _git(work, "commit", "--quiet", "-am", "second")
    yield f"file://{work}", work


def _access(tmp_path: Path) -> repo.Access:
    return repo.Access(None, tmp_path / "known_hosts")


def test_a_branch_a_tag_and_a_commit(origin: tuple[str, Path], tmp_path: Path) -> None:
    url, work = origin
    first = _git(work, "rev-parse", "v1")
    lines: list[str] = []
    head = repo.fetch(url, "main", tmp_path / "a", access=_access(tmp_path), max_bytes=MiB, emit=lines.append)
    assert head.subject == "second" and head.message == f"{head.sha[:12]} second"
    assert lines[0] == f"fetching {url} at main" and lines[-1].startswith(
        f"checked out {head.sha[:12]} second"
    )
    tag = repo.fetch(url, "v1", tmp_path / "b", access=_access(tmp_path), max_bytes=MiB, emit=print)
    assert (tag.sha, tag.subject) == (first, "first")
    commit = repo.fetch(url, first[:12], tmp_path / "c", access=_access(tmp_path), max_bytes=MiB, emit=print)
    assert commit.sha == first
    default = repo.fetch(url, "", tmp_path / "d", access=_access(tmp_path), max_bytes=MiB, emit=print)
    assert default.sha == head.sha
    assert repo.ls_remote(url, "main", access=_access(tmp_path)) == head.sha
    assert repo.ls_remote(url, "master", access=_access(tmp_path)) == ""


def test_failures_are_one_line(origin: tuple[str, Path], tmp_path: Path) -> None:
    url, work = origin
    with pytest.raises(InvalidSpec, match=r"^no branch, tag or commit 'nope' in file://") as caught:
        repo.fetch(url, "nope", tmp_path / "a", access=_access(tmp_path), max_bytes=MiB, emit=print)
    assert caught.value.field == "ref"
    with pytest.raises(InvalidSpec, match=r"^cannot fetch file:///nowhere/at/all: fatal: "):
        repo.fetch(
            "file:///nowhere/at/all", "", tmp_path / "b", access=_access(tmp_path), max_bytes=MiB, emit=print
        )
    (work / "big.bin").write_bytes(os.urandom(3 * MiB))  # random: git cannot compress it away
    _git(work, "add", "big.bin")
    _git(work, "commit", "--quiet", "-m", "big")
    with pytest.raises(
        InvalidSpec, match=r"larger than the clone limit of 2 MiB \(setting git_clone_max_bytes\)"
    ):
        repo.fetch(url, "main", tmp_path / "c", access=_access(tmp_path), max_bytes=2 * MiB, emit=print)


def test_a_submodule_that_cannot_be_fetched(origin: tuple[str, Path], tmp_path: Path) -> None:
    url, work = origin
    (work / ".gitmodules").write_text(
        '[submodule "lib"]\n\tpath = lib\n\turl = https://127.0.0.1:1/lib.git\n'
    )
    _git(work, "update-index", "--add", "--cacheinfo", f"160000,{'1' * 40},lib")
    _git(work, "add", ".gitmodules")
    _git(work, "commit", "--quiet", "-m", "with a submodule")
    with pytest.raises(InvalidSpec, match=rf"^a submodule of {url} cannot be fetched: "):
        repo.fetch(url, "main", tmp_path / "a", access=_access(tmp_path), max_bytes=MiB, emit=print)


def test_ssh_runs_with_the_deploy_key_only(tmp_path: Path) -> None:
    env = repo.Access(tmp_path / "key", tmp_path / "known_hosts").env()
    ssh = env["GIT_SSH_COMMAND"]
    assert "IdentitiesOnly=yes" in ssh and f"-i {tmp_path / 'key'}" in ssh
    assert (
        f"UserKnownHostsFile={tmp_path / 'known_hosts'}" in ssh and "StrictHostKeyChecking=accept-new" in ssh
    )
    assert env["GIT_TERMINAL_PROMPT"] == "0" and env["GIT_ALLOW_PROTOCOL"] == "https:http:ssh"
