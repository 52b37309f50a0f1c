"""Driver accounts (`mypaas driver add`): a machine driver's type (vsphere, libvirt, openstack, or a
third-party one) and its options, checked against the endpoint before they are kept. The options a
driver class declares secret (``SECRET_OPTIONS``, dotted for nested keys) are stored apart, encrypted
with the platform's key, and never shown again (``********``). ``host create`` builds its driver
from an account here.
"""

from __future__ import annotations

import builtins
import copy
import json
import re
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from mypaas.errors import Conflict, InvalidSpec, MyPaasError, NotFound
from mypaas.iaas.base import MachineDriver, MachineImage, MachineSize
from mypaas.manager.state.models import DriverAccountRow, HostRow

MASK = "********"
ACCOUNT_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?\Z")
MAX_OPTIONS_BYTES = 64 * 1024
ENDPOINT_OPTIONS = ("url", "uri", "auth_url", "cloud_config.auth.auth_url", "cloud")  # what `driver ls` shows
MAPPING_OPTIONS = ("cloud_config", "extra_config")  # a clouds.yaml entry; vsphere's extraConfig pairs


class MachineCatalog:
    """Which machine drivers exist, their options, and how one is built for an account (the iaas
    catalog; unit tests hand over their own)."""

    def options(self, type_: str) -> tuple[Mapping[str, str], tuple[str, ...]]:
        """The driver's options (name -> help) and which are secret."""
        from mypaas.iaas import catalog

        try:
            return catalog.option_help(type_)
        except InvalidSpec as exc:
            raise InvalidSpec(exc.message, field="type") from exc

    def build(self, type_: str, account: str, options: Mapping[str, Any]) -> MachineDriver:
        from mypaas.iaas import catalog

        return catalog.machine_driver(type_, account=account, options=options)


