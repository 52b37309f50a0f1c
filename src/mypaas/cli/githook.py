"""The ``pre-receive`` hook of the platform's git repositories (``python -m mypaas.cli.githook``): it
deploys what a push brings, with the platform's own CLI, and fails (so git rejects the push and no ref
moves) when a deploy fails. Its output is the pusher's (git shows it as ``remote:`` lines).

The app's deploy branch deploys the app (``mypaas deploy APP DIR -m "<sha12> <subject>"``), another
branch deploys its preview (``--preview BRANCH``), deleting a branch removes its preview; deleting the
deploy branch or pushing anything but a branch is refused. The pushed objects are still in git's
quarantine: the tree is read with ``git archive`` (and submodules fetched with ``git clone``)."""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from mypaas.errors import MyPaasError

BRANCH_PREFIX = "refs/heads/"
FETCH_TIMEOUT_S = 300
PREFIX = "mypaas: "


class HookError(Exception):
    """What the pusher is told in one line (the push is rejected)."""


@dataclass(frozen=True)
class Step:
    """What the hook does for one pushed ref: ``deploy``, ``preview``, ``unpreview`` or ``refuse``."""

    kind: str
    branch: str
    sha: str = ""
    reason: str = ""


def _zero(sha: str) -> bool:
    return set(sha) == {"0"}


def plan(updates: Iterable[tuple[str, str, str]], app: str, branches: Sequence[str]) -> list[Step]:
    """The steps of a push: ``updates`` are git's (old, new, ref) lines, ``branches`` those that deploy
    the app itself (its deploy branch, or main and master while none is set)."""
    steps = []
    for _old, new, ref in updates:
        if not ref.startswith(BRANCH_PREFIX):
            steps.append(Step("refuse", ref, reason=f"only branches deploy: {ref} is refused"))
            continue
        branch = ref.removeprefix(BRANCH_PREFIX)
        if branch in branches:
            if _zero(new):
                reason = f"{branch} deploys {app}: deleting it is refused"
                steps.append(Step("refuse", branch, reason=reason))
            else:
                steps.append(Step("deploy", branch, new))
        elif _zero(new):
            steps.append(Step("unpreview", branch))
        else:
            steps.append(Step("preview", branch, new))
    return steps


def read_updates(lines: Iterable[str]) -> list[tuple[str, str, str]]:
    updates = []
    for line in lines:
        parts = line.split()
        if len(parts) == 3:
            updates.append((parts[0], parts[1], parts[2]))
    return updates


def cli_command(step: Step, app: str, folder: Path, message: str) -> list[str]:
    """The platform CLI's command line for a step."""
    base = [sys.executable, "-m", "mypaas.cli.main"]
    if step.kind == "unpreview":
        return [*base, "previews", "rm", app, step.branch]
    cmd = [*base, "deploy", app, str(folder), "--message", message]
    if step.kind == "preview":
        cmd += ["--preview", step.branch]
    return cmd


# -- git, in the hook's environment (the quarantine) -------------------------------------------


