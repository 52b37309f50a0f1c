"""The ``mypaas`` command line (Typer): parse, call the REST API through ApiClient, print.

Module-level imports stay at typer and the stdlib: httpx, rich and yaml load inside the commands.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperGroup

from mypaas import __version__
from mypaas.cli.helptext import flow_all
from mypaas.cli.lean import Later, LazyTyper, leave, only
from mypaas.cli.output import ago, fail, print_json, say, table, version
from mypaas.cli.params import AppArg, JsonOpt, NoWait, TeamOpt, api, app_url
from mypaas.errors import MyPaasError

if TYPE_CHECKING:
    from typer._click import Context

    from mypaas.cli.client import ApiClient
    from mypaas.cli.deploy import Payload

PLATFORM, APPS, RELEASES = "Platform", "Apps", "Releases, config and domains"
MONITOR = "Monitor"
USERS = "Users, teams and tokens"


class _Root(TyperGroup):
    """The top group: any MyPaasError a command raises becomes one ``error:`` line and exit 1;
    a usage mistake becomes one ``error:`` line (with where to find help) and exit 2."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("standalone_mode", True) is False:
            return super().main(*args, **kwargs)
        kwargs["standalone_mode"] = False
        _no_help_for_missing_arguments(self)
        flow_all(self)
        try:
            code = super().main(*args, **kwargs)
        except typer.Abort:
            sys.stderr.write("aborted\n")
            sys.exit(1)
        except typer.TyperException as exc:  # Click's usage errors and bad parameters
            sys.exit(_usage_error(exc))
        sys.exit(code if isinstance(code, int) else 0)

    def invoke(self, ctx: Context) -> Any:
        try:
            return super().invoke(ctx)
        except MyPaasError as exc:
            fail(exc.message)


app = LazyTyper(
    name="mypaas",
    cls=_Root,
    help="""MyPaas: deploy and run apps on your own Docker host, heroku-style.

Examples:

  mypaas up
  mypaas deploy hello examples/hello                (a Dockerfile's folder)
  mypaas deploy shop -f compose.yml                 (a compose file)
  mypaas deploy web -i 127.0.0.1:5000/hello/web:v1  (an image: hello's v1)
  mypaas ps hello
  mypaas logs hello -f

The API's address and token come from MYPAAS_URL and MYPAAS_TOKEN, else from `mypaas login`, else from
this machine's platform (the admin token file written by `mypaas up`).""",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_show_locals=False,  # locals would print the API token
    add_completion=False,
)


def _usage_error(exc: Exception) -> int:
    """Print a usage mistake as one line, like the rest of the CLI's errors; return its exit code."""
    if type(exc).__name__ == "NoArgsIsHelpError":
        return 2  # a group without its command: its help was printed, which says it all
    message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
    param = getattr(exc, "param", None)
    if type(exc).__name__ == "MissingParameter" and param is not None:
        argument = param.param_type_name == "argument"
        name = param.human_readable_name.upper() if argument else max(param.opts, key=len)
        message = f"missing {'argument' if argument else 'option'} {name}"
    ctx = getattr(exc, "ctx", None)
    hint = f"; see '{ctx.command_path} --help'" if ctx is not None else ""
    first, *_ = [line for line in str(message).splitlines() if line.strip()] or ["invalid usage"]
    sys.stderr.write(f"error: {first[0].lower() + first[1:].rstrip('.')}{hint}\n")
    return int(getattr(exc, "exit_code", 2))


def _no_help_for_missing_arguments(group: Any) -> None:
    """A command run without its arguments says which one is missing in one line (exit 2), as every
    usage mistake does, instead of printing its whole help; a group without its command shows its help."""
    for command in group.commands.values():
        if hasattr(command, "commands"):
            _no_help_for_missing_arguments(command)
        else:
            command.no_args_is_help = False


def _show_version(value: bool) -> None:
    if value:
        say(f"mypaas {__version__}")
        raise typer.Exit


