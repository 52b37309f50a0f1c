"""`mypaas user key add|ls|rm`: the SSH public keys a user pushes with (`git push` to the platform's git
endpoint signs in with one of them)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from mypaas.cli.output import ago, fail, print_json, say, table
from mypaas.cli.params import JsonOpt, api

key_app = typer.Typer(
    no_args_is_help=True,
    help="""Add, list and remove a user's SSH keys (for `git push` deploys).

A key is the public half (id_ed25519.pub): ed25519, ECDSA, or RSA of 2048 bits or more. A key
belongs to one user only. You manage your own keys; a platform admin manages anyone's.

Examples:

  mypaas user key add alice ~/.ssh/id_ed25519.pub
  mypaas user key ls alice
  mypaas user key rm alice SHA256:2hQ0...""",
)

KeyUser = Annotated[str, typer.Argument(metavar="USER", help="Whose keys.", show_default=False)]
MAX_FILE = 65536


def _read_key(path: str) -> str:
    """The key file's text ("-": stdin); one clear line when it cannot be read or is no text."""
    if path == "-":
        return sys.stdin.read(MAX_FILE)
    try:
        data = Path(path).read_bytes()[:MAX_FILE]
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror or exc}")
    try:
        return data.decode()
    except UnicodeDecodeError:
        fail(f"{path} is not a public key file (not text): give the .pub file, e.g. ~/.ssh/id_ed25519.pub")


@key_app.command("add", no_args_is_help=True)
def key_add(
    user: KeyUser,
    keyfile: Annotated[
        str, typer.Argument(metavar="KEYFILE", help="The public key file (.pub), or - for stdin.")
    ],
    name: Annotated[
        str, typer.Option("--name", help="A name for the key (default: its comment).", show_default=False)
    ] = "",
) -> None:
    """Register an SSH public key so USER can `git push` to the platform.

    Examples:

      mypaas user key add alice ~/.ssh/id_ed25519.pub
      mypaas user key add ci-bot deploy_key.pub --name ci
      cat id_ecdsa.pub | mypaas user key add bob -

    Give the public half (.pub): a private key or a file that is no key is refused.
    """
    text = _read_key(keyfile)
    with api() as client:
        key = client.add_ssh_key(user, text, name)
    say(f"added key {key['fingerprint']} ({key['type']}, {key['name']}) for {user}")
    say("push with: mypaas git remote APP --add && git push mypaas main")


@key_app.command("ls", no_args_is_help=True)
def key_ls(user: KeyUser, as_json: JsonOpt = False) -> None:
    """List a user's SSH keys: name, type, fingerprint."""
    with api() as client:
        keys = client.ssh_keys(user)
    if as_json:
        print_json(keys)
        return
    rows = [[k["name"], k["type"], k["fingerprint"], ago(k.get("created"))] for k in keys]
    table(["NAME", "TYPE", "FINGERPRINT", "ADDED"], rows, empty=f"no keys for {user}")


@key_app.command("rm", no_args_is_help=True)
def key_rm(
    user: KeyUser,
    fingerprint: Annotated[
        str, typer.Argument(metavar="FINGERPRINT", help="SHA256:... as `user key ls` shows it.")
    ],
) -> None:
    """Remove one of a user's SSH keys: it no longer signs in."""
    with api() as client:
        key = client.remove_ssh_key(user, fingerprint)
    say(f"removed key {key['fingerprint']} of {user}")
