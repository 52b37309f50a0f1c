"""``mypaas host`` (add, ls, drain, activate, label, rm) and ``mypaas cluster`` (init, status): the
machines MyPaas runs apps on once it outgrows one, as a Docker Swarm."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mypaas.cli.output import fail, follow, print_json, say, table
from mypaas.cli.params import JsonOpt, NoWait, api
from mypaas.cli.registry import human
from mypaas.states import HostState, SwarmState

if TYPE_CHECKING:
    from mypaas.cli.client import ApiClient

# states in which `host ls` says why the host is so
_SAY_WHY = (HostState.FAILED, HostState.MISSING, HostState.DOWN, HostState.DRAINED, HostState.PRESSURE)

host_app = typer.Typer(
    help="""The hosts apps run on: machines added over SSH join this machine's Docker Swarm.

The first host added turns the cluster on (see `mypaas cluster`): apps then run as Swarm services.

They spread over the hosts, and move when a host is drained or fails.""",
    no_args_is_help=True,
)
cluster_app = typer.Typer(
    help="The Swarm cluster: this machine's engine is its manager; `mypaas host` adds the others.",
    no_args_is_help=True,
)

HostArg = Annotated[
    str, typer.Argument(metavar="HOST", help="The host's name or address.", show_default=False)
]
_LABEL = re.compile(r"^([^=\s]+)=(.*)\Z")
_REMOVE = re.compile(r"^([^=\s]+)-\Z")


def _labels(values: list[str], param: str) -> dict[str, str]:
    out = {}
    for value in values:
        match = _LABEL.match(value)
        if match is None:
            raise typer.BadParameter(f"{value!r} is not KEY=VALUE (like zone=eu-1)", param_hint=param)
        out[match[1]] = match[2]
    return out


# -- host -----------------------------------------------------------------------------------------


HostUrl = Annotated[
    str,
    typer.Argument(
        metavar="ssh://USER@ADDRESS[:PORT]", help="How to log in to the machine.", show_default=False
    ),
]
KeyOpt = Annotated[
    Path | None,
    typer.Option(
        "--key",
        "-i",
        metavar="FILE",
        help="The private key to log in with (sent to the manager, which keeps it, mode 0600).",
        show_default=False,
    ),
]
LabelOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--label",
        "-l",
        metavar="KEY=VALUE",
        help="A node label, for placement; repeatable.",
        show_default=False,
    ),
]
ManagerOpt = Annotated[
    bool, typer.Option("--manager", help="Join as a Swarm manager (keep an odd number of them).")
]
HostKeyOpt = Annotated[
    str | None,
    typer.Option(
        "--host-key",
        "--fingerprint",
        metavar="SHA256:...",
        help="The host's SSH key fingerprint, when you know it (ssh-keygen -lf on the host).",
        show_default=False,
    ),
]
YesOpt = Annotated[
    bool,
    typer.Option(
        "--yes",
        "-y",
        help="Do not ask (scripts): a host key seen for the first time is then refused unless --host-key "
        "pins it.",
    ),
]


@host_app.command("add", no_args_is_help=True)
def add(
    url: HostUrl,
    key: KeyOpt = None,
    label: LabelOpt = None,
    manager: ManagerOpt = False,
    host_key: HostKeyOpt = None,
    yes: YesOpt = False,
    no_wait: NoWait = False,
) -> None:
    """Add a machine: Docker is installed and configured on it, then it joins the Swarm.

    The machine must run Debian or Ubuntu and let USER (root, or one with sudo) log in with the key.

    A host seen for the first time shows its SSH key's fingerprint and asks before trusting it; with
    --yes (no one to ask) its key must be pinned with --host-key.

    The first host added makes this machine's engine the Swarm manager; apps then run as Swarm services.

    A failed add leaves nothing behind (the host leaves the Swarm again).

    Examples:

      mypaas host add ssh://root@10.0.0.12 --key ~/.ssh/id_ed25519 --label zone=a
      mypaas host add ssh://admin@node3.example.com:2222 -i key.pem \\
          --host-key SHA256:abc... --yes
    """
    body: dict[str, Any] = {"url": url, "labels": _labels(label or [], "--label"), "manager": manager}
    if host_key:
        body["host_key"] = host_key
    if key is not None:
        try:
            body["key"] = key.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            fail(f"cannot read the key {key}: {reason}")
    with api() as client:
        op = _start_add(client, body, yes)
        if no_wait:
            say(f"adding {url} (operation {op.get('id')})")
            return
        done = follow(client, op, f"adding {url}")
    say(done.get("message") or f"{url} added")


def _start_add(client: ApiClient, body: dict[str, Any], yes: bool) -> dict[str, Any]:
    """Ask the manager to add the host; on first contact, confirm the host key and ask again."""
    from mypaas.cli.host_calls import HostKeyToConfirm

    try:
        return client.add_host(body)
    except HostKeyToConfirm as exc:
        fingerprint = exc.fingerprint
    if yes:  # no one to check the key: only a fingerprint given beforehand is trusted
        fail(
            f"{body['url']}: the host key {fingerprint} was never seen and --yes does not trust it: "
            f"check it on the host (ssh-keygen -lf), then pass --host-key {fingerprint}"
        )
    print(f"{body['url']}: the host's SSH key fingerprint is {fingerprint}", file=sys.stderr)
    if not sys.stdin.isatty():
        fail(f"the host key is new: check it, then pass --host-key {fingerprint}")
    if not typer.confirm("Trust this host key?", default=False):
        fail("host not added")
    return client.add_host({**body, "host_key": fingerprint})


@host_app.command("ls")
def list_hosts(as_json: JsonOpt = False) -> None:
    """List the hosts: role, state, availability, labels, resources and running instances.

    STATE is Swarm's live view: ready, down (unreachable), draining, drained; or adding, removing.
    DRIVER is the driver account that made the host (`host create`), or ssh (`host add`), or local.
    """
    with api() as client:
        hosts = client.hosts()
    if as_json:
        print_json(hosts)
        return
    rows = []
    for h in hosts:
        role = f"{h.get('role')} (leader)" if h.get("leader") else h.get("role")
        labels = ",".join(f"{k}={v}" for k, v in sorted((h.get("labels") or {}).items()))
        cpus = h.get("cpus")
        memory = h.get("memory_bytes")
        rows.append(
            [
                h["name"],
                h.get("address") or "",
                h.get("account") or h.get("driver") or "-",
                role,
                h.get("state"),
                h.get("availability") or "-",
                labels or "-",
                f"{cpus:g}" if cpus else "-",
                human(memory) if memory else "-",
                h.get("instances", 0),
            ]
        )
    table(
        [
            "NAME",
            "ADDRESS",
            "DRIVER",
            "ROLE",
            "STATE",
            "AVAILABILITY",
            "LABELS",
            "CPUS",
            "MEMORY",
            "INSTANCES",
        ],
        rows,
        empty="no hosts",
    )
    for h in hosts:
        if h.get("message") and h.get("state") in _SAY_WHY:
            say(f"{h['name']}: {h['message']}")


@host_app.command(no_args_is_help=True)
def drain(host: HostArg) -> None:
    """Move the host's instances to the other hosts; none are placed there until `host activate`."""
    with api() as client:
        info = client.host_action(host, "drain")
    say(f"{info['name']}: {info.get('state')}; no instances are placed there until `mypaas host activate`")