def _git(*args: str) -> str:
    done = subprocess.run(["git", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise HookError(f"git {args[0]} failed: {_last_line(done.stderr)}")
    return done.stdout


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1].removeprefix("fatal: ").removeprefix("error: ") if lines else "no output"


def outside_env() -> dict[str, str]:
    """This environment without git's repository variables (a clone or the CLI must not see the hook's
    repository and quarantine)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("GIT_") or k == "GIT_TERMINAL_PROMPT"}


def describe(sha: str) -> str:
    """``<sha12> <subject>``: what the release's description says."""
    subject = _git("log", "-1", "--format=%s", sha).strip()
    return f"{sha[:12]} {subject}"[:500]


def export_tree(sha: str, dest: Path) -> None:
    """The commit's files into ``dest`` (git archive), then its submodules."""
    proc = subprocess.Popen(["git", "archive", "--format=tar", sha], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    try:
        with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
            tar.extractall(dest, filter="data")
    except tarfile.TarError as exc:
        raise HookError(f"cannot unpack the pushed tree: {exc}") from None
    finally:
        proc.stdout.close()
        proc.wait()
    if (dest / ".gitmodules").is_file():
        fetch_submodules(sha, dest)


def submodules(text: str) -> list[tuple[str, str, str]]:
    """(name, path, url) of each submodule a ``.gitmodules`` text declares."""
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(text)
    except configparser.Error as exc:
        raise HookError(f".gitmodules cannot be read: {' '.join(str(exc).split())}") from None
    found = []
    for section in parser.sections():
        if not section.startswith("submodule "):
            continue
        name = section.removeprefix("submodule ").strip().strip('"')
        path, url = parser.get(section, "path", fallback=""), parser.get(section, "url", fallback="")
        if not path or not url:
            raise HookError(f"submodule {name!r} needs a path and a url in .gitmodules")
        found.append((name, path.strip(), url.strip()))
    return found


def fetch_submodules(sha: str, dest: Path) -> None:
    for name, path, url in submodules((dest / ".gitmodules").read_text(errors="replace")):
        target = (dest / path).resolve()
        if not target.is_relative_to(dest.resolve()) or target == dest.resolve():
            raise HookError(f"submodule {name!r}: path {path!r} is outside the repository")
        if url.startswith(("./", "../")):
            raise HookError(
                f"submodule {name!r} ({url}) cannot be fetched: a relative URL has no server here"
            )
        entry = _git("ls-tree", sha, "--", path).split()
        if len(entry) < 3 or entry[1] != "commit":
            raise HookError(f"submodule {name!r}: {path!r} is no submodule commit in the pushed tree")
        _clone_at(name, url, entry[2], target)


def _clone_at(name: str, url: str, commit: str, target: Path) -> None:
    if target.exists():
        shutil.rmtree(target)
    env = outside_env()
    for cmd in (
        ["git", "clone", "--quiet", "--no-checkout", url, str(target)],
        ["git", "-C", str(target), "checkout", "--quiet", commit],
    ):
        try:
            done = subprocess.run(
                cmd, capture_output=True, text=True, env=env, timeout=FETCH_TIMEOUT_S, check=False
            )
        except subprocess.TimeoutExpired:
            raise HookError(f"submodule {name!r} ({url}) cannot be fetched: timed out") from None
        if done.returncode != 0:
            raise HookError(f"submodule {name!r} ({url}) cannot be fetched: {_last_line(done.stderr)}")
    shutil.rmtree(target / ".git", ignore_errors=True)


# -- the hook ----------------------------------------------------------------------------------


def _say(text: str) -> None:
    print(PREFIX + text, flush=True)


def deploy_branches(app: str) -> list[str]:
    """The branches that deploy the app itself: what the endpoint passed (MYPAAS_GIT_BRANCHES), else the
    API's answer."""
    given = os.environ.get("MYPAAS_GIT_BRANCHES", "")
    if given:
        return given.split(":")
    from mypaas.cli.params import api

    with api() as client:
        info = client.git_remote(app)
    return [str(b) for b in info.get("branches") or []]


def run_step(step: Step, app: str) -> bool:
    """Run one step; False when the deploy failed (its output already went to the pusher)."""
    if step.kind == "unpreview":
        _say(f"branch {step.branch} deleted: removing its preview")
        return (
            subprocess.run(cli_command(step, app, Path(), ""), env=outside_env(), check=False).returncode == 0
        )
    message = describe(step.sha)
    what = f"{app} (preview of {step.branch})" if step.kind == "preview" else app
    _say(f"deploying {message} to {what}")
    with tempfile.TemporaryDirectory(prefix="mypaas-push-") as tmp:
        folder = Path(tmp) / "tree"
        folder.mkdir()
        export_tree(step.sha, folder)
        cmd = cli_command(step, app, folder, message)
        return subprocess.run(cmd, env=outside_env(), check=False).returncode == 0


def main(lines: Iterable[str]) -> int:
    app = os.environ.get("MYPAAS_GIT_APP", "")
    if not app:
        _say("this hook runs only for pushes through the platform's git endpoint")
        return 1
    steps = plan(read_updates(lines), app, deploy_branches(app))
    refused = [s for s in steps if s.kind == "refuse"]
    for step in refused:
        _say(step.reason)
    if refused:
        return 1
    for step in steps:
        if not run_step(step, app):
            kept = "its previous release keeps serving" if step.kind == "deploy" else "nothing changed"
            _say(f"the deploy of {step.branch} failed: push rejected ({kept})")
            return 1
    return 0


def run() -> None:
    try:
        code = main(sys.stdin)
    except (HookError, MyPaasError) as exc:
        _say(f"{exc}: push rejected")
        code = 1
    sys.exit(code)


if __name__ == "__main__":
    run()
