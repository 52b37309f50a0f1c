"""The credentials `mypaas login` keeps: the API's URL, a login token and the user name, in the user's
config folder (``$XDG_CONFIG_HOME/mypaas/credentials.json``, else ``~/.config/mypaas/``), the file 0600
and its folder 0700. Read with the standard library only: every command may look here."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from mypaas.errors import InvalidSpec

FILE_NAME = "credentials.json"


@dataclass(frozen=True)
class Credentials:
    url: str
    token: str
    user: str
    ca: str = ""  # the platform CA (PEM) pinned at login for an https:// URL; "": the system's CAs


def folder() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME", "").strip()
    return (Path(base) if base else Path.home() / ".config") / "mypaas"


def path() -> Path:
    return folder() / FILE_NAME


def stored() -> Credentials | None:
    """The login's credentials; None when there are none; InvalidSpec when the file is unreadable."""
    where = path()
    try:
        data = json.loads(where.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise InvalidSpec(
            f"cannot read {where}: {exc} (mypaas login again, or remove it)", field="credentials"
        ) from exc
    fields = [data.get(key) if isinstance(data, dict) else None for key in ("url", "token", "user")]
    if not all(isinstance(value, str) and value for value in fields[:2]):
        raise InvalidSpec(f"{where} holds no url and token (mypaas login again)", field="credentials")
    ca = data.get("ca") if isinstance(data.get("ca"), str) else ""
    return Credentials(str(fields[0]), str(fields[1]), str(fields[2] or ""), str(ca))


def save(found: Credentials) -> Path:
    """Write the credentials (0600, in a 0700 folder, replaced at once); answer where."""
    where = path()
    where.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    where.parent.chmod(0o700)
    fields = {"url": found.url, "token": found.token, "user": found.user}
    text = json.dumps({**fields, "ca": found.ca} if found.ca else fields, indent=2) + "\n"
    import tempfile  # only when storing: every command reads them

    fd, temp = tempfile.mkstemp(dir=where.parent, prefix=".credentials-")  # made 0600
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(temp, where)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return where


def remove() -> bool:
    """Remove the credentials file; False when there was none."""
    try:
        path().unlink()
    except FileNotFoundError:
        return False
    return True


def logged_in_with(token: str | None) -> bool:
    """Whether ``token`` is the one `mypaas login` stored (to say "log in again" when it stops working)."""
    try:
        found = stored()
    except InvalidSpec:
        return False
    return found is not None and bool(token) and found.token == token