@host_app.command(no_args_is_help=True)
def activate(host: HostArg) -> None:
    """Let instances be placed on a drained host again (those already moved stay where they are)."""
    with api() as client:
        info = client.host_action(host, "activate")
    say(f"{info['name']}: {info.get('state')}")


def _label_changes(values: list[str]) -> list[str]:
    for value in values:
        if not (_LABEL.match(value) or _REMOVE.match(value)):
            raise typer.BadParameter(f"{value!r} is neither KEY=VALUE (to set) nor KEY- (to remove)")
    return values


@host_app.command(no_args_is_help=True)
def label(
    host: HostArg,
    changes: Annotated[
        list[str],
        typer.Argument(
            metavar="KEY=VALUE... KEY-...",
            help="Labels to set, and (with a trailing '-') to remove.",
            callback=_label_changes,
            show_default=False,
        ),
    ],
) -> None:
    """Set or remove a host's labels, which placement constraints match.

    Examples:

      mypaas host label node3 zone=b disk=ssd
      mypaas host label node3 disk-
    """
    set_ = {m[1]: m[2] for m in map(_LABEL.match, changes) if m is not None}
    remove = [m[1] for m in map(_REMOVE.match, changes) if m is not None]
    with api() as client:
        info = client.label_host(host, set_, remove)
    labels = ", ".join(f"{k}={v}" for k, v in sorted((info.get("labels") or {}).items()))
    say(f"{info['name']}: labels {labels}" if labels else f"{info['name']}: no labels")


