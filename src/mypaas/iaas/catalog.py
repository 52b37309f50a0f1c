"""The catalog of iaas drivers: names to classes, imported only when used (an SDK loads with its
driver), plus third-party drivers from the ``mypaas.iaas`` entry-point group; and host URLs."""

from __future__ import annotations

import importlib
import ipaddress
import os
import re
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

from mypaas.errors import BackendError, InvalidSpec
from mypaas.iaas.base import HostDriver, HostTarget, MachineDriver

DRIVERS: dict[str, str] = {
    "local": "mypaas.iaas.local:LocalDriver",
    "openstack": "mypaas.iaas.openstack:OpenStackDriver",
    "ssh": "mypaas.iaas.ssh:SSHDriver",
    "libvirt": "mypaas.iaas.libvirt:LibvirtDriver",
    "vsphere": "mypaas.iaas.vsphere:VSphereDriver",
}
ENTRY_POINT_GROUP = "mypaas.iaas"
FIXED_MACHINE_DRIVERS = ("local", "ssh")  # drivers over machines that exist: no driver accounts
FAKE_DRIVERS_ENV = "MYPAAS_FAKE_DRIVERS"  # "1": the catalog offers the in-memory "fake" driver (tests)
FAKE_DRIVERS = {"fake": "mypaas.iaas.fake_machines:FakeMachineDriver"}

_USER = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,31}")
_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DNS_NAME = re.compile(rf"(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*\.?")
_FINGERPRINT = re.compile(r"SHA256:[A-Za-z0-9+/]{43}")
URL_FORMS = "ssh://USER@ADDRESS[:PORT] or local"


Plugins = Mapping[str, metadata.EntryPoint]  # third-party drivers by name


def installed_plugins() -> Plugins:
    """The drivers other packages declare (entry points of group ``mypaas.iaas``)."""
    return {ep.name: ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}


def _builtin() -> dict[str, str]:
    """The built-in drivers; the fake one only when the environment asks for it (tests)."""
    if os.environ.get(FAKE_DRIVERS_ENV) == "1":
        return {**DRIVERS, **FAKE_DRIVERS}
    return DRIVERS


def known_drivers(plugins: Plugins | None = None) -> list[str]:
    return sorted({*_builtin(), *(installed_plugins() if plugins is None else plugins)})


def driver(name: str, *, plugins: Plugins | None = None, **options: Any) -> HostDriver:
    """The driver called ``name``, built with ``options``; a driver that fails to import fails loudly.
    ``plugins``: the third-party drivers to look in (default: the installed ones)."""
    return cast(HostDriver, driver_class(name, plugins=plugins)(**options))


def machine_driver(
    name: str, *, account: str, options: Mapping[str, Any], plugins: Plugins | None = None
) -> MachineDriver:
    """The machine driver ``name`` for the driver account ``account``: ``cls(account=..., **options)``,
    secrets decrypted. A driver class declares ``OPTIONS`` (option name -> help) and
    ``SECRET_OPTIONS`` (the names stored encrypted, dotted for nested keys: "cloud_config.auth.password");
    the account name is how it tags the machines it makes (``machines()`` lists those)."""
    cls = machine_driver_class(name, plugins=plugins)
    return cast(MachineDriver, cls(account=account, **options))


def machine_driver_class(name: str, *, plugins: Plugins | None = None) -> type[Any]:
    """The class of machine driver ``name``; InvalidSpec (field "type") when the driver cannot create
    machines or does not declare its options."""
    cls = driver_class(name, plugins=plugins)
    if not isinstance(getattr(cls, "OPTIONS", None), Mapping):
        machine = [n for n in known_drivers(plugins) if n not in FIXED_MACHINE_DRIVERS]
        raise InvalidSpec(
            f"iaas driver {name!r} cannot create machines; machine drivers: {', '.join(machine) or 'none'}",
            field="type",
        )
    return cls


