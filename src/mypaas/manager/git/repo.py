"""The real ``git``, run as a subprocess (argument lists, no shell, never a prompt): a shallow fetch of one
branch, tag or commit into a fresh folder, and ``ls-remote`` for the polling. Over SSH it logs in with the
app's deploy key only (``IdentitiesOnly``) and a known_hosts file the manager keeps per app: a host's key is
accepted on first use and pinned from then on. Git's failures become one line each: an unreachable
repository, an unknown ref, a clone over the size limit."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mypaas.errors import InvalidSpec

ALLOWED_PROTOCOLS = "https:http:ssh"
FETCH_TIMEOUT_S = 600.0
LS_REMOTE_TIMEOUT_S = 60.0
_SHA = re.compile(r"^[0-9a-f]{7,40}\Z")


@dataclass(frozen=True)
class Access:
    """How git reaches a repository: the deploy key's file (None: none) and the app's known_hosts."""

    key_file: Path | None
    known_hosts: Path

    def env(self) -> dict[str, str]:
        env = {
            k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "SSH_")) and k != "MYPAAS_TOKEN"
        }
        ssh = [
            "ssh",
            "-o", "BatchMode=yes",
            "-o", "IdentitiesOnly=yes",
            "-o", "StrictHostKeyChecking=accept-new",
            "-o", f"UserKnownHostsFile={self.known_hosts}",
            "-o", "ConnectTimeout=15",
            "-F", "/dev/null",
        ]  # fmt: skip
        ssh += ["-i", str(self.key_file)] if self.key_file else ["-o", "IdentityFile=none"]
        env.update(
            GIT_TERMINAL_PROMPT="0",
            GIT_ALLOW_PROTOCOL=ALLOWED_PROTOCOLS,
            GIT_SSH_COMMAND=shlex.join(ssh),
            GIT_CONFIG_NOSYSTEM="1",
            GIT_CONFIG_GLOBAL="/dev/null",
        )
        return env


@dataclass(frozen=True)
class Checkout:
    sha: str
    subject: str

    @property
    def message(self) -> str:
        """'<sha12> <subject>', the release's description."""
        return f"{self.sha[:12]} {self.subject}".strip()