@app.callback()
def _root(
    show_version: Annotated[
        bool,
        typer.Option("--version", "-V", callback=_show_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    pass


# -- apps -----------------------------------------------------------------------------------------

ComposeFiles = Annotated[
    list[Path] | None,
    typer.Option(
        "--file",
        "-f",
        help="A compose file (repeat: merged in order, as docker compose does).",
        show_default=False,
    ),
]
EnvFiles = Annotated[
    list[Path] | None,
    typer.Option(
        "--env-file", help="Compose variables from this file (repeatable; default .env).", show_default=False
    ),
]
Profiles = Annotated[
    list[str] | None,
    typer.Option("--profile", help="Enable a compose profile (repeatable).", show_default=False),
]
DryRun = Annotated[
    bool, typer.Option("--dry-run", help="Check everything and show what would change; make nothing.")
]


@app.command(rich_help_panel=APPS, no_args_is_help=True)
def deploy(  # noqa: PLR0913, PLR0917 - one parameter per command-line option
    name: AppArg,
    folder: Annotated[
        Path | None,
        typer.Argument(
            metavar="DIR", help="A folder with a Dockerfile (or a compose file).", show_default=False
        ),
    ] = None,
    image: Annotated[
        str | None, typer.Option("--image", "-i", help="Run this image.", show_default=False)
    ] = None,
    port: Annotated[
        int | None,
        typer.Option("--port", "-p", min=1, max=65535, help="The HTTP port to route (image or DIR)."),
    ] = None,
    files: ComposeFiles = None,
    env_files: EnvFiles = None,
    profiles: Profiles = None,
    dry_run: DryRun = False,
    message: Annotated[str | None, typer.Option("--message", "-m", help="Describe the release.")] = None,
    git_source: Annotated[
        str | None,
        typer.Option(
            "--git",
            metavar="URL[#REF]",
            help="Clone this repository (at a branch, tag or commit) on the platform and deploy it.",
            show_default=False,
        ),
    ] = None,
    git_path: Annotated[
        str | None, typer.Option("--path", help="With --git: the repository's folder to deploy.")
    ] = None,
    team: TeamOpt = None,
    preview: Annotated[
        str | None,
        typer.Option(
            "--preview",
            metavar="BRANCH",
            help="Deploy APP's preview app for this git branch.",
            show_default=False,
        ),
    ] = None,
    no_wait: NoWait = False,
    as_json: JsonOpt = False,
) -> None:
    """Deploy an image, a compose project, a folder with a Dockerfile, or a repository.

    Each deploy makes a new release of the app, described by what changed unless -m says;
    deploying exactly what runs again makes none and restarts nothing.

    Examples:

      mypaas deploy hello examples/hello
      mypaas deploy web --image 127.0.0.1:5000/hello/web:v1 --port 8080
      mypaas deploy shop -f compose.yml -m "new checkout"
      mypaas deploy shop -f compose.yml -f prod.yml --profile tools --dry-run
      mypaas deploy api -i 127.0.0.1:5000/api/web:v1 --team backend
      mypaas deploy shop . --preview feature/x      (see mypaas previews --help)
      mypaas deploy shop --git https://github.com/acme/shop.git#v1.4 --path web
      mypaas deploy shop --git git@github.com:acme/private.git

    With --git the platform clones the repository (shallow where the ref allows: a branch, a tag or a
    commit; the default branch without #REF) and deploys it as `mypaas deploy APP DIR` does, the commit's
    hash and subject as the release's description. A private repository over SSH: add the key `mypaas
    git deploy-key APP` prints to it first.

    Build output streams as it comes. A failed rollout keeps the previous release serving.

    On failure it exits 1 and shows the failing container's last log lines. With --dry-run it exits 0
    when the deploy would be accepted, printing the app as it would run, the warnings and the changes.
    With --json it prints one JSON object: the operation and the release it made (or the dry run's).
    """
    from mypaas.cli import deploy as collect
    from mypaas.cli.outcome import finish

    if git_source is not None or git_path is not None:
        others = (folder, image, files, port, message, dry_run, preview)
        from mypaas.cli import git

        git.deploy_from_git(name, git_source, git_path, others, team, no_wait, as_json, _deployed)
        return
    flags = collect.ComposeFlags(env_files or [], profiles or [], upload=not dry_run)
    payload = collect.payload_of(
        image=image, files=files, folder=folder, port=port, message=message, flags=flags
    )
    if preview is not None:
        payload.body["preview"] = preview
    with api() as client:
        if dry_run:
            _dry_run(client, name, payload, as_json, team)
            return
        op = client.deploy(name, payload.body, payload.contexts, team=team)
        name = str(op.get("app") or name)  # a preview: its own app
        done_message = functools.partial(_deployed, client, name)
        finish(client, op, f"deploying {name}", no_wait=no_wait, as_json=as_json, done_message=done_message)


def _dry_run(client: ApiClient, name: str, payload: Payload, as_json: bool, team: str | None) -> None:
    from mypaas.cli.compose import dry_run_lines

    answer = client.deploy(name, payload.body, payload.contexts, dry_run=True, team=team)
    if as_json:
        print_json(answer)
        return
    for line in dry_run_lines(name, answer):
        say(line)


def _deployed(client: ApiClient, name: str, op: dict[str, Any]) -> str:
    """'hello v3 deployed: http://hello.localhost' (no URL when no service takes HTTP), or the deploy's
    'nothing changed: v3 is running'."""
    if str(op.get("message") or "").startswith("nothing changed"):
        return str(op["message"])
    line = " ".join(part for part in (name, version(op.get("release")), "deployed") if part)
    info = client.app(name)
    if info.get("web"):
        line += f": {info.get('url') or app_url(name)}"
    return line


@app.command("ls", rich_help_panel=APPS)
def list_apps(as_json: JsonOpt = False) -> None:
    """List the apps of your teams (all of them for a platform admin): team, state, release, ready
    instances."""
    with api() as client:
        apps = client.apps()
    if as_json:
        print_json(apps)
        return
    rows = []
    for a in apps:
        rel = version(a.get("release")) or "-"
        if a.get("target_release") not in (None, a.get("release")):
            rel += f" → {version(a['target_release'])}"  # a rollout in flight
        state = f"{a['state']}: {a['blocked']}" if a.get("blocked") else a["state"]  # a stuck removal
        ready = f"{a['ready']}/{a['instances']}"
        shown = f"{a['name']} (preview of {a['preview_of']})" if a.get("preview_of") else a["name"]
        rows.append([shown, a.get("team") or "-", state, rel, ready, ago(a.get("updated_at"))])
    table(["NAME", "TEAM", "STATE", "RELEASE", "READY", "UPDATED"], rows, empty="no apps")


# -- the commands of releases.py and platform.py ---------------------------------------------------
# registered after the app commands so that --help lists the panels as Apps, Releases, Platform.

# the other modules' commands and groups, each imported only when a run names it (cli/lean.py)
app.later(
    Later("ps", "mypaas.cli.app_commands:ps", rich_help_panel=APPS, no_args_is_help=True),
    Later("logs", "mypaas.cli.app_commands:logs", rich_help_panel=APPS, no_args_is_help=True),
    Later("scale", "mypaas.cli.app_commands:scale", rich_help_panel=APPS, no_args_is_help=True),
    Later("stop", "mypaas.cli.app_commands:stop", rich_help_panel=APPS, no_args_is_help=True),
    Later("start", "mypaas.cli.app_commands:start", rich_help_panel=APPS, no_args_is_help=True),
    Later("restart", "mypaas.cli.app_commands:restart", rich_help_panel=APPS, no_args_is_help=True),
    Later("rm", "mypaas.cli.app_commands:rm", rich_help_panel=APPS, no_args_is_help=True),
    Later("releases", "mypaas.cli.releases:releases", rich_help_panel=RELEASES, no_args_is_help=True),
    Later("rollback", "mypaas.cli.releases:rollback", rich_help_panel=RELEASES, no_args_is_help=True),
    Later("config", "mypaas.cli.releases:config_app", group=True, rich_help_panel=RELEASES),
    Later("domains", "mypaas.cli.releases:domains_app", group=True, rich_help_panel=RELEASES),
    Later("certs", "mypaas.cli.certs:certs_app", group=True, rich_help_panel=RELEASES),
    Later("secrets", "mypaas.cli.secrets:secrets_app", group=True, rich_help_panel=RELEASES),
    Later("previews", "mypaas.cli.previews:previews_app", group=True, rich_help_panel=APPS),
    Later("volumes", "mypaas.cli.volumes:volumes_app", group=True, rich_help_panel=APPS),
    Later("git", "mypaas.cli.git:git_app", group=True, rich_help_panel=APPS),
    Later("up", "mypaas.cli.platform:up", rich_help_panel=PLATFORM),
    Later("down", "mypaas.cli.platform:down", rich_help_panel=PLATFORM),
    Later("status", "mypaas.cli.platform:status", rich_help_panel=PLATFORM),
    Later("manager", "mypaas.cli.platform:manager_app", group=True, hidden=True),
    Later("backup", "mypaas.cli.backup:backup_app", group=True, rich_help_panel=PLATFORM),
    Later("restore", "mypaas.cli.backup:restore", rich_help_panel=PLATFORM, no_args_is_help=True),
    Later("registry", "mypaas.cli.registry:registry_app", group=True, rich_help_panel=PLATFORM),
    Later("image", "mypaas.cli.images:image_app", group=True, rich_help_panel=PLATFORM),
    # drivers.py adds `host create` and `host destroy` to hosts.py's group
    Later("host", "mypaas.cli.drivers:host_app", group=True, rich_help_panel=PLATFORM),
    Later("driver", "mypaas.cli.drivers:driver_app", group=True, rich_help_panel=PLATFORM),
    Later("cluster", "mypaas.cli.hosts:cluster_app", group=True, rich_help_panel=PLATFORM),
    Later("audit", "mypaas.cli.audit:audit", rich_help_panel=PLATFORM),
    Later("export", "mypaas.cli.declare:export", rich_help_panel=PLATFORM),
    Later("apply", "mypaas.cli.declare:apply", rich_help_panel=PLATFORM, no_args_is_help=True),
    Later("events", "mypaas.cli.monitor:events", rich_help_panel=MONITOR),
    Later("metrics", "mypaas.cli.monitor:metrics", rich_help_panel=MONITOR, no_args_is_help=True),
    Later("top", "mypaas.cli.top:top", rich_help_panel=MONITOR),
    Later("autoscale", "mypaas.cli.automation:autoscale", rich_help_panel=MONITOR, no_args_is_help=True),
    Later("alerts", "mypaas.cli.automation:alerts_app", group=True, rich_help_panel=MONITOR),
    Later("login", "mypaas.cli.login:login", rich_help_panel=USERS),
    Later("logout", "mypaas.cli.login:logout", rich_help_panel=USERS),
    Later("whoami", "mypaas.cli.login:whoami", rich_help_panel=USERS),
    Later("user", "mypaas.cli.users:user_app", group=True, rich_help_panel=USERS),
    Later("team", "mypaas.cli.users:team_app", group=True, rich_help_panel=USERS),
    Later("token", "mypaas.cli.tokens:token_app", group=True, rich_help_panel=USERS),
)


def run() -> None:
    """The console entry point."""
    try:
        only(app, sys.argv[1:])(prog_name="mypaas")
    except SystemExit as done:  # the way every run ends (_Root.main)
        leave(done.code)


if __name__ == "__main__":
    run()