@host_app.command("rm", no_args_is_help=True)
def remove(
    host: HostArg,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Remove an unreachable host too, and don't wait past the drain timeout."
        ),
    ] = False,
    no_wait: NoWait = False,
) -> None:
    """Remove a host: drain it, wait for its instances to move, make it leave the Swarm.

    Docker stays installed on it. An unreachable host can only go with --force.
    """
    with api() as client:
        op = client.remove_host(host, force=force)
        if no_wait:
            say(f"removing {host} (operation {op.get('id')})")
            return
        done = follow(client, op, f"removing {host}")
    say(done.get("message") or f"host {host} removed")


# -- cluster --------------------------------------------------------------------------------------


@cluster_app.command("init")
def init(
    advertise_addr: Annotated[
        str | None,
        typer.Option(
            "--advertise-addr",
            metavar="ADDR",
            help="The IP address (or interface) the other hosts reach this machine at.",
            show_default=False,
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Make this machine's Docker engine a Swarm manager: apps then run as Swarm services.

    `mypaas host add` does this too, with the address its SSH connection leaves from.

    Running it again is harmless.
    """
    with api() as client:
        info = client.init_cluster(advertise_addr)
    _show_cluster(info, as_json)


@cluster_app.command("migrate")
def migrate(no_wait: NoWait = False) -> None:
    """Move the apps deployed before the platform became a cluster onto Swarm.

    Each app's current release rolls out as Swarm services (start-first); its containers go once
    the services are ready. Releases, config and domains stay. A later deploy moves an app too.
    """
    with api() as client:
        ops = client.migrate_cluster()
        if not ops:
            say("nothing to move: every app already runs on Swarm")
            return
        for op in ops:
            if no_wait:
                say(f"moving {op.get('app')} (operation {op.get('id')})")
                continue
            done = follow(client, op, f"moving {op.get('app')}")
            say(done.get("message") or f"{op.get('app')} moved")


@cluster_app.command("status")
def status(as_json: JsonOpt = False) -> None:
    """The backend mode, the Swarm's state, the manager's address and how many nodes are ready."""
    with api() as client:
        info = client.cluster()
    _show_cluster(info, as_json)


def _show_cluster(info: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(info)
        return
    say(f"backend:   {info.get('mode')}")
    swarm = info.get("swarm")
    if info.get("manager_addr"):
        swarm = f"{swarm}, manager at {info['manager_addr']}"
    say(f"swarm:     {swarm}")
    if info.get("swarm") == SwarmState.ACTIVE:
        say(f"nodes:     {info.get('nodes')} ({info.get('managers')} manager), {info.get('ready')} ready")
    if info.get("error"):
        say(f"error:     {info['error']}")