class DriverAccounts:
    """Adds, lists and removes driver accounts; builds the driver of one."""

    def __init__(self, *, sessions: sessionmaker[Session], catalog: MachineCatalog | None = None) -> None:
        self._sessions = sessions
        self._catalog = catalog or MachineCatalog()

    def add(self, name: str, type_: str, options: Mapping[str, Any]) -> dict[str, Any]:
        """Check the options, build the driver, reach its endpoint (``check()``), then keep the account."""
        if not ACCOUNT_NAME.match(name):
            raise InvalidSpec(
                f"invalid driver account name {name!r}: lower-case letters, digits and '-', at most 64",
                field="name",
            )
        with self._sessions() as s:
            self._refuse_taken(s, name)
        known, secret = self._catalog.options(type_)
        _check_options(type_, options, known)
        driver = self._build(type_, name, options)
        driver.check()
        plain, hidden = split_secrets(options, secret)
        with self._sessions.begin() as s:
            self._refuse_taken(s, name)
            s.add(DriverAccountRow(name=name, type=type_, options=plain, secrets=hidden))
        return self.get(name)

    def update(self, name: str, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Change some options of an account (rotate a password, move a default): ``changes`` go over the
        kept options, an empty value removes one; the driver is built and ``check()``ed with the result
        before anything is kept, so a wrong new password leaves the account as it was."""
        if not changes:
            raise InvalidSpec("nothing to change: give the options to set", field="options")
        with self._sessions() as s:
            row = self._row(s, name)
            type_, options = row.type, self._options(row)
        for key, value in changes.items():
            if value in ("", None):
                options.pop(key, None)
            else:
                options[key] = value
        known, secret = self._catalog.options(type_)
        _check_options(type_, changes, known)
        self._build(type_, name, options).check()
        plain, hidden = split_secrets(options, secret)
        with self._sessions.begin() as s:
            row = self._row(s, name)
            row.options, row.secrets = plain, hidden
        return self.get(name)

    def _refuse_taken(self, s: Session, name: str) -> None:
        if s.scalar(select(DriverAccountRow.id).where(DriverAccountRow.name == name)) is not None:
            raise Conflict(
                f"driver account {name} exists already (`mypaas driver rm {name}` first)", field="name"
            )

    def _build(self, type_: str, name: str, options: Mapping[str, Any]) -> MachineDriver:
        try:
            return self._catalog.build(type_, name, options)
        except TypeError as exc:  # a required option missing, as the driver's constructor says
            raise InvalidSpec(f"the {type_} driver: {exc}", field="options") from exc

    def names(self) -> builtins.list[str]:
        with self._sessions() as s:
            return list(s.scalars(select(DriverAccountRow.name).order_by(DriverAccountRow.name)))

    def list(self) -> builtins.list[dict[str, Any]]:
        with self._sessions() as s:
            rows = s.scalars(select(DriverAccountRow).order_by(DriverAccountRow.name)).all()
            counts = dict(
                s.execute(
                    select(HostRow.account, func.count())
                    .where(HostRow.account.is_not(None))
                    .group_by(HostRow.account)
                ).all()
            )
            return [self._entry(row, counts.get(row.name, 0)) for row in rows]

    def get(self, name: str) -> dict[str, Any]:
        with self._sessions() as s:
            row = self._row(s, name)
            hosts = s.scalar(select(func.count()).where(HostRow.account == name)) or 0
            return self._entry(row, hosts)

    def _entry(self, row: DriverAccountRow, hosts: int) -> dict[str, Any]:
        masked = join_secrets(row.options, dict.fromkeys(row.secrets, MASK))
        return {
            "name": row.name,
            "type": row.type,
            "endpoint": endpoint(masked),
            "options": masked,
            "capabilities": self._capabilities(row),
            "hosts": hosts,
            "created_at": row.created_at,
        }

    def _capabilities(self, row: DriverAccountRow) -> builtins.list[str]:
        try:
            return self._catalog.build(row.type, row.name, self._options(row)).capabilities.names()
        except (MyPaasError, TypeError):  # a listing never fails for one account's driver
            return []

    def _row(self, s: Session, name: str) -> DriverAccountRow:
        row = s.scalar(select(DriverAccountRow).where(DriverAccountRow.name == name))
        if row is None:
            raise NotFound(f"no driver account {name!r} (see `mypaas driver ls`)", field="driver")
        return row

    def _options(self, row: DriverAccountRow) -> dict[str, Any]:
        return join_secrets(row.options, row.secrets)

    def remove(self, name: str) -> None:
        """Forget the account; refused while hosts it made exist."""
        with self._sessions.begin() as s:
            row = self._row(s, name)
            made = list(s.scalars(select(HostRow.name).where(HostRow.account == name).order_by(HostRow.name)))
            if made:
                raise Conflict(
                    f"driver account {name} made hosts {', '.join(made)}: `mypaas host destroy` them first",
                    field="name",
                )
            s.delete(row)

    def driver(self, name: str) -> MachineDriver:
        """The driver of account ``name``, its secrets decrypted."""
        with self._sessions() as s:
            row = self._row(s, name)
            type_, options = row.type, self._options(row)
        return self._build(type_, name, options)

    def type_of(self, name: str) -> str:
        with self._sessions() as s:
            return self._row(s, name).type

    def sizes(self, name: str) -> builtins.list[dict[str, Any]]:
        return [_listed(size) for size in self.driver(name).sizes()]

    def images(self, name: str) -> builtins.list[dict[str, Any]]:
        return [_listed(image) for image in self.driver(name).images()]


def _listed(choice: MachineSize | MachineImage) -> dict[str, Any]:
    """A size or image as `driver sizes`/`driver images` show it (the ids it also goes by are not listed:
    an image's description names its id where the cloud has one)."""
    return {k: v for k, v in asdict(choice).items() if k != "aliases"}


def _check_options(type_: str, options: Mapping[str, Any], known: Mapping[str, str]) -> None:
    for key in options:
        if key not in known or key == "account":
            raise InvalidSpec(
                f"unknown option {key!r} for the {type_} driver; its options: {', '.join(sorted(known))}",
                field=f"options.{key}",
            )
    for key, value in options.items():  # what a driver's constructor parses: strings (the CLI's k=v)
        if key in MAPPING_OPTIONS:
            if not isinstance(value, Mapping | str):
                raise InvalidSpec(
                    f"option {key!r} of the {type_} driver is a mapping or a string, not {_kind(value)}",
                    field="options",
                )
        elif not isinstance(value, str):
            raise InvalidSpec(
                f"option {key!r} of the {type_} driver is a string, not {_kind(value)}",
                field="options",
            )
    try:
        size = len(json.dumps(options))
    except (TypeError, ValueError) as exc:
        raise InvalidSpec(f"the options are not plain JSON values: {exc}", field="options") from exc
    if size > MAX_OPTIONS_BYTES:
        raise InvalidSpec(f"the options take {size} bytes; at most {MAX_OPTIONS_BYTES}", field="options")


def _kind(value: Any) -> str:
    kinds = {bool: "a boolean", int: "a number", float: "a number", list: "a list", dict: "a mapping"}
    return "null" if value is None else kinds.get(type(value), f"a {type(value).__name__}")


def split_secrets(
    options: Mapping[str, Any], secret: tuple[str, ...]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``options`` without the secret ones, and those by dotted name (``cloud_config.auth.password``)."""
    plain = copy.deepcopy(dict(options))
    hidden: dict[str, Any] = {}
    for path in secret:
        *parents, leaf = path.split(".")
        holder = _walk(plain, parents)
        if holder is not None and leaf in holder:
            hidden[path] = holder.pop(leaf)
    return plain, hidden


def join_secrets(plain: Mapping[str, Any], hidden: Mapping[str, Any]) -> dict[str, Any]:
    """The options again, with the secrets put back where they were."""
    options = copy.deepcopy(dict(plain))
    for path, value in hidden.items():
        *parents, leaf = path.split(".")
        holder: Any = options
        for key in parents:
            holder = holder.setdefault(key, {})
        holder[leaf] = value
    return options


def _walk(options: dict[str, Any], keys: builtins.list[str]) -> dict[str, Any] | None:
    holder: Any = options
    for key in keys:
        holder = holder.get(key) if isinstance(holder, dict) else None
    return holder if isinstance(holder, dict) else None


def endpoint(options: Mapping[str, Any]) -> str:
    """Where the account's endpoint is, for `driver ls`: its url, uri or the cloud's auth url."""
    for path in ENDPOINT_OPTIONS:
        *parents, leaf = path.split(".")
        holder = _walk(dict(options), parents)
        if holder is not None and isinstance(holder.get(leaf), str):
            return str(holder[leaf])
    return ""