def _git(args: list[str], *, cwd: Path | None, access: Access, timeout: float) -> str:
    try:
        done = subprocess.run(
            ["git", *args],
            cwd=cwd,
            env=access.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as exc:
        raise InvalidSpec(f"git {args[0]} took longer than {timeout:.0f} s", field="url") from exc
    except OSError as exc:
        raise InvalidSpec(f"cannot run git: {exc.strerror}", field="url") from exc
    if done.returncode != 0:
        raise GitFailed(done.stderr)
    return done.stdout


class GitFailed(Exception):
    """git exited non-zero; ``text`` is what it printed."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


def reason(text: str, url: str, ref: str) -> InvalidSpec:
    """One line for the user out of git's stderr."""
    lines = [
        ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("Warning: Permanently")
    ]
    low = text.lower()
    if "couldn't find remote ref" in low or "not our ref" in low or "unknown revision" in low:
        return InvalidSpec(f"no branch, tag or commit {ref!r} in {url}", field="ref")
    if "permission denied" in low or "authentication failed" in low or "could not read username" in low:
        return InvalidSpec(
            f"{url} refused the deploy key (add `mypaas git deploy-key APP`'s key to the repository): "
            + (lines[0] if lines else "access denied"),
            field="url",
        )
    if "host key verification failed" in low or "remote host identification has changed" in low:
        return InvalidSpec(
            f"{url}: the server's SSH host key changed since the first clone (known_hosts of this app)",
            field="url",
        )
    last = lines[-1] if lines else "git failed"
    for line in lines:
        if (
            line.lower().startswith(("fatal:", "ssh:", "error:"))
            and "could not read from remote" not in line.lower()
        ):
            last = line
            break
    return InvalidSpec(f"cannot fetch {url}: {last}", field="url")


def _size(folder: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                continue
    return total


def fetch(
    url: str, ref: str, dest: Path, *, access: Access, max_bytes: int, emit: Callable[[str], None]
) -> Checkout:
    """Check out ``ref`` of ``url`` (a branch, tag or commit; "" for the default branch) into the empty
    folder ``dest``, shallow where the ref allows. InvalidSpec with one line when git fails or the clone
    passes ``max_bytes``."""
    dest.mkdir(parents=True, exist_ok=True)
    _git(["init", "--quiet", str(dest)], cwd=None, access=access, timeout=30)
    _git(["remote", "add", "origin", url], cwd=dest, access=access, timeout=30)
    want, target = ref or "HEAD", "FETCH_HEAD"
    emit(f"fetching {url}" + (f" at {ref}" if ref else ""))
    try:
        _fetch(dest, ["--depth", "1", "origin", want], access, max_bytes, url)
    except GitFailed as exc:
        if not _SHA.fullmatch(ref):
            raise reason(exc.text, url, ref) from None
        # a commit the server does not hand out by itself: fetch the history, then find it there
        try:
            _fetch(dest, ["origin"], access, max_bytes, url)
            _git(
                ["rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], cwd=dest, access=access, timeout=30
            )
            target = ref
        except GitFailed as again:
            raise reason(again.text or "unknown revision", url, ref) from None
    try:
        _git(
            ["-c", "advice.detachedHead=false", "checkout", "--quiet", target],
            cwd=dest,
            access=access,
            timeout=120,
        )
        sha = _git(["rev-parse", "HEAD"], cwd=dest, access=access, timeout=30).strip()
        subject = _git(["log", "-1", "--format=%s"], cwd=dest, access=access, timeout=30).strip()
    except GitFailed as exc:
        raise reason(exc.text, url, ref) from None
    if (dest / ".gitmodules").is_file():
        _submodules(dest, access, url)
    size = _size(dest)
    if size > max_bytes:
        raise too_big(url, max_bytes)
    emit(f"checked out {sha[:12]} {subject} ({_shown_size(size)})")
    return Checkout(sha, subject)


def _shown_size(size: int) -> str:
    return f"{size / 2**20:.1f} MiB" if size >= 2**20 else f"{max(1, round(size / 1024))} KiB"


def _submodules(dest: Path, access: Access, url: str) -> None:
    """The checkout's submodules, shallow, with the same key and the same allowed transports."""
    try:
        _git(
            ["submodule", "update", "--init", "--recursive", "--depth", "1"],
            cwd=dest,
            access=access,
            timeout=FETCH_TIMEOUT_S,
        )
    except GitFailed as exc:
        lines = [ln.strip() for ln in exc.text.splitlines() if ln.strip()]
        first = next((ln for ln in lines if ln.lower().startswith("fatal:")), lines[0] if lines else "")
        raise InvalidSpec(f"a submodule of {url} cannot be fetched: {first}", field="url") from None


def too_big(url: str, max_bytes: int) -> InvalidSpec:
    return InvalidSpec(
        f"{url} is larger than the clone limit of {max_bytes / 2**20:.0f} MiB (setting git_clone_max_bytes)",
        field="url",
    )


def _fetch(dest: Path, args: list[str], access: Access, max_bytes: int, url: str) -> None:
    """``git fetch ARGS`` in ``dest``, stopped as soon as the folder passes ``max_bytes``."""
    proc = subprocess.Popen(
        ["git", "fetch", "--quiet", "--no-tags", *args],
        cwd=dest,
        env=access.env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    errors: list[str] = []
    reader = threading.Thread(target=lambda: errors.append(proc.stderr.read() if proc.stderr else ""))
    reader.start()
    deadline = time.monotonic() + FETCH_TIMEOUT_S
    try:
        while proc.poll() is None:
            if _size(dest) > max_bytes:
                proc.kill()
                raise too_big(url, max_bytes)
            if time.monotonic() > deadline:
                proc.kill()
                raise InvalidSpec(f"fetching {url} took longer than {FETCH_TIMEOUT_S:.0f} s", field="url")
            try:
                proc.wait(timeout=0.25)
            except subprocess.TimeoutExpired:
                continue
    finally:
        proc.wait()
        reader.join()
    if proc.returncode != 0:
        raise GitFailed("".join(errors))


def ls_remote(url: str, branch: str, *, access: Access) -> str:
    """The sha ``branch`` points at in ``url`` ("" when it has no such branch)."""
    try:
        out = _git(
            ["ls-remote", "--heads", url, f"refs/heads/{branch}"],
            cwd=None,
            access=access,
            timeout=LS_REMOTE_TIMEOUT_S,
        )
    except GitFailed as exc:
        raise reason(exc.text, url, branch) from None
    for line in out.splitlines():
        sha, _, name = line.partition("\t")
        if name.strip() == f"refs/heads/{branch}":
            return sha.strip()
    return ""
