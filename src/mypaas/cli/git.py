"""``mypaas git``: deploying with `git push` (`git remote`: the app's remote on the platform's SSH endpoint
and the branch whose pushes deploy it), and apps deployed from a repository — the app's deploy key and its
watch (redeploy on every push, by a forge's webhook or by polling)."""

from __future__ import annotations

import functools
import re
import subprocess
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mypaas.cli.output import fail, print_json, say, table
from mypaas.cli.params import AppArg, JsonOpt, TeamOpt, api
from mypaas.errors import InvalidSpec

if TYPE_CHECKING:
    from mypaas.cli.client import ApiClient

git_app = typer.Typer(
    no_args_is_help=True,
    help="""Deploy with `git push`, or from a repository (deploy keys, watches that redeploy on push).

Register your SSH key once (mypaas user key add USER ~/.ssh/id_ed25519.pub), add the app's
remote, then push: the build and the rollout stream to your terminal, and a failed deploy
rejects the push (the previous release keeps serving).

Examples:

  mypaas git remote web --add
  git push mypaas main
  mypaas git remote web --branch production
  mypaas git watch web https://github.com/acme/web.git --branch main""",
)

REMOTE_NAME = "mypaas"

_POLL = re.compile(r"^(\d+(?:\.\d+)?)(s|m|h)?\Z")
_UNIT = {"s": 1, "m": 60, "h": 3600, None: 1}


def poll_seconds(text: str | None) -> float:
    """``60s``, ``5m``, ``1h``, ``90`` (seconds), ``off``/``0`` -> seconds (0: no polling)."""
    if text is None or text.strip().lower() in ("", "off", "0", "0s"):
        return 0.0
    match = _POLL.fullmatch(text.strip().lower())
    if match is None:
        raise InvalidSpec(f"invalid --poll {text!r}: expected e.g. 60s, 5m, 1h or off", field="poll")
    return float(match.group(1)) * _UNIT[match.group(2)]


@git_app.command("deploy-key", no_args_is_help=True)
def deploy_key(
    name: AppArg,
    rotate: Annotated[
        bool, typer.Option("--rotate", help="Make a new key (the old one stops working).")
    ] = False,
    team: TeamOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Print the public half of the app's deploy key (ed25519, made on first ask).

    Add it to the repository as a read-only deploy key (GitHub: Settings → Deploy keys; GitLab: Settings →
    Repository → Deploy keys; Gitea/Forgejo: Settings → Deploy Keys); `mypaas deploy APP --git
    ssh://…` and `mypaas git watch` then clone with it. The server's SSH host key is accepted on the
    first clone and pinned from then on (a per-app known_hosts the manager keeps).

    Examples:

      mypaas git deploy-key shop
      mypaas git deploy-key shop --rotate
    """
    with api() as client:
        info = client.deploy_key(name, rotate=rotate, team=team)
    if as_json:
        print_json(info)
        return
    say(str(info["public_key"]))


@git_app.command("watch", no_args_is_help=True)
def watch(
    name: AppArg,
    url: Annotated[str, typer.Argument(metavar="URL", help="The repository.", show_default=False)],
    branch: Annotated[
        str | None,
        typer.Option("--branch", "-b", help="The branch whose pushes deploy (default: main, or master)."),
    ] = None,
    path: Annotated[str, typer.Option("--path", help="The folder of the repository to deploy.")] = "",
    poll: Annotated[
        str | None,
        typer.Option(
            "--poll", help="Also ask the repository this often (60s, 5m): where no webhook reaches."
        ),
    ] = None,
    team: TeamOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Redeploy the app on every push to BRANCH of URL.

    Prints the webhook's URL and its secret: add them to the repository (GitHub: Settings → Webhooks,
    content type application/json, the secret; GitLab: Settings → Webhooks, the secret token; Gitea and
    Forgejo: Settings → Webhooks, the secret). Push events deploy; pull/merge request events deploy a
    preview of their branch when previews are on for the app. Where no webhook can reach the platform,
    --poll asks the repository itself.

    Examples:

      mypaas git watch shop https://github.com/acme/shop.git
      mypaas git watch shop git@gitlab.com:acme/shop.git --branch prod --path web
      mypaas git watch shop ssh://git@git.internal/shop.git --poll 60s
    """
    body = {"url": url, "branch": branch or "", "path": path, "poll_s": poll_seconds(poll)}
    with api() as client:
        info = client.git_watch(name, body, team=team)
        base = client.url
    hook = f"{base.rstrip('/')}{info['webhook']}"
    if as_json:
        print_json({**info, "webhook_url": hook})
        return
    branches = " or ".join(info["branches"])
    say(f"{name} redeploys on every push to {branches} of {url}" + (f" (folder {path})" if path else ""))
    say(f"webhook URL:    {hook}")
    say(f"webhook secret: {info['secret']}")
    if info["poll_s"]:
        say(f"polling:        every {info['poll_s']:g} s")
    if url.startswith(("ssh://", "git@")) or "@" in url.split("/")[0]:
        say("over SSH the deploy key clones: `mypaas git deploy-key " + name + "` prints it")


@git_app.command("unwatch", no_args_is_help=True)
def unwatch(name: AppArg) -> None:
    """Stop redeploying the app on pushes (its webhook's secret stops working).

    Example:

      mypaas git unwatch shop
    """
    with api() as client:
        info = client.git_unwatch(name)
    say(f"{name} no longer watches {info['url']}")


@git_app.command("watches")
def watches(as_json: JsonOpt = False) -> None:
    """List the watched repositories of your teams' apps.

    Example:

      mypaas git watches --json
    """
    with api() as client:
        rows = client.git_watches()
    if as_json:
        print_json(rows)
        return
    table(
        ["APP", "URL", "BRANCH", "PATH", "POLL", "DEPLOYED", "AS"],
        [
            [
                r["app"],
                r["url"],
                r["branch"] or "main|master",
                r["path"] or "-",
                f"{r['poll_s']:g}s" if r["poll_s"] else "webhook",
                (r["last_sha"] or "")[:12] or "-",
                r["user"],
            ]
            for r in rows
        ],
        empty="no watched repositories",
    )


def deploy_from_git(
    name: str,
    source: str | None,
    path: str | None,
    others: tuple[object, ...],
    team: str | None,
    no_wait: bool,
    as_json: bool,
    deployed: Callable[[ApiClient, str, dict[str, Any]], str],
) -> None:
    """`mypaas deploy APP --git URL[#REF] [--path DIR]`: the platform clones and deploys; the operation's
    log (the clone, then the build and the rollout) streams here."""
    from mypaas.cli.outcome import finish

    if source is None:
        raise typer.BadParameter("goes with --git URL[#REF]", param_hint="--path")
    if any(value for value in others):
        raise typer.BadParameter(
            "a repository deploy takes no DIR, --image, -f, --port, -m, --dry-run or --preview",
            param_hint="--git",
        )
    with api() as client:
        op = client.git_deploy(name, source, path or "", team=team)
        done = functools.partial(deployed, client, name)
        title = f"deploying {name} from {source}"
        finish(client, op, title, no_wait=no_wait, as_json=as_json, done_message=done)


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

      mypaas git remote web               # ssh://git@example.com:2222/web.git
      mypaas git remote web --add && git push mypaas main
      mypaas git remote web --branch production   (push production to deploy)

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
