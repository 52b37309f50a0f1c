"""`mypaas git …`: deploying with `git push`. `git remote` prints (or adds) an app's remote on the
platform's SSH endpoint and sets the branch whose pushes deploy the app."""

from __future__ import annotations

import subprocess
from typing import Annotated

import typer

from mypaas.cli.output import fail, print_json, say
from mypaas.cli.params import AppArg, JsonOpt, api

git_app = typer.Typer(
    no_args_is_help=True,
    help="""Deploy with `git push`.

Register your SSH key once (mypaas user key add USER ~/.ssh/id_ed25519.pub), add the app's
remote, then push: the build and the rollout stream to your terminal, and a failed deploy
rejects the push (the previous release keeps serving).

Examples:

  mypaas git remote web --add
  git push mypaas main
  mypaas git remote web --branch production""",
)

REMOTE_NAME = "mypaas"


@git_app.command("remote", no_args_is_help=True)
def remote(
    name: AppArg,
    add: Annotated[
        bool, typer.Option("--add", help="Add it as remote 'mypaas' of the git repository here.")
    ] = False,
    branch: Annotated[
        str | None,
        typer.Option(
            "--branch",
            metavar="BRANCH",
            help="The branch whose pushes deploy the app (default: main, or master); other branches"
            " make previews.",
            show_default=False,
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Print the app's git remote (ssh://git@HOST:PORT/APP.git); --add adds it here, --branch sets
    the branch that deploys the app.

    Examples:

      mypaas git remote web                      # ssh://git@example.com:2222/web.git
      mypaas git remote web --add && git push mypaas main
      mypaas git remote web --branch production  # then: git push mypaas production

    A push streams the build and the rollout; a failed deploy rejects it. Your SSH key must be
    registered first: mypaas user key add USER ~/.ssh/id_ed25519.pub
    """
    with api() as client:
        info = client.set_git_branch(name, branch) if branch else client.git_remote(name)
        if branch:
            info = client.git_remote(name)
    if as_json:
        print_json(info)
    else:
        say(info["url"])
    if not info.get("port"):
        fail("the platform's git endpoint is off (setting git_ssh_port is 0)")
    if branch and not as_json:
        say(f"pushes to {branch} deploy {name}; other branches make previews")
    if add:
        _add_remote(info["url"])


def _add_remote(url: str) -> None:
    cmd = ["git", "remote", "add", REMOTE_NAME, url]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        fail(f"cannot run git: {exc}")
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or ["git remote add failed"])[-1]
        fail(f"{reason.removeprefix('error: ')} (change it: git remote set-url {REMOTE_NAME} {url})")
    say(f"added remote {REMOTE_NAME}: git push {REMOTE_NAME} main")
