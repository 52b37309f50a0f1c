"""What an SSH client may ask the git endpoint to run: ``git-receive-pack '<APP>.git'`` (also
``git receive-pack``, ``/APP.git`` and ``APP`` forms), nothing else. Pure parsing, one clear line for
everything refused."""

from __future__ import annotations

import shlex

from mypaas.domain import check_name
from mypaas.errors import InvalidSpec

RECEIVE = ("git-receive-pack", "git receive-pack")
USAGE = "this endpoint only receives pushes: git push ssh://git@HOST:PORT/APP.git BRANCH"


def app_of_command(command: str | None) -> str:
    """The app a ``git-receive-pack`` command pushes to; InvalidSpec (its message is what the pusher
    sees) for a shell, another command, a fetch, or an invalid app name."""
    if command is None or not command.strip():
        raise InvalidSpec(f"no shell here: {USAGE}", field="command")
    try:
        words = shlex.split(command)
    except ValueError:
        raise InvalidSpec(f"cannot parse the command: {USAGE}", field="command") from None
    if words[:1] == ["git"] and len(words) > 1:
        words = [f"git-{words[1]}", *words[2:]]
    verb = words[0] if words else ""
    if verb in ("git-upload-pack", "git-upload-archive"):
        raise InvalidSpec(f"fetching and cloning are not served here: {USAGE}", field="command")
    if verb != "git-receive-pack":
        raise InvalidSpec(f"command {verb!r} is not run here: {USAGE}", field="command")
    if len(words) != 2:
        raise InvalidSpec(f"expected one repository: {USAGE}", field="command")
    return app_of_path(words[1])


def app_of_path(path: str) -> str:
    """``APP.git``, ``/APP.git``, ``APP`` or ``~/APP.git`` -> APP, a valid app name or InvalidSpec."""
    name = path.strip().removeprefix("~").strip("/")
    name = name.removesuffix(".git")
    if "/" in name:
        raise InvalidSpec(f"invalid repository {path!r}: expected APP.git", field="app")
    check_name(name, "app")
    return name
