"""``mypaas driver`` (add, ls, rm, sizes, images): driver accounts, the clouds MyPaas makes machines
in; and ``mypaas host create``/``host destroy``, the hosts they make (registered on ``host``)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mypaas.cli.hosts import HostArg, LabelOpt, _labels, host_app
from mypaas.cli.output import _plain_log, fail, follow, print_json, say, table
from mypaas.cli.params import JsonOpt, NoWait, api
from mypaas.cli.registry import human

if TYPE_CHECKING:
    from mypaas.cli.client import ApiClient

driver_app = typer.Typer(
    help="""Driver accounts: where `mypaas host create` makes machines (vSphere, libvirt, OpenStack).

An account holds the driver's endpoint and credentials; the secret ones are stored encrypted and never
shown again.""",
    no_args_is_help=True,
)

AccountArg = Annotated[str, typer.Argument(metavar="NAME", help="The driver account.", show_default=False)]
CLOUDS_FILES = ("clouds.yaml", "~/.config/openstack/clouds.yaml", "/etc/openstack/clouds.yaml")


def _opt(help_: str, metavar: str = "TEXT") -> Any:
    return typer.Option(help=help_, metavar=metavar, show_default=False)


UrlOpt = Annotated[str | None, _opt("vSphere: the vCenter or ESXi URL (https://vc.example.com).", "URL")]
UserOpt = Annotated[str | None, _opt("vSphere: the user name.", "USER")]
PasswordFileOpt = Annotated[
    Path | None, _opt("A file holding the password (- reads standard input).", "FILE")
]
UriOpt = Annotated[str | None, _opt("libvirt: the connection URI (qemu:///system).", "URI")]
CloudOpt = Annotated[str | None, _opt("OpenStack: the clouds.yaml entry to use.", "NAME")]
CloudsFileOpt = Annotated[
    Path | None, _opt("OpenStack: the clouds.yaml (default: ./clouds.yaml, ~/.config/openstack/).", "FILE")
]
OptionOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--option", "-o", metavar="KEY=VALUE", help="Another driver option; repeatable.", show_default=False
    ),
]


@driver_app.command("add", no_args_is_help=True)
def add(  # noqa: PLR0913, PLR0917 - one parameter per command-line option
    name: AccountArg,
    type_: Annotated[
        str, typer.Option("--type", "-t", help="vsphere, libvirt or openstack.", show_default=False)
    ],
    url: UrlOpt = None,
    user: UserOpt = None,
    password_file: PasswordFileOpt = None,
    uri: UriOpt = None,
    cloud: CloudOpt = None,
    clouds_file: CloudsFileOpt = None,
    option: OptionOpt = None,
) -> None:
    """Add a driver account; its endpoint must answer and take the credentials (nothing is kept otherwise).

    Each driver has its own options (`--option KEY=VALUE`); an unknown one is refused with the list.

    Examples:

      mypaas driver add lab --type vsphere --url https://vc.lab \\
          --user admin --password-file pw -o datacenter=DC0
      mypaas driver add kvm1 --type libvirt --uri qemu:///system \\
          -o network=mypaas
      mypaas driver add os --type openstack --cloud mycloud \\
          --clouds-file clouds.yaml -o network=private
    """
    options = _given(url, user, password_file, uri, cloud, clouds_file, option)
    with api() as client:
        account = client.add_driver(name, type_, options)
    caps = ", ".join(account.get("capabilities") or []) or "none"
    where = account.get("endpoint") or "-"
    say(f"driver account {account['name']} ({account['type']}, {where}) added; it can: {caps}")


@driver_app.command("update", no_args_is_help=True)
def update(
    name: AccountArg,
    url: UrlOpt = None,
    user: UserOpt = None,
    password_file: PasswordFileOpt = None,
    uri: UriOpt = None,
    cloud: CloudOpt = None,
    clouds_file: CloudsFileOpt = None,
    option: OptionOpt = None,
) -> None:
    """Change some options of a driver account: rotate its password, move its defaults.

    The account is checked against its endpoint with the new options first; a wrong new password or an
    endpoint that does not answer changes nothing. `-o KEY=` (empty) removes an option. Hosts the account
    made keep running; the next `host create`/`host destroy` uses the new options.

    Examples:

      mypaas driver update lab --password-file new.pw
      mypaas driver update os1 --cloud mycloud --clouds-file clouds.yaml
      mypaas driver update kvm1 -o network=mypaas2
    """
    options = _given(url, user, password_file, uri, cloud, clouds_file, option)
    with api() as client:
        account = client.update_driver(name, options)
    say(f"driver account {account['name']} updated ({', '.join(sorted(options))})")


def _given(
    url: str | None,
    user: str | None,
    password_file: Path | None,
    uri: str | None,
    cloud: str | None,
    clouds_file: Path | None,
    option: list[str] | None,
) -> dict[str, Any]:
    """The driver options the command line gives."""
    options: dict[str, Any] = dict(_labels(option or [], "--option"))
    given = {"url": url, "user": user, "uri": uri}
    options |= {k: v for k, v in given.items() if v is not None}
    if password_file is not None:
        options["password"] = _read_secret(password_file)
    if cloud is not None:
        options["cloud"] = cloud
        options["cloud_config"] = _cloud_entry(cloud, clouds_file)
    return options


def _read_secret(path: Path) -> str:
    try:
        text = sys.stdin.read() if str(path) == "-" else path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        fail(f"cannot read the password file {path}: {reason}")
    return text.rstrip("\r\n")


def _cloud_entry(cloud: str, clouds_file: Path | None) -> dict[str, Any]:
    """The entry ``cloud`` of a clouds.yaml (OpenStack's own file of clouds and their credentials)."""
    import yaml

    candidates = (
        [clouds_file] if clouds_file is not None else [Path(os.path.expanduser(p)) for p in CLOUDS_FILES]
    )
    path = next((p for p in candidates if p.is_file()), None)
    if path is None:
        fail(f"no clouds.yaml found (looked in {', '.join(str(p) for p in candidates)}); give --clouds-file")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        fail(f"cannot read {path}: {str(exc).splitlines()[0]}")
    clouds = data.get("clouds") if isinstance(data, dict) else None
    entry = clouds.get(cloud) if isinstance(clouds, dict) else None
    if not isinstance(entry, dict):
        known = ", ".join(sorted(clouds)) if isinstance(clouds, dict) else "none"
        fail(f"{path} has no cloud {cloud!r} under clouds: (it has: {known})")
    return entry


@driver_app.command("ls")
def list_drivers(as_json: JsonOpt = False) -> None:
    """List the driver accounts: type, endpoint, what the driver can do, and how many hosts it made."""
    with api() as client:
        accounts = client.drivers()
    if as_json:
        print_json(accounts)
        return
    rows = [
        [
            a["name"],
            a["type"],
            a.get("endpoint") or "-",
            ",".join(a.get("capabilities") or []) or "-",
            a.get("hosts", 0),
        ]
        for a in accounts
    ]
    table(["NAME", "TYPE", "ENDPOINT", "CAPABILITIES", "HOSTS"], rows, empty="no driver accounts")


@driver_app.command("rm", no_args_is_help=True)
def remove(name: AccountArg) -> None:
    """Forget a driver account (refused while hosts it made exist: `mypaas host destroy` them first)."""
    with api() as client:
        client.remove_driver(name)
    say(f"driver account {name} removed")


@driver_app.command(no_args_is_help=True)
def sizes(name: AccountArg, as_json: JsonOpt = False) -> None:
    """The machine sizes an account offers (`host create --size`)."""
    with api() as client:
        offered = client.driver_sizes(name)
    if as_json:
        print_json(offered)
        return
    rows = [
        [
            s["name"],
            s["cpus"],
            human(s["memory_mb"] * 2**20),
            f"{s['disk_gb']} GB" if s.get("disk_gb") else "-",
        ]
        for s in offered
    ]
    table(["NAME", "CPUS", "MEMORY", "DISK"], rows, empty="no sizes")


@driver_app.command(no_args_is_help=True)
def images(name: AccountArg, as_json: JsonOpt = False) -> None:
    """The images (templates, base disks) an account offers (`host create --image`)."""
    with api() as client:
        offered = client.driver_images(name)
    if as_json:
        print_json(offered)
        return
    table(
        ["NAME", "DESCRIPTION"],
        [[i["name"], i.get("description") or "-"] for i in offered],
        empty="no images",
    )


# -- host create / host destroy ---------------------------------------------------------------------


@host_app.command("create", no_args_is_help=True)
def create(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The new host's name.", show_default=False)],
    driver: Annotated[
        str,
        typer.Option(
            "--driver", "-d", metavar="ACCOUNT", help="The driver account (`driver ls`).", show_default=False
        ),
    ],
    size: Annotated[
        str | None, _opt("A size of `mypaas driver sizes ACCOUNT` (default: the account's).", "SIZE")
    ] = None,
    image: Annotated[str | None, _opt("An image of `mypaas driver images ACCOUNT`.", "IMAGE")] = None,
    label: LabelOpt = None,
    count: Annotated[int, typer.Option("--count", "-n", min=1, max=50, help="Make NAME-1..NAME-N.")] = 1,
    no_wait: NoWait = False,
) -> None:
    """Make a machine with a driver account, then add it: Docker, the registry's trust, the Swarm.

    A creation that fails deletes the machine again and says at which step it failed.

    Examples:

      mypaas host create w1 --driver lab --size medium --label zone=a
      mypaas host create web --driver kvm1 --count 3
    """
    body: dict[str, Any] = {
        "name": name,
        "driver": driver,
        "labels": _labels(label or [], "--label"),
        "count": count,
    }
    body |= {k: v for k, v in (("size", size), ("image", image)) if v is not None}
    with api() as client:
        ops = client.create_hosts(body)
        if no_wait:
            for op in ops:
                say(f"creating a host (operation {op.get('id')})")
            return
        _follow_all(client, ops, name)


def _follow_all(client: ApiClient, ops: list[dict[str, Any]], name: str) -> None:
    if len(ops) == 1:
        say(follow(client, ops[0], f"creating {name}").get("message") or f"host {name} created")
        return
    failed = []
    for op in ops:
        done = client.wait_operation(op["id"], _plain_log)
        if done.get("status") == "succeeded":
            say(done.get("message") or "a host created")
        else:
            failed.append(done.get("message") or f"operation {op.get('id')} failed")
    for message in failed:
        print(f"error: {message}", file=sys.stderr)
    if failed:
        raise typer.Exit(1)


@host_app.command("destroy", no_args_is_help=True)
def destroy(
    host: HostArg,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Also when the host does not answer (its node is removed without it leaving)."
        ),
    ] = False,
    no_wait: NoWait = False,
) -> None:
    """Drain a host `host create` made, take it out of the Swarm, then delete its machine and disks.

    Hosts added with `host add` are removed with `host rm` instead (their machines stay).

    Example:

      mypaas host destroy w1
    """
    with api() as client:
        op = client.destroy_host(host, force=force)
        if no_wait:
            say(f"destroying {host} (operation {op.get('id')})")
            return
        done = follow(client, op, f"destroying {host}")
    say(done.get("message") or f"host {host} destroyed")
