"""What a client needs to reach this machine's API (its URL and the admin token's path), read
without pydantic so the CLI starts fast. The same defaults back the full Settings model."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_API_HOST = "127.0.0.1"
DEFAULT_API_PORT = 8470
SETTINGS_FILE = "settings.yml"
TOKEN_FILE = "admin-token"  # noqa: S105 - a file name, not a secret


def default_home() -> Path:
    """$MYPAAS_HOME; else /var/lib/mypaas for root, else the user's data folder."""
    if os.environ.get("MYPAAS_HOME"):
        return Path(os.environ["MYPAAS_HOME"])
    if os.geteuid() == 0:
        return Path("/var/lib/mypaas")
    xdg = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(xdg) / "mypaas"


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address) is this machine's loopback only."""
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def read_settings_file(home: Path) -> dict[str, Any]:
    """The settings file's mapping ({} when there is none); ValueError when it is not a mapping."""
    path = home / SETTINGS_FILE
    if not path.exists():
        return {}
    import yaml

    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of settings")
    return data


@dataclass(frozen=True)
class ClientConf:
    api_url: str
    token_path: Path
    ca_path: Path  # the platform CA: the API at api_url serves TLS when it is not on loopback


def client_conf() -> ClientConf:
    """Environment first, then the settings file, then the defaults (as Settings resolves them)."""
    home = default_home()
    found = read_settings_file(home)
    host = os.environ.get("MYPAAS_API_HOST") or found.get("api_host") or DEFAULT_API_HOST
    port = os.environ.get("MYPAAS_API_PORT") or found.get("api_port") or DEFAULT_API_PORT
    scheme = "http" if is_loopback(str(host)) else "https"
    host = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # noqa: S104 - this machine's listener
    return ClientConf(
        api_url=f"{scheme}://{host}:{int(port)}",
        token_path=home / TOKEN_FILE,
        ca_path=home / "tls" / "ca.crt",
    )