def option_help(name: str, *, plugins: Plugins | None = None) -> tuple[Mapping[str, str], tuple[str, ...]]:
    """A machine driver's options (name -> help) and which of them are secret."""
    cls = machine_driver_class(name, plugins=plugins)
    return cls.OPTIONS, tuple(getattr(cls, "SECRET_OPTIONS", ()))


def driver_class(name: str, *, plugins: Plugins | None = None) -> type[Any]:
    """The class of the driver called ``name``, imported now; a driver that fails to import fails loudly."""
    plugins = installed_plugins() if plugins is None else plugins
    spec = _builtin().get(name)
    try:
        if spec is not None:
            module_name, _, attr = spec.partition(":")
            cls = getattr(importlib.import_module(module_name), attr)
        else:
            entry = plugins.get(name)
            if entry is None:
                raise InvalidSpec(
                    f"unknown iaas driver {name!r}; known drivers: {', '.join(known_drivers(plugins))}",
                    field="driver",
                )
            spec = entry.value
            cls = entry.load()
    except InvalidSpec:
        raise
    except Exception as exc:  # an import of a driver and its SDK can fail in any way: say which one
        raise BackendError(
            f"iaas driver {name!r} ({spec}) failed to load: {type(exc).__name__}: {exc}"
        ) from exc
    return cast(type[Any], cls)


def parse_host_url(url: str, *, key_path: Path | None = None, host_key: str | None = None) -> HostTarget:
    """``ssh://USER@ADDRESS[:PORT]`` (user root, port 22 by default; IPv6 in brackets) or ``local``."""
    text = url.strip()
    if host_key is not None and not _FINGERPRINT.fullmatch(host_key):
        raise InvalidSpec(
            f"host key {host_key!r} is not a fingerprint like SHA256:<43 base64 characters>"
            " (as ssh-keygen -lf prints it)",
            field="host_key",
        )
    if text == "local":
        return HostTarget(driver="local", address="127.0.0.1", key_path=key_path, host_key=host_key)
    try:
        parts = urlsplit(text)
        hostname = parts.hostname or ""
    except ValueError as exc:  # an unclosed "[" around an IPv6 address
        raise InvalidSpec(f"host URL {url!r} is not {URL_FORMS}: {exc}", field="url") from exc
    if parts.scheme != "ssh" or not text.startswith("ssh://"):
        raise InvalidSpec(f"host URL {url!r} is not {URL_FORMS}", field="url")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise InvalidSpec(
            f"host URL {url!r} has a path, query or fragment; expected {URL_FORMS}", field="url"
        )
    if parts.password is not None:
        raise InvalidSpec(f"host URL {url!r} holds a password; MyPaas logs in with a key only", field="url")
    if parts.netloc.rpartition("@")[2].count(":") > 1 and "[" not in parts.netloc:
        raise InvalidSpec(
            f"host URL {url!r}: put an IPv6 address in brackets, ssh://[ADDRESS]:PORT", field="url"
        )
    try:
        port = 22 if parts.port is None else parts.port
    except ValueError:
        port = 0
    if not 0 < port < 65536 or parts.netloc.endswith(":"):
        raise InvalidSpec(f"host URL {url!r} has a bad port (1-65535)", field="url")
    user = parts.username if parts.username is not None else "root"
    if not _USER.fullmatch(user):
        raise InvalidSpec(f"host URL {url!r} has a bad user name {user!r}", field="url")
    address = _address(hostname, bracketed="[" in parts.netloc)
    if address is None:
        raise InvalidSpec(f"host URL {url!r} has no valid address; expected {URL_FORMS}", field="url")
    return HostTarget(
        driver="ssh", address=address, port=port, user=user, key_path=key_path, host_key=host_key
    )


def _address(host: str, *, bracketed: bool) -> str | None:
    """An IP address or DNS name, as written (IPv6 without its brackets); None if it is neither."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        name = host.rstrip(".")
        if bracketed or not _DNS_NAME.fullmatch(host) or name.replace(".", "").isdigit():
            return None  # "10.0.0.256" is a bad IP address, not a DNS name
        return name
    if ip.version == 6 and not bracketed:
        return None
    return str(ip)
