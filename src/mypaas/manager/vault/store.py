"""The apps' secrets and configs in the state store, encrypted (one ``SecretRow`` per value).

A release never holds a value: its spec names each of the app's secrets and configs with the digest
of its value (``seal`` fills them in when a deploy is recorded). Values come from a deploy (a compose
file's ``file``, ``environment`` or ``content``) or from ``mypaas secrets set`` (``put``), which is what
``external`` secrets refer to. A value stays while a release refers to it (releases are kept, so a
rollback finds its values again); a value no release refers to goes when a secret is set or removed.
The reconcile loop reads values back only to hand them to the engine (``files``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mypaas.composer.base import SecretFile
from mypaas.domain import MAX_SECRET_BYTES, AppSpec, SecretSource, ServiceSpec, check_secret_name
from mypaas.errors import Conflict, InvalidSpec, NotFound
from mypaas.manager.state.models import AppRow, OperationRow, ReleaseRow, SecretRow
from mypaas.manager.vault.crypto import Cipher
from mypaas.states import OperationStatus

MASK = "********"
KINDS = (("secrets", "secret"), ("configs", "config"))
_CACHE_MAX = 1000


class Vault:
    """Thread-safe: the API and the reconcile loop use it at once."""

    def __init__(self, sessions: sessionmaker[Session], cipher: Cipher) -> None:
        self._sessions = sessions
        self._cipher = cipher
        self._cache: dict[tuple[str, str], bytes] = {}  # (app, digest) -> value: values never change
        self._lock = threading.Lock()

    # -- deploys --------------------------------------------------------------------------------

    def seal(self, s: Session, app: AppRow, spec: AppSpec, values: Mapping[str, bytes]) -> AppSpec:
        """``spec`` with the digest of each secret's and config's value, the values stored.
        ``values``: what the CLI sent for ``file`` and ``environment`` sources, by ``secrets.NAME`` /
        ``configs.NAME``; an ``external`` one takes the value set with ``mypaas secrets set``."""
        if not spec.secrets and not spec.configs:
            return spec
        sealed: dict[str, dict[str, SecretSource]] = {}
        for field, kind in KINDS:
            sealed[field] = {}
            for key, source in getattr(spec, field).items():
                where = f"{field}.{key}"
                if source.kind == "external":
                    digest = self._current(s, app, source.name, where).digest
                else:
                    value = checked_value(
                        _deployed_value(source, where, values), f"{where}.{source.kind}", kind
                    )
                    digest = self._keep(s, app, "", value)
                sealed[field][key] = source.model_copy(update={"digest": digest, "content": None})
        return spec.model_copy(update=sealed)

    def _current(self, s: Session, app: AppRow, name: str, where: str) -> SecretRow:
        row = s.scalar(
            select(SecretRow).where(SecretRow.app_id == app.id, SecretRow.name == name, SecretRow.current)
        )
        if row is None:
            raise InvalidSpec(
                f"{where}: secret {name!r} is external but not set: set it first with "
                f"`mypaas secrets set {app.name} {name}`",
                field=where,
            )
        return row

    def _keep(self, s: Session, app: AppRow, name: str, value: bytes) -> str:
        digest = self._cipher.digest(value)
        found = s.scalar(
            select(SecretRow).where(
                SecretRow.app_id == app.id, SecretRow.name == name, SecretRow.digest == digest
            )
        )
        if found is None:
            s.add(SecretRow(app_id=app.id, name=name, digest=digest, value=self._cipher.encrypt(value)))
            s.flush()
        return digest

    # -- secrets set outside the compose file ---------------------------------------------------

    def put(self, s: Session, app: AppRow, name: str, value: bytes) -> tuple[str, bool]:
        """Make ``value`` the present value of secret ``name``; answers its digest and whether it changed."""
        check_secret_name(name)
        value = checked_value(value, "value", "secret")
        digest = self._cipher.digest(value)
        current = s.scalar(
            select(SecretRow).where(SecretRow.app_id == app.id, SecretRow.name == name, SecretRow.current)
        )
        if current is not None and current.digest == digest:
            return digest, False
        if current is not None:
            current.current = False
        self._keep(s, app, name, value)
        row = s.scalar(
            select(SecretRow).where(
                SecretRow.app_id == app.id, SecretRow.name == name, SecretRow.digest == digest
            )
        )
        assert row is not None
        row.current, row.created_at = True, time.time()
        s.flush()
        self._collect(s, app)
        return digest, True

    def copy_named(self, s: Session, source: AppRow, dest: AppRow) -> list[str]:
        """Give ``dest`` the present value of each secret set on ``source`` (a preview app its app's);
        answers their names."""
        rows = s.scalars(
            select(SecretRow).where(SecretRow.app_id == source.id, SecretRow.current, SecretRow.name != "")
        ).all()
        for row in rows:
            self.put(s, dest, row.name, self._cipher.decrypt(row.value, row.digest))
        return [row.name for row in rows]

    def remove(self, s: Session, app: AppRow, name: str, target: AppSpec | None) -> None:
        """Forget secret ``name`` (its values stay while releases refer to them); refused while the
        target release mounts it."""
        users = [
            key
            for field, _ in KINDS
            for key, src in getattr(target, field, {}).items()
            if src.kind == "external" and src.name == name
        ]
        if users:
            raise Conflict(
                f"secret {name} is used by the release app {app.name} runs ({', '.join(users)}): "
                "remove it from the compose file and deploy first",
                field="secret",
            )
        current = s.scalar(
            select(SecretRow).where(SecretRow.app_id == app.id, SecretRow.name == name, SecretRow.current)
        )
        if current is None:
            raise NotFound(f"app {app.name} has no secret {name!r}", field="secret")
        current.current = False
        s.flush()
        self._collect(s, app)

    def rebind(self, spec: AppSpec, name: str, digest: str) -> AppSpec:
        """``spec`` with its external references to secret ``name`` at the value ``digest``."""
        changes: dict[str, Any] = {}
        for field, _ in KINDS:
            sources: dict[str, SecretSource] = getattr(spec, field)
            if any(src.kind == "external" and src.name == name for src in sources.values()):
                changes[field] = {
                    key: src.model_copy(update={"digest": digest})
                    if src.kind == "external" and src.name == name
                    else src
                    for key, src in sources.items()
                }
        return spec.model_copy(update=changes) if changes else spec

    def _collect(self, s: Session, app: AppRow) -> None:
        """Delete the values no release refers to (but those of a build still running, not recorded yet)."""
        building = s.scalar(
            select(OperationRow.id).where(
                OperationRow.app == app.name, OperationRow.status == OperationStatus.BUILDING
            )
        )
        used = {
            src.get("digest")
            for (spec,) in s.execute(select(ReleaseRow.spec).where(ReleaseRow.app_id == app.id))
            for field, _ in KINDS
            for src in (spec.get(field) or {}).values()
        }
        for row in s.scalars(
            select(SecretRow).where(SecretRow.app_id == app.id, SecretRow.current.is_(False))
        ):
            if row.digest not in used and not (building and row.name == ""):
                s.delete(row)

    # -- reading (never a value) ----------------------------------------------------------------

    def listing(self, s: Session, app: AppRow, target: AppSpec | None) -> list[dict[str, Any]]:
        """The app's secrets and configs, masked: those of the release it runs, then those set with
        ``mypaas secrets set`` that it does not use."""
        current = {
            row.name: row
            for row in s.scalars(select(SecretRow).where(SecretRow.app_id == app.id, SecretRow.current))
        }
        out: list[dict[str, Any]] = []
        used: set[str] = set()
        spec = target or AppSpec(services={})
        for field, kind in KINDS:
            for key, src in getattr(spec, field).items():
                row = current.get(src.name) if src.kind == "external" else None
                if row is not None:
                    used.add(src.name)
                mounts = [
                    f"{name}:{m.target}"
                    for name, svc in spec.services.items()
                    for m in getattr(svc, field)
                    if m.source == key
                ]
                out.append(_entry(key, kind, _origin(src), src.digest, row, mounts))
        for name, row in sorted(current.items()):
            if name not in used:
                out.append(_entry(name, "secret", "set", row.digest, row, []))
        return out

    # -- the reconcile loop ------------------------------------------------------------------------

    def files(self, app: str, spec: AppSpec, svc: ServiceSpec) -> tuple[SecretFile, ...]:
        """The secrets and configs ``svc`` mounts, with their values, for the engine."""
        out: list[SecretFile] = []
        for field, kind in KINDS:
            for mount in getattr(svc, field):
                src = getattr(spec, field).get(mount.source)
                if src is None or not src.digest:
                    raise InvalidSpec(f"services.{svc.name}: {kind} {mount.source} has no value", field=field)
                out.append(
                    SecretFile(
                        kind=kind,
                        name=mount.source,
                        digest=src.digest,
                        target=mount.target,
                        data=self._value(app, src.digest),
                        uid=mount.uid,
                        gid=mount.gid,
                        mode=mount.mode,
                    )
                )
        return tuple(out)

    def _value(self, app: str, digest: str) -> bytes:
        with self._lock:
            cached = self._cache.get((app, digest))
        if cached is not None:
            return cached
        with self._sessions() as s:
            token = s.scalar(
                select(SecretRow.value)
                .join(AppRow, AppRow.id == SecretRow.app_id)
                .where(AppRow.name == app, SecretRow.digest == digest)
                .limit(1)
            )
        if token is None:
            raise InvalidSpec(
                f"a secret or config value of app {app} is gone from the store", field="secrets"
            )
        value = self._cipher.decrypt(token, digest)
        with self._lock:
            if len(self._cache) >= _CACHE_MAX:
                self._cache.clear()
            self._cache[(app, digest)] = value
        return value


def checked_value(value: bytes, where: str, kind: str) -> bytes:
    if not value:
        raise InvalidSpec(f"{where}: the {kind} is empty (Swarm refuses empty values)", field=where)
    if len(value) > MAX_SECRET_BYTES:
        raise InvalidSpec(
            f"{where}: the {kind} is {len(value) // 1024} KiB; at most {MAX_SECRET_BYTES // 1024} KiB",
            field=where,
        )
    return value


def _deployed_value(source: SecretSource, where: str, values: Mapping[str, bytes]) -> bytes:
    if source.kind == "content":
        return (source.content or "").encode()
    if where not in values:
        what = f"the file {source.name!r}" if source.kind == "file" else f"the variable {source.name}"
        raise InvalidSpec(
            f"{where}.{source.kind}: {what} was not sent with the compose file (`mypaas deploy -f` sends it)",
            field=f"{where}.{source.kind}",
        )
    return values[where]


def _origin(src: SecretSource) -> str:
    return {
        "file": f"file {src.name}",
        "environment": f"environment {src.name}",
        "content": "content",
        "external": f"set as {src.name}",
    }.get(src.kind, src.kind)


def _entry(
    name: str, kind: str, origin: str, digest: str, row: SecretRow | None, mounts: list[str]
) -> dict[str, Any]:
    return {
        "name": name,
        "kind": kind,
        "source": origin,
        "digest": digest[:12],
        "value": MASK,
        "mounts": mounts,
        "set_at": row.created_at if row is not None else None,
    }
